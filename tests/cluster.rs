//! Three real `warren` processes on 127.0.0.1, .2 and .3 as one cluster:
//! the metadata group elects a leader, a change made on any node reaches
//! every node, the loss of the leader elects another and changes go on,
//! a restarted node catches up, and without a majority a change is
//! refused (503) instead of being made on some nodes only.

mod common;

use std::time::{Duration, Instant};

use common::cluster_clients::{get, leader_seen_by, send, three_members, wait_purged, wait_until};
use common::Warren;
use serde_json::json;

async fn put_cluster_name(http: &reqwest::Client, node: &Warren, name: &str) -> u16 {
    send(http, node, "cluster-name", Some(json!({ "name": name }))).await
}

async fn wait_for_name(http: &reqwest::Client, node: &Warren, name: &str) {
    wait_until(http, node, "cluster-name", |v| v["name"] == name).await;
}

/// Whether `user` with `password` can open an AMQP connection to `vhost`
/// on `node` (the encoded vhost in the URL).
async fn can_log_in(node: &Warren, user: &str, password: &str, vhost: &str) -> bool {
    let url = format!("amqp://{user}:{password}@{}/{vhost}", node.addr);
    match lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await {
        Ok(connection) => {
            let _ = connection.close(200, "bye".into()).await;
            true
        }
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_survives_the_loss_of_a_minority() {
    let (data, cluster, http, mut nodes) = three_members().await;
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

    // Users, vhosts, permissions and policies made on one survivor while
    // a member is down reach the other survivor.
    let other = nodes
        .iter()
        .flatten()
        .find(|n| n.addr != survivor.addr)
        .expect("two survive");
    assert_eq!(send(&http, survivor, "vhosts/orders", Some(json!({}))).await, 201);
    let user = json!({ "password": "s3cret", "tags": "monitoring" });
    assert_eq!(send(&http, other, "users/alice", Some(user)).await, 201);
    let everything = json!({ "configure": ".*", "write": ".*", "read": ".*" });
    assert_eq!(
        send(&http, survivor, "permissions/orders/alice", Some(everything)).await,
        201
    );
    let policy = json!({ "pattern": "^q", "definition": { "max-length": 10 }, "apply-to": "queues" });
    assert_eq!(send(&http, other, "policies/orders/short", Some(policy)).await, 201);
    assert_eq!(
        send(
            &http,
            survivor,
            "users/bob",
            Some(json!({ "password": "x", "tags": "" }))
        )
        .await,
        201
    );
    for node in nodes.iter().flatten() {
        wait_until(&http, node, "permissions/orders/alice", |v| v["read"] == ".*").await;
        wait_until(&http, node, "policies/orders/short", |v| {
            v["definition"]["max-length"] == 10
        })
        .await;
        assert!(
            can_log_in(node, "alice", "s3cret", "orders").await,
            "alice logs in on {}",
            node.addr
        );
    }

    // The dead node comes back and catches up, deletions included.
    assert_eq!(send(&http, survivor, "users/bob", None).await, 204);
    nodes[leader_index] = Some(cluster.start(leader_index, data.path()));
    let back = nodes[leader_index].as_ref().unwrap();
    wait_for_name(&http, back, "west").await;
    wait_until(&http, back, "permissions/orders/alice", |v| v["read"] == ".*").await;
    wait_until(&http, back, "users", |v| {
        let names: Vec<&str> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["name"].as_str())
            .collect();
        names.contains(&"alice") && !names.contains(&"bob")
    })
    .await;
    assert!(can_log_in(back, "alice", "s3cret", "orders").await);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_a_thousand_changes_catches_up_from_a_snapshot() {
    use futures::StreamExt;
    let (data, cluster, http, mut nodes) = three_members().await;
    assert_eq!(
        send(
            &http,
            nodes[0].as_ref().unwrap(),
            "users/early",
            Some(json!({"password": "e", "tags": ""}))
        )
        .await,
        201
    );
    wait_until(&http, nodes[2].as_ref().unwrap(), "users/early", |v| {
        v["name"] == "early"
    })
    .await;
    nodes[2].take().expect("n3 runs").crash();

    // 1,200 changes while n3 is away: 800 users made, 400 of them deleted
    // again, and "early" deleted. The group snapshots every 1,000 entries
    // and purges its log behind the snapshot. Each user carries 8 KB of
    // tags, so the snapshot (over 3 MB) is larger than one request body of
    // a web framework's default limit: it must still arrive.
    let writer = nodes[0].as_ref().unwrap();
    let tags = "t".repeat(8_000);
    let made = futures::stream::iter(0..800)
        .map(|i| {
            let (http, path, tags) = (&http, format!("users/u{i}"), &tags);
            async move { send(http, writer, &path, Some(json!({"password": "p", "tags": tags}))).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<u16>>()
        .await;
    assert!(made.iter().all(|s| *s == 201), "{made:?}");
    let deleted = futures::stream::iter((0..800).step_by(2))
        .map(|i| {
            let (http, path) = (&http, format!("users/u{i}"));
            async move { send(http, writer, &path, None).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<u16>>()
        .await;
    assert!(deleted.iter().all(|s| *s == 204), "{deleted:?}");
    assert_eq!(send(&http, writer, "users/early", None).await, 204);
    wait_purged(data.path(), &["n1", "n2"]).await;

    nodes[2] = Some(cluster.start(2, data.path()));
    let back = nodes[2].as_ref().unwrap();
    wait_until(&http, back, "users", |v| {
        let names: Vec<&str> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["name"].as_str())
            .collect();
        names.len() == 401 && names.contains(&"u1") && !names.contains(&"u0") && !names.contains(&"early")
    })
    .await;
}

/// The status code the cluster port at `port` answers a hand-made POST
/// with `headers` and then `rest` (more headers, and the body).
async fn raw_status(port: std::net::SocketAddr, headers: &str, rest: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(port).await.expect("connect");
    let request = format!("POST /metadata/propose HTTP/1.1\r\nhost: member\r\n{headers}{rest}");
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut answer = vec![0u8; 128];
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..read]).into_owned();
    text.split(' ').nth(1).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_port_answers_only_signed_requests() {
    let (_data, cluster, http, nodes) = three_members().await;
    let port = cluster.nodes[0].listen;
    let n1 = nodes[0].as_ref().unwrap();
    let started = n1.wait_for_log("roster ");
    let roster = started.rsplit("roster ").next().unwrap_or_default().trim().to_string();
    let post = |path: &str, headers: Vec<(&'static str, String)>| {
        let mut request = http.post(format!("http://{port}{path}")).body("junk");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    // A caller given another peer list (or none) is refused: 409.
    assert_eq!(post("/metadata/propose", vec![]).await, 409);
    let other = vec![("x-warren-roster", "another".to_string())];
    assert_eq!(post("/metadata/propose", other).await, 409);
    // The right roster but no signature, an old one, a made-up one: 401,
    // before the body is decoded (which would answer 400).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string();
    for (time, signature) in [
        (None, None),
        (Some("0".to_string()), Some("AAAA")),
        (Some(now), Some("bm90IHNpZ25lZA==")),
    ] {
        let mut headers = vec![("x-warren-roster", roster.clone())];
        headers.extend(time.map(|t| ("x-warren-time", t)));
        headers.extend(signature.map(|s| ("x-warren-signature", s.to_string())));
        assert_eq!(post("/metadata/propose", headers.clone()).await, 401, "{headers:?}");
    }
    // Signed-looking headers but no declared length, or more than any
    // member sends: refused before a byte of the body is held.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let looks_signed =
        format!("x-warren-roster: {roster}\r\nx-warren-time: {now}\r\nx-warren-signature: bm90IHNpZ25lZA==\r\n");
    let chunked = "transfer-encoding: chunked\r\n\r\n5\r\njunk!\r\n";
    assert_eq!(raw_status(port, &looks_signed, chunked).await, "411");
    let huge = "content-length: 2147483648\r\n\r\njunk";
    assert_eq!(raw_status(port, &looks_signed, huge).await, "413");
    // The members, which share the secret, still work together.
    let n2 = nodes[1].as_ref().unwrap();
    assert_eq!(put_cluster_name(&http, n2, "signed").await, 204);
    wait_for_name(&http, nodes[2].as_ref().unwrap(), "signed").await;
}
