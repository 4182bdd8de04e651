//! Publishing and getting messages through the admin interface, as the
//! management API's `publish` and `get` endpoints do.

use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value};
use warren_protocol::{ContentHeader, ShortStr};

use super::{Admin, AdminError, AdminResult, MessageView};
use crate::json::{properties_from_json, properties_to_json};
use crate::message::Message;
use crate::queue::{Queue, Settlement};

/// What becomes of messages taken with [`Admin::get_messages`] (RabbitMQ's
/// `ackmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// Put back, marked redelivered (`ack_requeue_true`).
    AckRequeue,
    /// Removed (`ack_requeue_false`).
    Ack,
    /// Rejected and put back (`reject_requeue_true`).
    RejectRequeue,
    /// Rejected: dead-lettered or dropped (`reject_requeue_false`).
    Reject,
}

impl FromStr for AckMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ack_requeue_true" => Ok(AckMode::AckRequeue),
            "ack_requeue_false" => Ok(AckMode::Ack),
            "reject_requeue_true" => Ok(AckMode::RejectRequeue),
            "reject_requeue_false" => Ok(AckMode::Reject),
            other => Err(format!("unknown ackmode: {other}")),
        }
    }
}

/// A message to publish.
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    pub routing_key: String,
    pub payload: Vec<u8>,
    /// RabbitMQ's property names: delivery_mode, headers, content_type,
    /// correlation_id, reply_to, expiration, message_id, timestamp, type,
    /// user_id, app_id, priority, content_encoding.
    pub properties: Map<String, Value>,
}

impl Admin {
    /// Publishes a message to an exchange; true if it reached a queue.
    pub fn publish(&self, vhost: &str, exchange: &str, request: PublishRequest) -> AdminResult<bool> {
        let v = self.vhost(vhost)?;
        // As RabbitMQ publishes it, on a channel: the channel's 404 comes
        // back as a bad request.
        let x = v.exchange(exchange).ok_or_else(|| {
            AdminError::BadRequest(format!("404 NOT_FOUND - no exchange '{exchange}' in vhost '{vhost}'"))
        })?;
        let properties = properties_from_json(&request.properties).map_err(AdminError::BadRequest)?;
        let body = Bytes::from(request.payload);
        let header = ContentHeader::new(60, body.len() as u64, properties);
        let message = Message::new(
            ShortStr::from(exchange),
            ShortStr::from(request.routing_key.as_str()),
            header,
            body,
        );
        let mut queues: Vec<std::sync::Arc<Queue>> = Vec::new();
        v.route(&x, &message.routing_key, message.header.properties(), &mut queues);
        for queue in &queues {
            queue.publish(message.clone());
        }
        Ok(!queues.is_empty())
    }

    /// Takes up to `count` messages from a queue and settles them as
    /// `ack_mode` says (all at the end, so requeued ones are not taken
    /// twice). `truncate` cuts payloads to that many bytes; payloads that
    /// are not UTF-8 (or all, with `base64`) come base64-encoded.
    pub fn get_messages(
        &self,
        vhost: &str,
        queue: &str,
        count: usize,
        ack_mode: AckMode,
        base64: bool,
        truncate: Option<usize>,
    ) -> AdminResult<Vec<(MessageView, &'static str)>> {
        let queue = self.vhost(vhost)?.queue(queue).ok_or(AdminError::NotFound)?;
        let mut taken = Vec::new();
        let mut views = Vec::new();
        for _ in 0..count {
            let Some((entry, remaining)) = queue.get(true) else {
                break;
            };
            let message = &entry.message;
            let body = &message.body[..truncate.map_or(message.body.len(), |t| t.min(message.body.len()))];
            let (payload, encoding) = match (base64, std::str::from_utf8(body)) {
                (false, Ok(text)) => (text.as_bytes().to_vec(), "string"),
                _ => (BASE64.encode(body).into_bytes(), "base64"),
            };
            views.push((
                MessageView {
                    exchange: message.exchange.to_string(),
                    routing_key: message.routing_key.to_string(),
                    redelivered: entry.redelivered,
                    message_count: remaining,
                    properties: properties_to_json(message.header.properties()),
                    payload,
                    payload_bytes: message.body.len() as u64,
                },
                encoding,
            ));
            taken.push(entry);
        }
        if !taken.is_empty() {
            let settlement = match ack_mode {
                AckMode::AckRequeue | AckMode::RejectRequeue => Settlement::Requeue,
                AckMode::Ack => Settlement::Ack,
                AckMode::Reject => Settlement::Discard,
            };
            queue.settle(taken, settlement);
        }
        Ok(views)
    }
}
