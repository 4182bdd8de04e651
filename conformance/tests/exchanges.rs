//! Exchanges: declaring each type, equivalence on redeclare, reserved
//! names, deletion (if-unused), the default and amq.* exchanges,
//! exchange-to-exchange bindings, alternate exchanges, internal and
//! auto-delete exchanges.

use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Channel, ExchangeKind};
use warren_conformance::lapin_util::*;

async fn declare(ch: &Channel, name: &str, kind: ExchangeKind, options: ExchangeDeclareOptions) -> lapin::Result<()> {
    ch.exchange_declare(name.into(), kind, options, FieldTable::default())
        .bounded()
        .await
}

fn durable() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn each_type_can_be_declared_redeclared_and_deleted() {
    let (_c, ch) = channel().await;
    for kind in [
        ExchangeKind::Direct,
        ExchangeKind::Fanout,
        ExchangeKind::Topic,
        ExchangeKind::Headers,
    ] {
        let x = exchange(&ch, kind.clone(), FieldTable::default()).await;
        declare(&ch, &x, kind.clone(), Default::default())
            .await
            .expect("an identical redeclare is fine");
        declare(&ch, &x, kind.clone(), passive_exchange())
            .await
            .expect("passive declare finds it");
        // A passive declare does not compare the type.
        declare(&ch, &x, ExchangeKind::Fanout, passive_exchange())
            .await
            .expect("passive declare ignores the type");
        ch.exchange_delete(x.as_str().into(), Default::default())
            .bounded()
            .await
            .unwrap();
        assert!(!exchange_exists(&x).await, "{x} deleted");
    }
}

#[tokio::test]
async fn deleting_a_missing_exchange_is_fine() {
    let (_c, ch) = channel().await;
    let x = unique("missing");
    ch.exchange_delete(x.as_str().into(), Default::default())
        .bounded()
        .await
        .expect("exchange.delete of a missing exchange succeeds");
    ch.exchange_delete(
        x.as_str().into(),
        ExchangeDeleteOptions {
            if_unused: true,
            ..Default::default()
        },
    )
    .bounded()
    .await
    .expect("even with if-unused");
}

