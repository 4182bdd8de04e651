//! Consuming: consumer tags, round-robin, prefetch (per consumer and per
//! channel), basic.get, acks, nacks and rejects, redelivery, recover,
//! cancel from either side, exclusive consumers, and the refusals.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::Channel;
use warren_conformance::lapin_util::*;
use warren_conformance::raw::Raw;
use warren_protocol::BasicQos;

async fn fill(ch: &Channel, queue: &str, n: usize) {
    for i in 0..n {
        publish(ch, "", queue, format!("m{i}").as_bytes()).await;
    }
}

async fn get(ch: &Channel, queue: &str) -> lapin::message::BasicGetMessage {
    ch.basic_get(queue.into(), Default::default())
        .bounded()
        .await
        .unwrap()
        .expect("a message")
}

#[tokio::test]
async fn consumer_tags_are_generated_or_kept() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let generated = consume(&ch, &q, "", true).await;
    let tag = generated.tag().to_string();
    assert!(tag.starts_with("amq.ctag-"), "{tag}");
    assert_eq!(tag.len(), "amq.ctag-".len() + 22, "a 22-character suffix: {tag}");
    let chosen = consume(&ch, &q, "my-tag", true).await;
    assert_eq!(chosen.tag().as_str(), "my-tag");
    // The same tag may be used on another channel.
    let other = _c.create_channel().bounded().await.unwrap();
    let again = consume(&other, &q, "my-tag", true).await;
    assert_eq!(again.tag().as_str(), "my-tag");
    assert_eq!(counts(&ch, &q).await, (0, 3));
}

#[tokio::test]
async fn a_duplicate_consumer_tag_on_a_channel_is_a_530_connection_error() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let _first = consume(&ch, &q, "twice", true).await;
    assert_refused(
        ch.basic_consume(
            q.as_str().into(),
            "twice".into(),
            Default::default(),
            FieldTable::default(),
        )
        .bounded()
        .await,
        530,
        "NOT_ALLOWED - attempt to reuse consumer tag 'twice'",
    );
    assert_connection_closed(&connection).await;
}

