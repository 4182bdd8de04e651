//! Consuming through lapin: round-robin, prefetch, acks, nacks and rejects,
//! redelivery, recover, cancel (from either side), auto-delete and
//! exclusive queues.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use warren_conformance::lapin_util::*;

async fn fill(ch: &lapin::Channel, queue: &str, n: usize) {
    for i in 0..n {
        publish(ch, "", queue, format!("m{i}").as_bytes()).await;
    }
}

fn body(d: &lapin::message::Delivery) -> String {
    String::from_utf8_lossy(&d.data).into_owned()
}

#[tokio::test]
async fn competing_consumers_are_served_round_robin() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let mut a = ch
        .basic_consume(
            q.as_str().into(),
            "a".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut b = ch
        .basic_consume(
            q.as_str().into(),
            "b".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    fill(&ch, &q, 6).await;
    let got_a: Vec<String> = [next(&mut a).await, next(&mut a).await, next(&mut a).await]
        .iter()
        .map(body)
        .collect();
    let got_b: Vec<String> = [next(&mut b).await, next(&mut b).await, next(&mut b).await]
        .iter()
        .map(body)
        .collect();
    assert_eq!(got_a, ["m0", "m2", "m4"]);
    assert_eq!(got_b, ["m1", "m3", "m5"]);
}

#[tokio::test]
async fn prefetch_limits_unacked_deliveries_per_consumer() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 5).await;
    ch.basic_qos(2, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert!(consumer.tag().as_str().starts_with("amq.ctag-"), "server-generated tag");
    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    nothing_more(&mut consumer).await;
    first.ack(BasicAckOptions::default()).await.unwrap();
    let third = next(&mut consumer).await;
    assert_eq!(body(&third), "m2");
    nothing_more(&mut consumer).await;
    // Acking several at once frees several slots.
    third.ack(BasicAckOptions { multiple: true }).await.unwrap();
    assert_eq!(body(&next(&mut consumer).await), "m3");
    assert_eq!(body(&next(&mut consumer).await), "m4");
    drop(second);
}

#[tokio::test]
async fn global_qos_is_shared_by_the_channels_consumers() {
    let (_c, ch) = channel().await;
    let (q1, q2) = (temp_queue(&ch).await, temp_queue(&ch).await);
    fill(&ch, &q1, 3).await;
    fill(&ch, &q2, 3).await;
    ch.basic_qos(2, BasicQosOptions { global: true }).await.unwrap();
    let mut c1 = ch
        .basic_consume(
            q1.as_str().into(),
            "c1".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut c2 = ch
        .basic_consume(
            q2.as_str().into(),
            "c2".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut received = 0;
    for _ in 0..2 {
        tokio::select! {
            Some(Ok(_)) = c1.next() => received += 1,
            Some(Ok(_)) = c2.next() => received += 1,
        }
    }
    assert_eq!(received, 2);
    nothing_more(&mut c1).await;
    nothing_more(&mut c2).await;
}

#[tokio::test]
async fn nack_with_requeue_puts_the_message_back_in_place_redelivered() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 3).await;
    let first = ch
        .basic_get(q.as_str().into(), Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body(&first.delivery), "m0");
    assert!(!first.delivery.redelivered);
    assert_eq!(first.message_count, 2, "get-ok counts what is left");
    first
        .delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let again = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body(&again.delivery), "m0", "back at its original position");
    assert!(again.delivery.redelivered);
    // reject without requeue drops it.
    let second = ch
        .basic_get(q.as_str().into(), Default::default())
        .await
        .unwrap()
        .unwrap();
    second
        .delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    assert_eq!(drain(&ch, &q).await, ["m2"]);
}

#[tokio::test]
async fn unacked_messages_return_when_the_channel_closes() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 2).await;
    let worker = connection.create_channel().await.unwrap();
    let mut consumer = worker
        .basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let _held = next(&mut consumer).await;
    let _held2 = next(&mut consumer).await;
    worker.close(200, "worker died".into()).await.unwrap();
    let back = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body(&back.delivery), "m0");
    assert!(back.delivery.redelivered);
    assert_eq!(drain(&ch, &q).await, ["m1"]);
}

#[tokio::test]
async fn recover_redelivers_unacked_messages() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 1).await;
    let mut consumer = ch
        .basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let first = next(&mut consumer).await;
    assert!(!first.redelivered);
    ch.basic_recover(BasicRecoverOptions { requeue: true }).await.unwrap();
    let again = next(&mut consumer).await;
    assert!(again.redelivered);
    assert_eq!(body(&again), "m0");
    again.ack(BasicAckOptions::default()).await.unwrap();
}

#[tokio::test]
async fn cancel_stops_deliveries_and_deleting_the_queue_cancels_consumers() {
    let (_c, ch) = channel().await;
    let q = unique("cancel");
    ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            q.as_str().into(),
            "mine".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    ch.basic_cancel("mine".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    fill(&ch, &q, 1).await;
    let ended = tokio::time::timeout(Duration::from_secs(1), consumer.next()).await;
    assert!(matches!(ended, Ok(None)) || ended.is_err(), "no delivery after cancel");
    assert_eq!(drain(&ch, &q).await, ["m0"]);

    let mut second = ch
        .basic_consume(
            q.as_str().into(),
            "second".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let other = connect().await.create_channel().await.unwrap();
    other
        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(2), second.next())
        .await
        .expect("the consumer is cancelled");
    assert!(end.is_none(), "basic.cancel from the broker ends the consumer stream");
}

#[tokio::test]
async fn auto_delete_queue_goes_with_its_last_consumer() {
    let (_c, ch) = channel().await;
    let q = unique("autodelete");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.basic_consume(
        q.as_str().into(),
        "only".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.basic_cancel("only".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    assert_queue_gone(&q, "auto-deleted").await;
}

#[tokio::test]
async fn exclusive_queue_is_deleted_when_its_connection_closes() {
    let owner = connect().await;
    let ch = owner.create_channel().await.unwrap();
    let q = temp_queue(&ch).await;
    let other = connect().await.create_channel().await.unwrap();
    let locked = other
        .basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .expect_err("another connection may not consume");
    assert_eq!(reply_of(&locked).0, 405);
    owner.close(200, "bye".into()).await.unwrap();
    assert_queue_gone(&q, "exclusive queue deleted with its connection").await;
}

#[tokio::test]
async fn server_named_queue_and_passive_counts() {
    let (_c, ch) = channel().await;
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert!(q.name().as_str().starts_with("amq.gen-"));
    fill(&ch, q.name().as_str(), 3).await;
    // Kept alive: lapin cancels a consumer when it is dropped.
    let _consumer = ch
        .basic_consume(
            q.name().as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let counts = ch
        .queue_declare(
            q.name().as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(counts.consumer_count(), 1);
    assert_eq!(
        counts.message_count(),
        0,
        "all three are delivered (unacked), none ready"
    );
}

/// Checks from a fresh connection that a queue no longer exists (404).
async fn assert_queue_gone(queue: &str, why: &str) {
    let probe = connect().await.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let gone = probe
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .expect_err(why);
    assert_eq!(reply_of(&gone).0, 404, "{why}");
}
