//! Differential conformance through a second client, pika (Python; aio-pika
//! for streams' asyncio script): each
//! script in `conformance/pika/` exercises many scenarios and prints their
//! outcomes (reply codes and texts, headers, orders, counts) with generated
//! names masked. `conformance/pika/expected/` holds what the same scripts
//! printed against RabbitMQ 3.10 (re-record with `conformance/pika/record.sh`);
//! Warren must print exactly the same.
//!
//! Runs the machine's python3 with pika installed under target/
//! (`warren_conformance::python`).

use std::path::PathBuf;

fn pika_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pika")
}

fn port_of(url: &str) -> String {
    let after_at = url.rsplit('@').next().unwrap_or(url);
    let host_port = after_at.split('/').next().unwrap_or(after_at);
    host_port.rsplit(':').next().unwrap_or("5672").to_string()
}

fn run_script(name: &str) {
    let url = warren_conformance::broker_url();
    let script = pika_dir().join(format!("{name}.py"));
    let expected_path = pika_dir().join("expected").join(format!("{name}.txt"));
    let output = warren_conformance::python::python()
        .arg(&script)
        .arg(port_of(&url))
        .arg(warren_conformance::management_port().to_string())
        .output()
        .unwrap_or_else(|e| panic!("running python3: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name}.py failed ({})\n{stderr}",
        output.status
    );
    let actual = String::from_utf8_lossy(&output.stdout);
    warren_conformance::recorded::assert_matches(name, &expected_path, &actual);
}

#[test]
fn error_codes_and_texts_match_rabbitmq() {
    run_script("errors");
}

#[test]
fn queue_features_match_rabbitmq() {
    run_script("queue_features");
}

#[test]
fn direct_reply_to_matches_rabbitmq() {
    run_script("direct_reply");
}

/// Users, vhosts and permissions provisioned over the management API,
/// then every permission rule, topic permissions, `user_id` checks and
/// closing connections of deleted vhosts and users, through pika.
#[test]
fn access_control_matches_rabbitmq() {
    run_script("access");
}

/// Policies and operator policies set over the management API: length
/// limits, TTLs, expiry, dead-lettering and alternate exchanges applied
/// live, precedence and caps, and the API's validation answers.
#[test]
fn policies_match_rabbitmq() {
    run_script("policies");
}

/// Vhost and user limits set over the management API and met by pika.
#[test]
fn limits_match_rabbitmq() {
    run_script("limits");
}

/// Dynamic shovels defined over the management API: a dead-letter queue
/// replayed into a work queue, a continuous shovel into an exchange,
/// counts, declared queues, status listings and validation answers.
#[test]
fn shovels_match_rabbitmq() {
    run_script("shovels");
}

/// The consistent-hash exchange: weights and their validation, shares
/// within a tolerance, the same key reaching the same queue, hashing on a
/// header or a property.
#[test]
fn consistent_hash_exchange_matches_rabbitmq() {
    run_script("consistent_hash");
}

/// Streams over AMQP 0-9-1: declaration rules, refusals, every
/// x-stream-offset form, prefetch as credit, independent consumers and
/// retention by size.
#[test]
fn streams_match_rabbitmq() {
    run_script("streams");
}

#[test]
fn redeclared_and_located_queue_arguments_match_rabbitmq() {
    run_script("queue_arguments");
}

/// The same through aio-pika, the asyncio client.
#[test]
fn streams_through_aio_pika_match_rabbitmq() {
    run_script("streams_aio");
}
