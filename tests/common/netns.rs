//! Test hosts in network namespaces, for a root test that partitions a
//! cluster in the kernel: each member runs in a namespace of its own with
//! one veth link to a bridge in the test's namespace, so the test's
//! clients reach every member while a partition between two members is a
//! pair of blackhole routes (each side's packets to the other dropped:
//! connecting fails, open connections stall) and healing removes them.
//! Everything made is removed on drop, and what a killed test run left
//! behind (its process gone) at the next start. Addresses come from
//! 198.18.0.0/15, the block set aside for benchmarking networks, one /24
//! per test process.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

pub struct Hosts {
    /// Names of the namespaces, one per member.
    namespaces: Vec<String>,
    bridge: String,
    subnet: u8,
}

/// Runs `ip ARGS` (in namespace `ns` when given); true when it succeeded.
fn ip(ns: Option<&str>, args: &[&str]) -> bool {
    let mut command = Command::new("ip");
    if let Some(ns) = ns {
        command.args(["netns", "exec", ns, "ip"]);
    }
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Hosts {
    /// `count` hosts, or None where namespaces cannot be made (not root,
    /// no `ip`, no veth or bridge in this kernel).
    pub fn create(count: usize) -> Option<Hosts> {
        remove_leftovers();
        let pid = std::process::id();
        let hosts = Hosts {
            namespaces: (1..=count).map(|i| format!("warren-{pid}-{i}")).collect(),
            bridge: format!("wbr{pid}"),
            subnet: (pid % 256) as u8,
        };
        let gateway = format!("{}/24", hosts.address(254));
        if !(ip(None, &["link", "add", &hosts.bridge, "type", "bridge"])
            && ip(None, &["addr", "add", &gateway, "dev", &hosts.bridge])
            && ip(None, &["link", "set", &hosts.bridge, "up"]))
        {
            return None; // drop removes what was made
        }
        for (i, ns) in hosts.namespaces.iter().enumerate() {
            let veth = format!("wv{pid}-{}", i + 1);
            let address = format!("{}/24", hosts.ip(i));
            let made = ip(None, &["netns", "add", ns])
                && ip(
                    None,
                    &[
                        "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
                    ],
                )
                && ip(None, &["link", "set", &veth, "master", &hosts.bridge, "up"])
                && ip(Some(ns), &["addr", "add", &address, "dev", "eth0"])
                && ip(Some(ns), &["link", "set", "eth0", "up"])
                && ip(Some(ns), &["link", "set", "lo", "up"]);
            if !made {
                return None;
            }
        }
        Some(hosts)
    }

    fn address(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, host)
    }

    /// Member `index`'s address.
    pub fn ip(&self, index: usize) -> Ipv4Addr {
        self.address(index as u8 + 1)
    }

    /// The command words that run a program on host `index`.
    pub fn wrapper(&self, index: usize) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.namespaces[index].clone(),
        ]
    }

    /// Cuts (or heals) the link between hosts `a` and `b`, both ways.
    pub fn set_cut(&self, a: usize, b: usize, cut: bool) {
        let verb = if cut { "add" } else { "del" };
        for (from, to) in [(a, b), (b, a)] {
            let target = format!("{}/32", self.ip(to));
            let done = ip(Some(&self.namespaces[from]), &["route", verb, "blackhole", &target]);
            assert!(done, "ip route {verb} blackhole {target} on host {from} failed");
        }
    }
}

/// The output of `ip ARGS`, empty if it failed.
fn ip_output(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Namespaces and bridges of test runs whose process is gone.
fn remove_leftovers() {
    let gone = |pid: &str| pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists();
    for line in ip_output(&["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if let Some(pid) = name.strip_prefix("warren-").and_then(|rest| rest.split('-').next()) {
            if gone(pid) {
                ip(None, &["netns", "del", name]);
            }
        }
    }
    for line in ip_output(&["-o", "link", "show", "type", "bridge"]).lines() {
        let name = line.split(": ").nth(1).unwrap_or_default();
        if let Some(pid) = name.strip_prefix("wbr") {
            if gone(pid) {
                ip(None, &["link", "del", name]);
            }
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            ip(None, &["netns", "del", ns]); // takes its veth pair along
        }
        ip(None, &["link", "del", &self.bridge]);
    }
}
