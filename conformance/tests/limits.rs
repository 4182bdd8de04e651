//! What RabbitMQ refuses, refused the same way (through lapin):
//! channel.flow(active=false) is 540 NOT_IMPLEMENTED and closes the
//! connection; a body over the maximum message size is 406 and closes only
//! the channel; past `--max-connections` connection.open is refused with
//! 530, and past `--max-consumers-per-channel` basic.consume closes the
//! connection with 530, in RabbitMQ's words. (Immediate publishes are in
//! publish.rs.)

use std::sync::OnceLock;

use lapin::options::*;
use lapin::BasicProperties;
use warren_conformance::lapin_util::*;

#[tokio::test]
async fn channel_flow_off_is_not_implemented() {
    let (connection, ch) = channel().await;
    let error = ch
        .channel_flow(ChannelFlowOptions { active: false })
        .await
        .expect_err("refused");
    assert_eq!(reply_of(&error), (540, "NOT_IMPLEMENTED - active=false".to_string()));
    let connection = std::sync::Arc::new(connection);
    eventually("540 closes the connection", move || {
        let connection = connection.clone();
        async move { (!connection.status().connected()).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_body_over_the_maximum_message_size_is_refused_with_406() {
    // A broker of its own with a 1 KiB limit (RabbitMQ's is configured the same way).
    static URL: OnceLock<String> = OnceLock::new();
    let url = URL
        .get_or_init(|| {
            let mut config = warren::ephemeral_config();
            config.max_message_size = 1024;
            warren_conformance::start_background_broker(config)
        })
        .clone();
    let connection = lapin::Connection::connect(&url, Default::default()).await.unwrap();
    let ch = connection.create_channel().await.unwrap();
    let q = temp_queue(&ch).await;
    // In confirm mode the refusal reaches the publisher's own confirm: a
    // call made after the publish could find the channel already closing
    // (lapin then reports its state, not the server's reply).
    ch.confirm_select(Default::default()).await.unwrap();
    publish(&ch, "", &q, &[1u8; 1024]).await;
    let sent = ch
        .basic_publish(
            "".into(),
            q.as_str().into(),
            Default::default(),
            &[1u8; 1025],
            BasicProperties::default(),
        )
        .await;
    let error = match sent {
        Ok(confirm) => confirm.await.expect_err("channel closed"),
        Err(error) => error,
    };
    assert_eq!(
        reply_of(&error),
        (
            406,
            "PRECONDITION_FAILED - message size 1025 is larger than configured max size 1024".to_string()
        )
    );
    // Only the channel: the connection still works, and the message at the limit arrived.
    let other = connection.create_channel().await.unwrap();
    assert_eq!(drain(&other, &q).await.len(), 1);
}

#[tokio::test]
async fn vhosts_keep_their_exchanges_and_queues_apart() {
    static URL: OnceLock<String> = OnceLock::new();
    let url = URL
        .get_or_init(|| {
            let mut config = warren::ephemeral_config();
            config.vhosts = vec!["/".into(), "tenant".into()];
            warren_conformance::start_background_broker(config)
        })
        .clone();
    let other_vhost = url.replace("/%2f", "/tenant");
    let default = lapin::Connection::connect(&url, Default::default()).await.unwrap();
    let tenant = lapin::Connection::connect(&other_vhost, Default::default())
        .await
        .unwrap();
    let (a, b) = (
        default.create_channel().await.unwrap(),
        tenant.create_channel().await.unwrap(),
    );
    a.queue_declare("shared-name".into(), Default::default(), Default::default())
        .await
        .unwrap();
    b.queue_declare("shared-name".into(), Default::default(), Default::default())
        .await
        .unwrap();
    publish(&a, "", "shared-name", b"for /").await;
    publish(&b, "", "shared-name", b"for tenant").await;
    assert_eq!(drain(&a, "shared-name").await, ["for /"]);
    assert_eq!(drain(&b, "shared-name").await, ["for tenant"]);
    let missing = b
        .exchange_declare(
            "only-in-default".into(),
            lapin::ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await;
    assert!(missing.is_err());
}

#[tokio::test]
async fn connections_past_the_node_limit_are_refused_with_530_until_one_closes() {
    let mut config = warren::ephemeral_config();
    config.max_connections = Some(2);
    let url = warren_conformance::start_background_broker(config);
    let first = lapin::Connection::connect(&url, Default::default()).await.unwrap();
    let _second = lapin::Connection::connect(&url, Default::default()).await.unwrap();
    let refused = lapin::Connection::connect(&url, Default::default())
        .await
        .expect_err("a third connection is over the limit");
    assert_eq!(
        reply_of(&refused),
        (
            530,
            "NOT_ALLOWED - connection refused: node connection limit (2) is reached".to_string()
        )
    );
    // A closed connection frees its place.
    first.close(200, "bye".into()).await.unwrap();
    let again = url.clone();
    eventually("a place frees up", move || {
        let url = again.clone();
        async move { lapin::Connection::connect(&url, Default::default()).await.ok() }
    })
    .await;
}

#[tokio::test]
async fn a_consumer_past_the_channel_limit_closes_the_connection_with_530() {
    let mut config = warren::ephemeral_config();
    config.max_consumers_per_channel = Some(2);
    let url = warren_conformance::start_background_broker(config);
    let connection = lapin::Connection::connect(&url, Default::default()).await.unwrap();
    let ch = connection.create_channel().await.unwrap();
    let q = temp_queue(&ch).await;
    // (Held: lapin cancels a consumer it drops.)
    let _one = consume(&ch, &q, "one", true).await;
    let _two = consume(&ch, &q, "two", true).await;
    // Another channel has its own allowance.
    let other = connection.create_channel().await.unwrap();
    let _three = consume(&other, &q, "three", true).await;
    let error = ch
        .basic_consume(
            q.as_str().into(),
            "four".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .expect_err("over the limit");
    assert_eq!(
        reply_of(&error),
        (
            530,
            "NOT_ALLOWED - reached maximum (2) of consumers per channel".to_string()
        )
    );
    assert_connection_closed(&connection).await;
}
