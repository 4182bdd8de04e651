//! Exchanges and routing through lapin: direct, fanout, topic (`*`, `#`),
//! headers (all/any, typed values), exchange-to-exchange bindings and
//! alternate exchanges.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};
use warren_conformance::lapin_util::*;

async fn exchange(channel: &Channel, kind: ExchangeKind, args: FieldTable) -> String {
    let name = unique("x");
    let options = ExchangeDeclareOptions {
        auto_delete: false,
        ..Default::default()
    };
    channel
        .exchange_declare(name.as_str().into(), kind, options, args)
        .await
        .unwrap();
    name
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str, args: FieldTable) {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            args,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn direct_routes_by_exact_key_and_unbind_stops_it() {
    let (_c, ch) = channel().await;
    let x = exchange(&ch, ExchangeKind::Direct, FieldTable::default()).await;
    let (qa, qb) = (temp_queue(&ch).await, temp_queue(&ch).await);
    bind(&ch, &qa, &x, "a", FieldTable::default()).await;
    bind(&ch, &qb, &x, "b", FieldTable::default()).await;
    bind(&ch, &qb, &x, "a", FieldTable::default()).await;
    publish(&ch, &x, "a", b"1").await;
    publish(&ch, &x, "b", b"2").await;
    publish(&ch, &x, "c", b"3").await;
    assert_eq!(drain(&ch, &qa).await, ["1"]);
    assert_eq!(drain(&ch, &qb).await, ["1", "2"]);
    ch.queue_unbind(qb.as_str().into(), x.as_str().into(), "a".into(), FieldTable::default())
        .await
        .unwrap();
    publish(&ch, &x, "a", b"4").await;
    assert_eq!(drain(&ch, &qa).await, ["4"]);
    assert!(drain(&ch, &qb).await.is_empty());
    ch.exchange_delete(x.as_str().into(), Default::default()).await.unwrap();
}

#[tokio::test]
async fn fanout_reaches_every_bound_queue_whatever_the_key() {
    let (_c, ch) = channel().await;
    let x = exchange(&ch, ExchangeKind::Fanout, FieldTable::default()).await;
    let queues = [temp_queue(&ch).await, temp_queue(&ch).await, temp_queue(&ch).await];
    for q in &queues {
        bind(&ch, q, &x, "ignored", FieldTable::default()).await;
    }
    publish(&ch, &x, "anything", b"hello").await;
    for q in &queues {
        assert_eq!(drain(&ch, q).await, ["hello"]);
    }
    ch.exchange_delete(x.as_str().into(), Default::default()).await.unwrap();
}

#[tokio::test]
async fn topic_patterns_match_as_in_rabbitmq() {
    let (_c, ch) = channel().await;
    let x = exchange(&ch, ExchangeKind::Topic, FieldTable::default()).await;
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("a.*.c", &["a.b.c", "a..c"], &["a.c", "a.b.b.c", "a.b"]),
        ("#", &["a", "a.b.c", ""], &[]),
        ("a.#", &["a", "a.b", "a.b.c"], &["b.a", "ab"]),
        ("#.c", &["c", "a.c", "a.b.c"], &["c.a"]),
        ("a.#.c", &["a.c", "a.b.c", "a.b.b.c"], &["a.b", "b.c"]),
        ("*", &["a"], &["a.b", ""]),
        ("*.*", &["a.b", "."], &["a", "a.b.c"]),
        ("", &[""], &["a"]),
        ("a.*.#", &["a.b", "a.b.c"], &["a"]),
    ];
    for (pattern, matching, not_matching) in cases {
        let q = temp_queue(&ch).await;
        bind(&ch, &q, &x, pattern, FieldTable::default()).await;
        for key in matching.iter().chain(not_matching.iter()) {
            publish(&ch, &x, key, key.as_bytes()).await;
        }
        let got = drain(&ch, &q).await;
        let expected: Vec<String> = matching.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, expected, "pattern {pattern:?}");
    }
    ch.exchange_delete(x.as_str().into(), Default::default()).await.unwrap();
}

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

#[tokio::test]
async fn headers_exchange_all_any_and_typed_values() {
    let (_c, ch) = channel().await;
    let x = exchange(&ch, ExchangeKind::Headers, FieldTable::default()).await;
    let all = temp_queue(&ch).await;
    let any = temp_queue(&ch).await;
    let typed = temp_queue(&ch).await;
    let with_x = temp_queue(&ch).await;
    bind(
        &ch,
        &all,
        &x,
        "",
        table(&[("x-match", text("all")), ("a", text("1")), ("b", text("2"))]),
    )
    .await;
    bind(
        &ch,
        &any,
        &x,
        "",
        table(&[("x-match", text("any")), ("a", text("1")), ("b", text("2"))]),
    )
    .await;
    bind(&ch, &typed, &x, "", table(&[("n", AMQPValue::LongInt(5))])).await;
    bind(
        &ch,
        &with_x,
        &x,
        "",
        table(&[("x-match", text("any-with-x")), ("x-tag", text("t"))]),
    )
    .await;
    let send = |name: &'static str, headers: FieldTable| {
        let ch = ch.clone();
        let x = x.clone();
        async move {
            publish_with(
                &ch,
                &x,
                "",
                name.as_bytes(),
                BasicProperties::default().with_headers(headers),
            )
            .await;
        }
    };
    send("both", table(&[("a", text("1")), ("b", text("2"))])).await;
    send("only-a", table(&[("a", text("1"))])).await;
    send("wrong-b", table(&[("a", text("1")), ("b", text("3"))])).await;
    send("int-5", table(&[("n", AMQPValue::LongInt(5))])).await;
    send("string-5", table(&[("n", text("5"))])).await;
    send("x-tag", table(&[("x-tag", text("t"))])).await;
    assert_eq!(drain(&ch, &all).await, ["both"]);
    assert_eq!(drain(&ch, &any).await, ["both", "only-a", "wrong-b"]);
    assert_eq!(drain(&ch, &typed).await, ["int-5"], "a string never matches an integer");
    assert_eq!(drain(&ch, &with_x).await, ["x-tag"]);
    ch.exchange_delete(x.as_str().into(), Default::default()).await.unwrap();
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
    .await
    .unwrap();
    bind(&ch, &q, &downstream, "", FieldTable::default()).await;
    publish(&ch, &upstream, "orders.new", b"routed").await;
    publish(&ch, &upstream, "invoices.new", b"not routed").await;
    assert_eq!(drain(&ch, &q).await, ["routed"]);
    ch.exchange_unbind(
        downstream.as_str().into(),
        upstream.as_str().into(),
        "orders.#".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, &upstream, "orders.new", b"after unbind").await;
    assert!(drain(&ch, &q).await.is_empty());
    for x in [upstream, downstream] {
        ch.exchange_delete(x.as_str().into(), Default::default()).await.unwrap();
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
    for x in [main, alternate] {
        ch.exchange_delete(x.as_str().into(), Default::default()).await.unwrap();
    }
}

#[tokio::test]
async fn default_exchange_routes_by_queue_name_and_amq_exchanges_exist() {
    let (_c, ch) = channel().await;
    let q = temp_queue(&ch).await;
    publish(&ch, "", &q, b"direct to queue").await;
    assert_eq!(drain(&ch, &q).await, ["direct to queue"]);
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        ch.exchange_declare(name.into(), kind, passive, FieldTable::default())
            .await
            .unwrap_or_else(|e| panic!("{name} exists: {e}"));
    }
}
