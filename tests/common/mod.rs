//! The `warren` binary as a child process, for the tests of the real
//! process (durability across crashes, logs, start-up errors).
//!
//! The child listens on port 0 and the harness reads the address it bound
//! from its ready line on stderr, so tests never race each other for a
//! free port. Every stderr line is kept for tests that check the logs (and
//! echoed with WARREN_TEST_LOGS set).
//!
//! Each child carries the test process's id (`WARREN_TEST_PARENT`); the
//! first start of a test process kills the children of test processes
//! that are gone (a run killed with SIGKILL cannot stop its own).

#![allow(dead_code)] // each test binary uses part of it

pub mod cluster;
pub mod cluster_clients;
pub mod cut_proxy;
pub mod netns;
pub mod proxy;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `warren` process on a data directory.
pub struct Warren {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its stderr, line by line, as far as read.
    pub log: Arc<Mutex<Vec<String>>>,
}

/// What a start that should fail printed.
pub struct Failed {
    pub status: std::process::ExitStatus,
    pub stderr: String,
}

/// The environment variable that names a child's test process.
const PARENT_VAR: &str = "WARREN_TEST_PARENT";

/// Whether process `pid` runs (a zombie, which nobody reaped yet, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// Kills the `warren` children left by test processes that died.
fn kill_orphans() {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let parent = environ
            .split(|b| *b == 0)
            .filter_map(|var| std::str::from_utf8(var).ok())
            .find_map(|var| var.strip_prefix(PARENT_VAR)?.strip_prefix('='))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(parent) = parent {
            if !alive(parent) {
                eprintln!("killing warren {pid}, left by test process {parent}");
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// The `warren` command, run through `wrapper` (such as `ip netns exec
/// NS`) when one is given.
fn command(wrapper: &[String], data_dir: &Path, args: &[&str]) -> Command {
    static ORPHANS_KILLED: std::sync::Once = std::sync::Once::new();
    ORPHANS_KILLED.call_once(kill_orphans);
    let warren = env!("CARGO_BIN_EXE_warren");
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(warren);
            command
        }
        None => Command::new(warren),
    };
    if !args.contains(&"--listen") {
        command.args(["--listen", "127.0.0.1:0"]);
    }
    if !args.contains(&"--management-listen") {
        command.args(["--management-listen", "127.0.0.1:0"]);
    }
    if !args.contains(&"--prometheus-listen") {
        command.args(["--prometheus-listen", "127.0.0.1:0"]);
    }
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "info")
        .env(PARENT_VAR, std::process::id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

impl Warren {
    pub fn start(data_dir: &Path) -> Warren {
        Warren::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, args: &[&str]) -> Warren {
        Warren::start_wrapped(&[], data_dir, args)
    }

    /// Starts warren through `wrapper`, a command that ends by running it
    /// in the same process (so that a signal to the child reaches warren).
    pub fn start_wrapped(wrapper: &[String], data_dir: &Path, args: &[&str]) -> Warren {
        let mut child = command(wrapper, data_dir, args).spawn().expect("start warren");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            let echo = std::env::var_os("WARREN_TEST_LOGS").is_some();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("{line}");
                }
                if let Some(addr) = ready_address(&line) {
                    let _ = ready_tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match ready_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "warren did not report its address; its log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Warren { child, addr, log }
    }

    /// Runs warren with arguments that must make it fail at start.
    pub fn fail_to_start(data_dir: &Path, args: &[&str]) -> Failed {
        let mut child = command(&[], data_dir, args).spawn().expect("start warren");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let output = child.wait_with_output().expect("output");
                return Failed {
                    status,
                    stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                };
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("warren started although it should have refused to");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Waits until a log line contains `text`; returns it.
    pub fn wait_for_log(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no log line with {text:?}; the log:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The management API's address, from the startup line.
    pub fn management_addr(&self) -> SocketAddr {
        let line = self.wait_for_log("management API on http://");
        line.split("management API on http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no management address in {line:?}"))
    }

    /// SIGKILL: no chance to flush anything.
    pub fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM: a graceful shutdown.
    pub fn stop(self) {
        self.stop_async();
        self.wait_exit();
    }

    /// Sends SIGTERM without waiting.
    pub fn stop_async(&self) {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }

    pub fn wait_exit(mut self) {
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "warren did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The address in the broker's ready line, if this is it.
fn ready_address(line: &str) -> Option<SocketAddr> {
    let (_, after) = line.split_once("ready to accept AMQP connections on ")?;
    after.split_whitespace().next()?.parse().ok()
}

impl Drop for Warren {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// queue.declare with passive set: the queue as `channel`'s broker has it.
pub async fn passive_declare(channel: &lapin::Channel, queue: &str) -> lapin::Result<lapin::Queue> {
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue.into(), passive, lapin::types::FieldTable::default())
        .await
}
