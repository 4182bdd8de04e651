//! Queue features through lapin: dead-lettering with `x-death`, TTLs,
//! length limits and overflow, priorities, quorum delivery limits, single
//! active consumer, consumer priorities, direct reply-to and queue types.
//! (The same scenarios are compared field by field with RabbitMQ in
//! `pika_differential.rs`.)

use std::time::Duration;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use warren_conformance::lapin_util::*;

fn args(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

async fn declare(ch: &lapin::Channel, name: &str, arguments: FieldTable) {
    ch.queue_declare(name.into(), QueueDeclareOptions::default(), arguments)
        .await
        .unwrap();
}

fn header<'a>(props: &'a BasicProperties, key: &str) -> Option<&'a AMQPValue> {
    props.headers().as_ref()?.inner().get(key)
}

fn first_death(props: &BasicProperties) -> FieldTable {
    match header(props, "x-death") {
        Some(AMQPValue::FieldArray(deaths)) => match &deaths.as_slice()[0] {
            AMQPValue::FieldTable(t) => t.clone(),
            other => panic!("x-death entry is not a table: {other:?}"),
        },
        other => panic!("no x-death array: {other:?}"),
    }
}

#[tokio::test]
async fn rejected_messages_are_dead_lettered_with_x_death() {
    let (_c, ch) = channel().await;
    let (source, parking) = (unique("dl-source"), unique("dl-parking"));
    declare(&ch, &parking, FieldTable::default()).await;
    declare(
        &ch,
        &source,
        args(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(&parking)),
        ]),
    )
    .await;
    publish_with(
        &ch,
        "",
        &source,
        b"poison",
        BasicProperties::default().with_expiration("60000".into()),
    )
    .await;
    let got = ch
        .basic_get(source.as_str().into(), Default::default())
        .await
        .unwrap()
        .unwrap();
    got.delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    let dead = eventually("the rejected message is dead-lettered", {
        let (ch, parking) = (ch.clone(), parking.clone());
        move || {
            let (ch, parking) = (ch.clone(), parking.clone());
            async move {
                ch.basic_get(parking.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .unwrap()
            }
        }
    })
    .await;
    let props = &dead.delivery.properties;
    assert_eq!(props.expiration(), &None, "the per-message TTL is removed");
    let death = first_death(props);
    let field = |k: &str| death.inner().get(k).cloned();
    assert_eq!(field("count"), Some(AMQPValue::LongLongInt(1)));
    assert_eq!(field("reason"), Some(text("rejected")));
    assert_eq!(field("queue"), Some(text(&source)));
    assert_eq!(field("exchange"), Some(text("")));
    assert_eq!(field("original-expiration"), Some(text("60000")));
    assert!(matches!(field("time"), Some(AMQPValue::Timestamp(_))));
    assert_eq!(header(props, "x-first-death-reason"), Some(&text("rejected")));
    assert_eq!(header(props, "x-first-death-queue"), Some(&text(&source)));
    for q in [source, parking] {
        ch.queue_delete(q.as_str().into(), Default::default()).await.unwrap();
    }
}

#[tokio::test]
async fn messages_expire_on_time_without_consumers() {
    let (_c, ch) = channel().await;
    let (source, expired) = (unique("ttl-source"), unique("ttl-expired"));
    declare(&ch, &expired, FieldTable::default()).await;
    declare(
        &ch,
        &source,
        args(&[
            ("x-message-ttl", AMQPValue::LongInt(150)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(&expired)),
        ]),
    )
    .await;
    publish(&ch, "", &source, b"short-lived").await;
    // Per-message TTL shorter than the queue's.
    publish_with(
        &ch,
        "",
        &source,
        b"shorter",
        BasicProperties::default().with_expiration("50".into()),
    )
    .await;
    eventually("both messages expire into the dead-letter queue", {
        let expired = expired.clone();
        move || {
            let expired = expired.clone();
            async move { (queue_counts(&expired).await.ok()?.0 == 2).then_some(()) }
        }
    })
    .await;
    assert!(
        drain(&ch, &source).await.is_empty(),
        "an expired message is never delivered"
    );
    let dead = ch
        .basic_get(expired.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first_death(&dead.delivery.properties).inner().get("reason"),
        Some(&text("expired"))
    );
    assert_eq!(
        drain(&ch, &expired).await.len(),
        1,
        "both expired, with no consumer attached"
    );
    for q in [source, expired] {
        ch.queue_delete(q.as_str().into(), Default::default()).await.unwrap();
    }
}

