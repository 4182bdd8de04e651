//! Non-durable classic queues in a cluster across restarts, through three
//! real `warren` processes and lapin, as RabbitMQ has them: a node that
//! restarts still knows (and routes to) the non-durable queues whose home
//! is another node; a home that restarts takes its non-durable queues with
//! it on every node, but not one declared again in its new life.

mod common;

use std::time::{Duration, Instant};

use common::cluster_clients::{amqp, three_members, wait_exists};
use common::Warren;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;

async fn declare(node: &Warren, queue: &str, durable: bool) {
    let (_connection, channel) = amqp(node).await;
    let options = QueueDeclareOptions {
        durable,
        ..Default::default()
    };
    channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .expect("declare");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_still_knows_another_nodes_non_durable_queue() {
    let (data, cluster, _http, mut nodes) = three_members().await;
    let n1 = nodes[0].as_ref().unwrap();
    declare(n1, "passing", false).await;
    let (_c1, ch1) = amqp(n1).await;
    ch1.queue_bind(
        "passing".into(),
        "amq.direct".into(),
        "to-passing".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
    wait_exists(nodes[2].as_ref().unwrap(), "passing", true).await;

    // Stopped cleanly: the store has everything n3 applied, so nothing of
    // the log is applied again after the restart, and what n3 knows then
    // comes from its store alone. (After a kill -9 the log's mark may be
    // behind: the queue and its binding come back from the log, a moment
    // after the restart.)
    nodes[2].take().expect("n3").stop();
    nodes[2] = Some(cluster.start(2, data.path()));
    let n3 = nodes[2].as_ref().unwrap();
    let (_c3, ch3) = amqp(n3).await;
    common::passive_declare(&ch3, "passing")
        .await
        .expect("n3 knows n1's non-durable queue after its restart");
    // And routes to it: the binding came back with it.
    ch3.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    // (Nacked while n3 does not yet see n1 running again.)
    let started = Instant::now();
    loop {
        let confirm = ch3
            .basic_publish(
                "amq.direct".into(),
                "to-passing".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                b"through n3",
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        let acked = confirm.is_ack();
        assert!(
            confirm.take_message().is_none(),
            "the publish through n3 was returned unroutable"
        );
        if acked {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never confirmed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = ch1
        .basic_get("passing".into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get")
        .expect("the message published through n3");
    assert_eq!(got.delivery.data, b"through n3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_home_takes_its_non_durable_queues_with_it() {
    let (data, cluster, _http, mut nodes) = three_members().await;
    let n1 = nodes[0].as_ref().unwrap();
    declare(n1, "gone", false).await;
    declare(n1, "again", false).await;
    declare(n1, "kept", true).await;
    for node in [1, 2] {
        wait_exists(nodes[node].as_ref().unwrap(), "gone", true).await;
    }

    nodes[0].take().expect("n1").crash();
    nodes[0] = Some(cluster.start(0, data.path()));
    // Declared again at once in n1's new life: that one stays.
    declare(nodes[0].as_ref().unwrap(), "again", false).await;

    for node in [1, 2] {
        let node = nodes[node].as_ref().unwrap();
        wait_exists(node, "gone", false).await;
        wait_exists(node, "again", true).await;
        wait_exists(node, "kept", true).await;
    }
    let n1 = nodes[0].as_ref().unwrap();
    wait_exists(n1, "gone", false).await;
    wait_exists(n1, "again", true).await;
    // The one that stays is n1's new one: what is published through n2
    // reaches n1.
    let (_c2, ch2) = amqp(nodes[1].as_ref().unwrap()).await;
    ch2.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let confirm = ch2
        .basic_publish(
            "".into(),
            "again".into(),
            BasicPublishOptions::default(),
            b"new life",
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(confirm.is_ack(), "{confirm:?}");
    let (_c1, ch1) = amqp(n1).await;
    let got = ch1
        .basic_get("again".into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get")
        .expect("the message published through n2");
    assert_eq!(got.delivery.data, b"new life");
}
