//! Publishing: mandatory returns, refusals (missing or internal exchange,
//! immediate, user_id, expiration), all properties and nested headers
//! intact, and bodies of every size class.

use std::time::Duration;

use lapin::message::BasicReturnMessage;
use lapin::options::*;
use lapin::types::{AMQPValue, DecimalValue, FieldArray, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use warren_conformance::lapin_util::*;

async fn publish_opts(ch: &Channel, exchange: &str, key: &str, options: BasicPublishOptions, body: &[u8]) {
    ch.basic_publish(exchange.into(), key.into(), options, body, BasicProperties::default())
        .bounded()
        .await
        .expect("publish");
}

/// The basic.returns lapin collected on a channel without confirms (they
/// arrive asynchronously: polls for up to 2 s until `n` are there).
async fn returns(ch: &Channel, n: usize) -> Vec<BasicReturnMessage> {
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(ch.wait_for_confirms().bounded().await.unwrap());
        if got.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    got
}

#[tokio::test]
async fn an_unroutable_mandatory_message_is_returned_with_312() {
    let (_c, ch) = channel().await;
    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let missing = unique("missing");
    publish_opts(&ch, "", &missing, mandatory, b"to no queue").await;
    publish_opts(&ch, "amq.direct", "no-binding", mandatory, b"to no binding").await;
    publish_opts(&ch, "amq.direct", "no-binding", Default::default(), b"dropped").await;
    let got = returns(&ch, 2).await;
    let summary: Vec<(u16, String, String, String, Vec<u8>)> = got
        .iter()
        .map(|r| {
            (
                r.reply_code,
                r.reply_text.to_string(),
                r.delivery.exchange.to_string(),
                r.delivery.routing_key.to_string(),
                r.delivery.data.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                312,
                "NO_ROUTE".to_string(),
                "".to_string(),
                missing.clone(),
                b"to no queue".to_vec()
            ),
            (
                312,
                "NO_ROUTE".to_string(),
                "amq.direct".to_string(),
                "no-binding".to_string(),
                b"to no binding".to_vec()
            ),
        ],
        "a non-mandatory unroutable message is dropped silently"
    );
}

#[tokio::test]
async fn a_returned_message_keeps_its_properties() {
    let (_c, ch) = channel().await;
    let props = every_property();
    ch.basic_publish(
        "amq.topic".into(),
        "nobody.listens".into(),
        BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        },
        b"back",
        props.clone(),
    )
    .bounded()
    .await
    .unwrap();
    let got = returns(&ch, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].delivery.properties, props);
}

#[tokio::test]
async fn publishing_to_a_missing_exchange_is_404() {
    let (connection, ch) = channel().await;
    let mut watch = watch(&ch).await;
    let missing = unique("missing");
    publish(&ch, &missing, "k", b"lost").await;
    assert_eq!(
        closed_with(&mut watch).await,
        (404, format!("NOT_FOUND - no exchange '{missing}' in vhost '/'"))
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn immediate_publishing_is_a_540_connection_error() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let mut watch = watch(&ch).await;
    let immediate = BasicPublishOptions {
        immediate: true,
        ..Default::default()
    };
    publish_opts(&ch, "", &q, immediate, b"now").await;
    assert_eq!(
        closed_with(&mut watch).await,
        (540, "NOT_IMPLEMENTED - immediate=true".to_string())
    );
    assert_connection_closed(&connection).await;
}

#[tokio::test]
async fn a_user_id_other_than_the_login_is_406() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    publish_with(
        &ch,
        "",
        &q,
        b"me",
        BasicProperties::default().with_user_id("guest".into()),
    )
    .await;
    assert_eq!(drain(&ch, &q).await, ["me"], "the authenticated user is fine");
    let mut watch = watch(&ch).await;
    publish_with(
        &ch,
        "",
        &q,
        b"not me",
        BasicProperties::default().with_user_id("bob".into()),
    )
    .await;
    assert_eq!(
        closed_with(&mut watch).await,
        (
            406,
            "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'".to_string()
        )
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn an_invalid_expiration_is_406() {
    for (expiration, reason) in [
        ("abc", "no_integer"),
        ("-5", "{value_negative,-5}"),
        ("1.5", "{leftover_string,\".5\"}"),
        ("315360000001", "{value_too_large,315360000001}"),
    ] {
        let (connection, ch) = channel().await;
        let mut watch = watch(&ch).await;
        let props = BasicProperties::default().with_expiration(expiration.into());
        publish_with(&ch, "", &unique("nowhere"), b"x", props).await;
        assert_eq!(
            closed_with(&mut watch).await,
            (
                406,
                format!("PRECONDITION_FAILED - invalid expiration '{expiration}': {reason}")
            ),
            "expiration {expiration:?}"
        );
        assert_only_channel_closed(&connection, &ch).await;
    }
}

fn every_property() -> BasicProperties {
    let mut nested = FieldTable::default();
    nested.insert("inner".into(), AMQPValue::LongString("deep".into()));
    nested.insert("n".into(), AMQPValue::LongLongInt(-1));
    let mut headers = FieldTable::default();
    headers.insert("string".into(), AMQPValue::LongString("text".into()));
    headers.insert("int".into(), AMQPValue::LongInt(-42));
    headers.insert("long".into(), AMQPValue::LongLongInt(1 << 40));
    headers.insert("bool".into(), AMQPValue::Boolean(true));
    headers.insert("false".into(), AMQPValue::Boolean(false));
    headers.insert("double".into(), AMQPValue::Double(2.5));
    headers.insert("float".into(), AMQPValue::Float(1.5));
    headers.insert("byte".into(), AMQPValue::ShortShortInt(-7));
    headers.insert("ubyte".into(), AMQPValue::ShortShortUInt(200));
    headers.insert("short".into(), AMQPValue::ShortInt(-300));
    headers.insert("ushort".into(), AMQPValue::ShortUInt(60_000));
    headers.insert("uint".into(), AMQPValue::LongUInt(4_000_000_000));
    headers.insert(
        "decimal".into(),
        AMQPValue::DecimalValue(DecimalValue {
            scale: 2,
            value: 12_345,
        }),
    );
    headers.insert("timestamp".into(), AMQPValue::Timestamp(1_700_000_000));
    headers.insert("bytes".into(), AMQPValue::ByteArray(vec![0u8, 1, 255].into()));
    headers.insert("table".into(), AMQPValue::FieldTable(nested.clone()));
    headers.insert(
        "array".into(),
        AMQPValue::FieldArray(FieldArray::from(vec![
            AMQPValue::LongInt(1),
            AMQPValue::LongString("two".into()),
            AMQPValue::FieldTable(nested),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Boolean(false)])),
        ])),
    );
    headers.insert("void".into(), AMQPValue::Void);
    BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_content_encoding("gzip".into())
        .with_headers(headers)
        .with_delivery_mode(2)
        .with_priority(7)
        .with_correlation_id("corr".into())
        .with_reply_to("replies".into())
        .with_expiration("60000".into())
        .with_message_id("msg-1".into())
        .with_timestamp(1_700_000_000)
        .with_type("order.created".into())
        .with_user_id("guest".into())
        .with_app_id("tests".into())
        .with_cluster_id("cluster".into())
}