#[tokio::test]
async fn passive_declare_of_a_missing_exchange_is_404() {
    let (connection, ch) = channel().await;
    let x = unique("missing");
    assert_refused(
        declare(&ch, &x, ExchangeKind::Direct, passive_exchange()).await,
        404,
        &format!("NOT_FOUND - no exchange '{x}' in vhost '/'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn redeclaring_with_another_type_is_406() {
    let (connection, ch) = channel().await;
    let x = exchange(&ch, ExchangeKind::Direct, FieldTable::default()).await;
    assert_refused(
        declare(&ch, &x, ExchangeKind::Fanout, Default::default()).await,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{x}' in vhost '/': received 'fanout' but current is 'direct'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    delete_exchanges(&[&x]).await;
}

#[tokio::test]
async fn redeclaring_with_another_durability_is_406() {
    let (connection, ch) = channel().await;
    let x = exchange(&ch, ExchangeKind::Direct, FieldTable::default()).await;
    assert_refused(
        declare(&ch, &x, ExchangeKind::Direct, durable()).await,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '{x}' in vhost '/': received 'true' but current is 'false'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    delete_exchanges(&[&x]).await;
}

#[tokio::test]
async fn redeclaring_with_another_auto_delete_or_internal_flag_is_406() {
    let (connection, ch) = channel().await;
    let x = exchange(&ch, ExchangeKind::Direct, FieldTable::default()).await;
    let auto_delete = ExchangeDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    assert_refused(
        declare(&ch, &x, ExchangeKind::Direct, auto_delete).await,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange '{x}' in vhost '/': received 'true' but current is 'false'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    let ch = connection.create_channel().bounded().await.unwrap();
    let internal = ExchangeDeclareOptions {
        internal: true,
        ..Default::default()
    };
    assert_refused(
        declare(&ch, &x, ExchangeKind::Direct, internal).await,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'internal' for exchange '{x}' in vhost '/': received 'true' but current is 'false'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    delete_exchanges(&[&x]).await;
}

#[tokio::test]
async fn redeclaring_with_another_alternate_exchange_is_406() {
    let (connection, ch) = channel().await;
    let x = exchange(
        &ch,
        ExchangeKind::Direct,
        table(&[("alternate-exchange", text("ae-one"))]),
    )
    .await;
    let other = ch
        .exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            Default::default(),
            table(&[("alternate-exchange", text("ae-two"))]),
        )
        .bounded()
        .await;
    assert_refused(
        other,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '{x}' in vhost '/': received 'ae-two' but current is 'ae-one'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    delete_exchanges(&[&x]).await;
}

#[tokio::test]
async fn the_amq_prefix_is_reserved() {
    let (connection, ch) = channel().await;
    let x = format!("amq.{}", unique("mine"));
    assert_refused(
        declare(&ch, &x, ExchangeKind::Direct, Default::default()).await,
        403,
        &format!("ACCESS_REFUSED - exchange name '{x}' contains reserved prefix 'amq.*'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn an_unknown_exchange_type_is_a_503_connection_error() {
    let (connection, ch) = channel().await;
    let x = unique("x");
    // "unknown": RabbitMQ says "invalid exchange type" instead only for a
    // name that happens to be an atom of its VM (such as 'foo').
    assert_refused(
        declare(&ch, &x, ExchangeKind::Custom("no-such-type".into()), Default::default()).await,
        503,
        "COMMAND_INVALID - unknown exchange type 'no-such-type'",
    );
    assert_connection_closed(&connection).await;
}

#[tokio::test]
async fn the_predeclared_exchanges_exist_with_their_types() {
    let (connection, ch) = channel().await;
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        declare(&ch, name, kind.clone(), passive_exchange())
            .await
            .unwrap_or_else(|e| panic!("{name} exists: {e}"));
        // They are durable: an active declare with the same type and
        // durable=true is accepted even with the reserved prefix.
        declare(&ch, name, kind, durable())
            .await
            .unwrap_or_else(|e| panic!("{name} redeclared: {e}"));
    }
    assert_refused(
        declare(&ch, "amq.direct", ExchangeKind::Direct, Default::default()).await,
        406,
        "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'amq.direct' in vhost '/': received 'false' but current is 'true'",
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn predeclared_exchanges_cannot_be_deleted() {
    let (connection, ch) = channel().await;
    assert_refused(
        ch.exchange_delete("amq.direct".into(), Default::default())
            .bounded()
            .await,
        403,
        "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed",
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn delete_if_unused_refuses_an_exchange_with_bindings() {
    let (connection, ch) = channel().await;
    let x = exchange(&ch, ExchangeKind::Fanout, FieldTable::default()).await;
    let q = temp_queue(&ch).await;
    bind(&ch, &q, &x, "", FieldTable::default()).await;
    let if_unused = ExchangeDeleteOptions {
        if_unused: true,
        ..Default::default()
    };
    assert_refused(
        ch.exchange_delete(x.as_str().into(), if_unused).bounded().await,
        406,
        &format!("PRECONDITION_FAILED - exchange '{x}' in vhost '/' in use"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    assert!(exchange_exists(&x).await, "still there");
    let ch = connection.create_channel().bounded().await.unwrap();
    ch.queue_unbind(q.as_str().into(), x.as_str().into(), "".into(), FieldTable::default())
        .bounded()
        .await
        .unwrap();
    ch.exchange_delete(x.as_str().into(), if_unused)
        .bounded()
        .await
        .expect("unused once unbound");
    assert!(!exchange_exists(&x).await);
}

#[tokio::test]
async fn delete_if_unused_only_counts_bindings_from_the_exchange() {
    let (_c, ch) = channel().await;
    let source = exchange(&ch, ExchangeKind::Fanout, FieldTable::default()).await;
    let destination = exchange(&ch, ExchangeKind::Fanout, FieldTable::default()).await;
    ch.exchange_bind(
        destination.as_str().into(),
        source.as_str().into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .bounded()
    .await
    .unwrap();
    let if_unused = ExchangeDeleteOptions {
        if_unused: true,
        ..Default::default()
    };
    ch.exchange_delete(destination.as_str().into(), if_unused)
        .bounded()
        .await
        .expect("being a binding's destination does not count as use");
    ch.exchange_delete(source.as_str().into(), if_unused)
        .bounded()
        .await
        .expect("the binding went with its destination");
}

#[tokio::test]
async fn the_default_exchange_cannot_be_declared() {
    let (connection, ch) = channel().await;
    assert_refused(
        declare(&ch, "", ExchangeKind::Direct, Default::default()).await,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
    assert_only_channel_closed(&connection, &ch).await;
    let ch = connection.create_channel().bounded().await.unwrap();
    assert_refused(
        declare(&ch, "", ExchangeKind::Direct, passive_exchange()).await,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn the_default_exchange_cannot_be_deleted() {
    let (connection, ch) = channel().await;
    assert_refused(
        ch.exchange_delete("".into(), Default::default()).bounded().await,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn queues_cannot_be_bound_to_or_unbound_from_the_default_exchange() {
    let (connection, ch) = channel().await;
    let q = temp_queue(&ch).await;
    assert_refused(
        ch.queue_bind(
            q.as_str().into(),
            "".into(),
            q.as_str().into(),
            Default::default(),
            FieldTable::default(),
        )
        .bounded()
        .await,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
    assert_only_channel_closed(&connection, &ch).await;
    let ch = connection.create_channel().bounded().await.unwrap();
    assert_refused(
        ch.queue_unbind(q.as_str().into(), "".into(), q.as_str().into(), FieldTable::default())
            .bounded()
            .await,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn the_default_exchange_cannot_be_an_exchange_binding_source_or_destination() {
    let (connection, ch) = channel().await;
    assert_refused(
        ch.exchange_bind(
            "amq.fanout".into(),
            "".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        )
        .bounded()
        .await,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
    assert_only_channel_closed(&connection, &ch).await;
    let ch = connection.create_channel().bounded().await.unwrap();
    assert_refused(
        ch.exchange_bind(
            "".into(),
            "amq.fanout".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        )
        .bounded()
        .await,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn exchange_bindings_need_both_exchanges() {
    let (connection, ch) = channel().await;
    let missing = unique("missing");
    assert_refused(
        ch.exchange_bind(
            "amq.fanout".into(),
            missing.as_str().into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        )
        .bounded()
        .await,
        404,
        &format!("NOT_FOUND - no exchange '{missing}' in vhost '/'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
    let ch = connection.create_channel().bounded().await.unwrap();
    assert_refused(
        ch.exchange_bind(
            missing.as_str().into(),
            "amq.fanout".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        )
        .bounded()
        .await,
        404,
        &format!("NOT_FOUND - no exchange '{missing}' in vhost '/'"),
    );
    assert_only_channel_closed(&connection, &ch).await;
}

#[tokio::test]
async fn exchange_to_exchange_bindings_including_a_cycle() {
    let (_c, ch) = channel().await;
    let upstream = exchange(&ch, ExchangeKind::Topic, FieldTable::default()).await;
    let downstream = exchange(&ch, ExchangeKind::Fanout, FieldTable::default()).await;
    let q = temp_queue(&ch).await;
    ch.exchange_bind(
        downstream.as_str().into(),
        upstream.as_str().into(),
        "orders.#".into(),
        Default::default(),
        FieldTable::default(),
    )
    .bounded()
    .await
    .unwrap();
    // A cycle back upstream must not loop or duplicate.
    ch.exchange_bind(
        upstream.as_str().into(),
        downstream.as_str().into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .bounded()
    .await
    .unwrap();
    bind(&ch, &q, &downstream, "", FieldTable::default()).await;
    bind(&ch, &q, &upstream, "#", FieldTable::default()).await;
    publish(&ch, &upstream, "orders.new", b"routed").await;
    publish(&ch, &upstream, "invoices.new", b"direct only").await;
    publish(&ch, &downstream, "x", b"round the cycle").await;
    assert_eq!(
        drain(&ch, &q).await,
        ["routed", "direct only", "round the cycle"],
        "one copy each, however many paths lead to the queue"
    );
    ch.exchange_unbind(
        downstream.as_str().into(),
        upstream.as_str().into(),
        "orders.#".into(),
        Default::default(),
        FieldTable::default(),
    )
    .bounded()
    .await
    .unwrap();
    ch.queue_unbind(
        q.as_str().into(),
        upstream.as_str().into(),
        "#".into(),
        FieldTable::default(),
    )
    .bounded()
    .await
    .unwrap();
    publish(&ch, &upstream, "orders.new", b"after unbind").await;
    assert!(drain(&ch, &q).await.is_empty());
    for x in [upstream, downstream] {
        ch.exchange_delete(x.as_str().into(), Default::default())
            .bounded()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn alternate_exchange_takes_unroutable_messages() {
    let (_c, ch) = channel().await;
    let alternate = exchange(&ch, ExchangeKind::Fanout, FieldTable::default()).await;
    let main = exchange(
        &ch,
        ExchangeKind::Direct,
        table(&[("alternate-exchange", text(&alternate))]),
    )
    .await;
    let (routed, unrouted) = (temp_queue(&ch).await, temp_queue(&ch).await);
    bind(&ch, &routed, &main, "known", FieldTable::default()).await;
    bind(&ch, &unrouted, &alternate, "", FieldTable::default()).await;
    publish(&ch, &main, "known", b"a").await;
    publish(&ch, &main, "unknown", b"b").await;
    assert_eq!(drain(&ch, &routed).await, ["a"]);
    assert_eq!(drain(&ch, &unrouted).await, ["b"]);

    // A mandatory message the alternate exchange routes is not returned.
    ch.confirm_select(Default::default()).bounded().await.unwrap();
    let confirm = ch
        .basic_publish(
            main.as_str().into(),
            "unknown".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"c",
            Default::default(),
        )
        .bounded()
        .await
        .unwrap()
        .bounded()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    assert!(
        confirm.take_message().is_none(),
        "routed by the alternate: not returned"
    );
    assert_eq!(drain(&ch, &unrouted).await, ["c"]);
    for x in [main, alternate] {
        ch.exchange_delete(x.as_str().into(), Default::default())
            .bounded()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_missing_alternate_exchange_drops_the_message_silently() {
    let (connection, ch) = channel().await;
    let main = exchange(
        &ch,
        ExchangeKind::Direct,
        table(&[("alternate-exchange", text(&unique("missing")))]),
    )
    .await;
    ch.confirm_select(Default::default()).bounded().await.unwrap();
    let confirm = ch
        .basic_publish(
            main.as_str().into(),
            "unknown".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"lost",
            Default::default(),
        )
        .bounded()
        .await
        .unwrap()
        .bounded()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    let returned = confirm.take_message().expect("returned: nothing routed it");
    assert_eq!(returned.reply_code, 312);
    assert_connection_works(&connection).await;
    ch.exchange_delete(main.as_str().into(), Default::default())
        .bounded()
        .await
        .unwrap();
}

#[tokio::test]
async fn publishing_to_an_internal_exchange_is_403_but_bindings_reach_it() {
    let (connection, ch) = channel().await;
    let internal = unique("internal");
    ch.exchange_declare(
        internal.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            internal: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .bounded()
    .await
    .unwrap();
    let front = exchange(&ch, ExchangeKind::Fanout, FieldTable::default()).await;
    ch.exchange_bind(
        internal.as_str().into(),
        front.as_str().into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .bounded()
    .await
    .unwrap();
    let q = temp_queue(&ch).await;
    bind(&ch, &q, &internal, "", FieldTable::default()).await;
    publish(&ch, &front, "", b"through a binding").await;
    assert_eq!(drain(&ch, &q).await, ["through a binding"]);

    let mut watch = watch(&ch).await;
    publish(&ch, &internal, "", b"direct").await;
    assert_eq!(
        closed_with(&mut watch).await,
        (
            403,
            format!("ACCESS_REFUSED - cannot publish to internal exchange '{internal}' in vhost '/'")
        )
    );
    assert_only_channel_closed(&connection, &ch).await;
    delete_exchanges(&[&front, &internal]).await;
}

#[tokio::test]
async fn an_auto_delete_exchange_goes_with_its_last_binding() {
    let (_c, ch) = channel().await;
    let x = unique("autodelete");
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .bounded()
    .await
    .unwrap();
    assert!(exchange_exists(&x).await, "not deleted before it had a binding");
    let q = temp_queue(&ch).await;
    bind(&ch, &q, &x, "a", FieldTable::default()).await;
    bind(&ch, &q, &x, "b", FieldTable::default()).await;
    ch.queue_unbind(q.as_str().into(), x.as_str().into(), "a".into(), FieldTable::default())
        .bounded()
        .await
        .unwrap();
    assert!(exchange_exists(&x).await, "one binding left");
    ch.queue_unbind(q.as_str().into(), x.as_str().into(), "b".into(), FieldTable::default())
        .bounded()
        .await
        .unwrap();
    assert!(!exchange_exists(&x).await, "deleted with its last binding");
}