#[tokio::test]
async fn consuming_from_a_missing_queue_is_404() {
    let (connection, ch) = channel().await;
    let q = unique("missing");
    assert_refused(
        ch.basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
            .bounded()
            .await,
        404,
        &format!("NOT_FOUND - no queue '{q}' in vhost '/'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    let ch = connection.create_channel().bounded().await.unwrap();
    assert_refused(
        ch.basic_get(q.as_str().into(), Default::default()).bounded().await,
        404,
        &format!("NOT_FOUND - no queue '{q}' in vhost '/'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn competing_consumers_are_served_round_robin() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let mut a = consume(&ch, &q, "a", true).await;
    let mut b = consume(&ch, &q, "b", true).await;
    fill(&ch, &q, 6).await;
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    for _ in 0..3 {
        got_a.push(body(&next(&mut a).await));
        got_b.push(body(&next(&mut b).await));
    }
    assert_eq!(got_a, ["m0", "m2", "m4"]);
    assert_eq!(got_b, ["m1", "m3", "m5"]);
}

#[tokio::test]
async fn prefetch_limits_unacked_deliveries_per_consumer() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 6).await;
    ch.basic_qos(2, BasicQosOptions::default()).bounded().await.unwrap();
    let mut consumer = consume(&ch, &q, "", false).await;
    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    nothing_more(&mut consumer).await;
    first.ack(BasicAckOptions::default()).bounded().await.unwrap();
    let third = next(&mut consumer).await;
    assert_eq!(body(&third), "m2");
    nothing_more(&mut consumer).await;
    // Acking several at once frees several slots.
    third.ack(BasicAckOptions { multiple: true }).bounded().await.unwrap();
    assert_eq!(body(&next(&mut consumer).await), "m3");
    assert_eq!(body(&next(&mut consumer).await), "m4");
    nothing_more(&mut consumer).await;
    assert_eq!(counts(&ch, &q).await, (1, 1));
    drop(second);
}

#[tokio::test]
async fn prefetch_applies_to_each_consumer_of_the_channel() {
    let (_c, ch) = channel().await;
    let (q1, q2) = (temp_queue(&ch).await, temp_queue(&ch).await);
    fill(&ch, &q1, 3).await;
    fill(&ch, &q2, 3).await;
    ch.basic_qos(1, BasicQosOptions::default()).bounded().await.unwrap();
    let mut c1 = consume(&ch, &q1, "c1", false).await;
    let mut c2 = consume(&ch, &q2, "c2", false).await;
    let _d1 = next(&mut c1).await;
    let _d2 = next(&mut c2).await;
    nothing_more(&mut c1).await;
    nothing_more(&mut c2).await;
}

#[tokio::test]
async fn global_qos_is_shared_by_the_channels_consumers() {
    let (_c, ch) = channel().await;
    let (q1, q2) = (temp_queue(&ch).await, temp_queue(&ch).await);
    fill(&ch, &q1, 3).await;
    fill(&ch, &q2, 3).await;
    ch.basic_qos(2, BasicQosOptions { global: true })
        .bounded()
        .await
        .unwrap();
    let mut c1 = consume(&ch, &q1, "c1", false).await;
    let mut c2 = consume(&ch, &q2, "c2", false).await;
    let mut received = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(Duration::from_secs(2), async {
            tokio::select! {
                Some(Ok(d)) = c1.next() => d,
                Some(Ok(d)) = c2.next() => d,
            }
        })
        .await
        .expect("a delivery within 2 s");
        received.push(delivery);
    }
    nothing_more(&mut c1).await;
    nothing_more(&mut c2).await;
    received[0].ack(BasicAckOptions::default()).bounded().await.unwrap();
    // One slot freed on the channel: exactly one more delivery, on either.
    let third = tokio::time::timeout(Duration::from_secs(2), async {
        tokio::select! {
            Some(Ok(d)) = c1.next() => d,
            Some(Ok(d)) = c2.next() => d,
        }
    })
    .await;
    assert!(third.is_ok(), "one more delivery after an ack");
    nothing_more(&mut c1).await;
    nothing_more(&mut c2).await;
}

#[tokio::test]
async fn a_prefetch_size_is_a_540_connection_error() {
    // lapin cannot send a prefetch size: on a raw socket.
    let mut raw = Raw::open().await;
    raw.open_channel(1).await;
    raw.send_method(
        1,
        BasicQos {
            prefetch_size: 10,
            prefetch_count: 1,
            global: false,
        },
    )
    .await;
    let text = raw.expect_connection_close(540).await;
    assert_eq!(text, "NOT_IMPLEMENTED - prefetch_size!=0 (10)");
}

#[tokio::test]
async fn basic_get_counts_what_is_left_and_get_empty_returns_none() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    assert!(
        ch.basic_get(q.as_str().into(), Default::default())
            .bounded()
            .await
            .unwrap()
            .is_none(),
        "get-empty"
    );
    fill(&ch, &q, 3).await;
    let first = get(&ch, &q).await;
    assert_eq!(first.message_count, 2, "get-ok counts what is left");
    assert_eq!(first.delivery.delivery_tag, 1);
    assert!(!first.delivery.redelivered);
    let second = get(&ch, &q).await;
    assert_eq!((second.message_count, second.delivery.delivery_tag), (1, 2));
    first.delivery.ack(BasicAckOptions::default()).bounded().await.unwrap();
    second.delivery.ack(BasicAckOptions::default()).bounded().await.unwrap();
    assert_eq!(drain(&ch, &q).await, ["m2"]);
}

#[tokio::test]
async fn nack_with_requeue_puts_the_message_back_in_place_redelivered() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 3).await;
    let first = get(&ch, &q).await;
    assert_eq!(body(&first.delivery), "m0");
    first
        .delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .bounded()
        .await
        .unwrap();
    let again = get(&ch, &q).await;
    assert_eq!(body(&again.delivery), "m0", "back at its original position");
    assert!(again.delivery.redelivered);
    assert_eq!(again.message_count, 2);
    again.delivery.ack(BasicAckOptions::default()).bounded().await.unwrap();
    // reject without requeue drops it.
    let second = get(&ch, &q).await;
    second
        .delivery
        .reject(BasicRejectOptions { requeue: false })
        .bounded()
        .await
        .unwrap();
    assert_eq!(drain(&ch, &q).await, ["m2"]);
}

