//! Three real `warren` processes on 127.0.0.1, .2 and .3 as one cluster:
//! the metadata group elects a leader, a change made on any node reaches
//! every node, the loss of the leader elects another and changes go on,
//! a restarted node catches up, and without a majority a change is
//! refused (503) instead of being made on some nodes only.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use common::Warren;
use serde_json::Value;

/// A free port on a loopback address (the cluster list needs every port
/// before any node starts).
fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Node {
    name: String,
    ip: Ipv4Addr,
    cluster: SocketAddr,
}

struct Cluster {
    nodes: Vec<Node>,
    peers: String,
}

impl Cluster {
    fn new(count: u8) -> Cluster {
        let nodes: Vec<Node> = (1..=count)
            .map(|i| {
                let ip = Ipv4Addr::new(127, 0, 0, i);
                Node {
                    name: format!("n{i}"),
                    ip,
                    cluster: SocketAddr::from((ip, free_port(ip))),
                }
            })
            .collect();
        let peers = nodes
            .iter()
            .map(|n| format!("{}={}", n.name, n.cluster))
            .collect::<Vec<_>>()
            .join(",");
        Cluster { nodes, peers }
    }

    fn start(&self, index: usize, data: &Path) -> Warren {
        let node = &self.nodes[index];
        let listen = format!("{}:0", node.ip);
        let cluster = node.cluster.to_string();
        Warren::start_with(
            &data.join(&node.name),
            &[
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
            ],
        )
    }
}

async fn get(http: &reqwest::Client, node: &Warren, path: &str) -> Option<Value> {
    let url = format!("http://{}/api/{path}", node.management_addr());
    let response = http.get(url).basic_auth("guest", Some("guest")).send().await.ok()?;
    response.json().await.ok()
}

async fn put_cluster_name(http: &reqwest::Client, node: &Warren, name: &str) -> u16 {
    let url = format!("http://{}/api/cluster-name", node.management_addr());
    http.put(url)
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The leader's name once `node` sees `running` members running, the
/// leader among them.
async fn leader_seen_by(http: &reqwest::Client, node: &Warren, running: usize) -> String {
    let started = Instant::now();
    loop {
        if let Some(Value::Array(members)) = get(http, node, "nodes").await {
            let up = members.iter().filter(|m| m["running"] == true).count();
            let leader = members
                .iter()
                .find(|m| m["metadata_leader"] == true && m["running"] == true);
            if let (true, Some(leader)) = (up == running, leader) {
                return leader["name"].as_str().unwrap_or_default().to_string();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no leader with {running} members running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_name(http: &reqwest::Client, node: &Warren, name: &str) {
    let started = Instant::now();
    loop {
        if get(http, node, "cluster-name").await.is_some_and(|v| v["name"] == name) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the cluster name never became {name}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_survives_the_loss_of_a_minority() {
    let data = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::new(3);
    let http = reqwest::Client::new();
    let mut nodes: Vec<Option<Warren>> = (0..3).map(|i| Some(cluster.start(i, data.path()))).collect();
    let running = |nodes: &Vec<Option<Warren>>| nodes.iter().flatten().count();

    let leader = leader_seen_by(&http, nodes[1].as_ref().unwrap(), 3).await;
    for node in nodes.iter().flatten() {
        assert_eq!(
            leader_seen_by(&http, node, 3).await,
            leader,
            "every node sees the same leader"
        );
    }

    // A change made on a follower reaches every node.
    let leader_index = cluster
        .nodes
        .iter()
        .position(|n| n.name == leader)
        .expect("leader is a member");
    let follower = (leader_index + 1) % 3;
    assert_eq!(
        put_cluster_name(&http, nodes[follower].as_ref().unwrap(), "east").await,
        204
    );
    for node in nodes.iter().flatten() {
        wait_for_name(&http, node, "east").await;
    }

    // The leader dies: the other two elect one and go on.
    nodes[leader_index].take().expect("leader runs").crash();
    let killed = Instant::now();
    let survivor = nodes[follower].as_ref().unwrap();
    let new_leader = leader_seen_by(&http, survivor, running(&nodes)).await;
    assert_ne!(new_leader, leader);
    eprintln!(
        "a new leader ({new_leader}) {} ms after the old one died",
        killed.elapsed().as_millis()
    );
    assert_eq!(put_cluster_name(&http, survivor, "west").await, 204);
    for node in nodes.iter().flatten() {
        wait_for_name(&http, node, "west").await;
    }

    // The dead node comes back and catches up.
    nodes[leader_index] = Some(cluster.start(leader_index, data.path()));
    wait_for_name(&http, nodes[leader_index].as_ref().unwrap(), "west").await;
    leader_seen_by(&http, nodes[leader_index].as_ref().unwrap(), 3).await;

    // Two of three gone: no majority, so the change is refused, not made.
    let last = (leader_index + 2) % 3;
    for (i, node) in nodes.iter_mut().enumerate() {
        if i != last {
            node.take().expect("runs").crash();
        }
    }
    let alone = nodes[last].as_ref().unwrap();
    assert_eq!(put_cluster_name(&http, alone, "north").await, 503);
    assert_eq!(get(&http, alone, "cluster-name").await.expect("name")["name"], "west");
}
