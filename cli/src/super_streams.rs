//! Super streams, the cheap way: a partitioned stream is a consistent-hash
//! exchange named NAME with N streams NAME-0 .. NAME-(N-1) bound to it with
//! equal weights, so messages with the same routing key always land in
//! the same partition, in order. warrenctl declares and deletes the set
//! together (`add_super_stream`, `delete_super_stream`).

use serde_json::{json, Map, Value};

use crate::api::{segment, Api};

/// A super stream's partition names.
fn partitions(name: &str, count: u32) -> Vec<String> {
    (0..count).map(|i| format!("{name}-{i}")).collect()
}

/// Declares the exchange and the partitions, with a stream's retention
/// arguments (`x-max-age`, `x-max-length-bytes`) if given.
pub(crate) fn add(
    api: &Api,
    vhost: &str,
    name: &str,
    count: u32,
    max_age: Option<&str>,
    max_length_bytes: Option<u64>,
) -> Result<(), String> {
    if count == 0 {
        return Err("a super stream needs at least one partition".into());
    }
    let v = segment(vhost);
    api.put(
        &format!("exchanges/{v}/{}", segment(name)),
        &json!({"type": "x-consistent-hash", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}),
    )?;
    let mut arguments = Map::new();
    arguments.insert("x-queue-type".into(), Value::from("stream"));
    if let Some(age) = max_age {
        arguments.insert("x-max-age".into(), Value::from(age));
    }
    if let Some(bytes) = max_length_bytes {
        arguments.insert("x-max-length-bytes".into(), Value::from(bytes));
    }
    for partition in partitions(name, count) {
        api.put(
            &format!("queues/{v}/{}", segment(&partition)),
            &json!({"durable": true, "auto_delete": false, "arguments": arguments}),
        )?;
        // Equal weights: each partition gets an equal share of the keys.
        api.post(
            &format!("bindings/{v}/e/{}/q/{}", segment(name), segment(&partition)),
            &json!({"routing_key": "1", "arguments": {}}),
        )?;
    }
    Ok(())
}

/// Deletes the exchange and its partitions (those named NAME-<n>).
pub(crate) fn delete(api: &Api, vhost: &str, name: &str) -> Result<u32, String> {
    let v = segment(vhost);
    let bindings = api.get(&format!("exchanges/{v}/{}/bindings/source", segment(name)))?;
    let mut deleted = 0;
    let prefix = format!("{name}-");
    for binding in bindings.as_array().into_iter().flatten() {
        let Some(queue) = binding.get("destination").and_then(Value::as_str) else {
            continue;
        };
        if queue.strip_prefix(&prefix).is_some_and(|n| n.parse::<u32>().is_ok()) {
            api.delete(&format!("queues/{v}/{}", segment(queue)), &[])?;
            deleted += 1;
        }
    }
    api.delete(&format!("exchanges/{v}/{}", segment(name)), &[])?;
    Ok(deleted)
}
