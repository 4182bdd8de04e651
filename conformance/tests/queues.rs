//! Queues: server-named and reserved names, passive declares and their
//! counts, equivalence on redeclare, exclusive and auto-delete queues,
//! purge, delete (if-unused, if-empty), binding to what does not exist,
//! and the channel's "last declared queue".

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;
use warren_conformance::lapin_util::*;

/// Publishes `n` messages and waits for their confirms (which puts the
/// channel in confirm mode): only then do the queue's counts include them,
/// since RabbitMQ answers a passive declare ahead of deliveries it has not
/// yet enqueued.
async fn fill(ch: &Channel, queue: &str, n: usize) {
    ch.confirm_select(Default::default()).bounded().await.unwrap();
    for i in 0..n {
        publish(ch, "", queue, format!("m{i}").as_bytes()).await;
    }
    assert!(ch.wait_for_confirms().bounded().await.unwrap().is_empty());
}

async fn declare(
    ch: &Channel,
    name: &str,
    options: QueueDeclareOptions,
    args: FieldTable,
) -> lapin::Result<lapin::Queue> {
    ch.queue_declare(name.into(), options, args).bounded().await
}

fn exclusive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    }
}

fn locked(queue: &str) -> String {
    format!(
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{queue}' in vhost '/'. \
         It could be originally declared on another connection or the exclusive property value does not match \
         that of the original declaration."
    )
}

#[tokio::test]
async fn server_named_queues_get_the_amq_gen_prefix() {
    let (_c, ch) = channel().await;
    let first = declare(&ch, "", exclusive(), FieldTable::default()).await.unwrap();
    let second = declare(&ch, "", exclusive(), FieldTable::default()).await.unwrap();
    let name = first.name().as_str();
    assert!(name.starts_with("amq.gen-"), "{name}");
    assert_eq!(name.len(), "amq.gen-".len() + 22, "a 22-character suffix: {name}");
    assert_ne!(name, second.name().as_str());
    assert_eq!((first.message_count(), first.consumer_count()), (0, 0));
    publish(&ch, "", name, b"reachable").await;
    assert_eq!(drain(&ch, name).await, ["reachable"]);
}

