//! A member whose clock is wrong, through three real `warren` processes,
//! one of them run with its wall clock 20 s ahead (libfaketime): it sees
//! that it is off and says so, and what it writes as a queue's leader
//! carries the cluster's time, so a message's TTL runs out when it should
//! after another member takes over (stamped with its own clock, the
//! message would live 20 s too long on the others).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::cluster_clients::{amqp, declare, get, leader_seen_by, publish_confirmed, quorum_args, wait_until};
use common::Warren;
use lapin::types::AMQPValue;
use serde_json::Value;

/// Debian's libfaketime (the `faketime` package, which `.ci/run` installs).
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

const AHEAD_S: i64 = 20;

/// `env` with libfaketime preloaded: the wall clock `AHEAD_S` ahead, the
/// monotonic clock (timers, timeouts) left alone.
fn clock_ahead() -> Vec<String> {
    assert!(
        Path::new(FAKETIME).exists(),
        "{FAKETIME} is missing: install the faketime package"
    );
    vec![
        "env".into(),
        format!("LD_PRELOAD={FAKETIME}"),
        format!("FAKETIME=+{AHEAD_S}s"),
        "FAKETIME_DONT_FAKE_MONOTONIC=1".into(),
    ]
}

async fn queue(http: &reqwest::Client, node: &Warren, name: &str) -> Value {
    let path = format!("queues/%2f/{name}");
    wait_until(http, node, &path, |q| q["leader"].is_string()).await;
    get(http, node, &path).await.unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_with_its_clock_ahead_stamps_the_clusters_time() {
    let data = tempfile::tempdir().unwrap();
    let cluster = Cluster::new(3);
    let n1 = cluster.start_under(0, data.path(), &clock_ahead(), &[]);
    let n2 = cluster.start(1, data.path());
    let n3 = cluster.start(2, data.path());
    let http = reqwest::Client::new();
    leader_seen_by(&http, &n2, 3).await;

    // The member ahead finds out from the others' answers.
    let line = n1.wait_for_log("this node's clock is ");
    let offset: i64 = line
        .split("clock is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {line}"));
    assert!(
        (offset + AHEAD_S * 1000).abs() < 1_000,
        "{offset} ms, not about -{AHEAD_S} s: {line}"
    );

    // A queue whose group n1 leads (groups spread their leaders by name).
    let (_c1, ch1) = amqp(&n1).await;
    ch1.confirm_select(Default::default()).await.expect("confirms");
    let ttl_ms = 5_000;
    let args = quorum_args(&[("x-message-ttl", AMQPValue::LongInt(ttl_ms))]);
    let mut led_by_n1 = None;
    for i in 0..12 {
        let name = format!("clock-{i}");
        declare(&ch1, &name, args.clone()).await;
        if queue(&http, &n2, &name).await["leader"] == "n1" {
            led_by_n1 = Some(name);
            break;
        }
    }
    let name = led_by_n1.expect("one of twelve groups led by n1");

    // Stamped by n1 as its leader; then n1 dies and another member leads.
    publish_confirmed(&ch1, &name, b"five seconds").await;
    let published = Instant::now();
    n1.crash();
    let path = format!("queues/%2f/{name}");
    wait_until(&http, &n2, &path, |q| q["leader"].is_string() && q["leader"] != "n1").await;
    // Still there for now (nothing expired it early)...
    let early = queue(&http, &n3, &name).await;
    if published.elapsed() < Duration::from_millis(ttl_ms as u64 - 1_500) {
        assert_eq!(early["messages"], 1, "{early}");
    }
    // ...and gone by the cluster's clock, not 20 s later by n1's.
    wait_until(&http, &n3, &path, |q| q["messages"] == 0).await;
    let lived = published.elapsed();
    assert!(
        lived < Duration::from_millis(ttl_ms as u64 + 8_000),
        "the message lived {lived:?} with a TTL of {ttl_ms} ms"
    );
}
