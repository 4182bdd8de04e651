//! Publishing through lapin: mandatory returns, publisher confirms, all
//! properties and nested headers intact, bodies of every size class, and
//! transactions.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldArray, FieldTable, ShortString};

use lapin::BasicProperties;
use warren_conformance::lapin_util::*;

#[tokio::test]
async fn unroutable_mandatory_message_is_returned_then_confirmed() {
    let (_c, ch) = channel().await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let confirm = ch
        .basic_publish(
            "amq.direct".into(),
            "no-such-binding".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"lost?",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack(), "a returned message is still confirmed");
    let returned = confirm.take_message().expect("basic.return before the ack");
    assert_eq!(returned.reply_code, 312);
    assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(returned.delivery.data, b"lost?");
}

#[tokio::test]
async fn confirms_ack_every_publish() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let mut confirms = Vec::new();
    for i in 0..200u32 {
        let c = ch
            .basic_publish(
                "".into(),
                q.as_str().into(),
                Default::default(),
                &i.to_be_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
        confirms.push(c);
    }
    for c in confirms {
        assert!(c.await.unwrap().is_ack());
    }
    assert!(ch.wait_for_confirms().await.unwrap().is_empty());
    assert_eq!(drain(&ch, &q).await.len(), 200);
}

fn every_property() -> BasicProperties {
    let mut nested = FieldTable::default();
    nested.insert("inner".into(), AMQPValue::LongString("deep".into()));
    let mut headers = FieldTable::default();
    headers.insert("string".into(), AMQPValue::LongString("text".into()));
    headers.insert("int".into(), AMQPValue::LongInt(-42));
    headers.insert("long".into(), AMQPValue::LongLongInt(1 << 40));
    headers.insert("bool".into(), AMQPValue::Boolean(true));
    headers.insert("double".into(), AMQPValue::Double(2.5));
    headers.insert("bytes".into(), AMQPValue::ByteArray(vec![0u8, 1, 255].into()));
    headers.insert("table".into(), AMQPValue::FieldTable(nested));
    headers.insert(
        "array".into(),
        AMQPValue::FieldArray(FieldArray::from(vec![
            AMQPValue::LongInt(1),
            AMQPValue::LongString("two".into()),
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
    let got = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.delivery.properties, sent);
}

#[tokio::test]
async fn bodies_of_every_size_arrive_intact() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    // Empty, one byte, exactly one full frame (frame_max 131072 minus the
    // 8 bytes of framing), one byte more, and 1 MiB (many frames).
    let sizes = [0usize, 1, 131_064, 131_065, 1 << 20];
    for &size in &sizes {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        publish(&ch, "", &q, &body).await;
    }
    for &size in &sizes {
        let got = ch
            .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .unwrap();
        let expected: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        assert_eq!(got.delivery.data.len(), size);
        assert!(got.delivery.data == expected, "body of {size} bytes corrupted");
    }
}

#[tokio::test]
async fn transactions_commit_and_roll_back_publishes_and_acks() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    publish(&ch, "", &q, b"before").await;
    ch.tx_select().await.unwrap();
    publish(&ch, "", &q, b"rolled back").await;
    ch.tx_rollback().await.unwrap();
    publish(&ch, "", &q, b"committed").await;
    let before = ch
        .basic_get(q.as_str().into(), Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.delivery.data, b"before");
    assert_eq!(
        before.message_count, 0,
        "nothing published in the transaction is visible before the commit"
    );
    ch.tx_commit().await.unwrap();
    // An ack inside a transaction takes effect only at commit.
    before.delivery.ack(BasicAckOptions::default()).await.unwrap();
    ch.tx_rollback().await.unwrap();
    ch.basic_recover(BasicRecoverOptions { requeue: true }).await.unwrap();
    let bodies = drain(&ch, &q).await;
    assert_eq!(
        bodies,
        ["before", "committed"],
        "the rolled-back ack left 'before' unacked, recover requeued it"
    );
}
