//! Runtime parameters and shovels: rabbitmqctl's set_parameter,
//! clear_parameter, delete_shovel, and warrenctl's own move_messages (a
//! shovel that moves what a queue holds to another and deletes itself, as
//! the management UI's "Move messages" does), waiting until it is done.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::{segment, Api};

pub(crate) fn set_parameter(api: &Api, vhost: &str, component: &str, name: &str, value: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(value).map_err(|e| format!("the value is not JSON: {e}"))?;
    let path = format!("parameters/{}/{}/{}", segment(component), segment(vhost), segment(name));
    api.put(&path, &json!({ "value": value }))
}

pub(crate) fn clear_parameter(api: &Api, vhost: &str, component: &str, name: &str) -> Result<(), String> {
    let path = format!("parameters/{}/{}/{}", segment(component), segment(vhost), segment(name));
    api.delete(&path, &[])
}

pub(crate) fn delete_shovel(api: &Api, vhost: &str, name: &str) -> Result<(), String> {
    api.delete(&format!("shovels/vhost/{}/{}", segment(vhost), segment(name)), &[])
}

/// The messages of a queue, or None if it does not exist.
fn depth(api: &Api, vhost: &str, queue: &str) -> Option<u64> {
    let q = api.get(&format!("queues/{}/{}", segment(vhost), segment(queue))).ok()?;
    q.get("messages").and_then(Value::as_u64)
}

/// Moves every message `source` holds now to `destination` through a
/// shovel named "Move from SOURCE"; with `wait`, returns once the shovel
/// has finished (it deletes itself), saying how many are left behind.
pub(crate) fn move_messages(
    api: &Api,
    vhost: &str,
    source: &str,
    destination: &str,
    wait: Option<Duration>,
) -> Result<String, String> {
    let before = depth(api, vhost, source).ok_or_else(|| format!("no queue '{source}' in vhost '{vhost}'"))?;
    let name = format!("Move from {source}");
    let uri = format!("amqp:///{}", segment(vhost));
    let value = json!({
        "src-uri": uri, "src-queue": source, "src-protocol": "amqp091", "src-prefetch-count": 1000,
        "src-delete-after": "queue-length", "dest-uri": uri, "dest-queue": destination,
        "dest-protocol": "amqp091", "dest-add-forward-headers": false, "ack-mode": "on-confirm",
    });
    let path = format!("parameters/shovel/{}/{}", segment(vhost), segment(&name));
    api.put(&path, &json!({ "value": value }))?;
    let Some(limit) = wait else {
        return Ok(format!(
            "Moving {before} messages from '{source}' to '{destination}' in vhost '{vhost}' (shovel \"{name}\") ..."
        ));
    };
    let deadline = Instant::now() + limit;
    let status_path = format!("shovels/vhost/{}/{}", segment(vhost), segment(&name));
    while api.get(&status_path).is_ok() {
        if Instant::now() >= deadline {
            return Err(format!(
                "the shovel \"{name}\" has not finished after {}s",
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = depth(api, vhost, source).unwrap_or(0);
    Ok(format!(
        "Moved messages from '{source}' to '{destination}' in vhost '{vhost}': {} moved, {left} left",
        before.saturating_sub(left)
    ))
}
