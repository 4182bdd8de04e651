//! How the rest of the broker reaches a connection: a cheap, cloneable
//! handle with the connection's id and its inbox.

use std::sync::Arc;

use tokio::sync::mpsc;
use warren_protocol::ShortStr;

use crate::message::Message;
use crate::queue::{Consumer, Queue, QueueEntry};

/// Identifies a connection, e.g. as the owner of exclusive queues.
pub type ConnectionId = u64;

/// Work for a connection that comes from elsewhere in the broker.
#[derive(Debug)]
pub enum Outbound {
    /// A queue hands a message to one of this connection's consumers.
    Deliver {
        consumer: Arc<Consumer>,
        queue: Arc<Queue>,
        entry: QueueEntry,
    },
    /// A queue was deleted under a consumer: send basic.cancel.
    ConsumerCancelled { channel: u16, consumer_tag: ShortStr },
    /// A direct reply-to reply for a channel's reply consumer.
    DirectReply {
        channel: u16,
        consumer_tag: ShortStr,
        message: Arc<Message>,
    },
    /// The broker is shutting down (or an admin closed the connection).
    Close { code: u16, text: String },
}

#[derive(Debug, Clone)]
pub struct ConnectionHandle {
    pub id: ConnectionId,
    tx: mpsc::UnboundedSender<Outbound>,
}

impl ConnectionHandle {
    pub fn new(id: ConnectionId, tx: mpsc::UnboundedSender<Outbound>) -> Self {
        ConnectionHandle { id, tx }
    }

    /// Sends work to the connection; gives it back if the connection is gone.
    pub fn send(&self, work: Outbound) -> Result<(), Outbound> {
        self.tx.send(work).map_err(|e| e.0)
    }
}
