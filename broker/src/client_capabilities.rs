//! What a client announced it supports, in the `capabilities` table of its
//! connection.start-ok properties.

use warren_protocol::{FieldTable, FieldValue};

/// Optional behaviours the client announced.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClientCapabilities {
    pub consumer_cancel_notify: bool,
    pub authentication_failure_close: bool,
    pub connection_blocked: bool,
}

impl ClientCapabilities {
    pub(crate) fn from_client_properties(props: &FieldTable) -> ClientCapabilities {
        let caps = props.get("capabilities").and_then(FieldValue::as_table);
        let has = |name: &str| {
            caps.and_then(|c| c.get(name))
                .and_then(FieldValue::as_bool)
                .unwrap_or(false)
        };
        ClientCapabilities {
            consumer_cancel_notify: has("consumer_cancel_notify"),
            authentication_failure_close: has("authentication_failure_close"),
            connection_blocked: has("connection.blocked"),
        }
    }
}
