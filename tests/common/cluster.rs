//! A cluster of real `warren` processes: every member's cluster port is
//! chosen before any starts (the peer list names them all); each node's
//! AMQP and management ports are its own to pick. Members run on
//! 127.0.0.1, .2, .3... or, for a test that partitions them, in network
//! namespaces (as root) or behind cutting proxies (otherwise).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};

use super::cut_proxy::Fronts;
use super::netns::Hosts;
use super::Warren;

/// Where cluster ports are picked from: below Linux's ephemeral range
/// (32768-60999), which binding port 0 draws on. A port picked from that
/// range and let go could be handed to a node's own AMQP listener (port
/// 0) before its cluster listener bound it (seen: "Address already in
/// use" for a cluster port the same node's AMQP listener had taken).
const CLUSTER_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free port on an address (the cluster list needs every port before
/// any node starts): each pick in this process a new one, starting from
/// a place the process id gives, so test binaries run side by side differ.
fn free_port(ip: IpAddr) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = CLUSTER_PORTS.end - CLUSTER_PORTS.start;
    let start = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = CLUSTER_PORTS.start + (start + step) % span;
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {CLUSTER_PORTS:?} on {ip}");
}

/// The secret every test cluster's members share.
pub const SECRET: &str = "test-cluster-secret";

pub struct Node {
    pub name: String,
    pub ip: IpAddr,
    /// Where its cluster port listens.
    pub listen: SocketAddr,
}

/// Where the members run, and how a partition between them is made.
enum Network {
    /// Loopback addresses, never partitioned.
    Loopback,
    /// A network namespace per member; partitions in the kernel.
    Namespaces(Hosts),
    /// Loopback behind proxies; partitions by the proxies.
    Proxies(Fronts),
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub peers: String,
    network: Network,
}

fn peer_list(names: impl Iterator<Item = String>, addrs: &[SocketAddr]) -> String {
    names
        .zip(addrs)
        .map(|(name, addr)| format!("{name}={addr}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn loopback_nodes(count: u8) -> Vec<Node> {
    (1..=count)
        .map(|i| {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, i));
            Node {
                name: format!("n{i}"),
                ip,
                listen: SocketAddr::new(ip, free_port(ip)),
            }
        })
        .collect()
}

impl Cluster {
    /// Members on 127.0.0.1 to .`count`.
    pub fn new(count: u8) -> Cluster {
        let nodes = loopback_nodes(count);
        let listens: Vec<SocketAddr> = nodes.iter().map(|n| n.listen).collect();
        Cluster {
            peers: peer_list(nodes.iter().map(|n| n.name.clone()), &listens),
            nodes,
            network: Network::Loopback,
        }
    }

    /// Members that `set_cut` can partition: in network namespaces where
    /// they can be made (root), else behind proxies on loopback.
    pub async fn partitionable(count: u8) -> Cluster {
        if std::env::var("WARREN_PARTITION").as_deref() != Ok("proxy") {
            if let Some(hosts) = Hosts::create(count as usize) {
                let nodes: Vec<Node> = (0..count as usize)
                    .map(|i| {
                        let ip = IpAddr::V4(hosts.ip(i));
                        Node {
                            name: format!("n{}", i + 1),
                            ip,
                            listen: SocketAddr::new(ip, 25672),
                        }
                    })
                    .collect();
                let listens: Vec<SocketAddr> = nodes.iter().map(|n| n.listen).collect();
                return Cluster {
                    peers: peer_list(nodes.iter().map(|n| n.name.clone()), &listens),
                    nodes,
                    network: Network::Namespaces(hosts),
                };
            }
        }
        let nodes = loopback_nodes(count);
        let listens: Vec<SocketAddr> = nodes.iter().map(|n| n.listen).collect();
        let fronts = Fronts::start(&listens).await;
        Cluster {
            peers: peer_list(nodes.iter().map(|n| n.name.clone()), &fronts.addrs),
            nodes,
            network: Network::Proxies(fronts),
        }
    }

    /// How partitions are made, for the test's report.
    pub fn partitions(&self) -> &'static str {
        match self.network {
            Network::Loopback => "none",
            Network::Namespaces(_) => "network namespaces, blackhole routes",
            Network::Proxies(_) => "cutting TCP proxies",
        }
    }

    /// Cuts (or heals) the network between members `a` and `b`.
    pub fn set_cut(&self, a: usize, b: usize, cut: bool) {
        match &self.network {
            Network::Loopback => panic!("this cluster cannot be partitioned"),
            Network::Namespaces(hosts) => hosts.set_cut(a, b, cut),
            Network::Proxies(fronts) => fronts.set_cut(a, b, cut),
        }
    }

    /// Starts member `index` on its data directory under `data`.
    pub fn start(&self, index: usize, data: &Path) -> Warren {
        self.start_with(index, data, &[])
    }

    /// Starts member `index` with `extra` arguments after the cluster's.
    pub fn start_with(&self, index: usize, data: &Path, extra: &[&str]) -> Warren {
        self.start_under(index, data, &[], extra)
    }

    /// Starts member `index` through `wrapper` (a command that ends by
    /// running warren in its own process, as `env`), on loopback.
    pub fn start_under(&self, index: usize, data: &Path, wrapper: &[String], extra: &[&str]) -> Warren {
        let node = &self.nodes[index];
        let listen = SocketAddr::new(node.ip, 0).to_string();
        let cluster = node.listen.to_string();
        let mut args = vec![
            "--listen",
            &listen,
            "--management-listen",
            &listen,
            "--node-name",
            &node.name,
            "--cluster-listen",
            &cluster,
            "--cluster-peers",
            &self.peers,
            "--cluster-secret",
            SECRET,
        ];
        args.extend_from_slice(extra);
        let data = data.join(&node.name);
        match &self.network {
            Network::Namespaces(hosts) => {
                // The test's clients come from the bridge, not this host's
                // loopback: guest may log in from there.
                args.push("--loopback-users=");
                Warren::start_wrapped(&hosts.wrapper(index), &data, &args)
            }
            _ => Warren::start_wrapped(wrapper, &data, &args),
        }
    }
}