#[tokio::test]
async fn nack_multiple_requeues_everything_up_to_the_tag_in_order() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 4).await;
    let mut consumer = consume(&ch, &q, "", false).await;
    let mut deliveries = Vec::new();
    for _ in 0..4 {
        deliveries.push(next(&mut consumer).await);
    }
    ch.basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .bounded()
        .await
        .unwrap();
    // m0..m2 go back (in order, ahead of nothing), m3 stays unacked.
    ch.basic_nack(
        deliveries[2].delivery_tag,
        BasicNackOptions {
            multiple: true,
            requeue: true,
        },
    )
    .bounded()
    .await
    .unwrap();
    assert_eq!(drain(&ch, &q).await, ["m0", "m1", "m2"]);
    ch.basic_reject(deliveries[3].delivery_tag, BasicRejectOptions { requeue: true })
        .bounded()
        .await
        .unwrap();
    let last = get(&ch, &q).await;
    assert_eq!(body(&last.delivery), "m3");
    assert!(last.delivery.redelivered);
}

#[tokio::test]
async fn ack_multiple_acknowledges_everything_up_to_the_tag() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 3).await;
    let worker = connection.create_channel().bounded().await.unwrap();
    let mut consumer = consume(&worker, &q, "", false).await;
    let mut deliveries = Vec::new();
    for _ in 0..3 {
        deliveries.push(next(&mut consumer).await);
    }
    worker
        .basic_ack(deliveries[1].delivery_tag, BasicAckOptions { multiple: true })
        .bounded()
        .await
        .unwrap();
    worker.close(200, "OK".into()).bounded().await.unwrap();
    let back = get(&ch, &q).await;
    assert_eq!(body(&back.delivery), "m2", "only the unacked one comes back");
    assert!(back.delivery.redelivered);
    assert_eq!(back.message_count, 0);
}

#[tokio::test]
async fn acking_an_unknown_delivery_tag_is_406() {
    let (connection, ch) = channel().await;
    let mut watch = watch(&ch).await;
    ch.basic_ack(5, BasicAckOptions::default()).bounded().await.unwrap();
    assert_eq!(
        closed_with(&mut watch).await,
        (406, "PRECONDITION_FAILED - unknown delivery tag 5".to_string())
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn rejecting_or_nacking_an_unknown_delivery_tag_is_406() {
    let (connection, ch) = channel().await;
    let mut first = watch(&ch).await;
    ch.basic_reject(7, BasicRejectOptions { requeue: true })
        .bounded()
        .await
        .unwrap();
    assert_eq!(
        closed_with(&mut first).await,
        (406, "PRECONDITION_FAILED - unknown delivery tag 7".to_string())
    );
    assert_only_channel_closed(&connection, &ch).await;
    let ch = connection.create_channel().bounded().await.unwrap();
    let mut watcher = watch(&ch).await;
    ch.basic_nack(
        9,
        BasicNackOptions {
            multiple: true,
            requeue: true,
        },
    )
    .bounded()
    .await
    .unwrap();
    assert_eq!(
        closed_with(&mut watcher).await,
        (406, "PRECONDITION_FAILED - unknown delivery tag 9".to_string())
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn acking_twice_is_406() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 1).await;
    let message = get(&ch, &q).await;
    let tag = message.delivery.delivery_tag;
    let mut watch = watch(&ch).await;
    message
        .delivery
        .ack(BasicAckOptions::default())
        .bounded()
        .await
        .unwrap();
    ch.basic_ack(tag, BasicAckOptions::default()).bounded().await.unwrap();
    assert_eq!(
        closed_with(&mut watch).await,
        (406, format!("PRECONDITION_FAILED - unknown delivery tag {tag}"))
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn acking_a_no_ack_delivery_is_406() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 1).await;
    let message = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .bounded()
        .await
        .unwrap()
        .expect("a message");
    let mut watch = watch(&ch).await;
    ch.basic_ack(message.delivery.delivery_tag, BasicAckOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_eq!(
        closed_with(&mut watch).await,
        (
            406,
            format!(
                "PRECONDITION_FAILED - unknown delivery tag {}",
                message.delivery.delivery_tag
            )
        )
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn unacked_messages_return_when_the_channel_closes() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 3).await;
    let worker = connection.create_channel().bounded().await.unwrap();
    let mut consumer = consume(&worker, &q, "", false).await;
    let _held = next(&mut consumer).await;
    let _held2 = next(&mut consumer).await;
    let _held3 = next(&mut consumer).await;
    _held2.ack(BasicAckOptions::default()).bounded().await.unwrap();
    worker.close(200, "worker died".into()).bounded().await.unwrap();
    let back = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .bounded()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body(&back.delivery), "m0");
    assert!(back.delivery.redelivered);
    assert_eq!(drain(&ch, &q).await, ["m2"], "in their original order");
}

#[tokio::test]
async fn recover_redelivers_unacked_messages() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 2).await;
    let mut consumer = consume(&ch, &q, "", false).await;
    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    assert!(!first.redelivered && !second.redelivered);
    first.ack(BasicAckOptions::default()).bounded().await.unwrap();
    ch.basic_recover(BasicRecoverOptions { requeue: true })
        .bounded()
        .await
        .unwrap();
    let again = next(&mut consumer).await;
    assert!(again.redelivered);
    assert_eq!(body(&again), "m1");
    again.ack(BasicAckOptions::default()).bounded().await.unwrap();
    nothing_more(&mut consumer).await;
}