#[tokio::test]
async fn all_fourteen_properties_and_nested_headers_arrive_intact() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let sent = every_property();
    publish_with(&ch, "", &q, b"{}", sent.clone()).await;
    publish_with(&ch, "", &q, b"{}", sent.clone()).await;
    let got = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .bounded()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.delivery.properties, sent, "through basic.get");
    assert_eq!(got.delivery.exchange.as_str(), "");
    assert_eq!(got.delivery.routing_key.as_str(), q);
    let mut consumer = consume(&ch, &q, "", true).await;
    let delivered = next(&mut consumer).await;
    assert_eq!(delivered.properties, sent, "through basic.deliver");
    assert!(!delivered.redelivered);
}

#[tokio::test]
async fn no_properties_arrive_as_no_properties() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    publish(&ch, "", &q, b"bare").await;
    let got = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .bounded()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.delivery.properties, BasicProperties::default());
}

#[tokio::test]
async fn bodies_of_every_size_arrive_intact() {
    let (connection, ch) = channel().await;
    let frame_max = connection.configuration().frame_max() as usize;
    let q = temp_queue(&ch).await;
    // Empty, one byte, exactly one full frame (frame_max minus the 8 bytes
    // of framing), one byte more, and 1 MiB (many frames).
    let sizes = [0usize, 1, frame_max - 8, frame_max - 7, 1 << 20];
    for &size in &sizes {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        publish(&ch, "", &q, &body).await;
    }
    for &size in &sizes {
        let got = ch
            .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
            .bounded()
            .await
            .unwrap()
            .unwrap();
        let expected: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        assert_eq!(got.delivery.data.len(), size);
        assert!(got.delivery.data == expected, "body of {size} bytes corrupted");
    }
    // The same through a consumer.
    let mut consumer = consume(&ch, &q, "", true).await;
    for &size in &sizes {
        let body: Vec<u8> = (0..size).map(|i| (i % 13) as u8).collect();
        publish(&ch, "", &q, &body).await;
        let got = next(&mut consumer).await;
        assert!(got.data == body, "delivered body of {size} bytes corrupted");
    }
}

#[tokio::test]
async fn a_20_mib_message_is_accepted_as_rabbitmq_3_accepts_it() {
    // RabbitMQ 3.x's max_message_size is 128 MiB; client suites (aiormq)
    // publish 20 MiB messages.
    let (_connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    let body: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    ch.confirm_select(Default::default()).bounded().await.unwrap();
    let confirm = ch
        .basic_publish(
            "".into(),
            q.as_str().into(),
            Default::default(),
            &body,
            BasicProperties::default(),
        )
        .bounded()
        .await
        .unwrap()
        .bounded()
        .await
        .unwrap();
    assert!(confirm.is_ack(), "{confirm:?}");
    let got = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .bounded()
        .await
        .unwrap()
        .expect("the message");
    assert!(got.delivery.data == body, "the 20 MiB body arrives intact");
}
