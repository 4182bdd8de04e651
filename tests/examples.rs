//! Runs every tutorial example in `examples/` against a Warren started
//! in-process, as a user would run them against a broker: a real client
//! (lapin) on a real socket. Each example checks its own outcome and exits
//! non-zero when it is wrong.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// `cargo test` builds the examples next to the test binaries' directory.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    profile_dir.join("examples").join(name)
}

fn run_example(name: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let broker = runtime.block_on(warren::start_ephemeral()).expect("start broker");
    let binary = example_binary(name);
    assert!(binary.exists(), "{} was not built", binary.display());
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .env("AMQP_URL", broker.amqp_url())
        .spawn()
        .expect("spawn example");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait example") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("example {name} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    runtime.block_on(broker.shutdown());
    assert!(status.success(), "example {name} failed: {status}");
}

#[test]
fn hello_world() {
    run_example("hello_world");
}

#[test]
fn retry_dead_letter() {
    run_example("retry_dead_letter");
}

#[test]
fn work_queues() {
    run_example("work_queues");
}

#[test]
fn publish_subscribe() {
    run_example("publish_subscribe");
}

#[test]
fn routing() {
    run_example("routing");
}

#[test]
fn topics() {
    run_example("topics");
}

#[test]
fn rpc() {
    run_example("rpc");
}

#[test]
fn partitioned_orders() {
    run_example("partitioned_orders");
}

#[test]
fn stream_replay() {
    run_example("stream_replay");
}

#[test]
fn consumer_groups() {
    run_example("consumer_groups");
}
