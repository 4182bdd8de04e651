//! AMQP values in the JSON forms RabbitMQ's management API and
//! definitions files use: field tables (`table.rs`) and message
//! properties (`properties.rs`).

mod properties;
mod table;

pub(crate) use properties::{overlay_properties, properties_from_json, properties_to_json};
pub(crate) use table::{json_to_table, table_to_json};
