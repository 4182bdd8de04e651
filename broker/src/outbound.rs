//! How the rest of the broker reaches a connection: a cheap, cloneable
//! handle on the connection task's inbox, and what may be sent there.
//!
//! Queues hold it as their consumers' [`DeliverySink`]; the direct reply-to
//! registry holds it to reach a reply consumer.

use std::sync::Arc;

use tokio::sync::mpsc;
use warren_protocol::ShortStr;

use crate::message::Message;
use crate::queue::{Deliveries, Delivery, DeliverySink};

/// Work for a connection that comes from elsewhere in the broker.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A queue hands a message to one of this connection's consumers.
    Deliver(Delivery),
    /// A queue hands several messages to one of its consumers at once.
    DeliverMany(Deliveries),
    /// A queue was deleted under a consumer: send basic.cancel.
    ConsumerCancelled { channel: u16, consumer_tag: ShortStr },
    /// A direct reply-to reply for a channel's reply consumer.
    DirectReply {
        channel: u16,
        consumer_tag: ShortStr,
        message: Arc<Message>,
    },
    /// Close the connection with 320 CONNECTION_FORCED (its vhost or user
    /// was deleted, or an operator closed it).
    ForceClose { reason: String },
}

#[derive(Debug, Clone)]
pub(crate) struct ConnectionHandle {
    tx: mpsc::UnboundedSender<Outbound>,
}

impl ConnectionHandle {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Outbound>) -> Self {
        ConnectionHandle { tx }
    }

    /// Sends work to the connection; gives it back if the connection is gone.
    pub(crate) fn send(&self, work: Outbound) -> Result<(), Outbound> {
        self.tx.send(work).map_err(|e| e.0)
    }
}

impl DeliverySink for ConnectionHandle {
    fn deliver(&self, delivery: Delivery) -> Result<(), Delivery> {
        match self.send(Outbound::Deliver(delivery)) {
            Ok(()) => Ok(()),
            Err(Outbound::Deliver(delivery)) => Err(delivery),
            Err(_) => unreachable!("send gives back what it was given"),
        }
    }

    fn deliver_many(&self, deliveries: Deliveries) -> Result<(), Deliveries> {
        match self.send(Outbound::DeliverMany(deliveries)) {
            Ok(()) => Ok(()),
            Err(Outbound::DeliverMany(deliveries)) => Err(deliveries),
            Err(_) => unreachable!("send gives back what it was given"),
        }
    }

    fn cancelled(&self, channel: u16, consumer_tag: ShortStr) {
        let _ = self.send(Outbound::ConsumerCancelled { channel, consumer_tag });
    }
}
