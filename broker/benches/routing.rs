//! Routing hot paths: a topic exchange with 10,000 mixed `*`/`#` bindings,
//! a headers exchange with 100 bindings, and a fanout to 100 queues.
//!
//! `cargo bench -p warren-broker --bench routing`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use warren_broker::bench::{Routed, RoutingBench};
use warren_protocol::{BasicProperties, FieldTable, FieldValue};

fn topic(c: &mut Criterion) {
    let v = RoutingBench::default();
    let x = v.exchange("t", "topic");
    for i in 0..10_000 {
        let pattern = match i % 3 {
            0 => format!("k{i}.*.x"),
            1 => format!("k{i}.#"),
            _ => format!("*.k{i}.#"),
        };
        v.bind_queue("t", &format!("q{}", i % 100), &pattern, FieldTable::new());
    }
    v.bind_queue("t", "target", "orders.#", FieldTable::new());
    let mut found = Routed::default();
    let none = BasicProperties::default();
    c.bench_function("topic: route one key among 10,000 bindings", |b| {
        b.iter(|| {
            found.clear();
            v.route(&x, black_box("orders.eu.created"), &none, &mut found);
            assert_eq!(found.len(), 1);
        })
    });
}

fn headers(c: &mut Criterion) {
    let v = RoutingBench::default();
    let x = v.exchange("h", "headers");
    for i in 0..100 {
        let mut args = FieldTable::new();
        args.insert("x-match", FieldValue::from(if i % 2 == 0 { "all" } else { "any" }));
        args.insert("region", FieldValue::from(format!("r{}", i % 10)));
        args.insert("kind", FieldValue::from(format!("k{i}")));
        v.bind_queue("h", &format!("q{i}"), "", args);
    }
    let mut message_headers = FieldTable::new();
    message_headers.insert("region", FieldValue::from("r3"));
    message_headers.insert("kind", FieldValue::from("k3"));
    let properties = BasicProperties {
        headers: Some(message_headers),
        ..BasicProperties::default()
    };
    let mut found = Routed::default();
    c.bench_function("headers: match a message against 100 bindings", |b| {
        b.iter(|| {
            found.clear();
            v.route(&x, "", black_box(&properties), &mut found);
            assert!(!found.is_empty());
        })
    });
}

fn fanout(c: &mut Criterion) {
    let v = RoutingBench::default();
    let x = v.exchange("f", "fanout");
    for i in 0..100 {
        v.bind_queue("f", &format!("q{i}"), "", FieldTable::new());
    }
    let mut found = Routed::default();
    c.bench_function("fanout: route to 100 queues", |b| {
        b.iter(|| {
            found.clear();
            v.route(&x, black_box("any"), &BasicProperties::default(), &mut found);
            assert_eq!(found.len(), 100);
        })
    });
}

criterion_group!(routing, topic, headers, fanout);
criterion_main!(routing);