#[tokio::test]
async fn recover_without_requeue_is_a_540_connection_error() {
    let (connection, ch) = channel().await;
    assert_refused(
        ch.basic_recover(BasicRecoverOptions { requeue: false }).bounded().await,
        540,
        "NOT_IMPLEMENTED - requeue=false",
    );
    assert_connection_closed(&connection).await;
}

#[tokio::test]
async fn cancel_stops_deliveries() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let mut consumer = consume(&ch, &q, "mine", true).await;
    publish(&ch, "", &q, b"before").await;
    assert_eq!(body(&next(&mut consumer).await), "before");
    ch.basic_cancel("mine".into(), BasicCancelOptions::default())
        .bounded()
        .await
        .unwrap();
    publish(&ch, "", &q, b"after").await;
    let ended = tokio::time::timeout(Duration::from_secs(1), consumer.next()).await;
    assert!(matches!(ended, Ok(None)), "the stream ends after cancel: {ended:?}");
    assert_eq!(drain(&ch, &q).await, ["after"]);
    // Cancelling an unknown tag is not an error.
    ch.basic_cancel("never-existed".into(), BasicCancelOptions::default())
        .bounded()
        .await
        .expect("cancel-ok for an unknown tag");
}

#[tokio::test]
async fn deleting_the_queue_cancels_its_consumers() {
    let (_c, ch) = channel().await;
    let q = shared_queue(&ch, "cancelled").await;
    let mut consumer = consume(&ch, &q, "doomed", true).await;
    let other = connect().await.create_channel().bounded().await.unwrap();
    other
        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .bounded()
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(2), consumer.next())
        .await
        .expect("the consumer is cancelled");
    assert!(end.is_none(), "basic.cancel from the broker ends the consumer stream");
    assert!(ch.status().connected(), "the channel stays open");
    assert_connection_works(&_c).await;
}

#[tokio::test]
async fn an_exclusive_consumer_keeps_others_out() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let exclusive = BasicConsumeOptions {
        exclusive: true,
        ..Default::default()
    };
    let _only = ch
        .basic_consume(q.as_str().into(), "only".into(), exclusive, FieldTable::default())
        .bounded()
        .await
        .unwrap();
    let other = connection.create_channel().bounded().await.unwrap();
    assert_refused(
        other
            .basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
            .bounded()
            .await,
        403,
        &format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"),
    );
    assert_only_channel_closed(&connection, &other).await;
}

#[tokio::test]
async fn an_exclusive_consumer_needs_the_queue_to_itself() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let _first = consume(&ch, &q, "first", false).await;
    let other = connection.create_channel().bounded().await.unwrap();
    let exclusive = BasicConsumeOptions {
        exclusive: true,
        ..Default::default()
    };
    assert_refused(
        other
            .basic_consume(q.as_str().into(), "".into(), exclusive, FieldTable::default())
            .bounded()
            .await,
        403,
        &format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"),
    );
    assert_only_channel_closed(&connection, &other).await;
}
