//! Transactions: publishes and acks take effect at commit and vanish at
//! rollback; commit and rollback need tx.select first.

use lapin::options::*;
use lapin::Channel;
use warren_conformance::lapin_util::*;

async fn get(ch: &Channel, queue: &str) -> lapin::message::BasicGetMessage {
    ch.basic_get(queue.into(), Default::default())
        .bounded()
        .await
        .unwrap()
        .expect("a message")
}

#[tokio::test]
async fn publishes_are_delivered_at_commit_and_dropped_at_rollback() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let observer = connection.create_channel().bounded().await.unwrap();
    ch.tx_select().bounded().await.unwrap();
    // Selecting again is harmless.
    ch.tx_select().bounded().await.unwrap();
    publish(&ch, "", &q, b"rolled back").await;
    assert_eq!(counts(&observer, &q).await.0, 0, "nothing before the commit");
    ch.tx_rollback().bounded().await.unwrap();
    assert!(drain(&observer, &q).await.is_empty(), "nothing after the rollback");
    publish(&ch, "", &q, b"one").await;
    publish(&ch, "", &q, b"two").await;
    assert!(drain(&observer, &q).await.is_empty(), "nothing before the commit");
    ch.tx_commit().bounded().await.unwrap();
    assert_eq!(drain(&observer, &q).await, ["one", "two"]);
    // The channel stays transactional after a commit.
    publish(&ch, "", &q, b"three").await;
    assert!(drain(&observer, &q).await.is_empty());
    ch.tx_commit().bounded().await.unwrap();
    assert_eq!(drain(&observer, &q).await, ["three"]);
}

#[tokio::test]
async fn acks_take_effect_only_at_commit() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    publish(&ch, "", &q, b"a").await;
    publish(&ch, "", &q, b"b").await;
    ch.tx_select().bounded().await.unwrap();
    let a = get(&ch, &q).await;
    let b = get(&ch, &q).await;
    a.delivery.ack(BasicAckOptions::default()).bounded().await.unwrap();
    b.delivery.ack(BasicAckOptions::default()).bounded().await.unwrap();
    // Rolled back: both still unacked, so recover brings them back.
    ch.tx_rollback().bounded().await.unwrap();
    ch.basic_recover(BasicRecoverOptions { requeue: true })
        .bounded()
        .await
        .unwrap();
    let a = get(&ch, &q).await;
    assert!(a.delivery.redelivered);
    assert_eq!(a.delivery.data, b"a");
    a.delivery.ack(BasicAckOptions::default()).bounded().await.unwrap();
    ch.tx_commit().bounded().await.unwrap();
    ch.basic_recover(BasicRecoverOptions { requeue: true })
        .bounded()
        .await
        .unwrap();
    assert_eq!(drain(&ch, &q).await, ["b"], "the committed ack removed 'a' for good");
}

#[tokio::test]
async fn acks_not_committed_when_the_channel_closes_are_requeued() {
    // RabbitMQ 3.10 answers the same: the message is back, redelivered.
    let (connection, observer) = channel().await;
    let q = temp_queue(&observer).await;
    publish(&observer, "", &q, b"kept").await;
    let ch = connection.create_channel().bounded().await.unwrap();
    ch.tx_select().bounded().await.unwrap();
    let m = get(&ch, &q).await;
    m.delivery.ack(BasicAckOptions::default()).bounded().await.unwrap();
    ch.close(200, "bye".into()).bounded().await.unwrap();
    let back = get(&observer, &q).await;
    assert_eq!(back.delivery.data, b"kept");
    assert!(back.delivery.redelivered);
}

#[tokio::test]
async fn rejects_and_nacks_take_effect_only_at_commit() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    publish(&ch, "", &q, b"requeued").await;
    publish(&ch, "", &q, b"dropped").await;
    ch.tx_select().bounded().await.unwrap();
    let first = get(&ch, &q).await;
    let second = get(&ch, &q).await;
    first
        .delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .bounded()
        .await
        .unwrap();
    second
        .delivery
        .reject(BasicRejectOptions { requeue: false })
        .bounded()
        .await
        .unwrap();
    assert_eq!(counts(&ch, &q).await.0, 0, "nothing requeued before the commit");
    ch.tx_commit().bounded().await.unwrap();
    let again = get(&ch, &q).await;
    assert_eq!(again.delivery.data, b"requeued");
    assert!(again.delivery.redelivered);
    assert_eq!(again.message_count, 0, "the rejected one is gone");
}

#[tokio::test]
async fn commit_without_select_is_406() {
    let (connection, ch) = channel().await;
    assert_refused(
        ch.tx_commit().bounded().await,
        406,
        "PRECONDITION_FAILED - channel is not transactional",
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn rollback_without_select_is_406() {
    let (connection, ch) = channel().await;
    assert_refused(
        ch.tx_rollback().bounded().await,
        406,
        "PRECONDITION_FAILED - channel is not transactional",
    );
    assert_only_channel_closed(&connection, &ch).await;
}