#[tokio::test]
async fn the_amq_prefix_is_reserved() {
    let (connection, ch) = channel().await;
    let q = format!("amq.{}", unique("mine"));
    assert_refused(
        declare(&ch, &q, QueueDeclareOptions::default(), FieldTable::default()).await,
        403,
        &format!("ACCESS_REFUSED - queue name '{q}' contains reserved prefix 'amq.*'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn declares_return_ready_message_and_consumer_counts() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 3).await;
    let counts = declare(&ch, &q, passive_queue(), FieldTable::default()).await.unwrap();
    assert_eq!(counts.name().as_str(), q);
    assert_eq!((counts.message_count(), counts.consumer_count()), (3, 0));
    let consumer_ch = _c.create_channel().bounded().await.unwrap();
    consumer_ch
        .basic_qos(1, BasicQosOptions::default())
        .bounded()
        .await
        .unwrap();
    let mut consumer = consume(&consumer_ch, &q, "", false).await;
    let _held = next(&mut consumer).await;
    let counts = declare(&ch, &q, passive_queue(), FieldTable::default()).await.unwrap();
    assert_eq!(
        (counts.message_count(), counts.consumer_count()),
        (2, 1),
        "the unacked message is not counted"
    );
    // An active redeclare reports the same counts.
    let counts = declare(&ch, &q, exclusive(), FieldTable::default()).await.unwrap();
    assert_eq!((counts.message_count(), counts.consumer_count()), (2, 1));
}

#[tokio::test]
async fn passive_declare_of_a_missing_queue_is_404() {
    let (connection, ch) = channel().await;
    let q = unique("missing");
    assert_refused(
        declare(&ch, &q, passive_queue(), FieldTable::default()).await,
        404,
        &format!("NOT_FOUND - no queue '{q}' in vhost '/'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn redeclaring_with_another_durability_is_406() {
    let (connection, ch) = channel().await;
    let q = shared_queue(&ch, "q").await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    assert_refused(
        declare(&ch, &q, durable, FieldTable::default()).await,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{q}' in vhost '/': received 'true' but current is 'false'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    delete_queue(&q).await;
}

#[tokio::test]
async fn redeclaring_with_another_auto_delete_flag_is_406() {
    let (connection, ch) = channel().await;
    let q = shared_queue(&ch, "q").await;
    let auto_delete = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    assert_refused(
        declare(&ch, &q, auto_delete, FieldTable::default()).await,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '{q}' in vhost '/': received 'true' but current is 'false'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    delete_queue(&q).await;
}

#[tokio::test]
async fn redeclaring_with_other_arguments_is_406() {
    let (connection, ch) = channel().await;
    let q = unique("q");
    let ttl = |ms: i32| table(&[("x-message-ttl", AMQPValue::LongInt(ms))]);
    declare(&ch, &q, QueueDeclareOptions::default(), ttl(100))
        .await
        .unwrap();
    declare(&ch, &q, QueueDeclareOptions::default(), ttl(100))
        .await
        .expect("the same arguments are fine");
    assert_refused(
        declare(&ch, &q, QueueDeclareOptions::default(), ttl(200)).await,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '{q}' in vhost '/': received '200' but current is '100'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    let ch = connection.create_channel().bounded().await.unwrap();
    assert_refused(
        declare(&ch, &q, QueueDeclareOptions::default(), FieldTable::default()).await,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '{q}' in vhost '/': received none but current is the value '100' of type 'signedint'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    let ch = connection.create_channel().bounded().await.unwrap();
    // Passive declares ignore arguments; unknown arguments are not compared.
    declare(&ch, &q, passive_queue(), ttl(300)).await.expect("passive");
    declare(
        &ch,
        &q,
        QueueDeclareOptions::default(),
        table(&[
            ("x-message-ttl", AMQPValue::LongInt(100)),
            ("x-unknown", text("whatever")),
        ]),
    )
    .await
    .expect("an unknown argument is not an inequivalence");
    delete_queue(&q).await;
}

#[tokio::test]
async fn an_exclusive_queue_is_locked_to_its_connection() {
    let (owner, ch) = channel().await;
    let q = temp_queue(&ch).await;
    // Another channel of the same connection may use it.
    let sibling = owner.create_channel().bounded().await.unwrap();
    declare(&sibling, &q, passive_queue(), FieldTable::default())
        .await
        .expect("same connection");
    publish(&sibling, "", &q, b"from a sibling").await;
    assert_eq!(drain(&sibling, &q).await, ["from a sibling"]);

    let (other, och) = channel().await;
    assert_refused(
        declare(&och, &q, passive_queue(), FieldTable::default()).await,
        405,
        &locked(&q),
    );
    assert_only_channel_closed(&other, &och).await;
    let och = other.create_channel().bounded().await.unwrap();
    assert_refused(
        och.basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
            .bounded()
            .await,
        405,
        &locked(&q),
    );
    assert_only_channel_closed(&other, &och).await;
    let och = other.create_channel().bounded().await.unwrap();
    assert_refused(
        och.basic_get(q.as_str().into(), Default::default()).bounded().await,
        405,
        &locked(&q),
    );
    assert_only_channel_closed(&other, &och).await;
    let och = other.create_channel().bounded().await.unwrap();
    assert_refused(
        och.queue_delete(q.as_str().into(), Default::default()).bounded().await,
        405,
        &locked(&q),
    );
    assert_only_channel_closed(&other, &och).await;
    // Publishing to it from elsewhere is allowed.
    let och = other.create_channel().bounded().await.unwrap();
    och.confirm_select(Default::default()).bounded().await.unwrap();
    let confirm = och
        .basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"from elsewhere",
            Default::default(),
        )
        .bounded()
        .await
        .unwrap()
        .bounded()
        .await
        .unwrap();
    assert!(
        confirm.is_ack() && confirm.take_message().is_none(),
        "routed and confirmed"
    );
    assert_eq!(drain(&ch, &q).await, ["from elsewhere"]);
}

#[tokio::test]
async fn redeclaring_an_exclusive_queue_as_non_exclusive_is_405() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    assert_refused(
        declare(&ch, &q, QueueDeclareOptions::default(), FieldTable::default()).await,
        405,
        &locked(&q),
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn an_exclusive_queue_is_deleted_when_its_connection_closes() {
    let (owner, ch) = channel().await;
    let q = temp_queue(&ch).await;
    fill(&ch, &q, 2).await;
    assert_eq!(counts(&ch, &q).await, (2, 0));
    owner.close(200, "bye".into()).bounded().await.unwrap();
    assert_queue_gone(&q, "exclusive queue deleted with its connection").await;
}

#[tokio::test]
async fn an_auto_delete_queue_goes_with_its_last_consumer() {
    let (_c, ch) = channel().await;
    let q = unique("autodelete");
    let auto_delete = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    declare(&ch, &q, auto_delete, FieldTable::default()).await.unwrap();
    assert_eq!(queue_counts(&q).await.unwrap(), (0, 0), "kept until it had a consumer");
    let _one = consume(&ch, &q, "one", false).await;
    let _two = consume(&ch, &q, "two", false).await;
    ch.basic_cancel("one".into(), BasicCancelOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_eq!(queue_counts(&q).await.unwrap(), (0, 1), "one consumer left");
    ch.basic_cancel("two".into(), BasicCancelOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_queue_gone(&q, "auto-deleted with its last consumer").await;
}

#[tokio::test]
async fn an_auto_delete_queue_goes_when_its_consumers_channel_closes() {
    let (connection, ch) = channel().await;
    let q = unique("autodelete");
    let auto_delete = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    declare(&ch, &q, auto_delete, FieldTable::default()).await.unwrap();
    let consumer_ch = connection.create_channel().bounded().await.unwrap();
    let _consumer = consume(&consumer_ch, &q, "", false).await;
    consumer_ch.close(200, "OK".into()).bounded().await.unwrap();
    assert_queue_gone(&q, "auto-deleted when its consumer's channel closed").await;
}

#[tokio::test]
async fn purge_and_delete_return_message_counts() {
    let (_c, ch) = channel().await;
    let q = shared_queue(&ch, "q").await;
    fill(&ch, &q, 3).await;
    let purged = ch
        .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_eq!(purged, 3);
    assert!(drain(&ch, &q).await.is_empty());
    fill(&ch, &q, 2).await;
    // Unacked messages are neither purged nor counted by delete.
    let held = ch
        .basic_get(q.as_str().into(), Default::default())
        .bounded()
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(held.message_count, 1);
    let purged = ch
        .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_eq!(purged, 1, "only the ready message");
    fill(&ch, &q, 4).await;
    let deleted = ch
        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_eq!(deleted, 4);
    assert_queue_gone(&q, "deleted").await;
    // Deleting a queue that does not exist succeeds with a count of 0.
    let deleted = ch
        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_eq!(deleted, 0);
}

#[tokio::test]
async fn delete_if_unused_refuses_a_queue_with_consumers() {
    let (connection, ch) = channel().await;
    let q = shared_queue(&ch, "q").await;
    let consumer_ch = connection.create_channel().bounded().await.unwrap();
    let _consumer = consume(&consumer_ch, &q, "busy", false).await;
    let if_unused = QueueDeleteOptions {
        if_unused: true,
        ..Default::default()
    };
    assert_refused(
        ch.queue_delete(q.as_str().into(), if_unused).bounded().await,
        406,
        &format!("PRECONDITION_FAILED - queue '{q}' in vhost '/' in use"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    consumer_ch
        .basic_cancel("busy".into(), BasicCancelOptions::default())
        .bounded()
        .await
        .unwrap();
    consumer_ch
        .queue_delete(q.as_str().into(), if_unused)
        .bounded()
        .await
        .expect("unused now");
    assert_queue_gone(&q, "deleted").await;
}

#[tokio::test]
async fn delete_if_empty_refuses_a_queue_with_messages() {
    let (connection, ch) = channel().await;
    let q = shared_queue(&ch, "q").await;
    fill(&ch, &q, 1).await;
    let if_empty = QueueDeleteOptions {
        if_empty: true,
        ..Default::default()
    };
    assert_refused(
        ch.queue_delete(q.as_str().into(), if_empty).bounded().await,
        406,
        &format!("PRECONDITION_FAILED - queue '{q}' in vhost '/' not empty"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    let ch = connection.create_channel().bounded().await.unwrap();
    drain(&ch, &q).await;
    assert_eq!(ch.queue_delete(q.as_str().into(), if_empty).bounded().await.unwrap(), 0);
    assert_queue_gone(&q, "deleted").await;
}

#[tokio::test]
async fn binding_a_missing_queue_or_to_a_missing_exchange_is_404() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let (missing_q, missing_x) = (unique("missing"), unique("missing"));
    let cases = [
        (
            missing_q.as_str(),
            "amq.direct",
            format!("NOT_FOUND - no queue '{missing_q}' in vhost '/'"),
        ),
        (
            q.as_str(),
            missing_x.as_str(),
            format!("NOT_FOUND - no exchange '{missing_x}' in vhost '/'"),
        ),
        (
            missing_q.as_str(),
            missing_x.as_str(),
            format!("NOT_FOUND - no exchange '{missing_x}' in vhost '/'"),
        ),
    ];
    for (queue, exchange, expected) in cases {
        let ch = connection.create_channel().bounded().await.unwrap();
        assert_refused(
            ch.queue_bind(
                queue.into(),
                exchange.into(),
                "k".into(),
                Default::default(),
                FieldTable::default(),
            )
            .bounded()
            .await,
            404,
            &expected,
        );
        assert_only_channel_closed(&connection, &ch).await;
    }
    // Unbinding from what does not exist is fine.
    ch.queue_unbind(
        missing_q.as_str().into(),
        "amq.direct".into(),
        "k".into(),
        FieldTable::default(),
    )
    .bounded()
    .await
    .expect("unbind of a missing queue");
}

#[tokio::test]
async fn an_empty_queue_name_means_the_channels_last_declared_queue() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    ch.queue_bind(
        "".into(),
        "amq.direct".into(),
        q.as_str().into(),
        Default::default(),
        FieldTable::default(),
    )
    .bounded()
    .await
    .unwrap();
    publish(&ch, "amq.direct", &q, b"via the last queue").await;
    let got = ch
        .basic_get("".into(), BasicGetOptions { no_ack: true })
        .bounded()
        .await
        .unwrap()
        .expect("basic.get on '' reads the last declared queue");
    assert_eq!(got.delivery.data, b"via the last queue");
    ch.queue_unbind("".into(), "amq.direct".into(), q.as_str().into(), FieldTable::default())
        .bounded()
        .await
        .unwrap();
    // A channel that declared nothing has no last queue.
    let fresh = connection.create_channel().bounded().await.unwrap();
    assert_refused(
        fresh
            .queue_bind(
                "".into(),
                "amq.direct".into(),
                "k".into(),
                Default::default(),
                FieldTable::default(),
            )
            .bounded()
            .await,
        404,
        "NOT_FOUND - no previously declared queue",
    );
    assert_only_channel_closed(&connection, &fresh).await;
}
