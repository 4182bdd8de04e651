//! Routing hot paths: a topic exchange with 10,000 mixed `*`/`#` bindings,
//! a headers exchange with 100 bindings, and a fanout to 100 queues.
//!
//! `cargo bench -p warren-broker --bench routing`

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use warren_broker::exchange::{Destination, ExchangeKind, ExchangeSettings};
use warren_broker::queue::QueueSettings;
use warren_broker::vhost::VHost;
use warren_protocol::{FieldTable, FieldValue, ShortStr};

fn vhost() -> Arc<VHost> {
    Arc::new(VHost::new("/", None))
}

fn queue(vhost: &Arc<VHost>, name: &str) -> Destination {
    let settings = QueueSettings {
        durable: false,
        exclusive_owner: None,
        auto_delete: false,
        arguments: FieldTable::new(),
    };
    Destination::Queue(vhost.declare_queue(&ShortStr::from(name), settings).unwrap().queue)
}

fn exchange(vhost: &Arc<VHost>, name: &str, kind: ExchangeKind) {
    let settings = ExchangeSettings {
        kind,
        durable: false,
        auto_delete: false,
        internal: false,
        arguments: FieldTable::new(),
    };
    vhost.declare_exchange(&ShortStr::from(name), settings).unwrap();
}

fn topic(c: &mut Criterion) {
    let v = vhost();
    exchange(&v, "t", ExchangeKind::Topic);
    for i in 0..10_000 {
        let q = queue(&v, &format!("q{}", i % 100));
        let pattern = match i % 3 {
            0 => format!("k{i}.*.x"),
            1 => format!("k{i}.#"),
            _ => format!("*.k{i}.#"),
        };
        v.bind("t", q, pattern.into(), FieldTable::new()).unwrap();
    }
    v.bind("t", queue(&v, "target"), "orders.#".into(), FieldTable::new())
        .unwrap();
    let x = v.exchange("t").unwrap();
    let mut found = Vec::new();
    c.bench_function("topic: route one key among 10,000 bindings", |b| {
        b.iter(|| {
            found.clear();
            v.route(&x, black_box("orders.eu.created"), None, &mut found);
            assert_eq!(found.len(), 1);
        })
    });
}

fn headers(c: &mut Criterion) {
    let v = vhost();
    exchange(&v, "h", ExchangeKind::Headers);
    for i in 0..100 {
        let mut args = FieldTable::new();
        args.insert("x-match", FieldValue::from(if i % 2 == 0 { "all" } else { "any" }));
        args.insert("region", FieldValue::from(format!("r{}", i % 10)));
        args.insert("kind", FieldValue::from(format!("k{i}")));
        v.bind("h", queue(&v, &format!("q{i}")), ShortStr::default(), args)
            .unwrap();
    }
    let x = v.exchange("h").unwrap();
    let mut message_headers = FieldTable::new();
    message_headers.insert("region", FieldValue::from("r3"));
    message_headers.insert("kind", FieldValue::from("k3"));
    let mut found = Vec::new();
    c.bench_function("headers: match a message against 100 bindings", |b| {
        b.iter(|| {
            found.clear();
            v.route(&x, "", Some(black_box(&message_headers)), &mut found);
            assert!(!found.is_empty());
        })
    });
}

fn fanout(c: &mut Criterion) {
    let v = vhost();
    exchange(&v, "f", ExchangeKind::Fanout);
    for i in 0..100 {
        v.bind("f", queue(&v, &format!("q{i}")), ShortStr::default(), FieldTable::new())
            .unwrap();
    }
    let x = v.exchange("f").unwrap();
    let mut found = Vec::new();
    c.bench_function("fanout: route to 100 queues", |b| {
        b.iter(|| {
            found.clear();
            v.route(&x, black_box("any"), None, &mut found);
            assert_eq!(found.len(), 100);
        })
    });
}

criterion_group!(routing, topic, headers, fanout);
criterion_main!(routing);