#[tokio::test]
async fn unused_queues_expire() {
    let (_c, ch) = channel().await;
    let q = unique("expires");
    declare(&ch, &q, args(&[("x-expires", AMQPValue::LongInt(200))])).await;
    // Probed with queue.bind, which is not a use (a passive declare or a
    // basic.get would restart the queue's timer, in RabbitMQ too).
    let code = eventually("the unused queue expires", move || {
        let q = q.clone();
        async move {
            let (connection, probe) = channel().await;
            let bound = probe
                .queue_bind(
                    q.as_str().into(),
                    "amq.direct".into(),
                    "probe".into(),
                    Default::default(),
                    FieldTable::default(),
                )
                .bounded()
                .await;
            let _ = connection.close(200, "OK".into()).bounded().await;
            bound.err().map(|e| reply_of(&e).0)
        }
    })
    .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn length_limits_drop_the_head_or_refuse_the_publish() {
    let (_c, ch) = channel().await;
    let drop_head = unique("maxlen");
    declare(&ch, &drop_head, args(&[("x-max-length", AMQPValue::LongInt(2))])).await;
    for body in ["1", "2", "3"] {
        publish(&ch, "", &drop_head, body.as_bytes()).await;
    }
    assert_eq!(drain(&ch, &drop_head).await, ["2", "3"]);

    let refusing = unique("reject-publish");
    declare(
        &ch,
        &refusing,
        args(&[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", text("reject-publish")),
        ]),
    )
    .await;
    ch.confirm_select(Default::default()).await.unwrap();
    let mut outcomes = Vec::new();
    for body in ["a", "b"] {
        let confirm = ch
            .basic_publish(
                "".into(),
                refusing.as_str().into(),
                Default::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        outcomes.push(confirm.is_ack());
    }
    assert_eq!(outcomes, [true, false], "the publish over the limit is nacked");
    assert_eq!(drain(&ch, &refusing).await, ["a"]);
    for q in [drop_head, refusing] {
        ch.queue_delete(q.as_str().into(), Default::default()).await.unwrap();
    }
}

#[tokio::test]
async fn priority_queues_deliver_higher_priorities_first() {
    let (_c, ch) = channel().await;
    let q = unique("priority");
    declare(&ch, &q, args(&[("x-max-priority", AMQPValue::ShortShortUInt(5))])).await;
    for (body, priority) in [("low", 1u8), ("high", 5), ("mid", 3), ("high-2", 5), ("none", 0)] {
        publish_with(
            &ch,
            "",
            &q,
            body.as_bytes(),
            BasicProperties::default().with_priority(priority),
        )
        .await;
    }
    assert_eq!(drain(&ch, &q).await, ["high", "high-2", "mid", "low", "none"]);
    ch.queue_delete(q.as_str().into(), Default::default()).await.unwrap();
}

#[tokio::test]
async fn quorum_queues_count_deliveries_and_dead_letter_past_the_limit() {
    let (_c, ch) = channel().await;
    let (q, dlq) = (unique("quorum"), unique("quorum-dlq"));
    declare(&ch, &dlq, FieldTable::default()).await;
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args(&[
            ("x-queue-type", text("quorum")),
            ("x-delivery-limit", AMQPValue::LongInt(1)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(&dlq)),
        ]),
    )
    .await
    .unwrap();
    // Confirmed before it is fetched: RabbitMQ's quorum queues take it
    // asynchronously.
    ch.confirm_select(Default::default()).await.unwrap();
    publish(&ch, "", &q, b"flaky").await;
    ch.wait_for_confirms().await.unwrap();
    let mut counts = Vec::new();
    for _ in 0..2 {
        // RabbitMQ's quorum queue takes a requeue asynchronously.
        let m = eventually("the message is back in the queue", {
            let (ch, q) = (ch.clone(), q.clone());
            move || {
                let (ch, q) = (ch.clone(), q.clone());
                async move { ch.basic_get(q.as_str().into(), Default::default()).await.unwrap() }
            }
        })
        .await;
        counts.push(header(&m.delivery.properties, "x-delivery-count").cloned());
        m.delivery
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    assert_eq!(
        counts,
        [Some(AMQPValue::LongLongInt(0)), Some(AMQPValue::LongLongInt(1))]
    );
    let dead = eventually("past its delivery limit it is dead-lettered", {
        let (ch, dlq) = (ch.clone(), dlq.clone());
        move || {
            let (ch, dlq) = (ch.clone(), dlq.clone());
            async move {
                ch.basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .unwrap()
            }
        }
    })
    .await;
    assert!(drain(&ch, &q).await.is_empty(), "past its delivery limit");
    assert_eq!(
        first_death(&dead.delivery.properties).inner().get("reason"),
        Some(&text("delivery_limit"))
    );

    // What RabbitMQ refuses for quorum queues.
    for (options, expected) in [
        (
            QueueDeclareOptions {
                durable: false,
                ..Default::default()
            },
            "invalid property 'non-durable'",
        ),
        (
            QueueDeclareOptions {
                durable: true,
                exclusive: true,
                ..Default::default()
            },
            "invalid property 'exclusive-owner'",
        ),
    ] {
        let c = connect().await.create_channel().await.unwrap();
        let error = c
            .queue_declare(
                unique("qq").as_str().into(),
                options,
                args(&[("x-queue-type", text("quorum"))]),
            )
            .await
            .expect_err("refused");
        let (code, reply) = reply_of(&error);
        assert_eq!(code, 406);
        assert!(reply.contains(expected), "{reply}");
    }
    for name in [&q, &dlq] {
        ch.queue_delete(name.as_str().into(), Default::default()).await.unwrap();
    }
    // (Streams are declared and refused as RabbitMQ's in
    // conformance/pika/streams.py.)
}

#[tokio::test]
async fn single_active_consumer_gets_everything_until_it_goes() {
    let (connection, ch) = channel().await;
    let q = unique("sac");
    declare(&ch, &q, args(&[("x-single-active-consumer", AMQPValue::Boolean(true))])).await;
    let first_channel = connection.create_channel().await.unwrap();
    let mut first = first_channel
        .basic_consume(
            q.as_str().into(),
            "first".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
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
    for i in 0..4 {
        publish(&ch, "", &q, format!("{i}").as_bytes()).await;
    }
    for _ in 0..4 {
        next(&mut first).await;
    }
    nothing_more(&mut second).await;
    first_channel.close(200, "leaving".into()).await.unwrap();
    publish(&ch, "", &q, b"after").await;
    assert_eq!(next(&mut second).await.data, b"after", "the next consumer takes over");
    ch.queue_delete(q.as_str().into(), Default::default()).await.unwrap();
}

#[tokio::test]
async fn higher_priority_consumers_are_served_first() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let mut low = ch
        .basic_consume(
            q.as_str().into(),
            "low".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            args(&[("x-priority", AMQPValue::LongInt(1))]),
        )
        .await
        .unwrap();
    let mut high = ch
        .basic_consume(
            q.as_str().into(),
            "high".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            args(&[("x-priority", AMQPValue::LongInt(10))]),
        )
        .await
        .unwrap();
    for i in 0..3 {
        publish(&ch, "", &q, format!("{i}").as_bytes()).await;
    }
    for _ in 0..3 {
        next(&mut high).await;
    }
    nothing_more(&mut low).await;
}

#[tokio::test]
async fn direct_reply_to_round_trip() {
    let (_c, client) = channel().await;
    let (_s, server) = channel().await;
    let requests = temp_queue(&server).await;
    let mut replies = client
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish_with(
        &client,
        "",
        &requests,
        b"ping",
        BasicProperties::default().with_reply_to("amq.rabbitmq.reply-to".into()),
    )
    .await;
    let request = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Some(m) = server
                .basic_get(requests.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let reply_to = request.delivery.properties.reply_to().clone().unwrap();
    assert!(reply_to.as_str().starts_with("amq.rabbitmq.reply-to."), "{reply_to}");
    publish(&server, "", reply_to.as_str(), b"pong").await;
    let reply = tokio::time::timeout(Duration::from_secs(2), replies.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.data, b"pong");
}

#[tokio::test]
async fn a_passive_declare_is_a_use_that_puts_expiry_off() {
    let (_c, ch) = channel().await;
    let q = unique("expires-passive");
    declare(&ch, &q, args(&[("x-expires", AMQPValue::LongInt(1000))])).await;
    // Passive declares every 100 ms for three seconds, on the channel that is
    // already open (a fresh connection per probe can take longer than the
    // expiry on a loaded CI machine): the queue outlives its 1 s of x-expires
    // because each one renews it, as in RabbitMQ.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        ch.queue_declare(q.as_str().into(), passive_queue(), FieldTable::default())
            .await
            .expect("still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    delete_queue(&q).await;
}
