//! warrenctl against a real Warren: every command through the real
//! binary, checked by what it prints and by what AMQP clients then see.

use std::process::Command;
use std::time::Duration;

use lapin::options::*;
use lapin::types::FieldTable;

struct Ctl {
    url: String,
}

impl Ctl {
    /// Runs warrenctl; returns (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_warrenctl"))
            .arg("--url")
            .arg(&self.url)
            .args(args)
            .output()
            .expect("run warrenctl");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "warrenctl {args:?} failed: {err}");
        out
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warrenctl_manages_users_vhosts_permissions_queues_and_policies() {
    let warren = warren::start_ephemeral().await.unwrap();
    let url = warren.management_url().trim_end_matches("/api/").to_string();
    let ctl = std::sync::Arc::new(Ctl { url });
    let c = ctl.clone();
    blocking(move || {
        c.ok(&["add_vhost", "shop", "--description", "the shop"]);
        c.ok(&["add_user", "clerk", "s3cret"]);
        c.ok(&["set_user_tags", "clerk", "management"]);
        c.ok(&["-p", "shop", "set_permissions", "clerk", ".*", ".*", ".*"]);
        let users = c.ok(&["list_users", "--formatter", "json"]);
        assert!(users.contains(r#"{"user":"clerk","tags":["management"]}"#), "{users}");
        assert!(c.ok(&["list_vhosts", "-q"]).lines().any(|l| l == "shop"));
        let permissions = c.ok(&["-p", "shop", "list_permissions", "-q"]);
        assert!(permissions.contains("clerk\t.*\t.*\t.*"), "{permissions}");
    })
    .await;

    // The user logs in with the password warrenctl gave it.
    let port = warren.local_addr().port();
    let connection = lapin::Connection::connect(
        &format!("amqp://clerk:s3cret@127.0.0.1:{port}/shop"),
        Default::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare("orders".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    for _ in 0..2 {
        channel
            .basic_publish(
                "".into(),
                "orders".into(),
                BasicPublishOptions::default(),
                b"x",
                Default::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let c = ctl.clone();
    blocking(move || {
        assert_eq!(
            c.ok(&["-p", "shop", "list_queues"]),
            "Listing queues for vhost shop ...\nname\tmessages\norders\t2\n"
        );
        assert_eq!(
            c.ok(&[
                "-p",
                "shop",
                "list_queues",
                "name",
                "messages_ready",
                "consumers",
                "--formatter",
                "csv"
            ]),
            "name,messages_ready,consumers\norders,2,0\n"
        );
        c.ok(&[
            "-p",
            "shop",
            "set_policy",
            "cap",
            "^orders$",
            r#"{"max-length":1}"#,
            "--apply-to",
            "queues",
        ]);
        let policies = c.ok(&["-p", "shop", "list_policies", "-q", "--formatter", "json"]);
        assert!(policies.contains(r#""name":"cap""#), "{policies}");
        assert_eq!(
            c.ok(&["-p", "shop", "list_queues", "-q"]),
            "name\tmessages\norders\t1\n",
            "the policy applied"
        );
        c.ok(&["-p", "shop", "clear_policy", "cap"]);
        c.ok(&["-p", "shop", "purge_queue", "orders"]);
        assert_eq!(
            c.ok(&["-p", "shop", "list_queues", "-q"]),
            "name\tmessages\norders\t0\n"
        );
        let connections = c.ok(&["list_connections", "-q"]);
        assert!(
            connections.lines().any(|l| l.starts_with("clerk\t127.0.0.1\t")),
            "{connections}"
        );
    })
    .await;

    // close_connection closes it with the explanation given.
    let name = warren.admin().connections()[0].name.clone();
    let c = ctl.clone();
    blocking(move || c.ok(&["close_connection", &name, "maintenance"])).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while connection.status().connected() {
        assert!(tokio::time::Instant::now() < deadline, "the connection stayed open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("definitions.json").display().to_string();
    let c = ctl.clone();
    blocking(move || {
        c.ok(&["export_definitions", &file]);
        c.ok(&["-p", "shop", "delete_queue", "orders"]);
        c.ok(&["delete_user", "clerk"]);
        assert!(!c.ok(&["list_users", "-q"]).contains("clerk"));
        c.ok(&["import_definitions", &file]);
        assert!(c.ok(&["list_users", "-q"]).contains("clerk\t[\"management\"]"));
        assert!(c.ok(&["-p", "shop", "list_queues", "-q"]).contains("orders\t0"));
        c.ok(&["change_password", "clerk", "n3w"]);
        c.ok(&["-p", "shop", "clear_permissions", "clerk"]);
        c.ok(&["delete_vhost", "shop"]);
        assert!(!c.ok(&["list_vhosts", "-q"]).contains("shop"));

        let status = c.ok(&["status"]);
        assert!(status.starts_with("Status of node rabbit@"), "{status}");
        assert!(status.contains("Alarms: (none)"), "{status}");
        let cluster = c.ok(&["cluster_status"]);
        assert!(cluster.starts_with("Cluster status of node rabbit@"), "{cluster}");
        let running = cluster.split("Running Nodes").nth(1).unwrap_or_default();
        assert!(running.contains("rabbit@"), "this node runs: {cluster}");
        c.ok(&["await_startup", "--timeout", "5"]);
        let hash = c.ok(&["hash_password", "pw"]);
        assert_eq!(hash.trim().len(), 48, "base64 of 4 + 32 bytes: {hash}");

        let (ok, _, err) = c.run(&["delete_user", "nobody"]);
        assert!(!ok);
        assert!(err.contains("404"), "{err}");
        let (ok, _, err) = c.run(&["--password", "wrong", "list_users"]);
        assert!(!ok);
        assert!(err.contains("401"), "{err}");
    })
    .await;
    let port_lapin =
        lapin::Connection::connect(&format!("amqp://clerk:n3w@127.0.0.1:{port}/%2f"), Default::default()).await;
    assert!(
        port_lapin.is_err(),
        "clerk has no permissions on / and its vhost is gone"
    );
    warren.shutdown().await;
}

/// A dead-letter queue replayed with move_messages, and a shovel set,
/// listed and cleared as a runtime parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warrenctl_moves_messages_and_manages_shovels() {
    let warren = warren::start_ephemeral().await.unwrap();
    let url = warren.management_url().trim_end_matches("/api/").to_string();
    let ctl = std::sync::Arc::new(Ctl { url });
    let connection = lapin::Connection::connect(&warren.amqp_url(), Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    for queue in ["parked", "orders"] {
        channel
            .queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default())
            .await
            .unwrap();
    }
    for n in 0..25u8 {
        channel
            .basic_publish(
                "".into(),
                "parked".into(),
                BasicPublishOptions::default(),
                &[n],
                Default::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let c = ctl.clone();
    let moved = blocking(move || c.ok(&["move_messages", "parked", "orders"])).await;
    assert!(moved.contains("25 moved, 0 left"), "{moved}");
    let mut bodies = Vec::new();
    while let Some(m) = channel
        .basic_get("orders".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        bodies.push(m.delivery.data[0]);
    }
    assert_eq!(bodies, (0..25).collect::<Vec<u8>>(), "all moved, in order");

    let c = ctl.clone();
    blocking(move || {
        let value = r#"{"src-uri":"amqp://","src-queue":"parked","dest-uri":"amqp://","dest-queue":"orders"}"#;
        c.ok(&["set_parameter", "shovel", "forward", value]);
        let listed = c.ok(&["list_parameters", "-q"]);
        assert!(listed.lines().any(|l| l.starts_with("shovel\tforward\t")), "{listed}");
        let status = c.ok(&["shovel_status", "-q", "name", "state", "source", "destination"]);
        let row = status.lines().nth(1).unwrap_or_default();
        assert!(
            row == "forward\trunning\tparked\torders" || row == "forward\tstarting\tparked\torders",
            "{status}"
        );
        let (ok, _, err) = c.run(&["set_parameter", "shovel", "broken", r#"{"src-uri":"amqp://"}"#]);
        assert!(!ok && err.contains("Key \"dest-uri\" not found in broken"), "{err}");
        c.ok(&["clear_parameter", "shovel", "forward"]);
        assert_eq!(
            c.ok(&["shovel_status", "-q"]).lines().count(),
            1,
            "only the header is left"
        );
    })
    .await;
    warren.shutdown().await;
}

/// A super stream: orders spread over partitions by key, each key always
/// in one partition, in order; then deleted as a whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warrenctl_adds_and_deletes_a_super_stream() {
    let warren = warren::start_ephemeral().await.unwrap();
    let url = warren.management_url().trim_end_matches("/api/").to_string();
    let ctl = std::sync::Arc::new(Ctl { url });
    let c = ctl.clone();
    blocking(move || c.ok(&["add_super_stream", "orders", "--partitions", "3", "--max-age", "7D"])).await;
    let connection = lapin::Connection::connect(&warren.amqp_url(), Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    for n in 0..300u32 {
        let account = n % 30;
        channel
            .basic_publish(
                "orders".into(),
                format!("account-{account}").as_str().into(),
                BasicPublishOptions::default(),
                format!("{account}:{n}").as_bytes(),
                Default::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // Each partition, read from the start: every account in one partition
    // only, its orders in publish order.
    let mut owner = std::collections::HashMap::new();
    let mut total = 0;
    for p in 0..3 {
        let partition = format!("orders-{p}");
        let ch = connection.create_channel().await.unwrap();
        ch.basic_qos(1000, BasicQosOptions::default()).await.unwrap();
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-stream-offset".into(),
            lapin::types::AMQPValue::LongString("first".into()),
        );
        let mut consumer = ch
            .basic_consume(
                partition.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                arguments,
            )
            .await
            .unwrap();
        let mut last = std::collections::HashMap::new();
        loop {
            let Ok(Some(Ok(delivery))) =
                tokio::time::timeout(Duration::from_millis(500), futures::StreamExt::next(&mut consumer)).await
            else {
                break;
            };
            let text = String::from_utf8_lossy(&delivery.data).to_string();
            let (account, n) = text.split_once(':').unwrap();
            let n: u32 = n.parse().unwrap();
            assert_eq!(
                *owner.entry(account.to_string()).or_insert(p),
                p,
                "account {account} in two partitions"
            );
            let previous = last.insert(account.to_string(), n);
            assert!(previous.is_none_or(|prev| prev < n), "out of order in {partition}");
            total += 1;
            delivery.ack(BasicAckOptions::default()).await.unwrap();
        }
    }
    assert_eq!(total, 300);
    let used: std::collections::HashSet<_> = owner.values().collect();
    assert_eq!(used.len(), 3, "every partition holds some accounts");
    let c = ctl.clone();
    let out = blocking(move || c.ok(&["delete_super_stream", "orders"])).await;
    assert!(out.contains("(3 partitions)"), "{out}");
    let c = ctl.clone();
    let queues = blocking(move || c.ok(&["list_queues", "-q"])).await;
    assert!(!queues.contains("orders-"), "{queues}");
    warren.shutdown().await;
}
