//! What Warren tells clients about itself in connection.start.
//!
//! By default it presents itself as RabbitMQ 3.13 ([`ServerIdentity`]),
//! with its own name and version in `information` and `warren_version`.
//! Clients pick behaviour by product name: kombu (so Celery) decides which
//! `basic.qos` semantics a broker has from `product` and `version`
//! (`qos_semantics_matches_spec` in kombu/transport/pyamqp.py). For any
//! product but "RabbitMQ" 3.3 to 4.0 it assumes the spec's channel-wide
//! prefetch and raises it with `global=false`, which Warren, like RabbitMQ,
//! applies only to consumers created afterwards: a worker holding ETA tasks
//! then never gets a prefetch slot for an immediate task. Presented as
//! RabbitMQ, kombu sends `global=true`, as it does to RabbitMQ. Warren's
//! semantics are RabbitMQ's for every client either way; only what it
//! calls itself changes.

use warren_protocol::{FieldTable, FieldValue};

use crate::config::ServerIdentity;

/// The RabbitMQ version Warren presents itself as: the last 3.x line,
/// whose defaults (a 128 MiB message size limit) Warren follows.
pub(crate) const RABBITMQ_COMPATIBLE_VERSION: &str = "3.13.7";

pub(super) fn server_properties(identity: ServerIdentity) -> FieldTable {
    let mut capabilities = FieldTable::new();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        capabilities.insert(cap, FieldValue::Bool(true));
    }
    let warren = env!("CARGO_PKG_VERSION");
    let (product, version) = match identity {
        ServerIdentity::RabbitMq => ("RabbitMQ", RABBITMQ_COMPATIBLE_VERSION),
        ServerIdentity::Warren => ("Warren", warren),
    };
    let mut props = FieldTable::new();
    props.insert("capabilities", FieldValue::Table(capabilities));
    props.insert("product", product.into());
    props.insert("version", version.into());
    props.insert("platform", "Rust".into());
    props.insert("cluster_name", "warren".into());
    props.insert("copyright", "The Warren developers".into());
    props.insert(
        "information",
        format!("Warren {warren}, an AMQP 0-9-1 broker compatible with RabbitMQ")
            .as_str()
            .into(),
    );
    props.insert("warren_version", warren.into());
    props
}
