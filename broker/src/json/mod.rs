//! AMQP values in the JSON forms RabbitMQ's management API and
//! definitions files use: field tables (`table.rs`) and message
//! properties (`properties.rs`); and JSON objects in key order.

mod properties;
mod table;

use serde_json::{Map, Value};

pub(crate) use properties::{overlay_properties, properties_from_json, properties_to_json};
pub(crate) use table::{json_to_table, table_to_json};

/// An object with its keys in order, as RabbitMQ shows arguments, policy
/// definitions and parameters (whatever order they were given in).
pub(crate) fn sorted_by_key(object: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<(String, Value)> = object.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}
