//! The `warren` process itself: what it logs (worded as RabbitMQ logs it,
//! no colour codes in a file), and the start-up errors that must say what
//! is wrong (a data directory in use, settings out of range).

mod common;

use common::Warren;
use lapin::options::QueueDeclareOptions;
use lapin::{Connection, ConnectionProperties};

#[tokio::test]
async fn connections_and_channel_errors_are_logged_as_rabbitmq_logs_them() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let connection = Connection::connect(&warren.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let missing = channel
        .queue_declare(
            "no-such-queue".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await;
    assert!(missing.is_err());
    connection.close(200, "bye".into()).await.unwrap();

    let accepted = warren.wait_for_log("accepting AMQP connection (127.0.0.1:");
    assert!(accepted.contains(&format!("-> {})", warren.addr)), "{accepted}");
    warren.wait_for_log("user 'guest' authenticated and granted access to vhost '/'");
    let error = warren.wait_for_log("Channel error on connection (127.0.0.1:");
    assert!(
        error.contains(", vhost: '/', user: 'guest'), channel 1: operation queue.declare caused a channel exception not_found: no queue 'no-such-queue' in vhost '/'"),
        "{error}"
    );
    let closed = warren.wait_for_log("closing AMQP connection (127.0.0.1:");
    assert!(closed.ends_with("vhost: '/', user: 'guest')"), "{closed}");
    let log = warren.log.lock().unwrap();
    assert!(
        log.iter().all(|line| !line.contains('\u{1b}')),
        "no colour codes when stderr is not a terminal:\n{}",
        log.join("\n")
    );
}

#[tokio::test]
async fn a_refused_login_is_logged_with_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let warren = Warren::start(dir.path());
    let url = format!("amqp://guest:wrong@{}/%2f", warren.addr);
    assert!(Connection::connect(&url, ConnectionProperties::default())
        .await
        .is_err());
    let line = warren.wait_for_log("login refused");
    assert!(
        line.contains("PLAIN login refused: user 'guest' - invalid credentials"),
        "{line}"
    );
}

#[test]
fn a_data_directory_in_use_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Warren::start(dir.path());
    let second = Warren::fail_to_start(dir.path(), &[]);
    assert!(!second.status.success());
    assert!(
        second.stderr.contains("is in use by another Warren process"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&dir.path().display().to_string()),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("listening on"), "{}", second.stderr);
}

#[test]
fn settings_out_of_range_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let failed = Warren::fail_to_start(dir.path(), &["--frame-max", "8"]);
    assert!(!failed.status.success());
    assert!(
        failed
            .stderr
            .contains("frame_max 8 is below the protocol's minimum of 4096 bytes"),
        "{}",
        failed.stderr
    );
    let config = dir.path().join("warren.toml");
    std::fs::write(&config, "hearbeat = 10\n").unwrap();
    let failed = Warren::fail_to_start(dir.path(), &["--config", config.to_str().unwrap()]);
    assert!(!failed.status.success());
    assert!(failed.stderr.contains("hearbeat"), "{}", failed.stderr);
}

#[tokio::test]
async fn by_default_it_listens_on_ipv6_and_ipv4_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 on this machine; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Port 0 on the unspecified IPv6 address, as the default [::]:5672 but free.
    let warren = Warren::start_with(dir.path(), &["--listen", "[::]:0"]);
    let port = warren.port();
    for host in ["127.0.0.1", "[::1]"] {
        let url = format!("amqp://guest:guest@{host}:{port}/%2f");
        let connection = Connection::connect(&url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        connection.close(200, "bye".into()).await.unwrap();
    }
}

#[test]
fn corrupt_stored_arguments_stop_the_start_naming_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    {
        use warren_store::Store;
        let store = warren_store::SledStore::open(dir.path()).unwrap();
        store
            .save_queue(&warren_store::QueueRecord {
                vhost: "/".into(),
                name: "orders".into(),
                id: warren_store::QueueId(1),
                auto_delete: false,
                // A length of 9 in front of 3 bytes of table.
                arguments: vec![0, 0, 0, 9, 1, 2, 3],
            })
            .unwrap();
        store.sync().unwrap();
    }
    let failed = Warren::fail_to_start(dir.path(), &[]);
    assert!(!failed.status.success());
    assert!(
        failed
            .stderr
            .contains("corrupt record: the arguments of queue 'orders' in vhost '/'"),
        "{}",
        failed.stderr
    );
}
