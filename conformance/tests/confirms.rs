//! Publisher confirms: an ack for every publish (routed or not), a return
//! before the ack of an unroutable mandatory message, nacks when a queue
//! refuses the message, and confirm/tx exclusivity.

use lapin::options::*;
use lapin::types::AMQPValue;
use lapin::BasicProperties;
use warren_conformance::lapin_util::*;

#[tokio::test]
async fn confirms_ack_every_publish() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .bounded()
        .await
        .unwrap();
    // Selecting again is harmless.
    ch.confirm_select(ConfirmSelectOptions::default())
        .bounded()
        .await
        .unwrap();
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
            .bounded()
            .await
            .unwrap();
        confirms.push(c);
    }
    // Unroutable but not mandatory: dropped, and still acked.
    let dropped = ch
        .basic_publish(
            "amq.direct".into(),
            "nobody".into(),
            Default::default(),
            b"dropped",
            BasicProperties::default(),
        )
        .bounded()
        .await
        .unwrap();
    confirms.push(dropped);
    for c in confirms {
        let confirmation = c.bounded().await.unwrap();
        assert!(confirmation.is_ack());
        assert!(confirmation.take_message().is_none());
    }
    assert!(ch.wait_for_confirms().bounded().await.unwrap().is_empty());
    assert_eq!(drain(&ch, &q).await.len(), 200);
}

#[tokio::test]
async fn an_unroutable_mandatory_message_is_returned_then_acked() {
    let (_c, ch) = channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .bounded()
        .await
        .unwrap();
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
        .bounded()
        .await
        .unwrap()
        .bounded()
        .await
        .unwrap();
    assert!(confirm.is_ack(), "a returned message is still confirmed");
    let returned = confirm.take_message().expect("basic.return before the ack");
    assert_eq!(returned.reply_code, 312);
    assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(returned.delivery.exchange.as_str(), "amq.direct");
    assert_eq!(returned.delivery.routing_key.as_str(), "no-such-binding");
    assert_eq!(returned.delivery.data, b"lost?");
}

#[tokio::test]
async fn a_queue_that_rejects_publishes_nacks_them() {
    let (_c, ch) = channel().await;
    let q = unique("full");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        table(&[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", text("reject-publish")),
        ]),
    )
    .bounded()
    .await
    .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .bounded()
        .await
        .unwrap();
    let mut outcomes = Vec::new();
    for body in [&b"fits"[..], b"refused"] {
        let confirmation = ch
            .basic_publish(
                "".into(),
                q.as_str().into(),
                Default::default(),
                body,
                BasicProperties::default(),
            )
            .bounded()
            .await
            .unwrap()
            .bounded()
            .await
            .unwrap();
        outcomes.push(confirmation.is_ack());
    }
    assert_eq!(outcomes, [true, false], "the second publish is nacked");
    assert_eq!(drain(&ch, &q).await, ["fits"]);
}

#[tokio::test]
async fn confirm_mode_cannot_become_transactional() {
    let (connection, ch) = channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .bounded()
        .await
        .unwrap();
    assert_refused(
        ch.tx_select().bounded().await,
        406,
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn a_transactional_channel_cannot_enter_confirm_mode() {
    let (connection, ch) = channel().await;
    ch.tx_select().bounded().await.unwrap();
    assert_refused(
        ch.confirm_select(ConfirmSelectOptions::default()).bounded().await,
        406,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn a_channel_error_fails_the_pending_confirms() {
    let (connection, ch) = channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .bounded()
        .await
        .unwrap();
    let missing = unique("missing");
    let confirm = ch
        .basic_publish(
            missing.as_str().into(),
            "k".into(),
            Default::default(),
            b"x",
            BasicProperties::default(),
        )
        .bounded()
        .await
        .unwrap();
    let error = confirm.bounded().await.expect_err("no confirm: the channel was closed");
    assert_eq!(
        reply_of(&error),
        (404, format!("NOT_FOUND - no exchange '{missing}' in vhost '/'"))
    );
    assert_only_channel_closed(&connection, &ch).await;
}
