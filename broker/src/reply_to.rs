//! The direct reply-to registry: which channel's reply consumer each
//! `amq.rabbitmq.reply-to.<key>` address reaches (the pseudo-queue itself
//! is in `channel/direct_reply.rs`).

use std::sync::Arc;

use dashmap::DashMap;
use warren_protocol::ShortStr;

use crate::message::Message;
use crate::outbound::{ConnectionHandle, Outbound};

/// Where replies for one key go.
#[derive(Debug, Clone)]
pub(crate) struct ReplyTarget {
    pub connection: ConnectionHandle,
    pub channel: u16,
    pub consumer_tag: ShortStr,
}

/// Live reply addresses, by key.
#[derive(Debug, Default)]
pub(crate) struct ReplyRegistry {
    targets: DashMap<String, ReplyTarget>,
}

impl ReplyRegistry {
    pub(crate) fn register(&self, key: String, target: ReplyTarget) {
        self.targets.insert(key, target);
    }

    pub(crate) fn unregister(&self, key: &str) {
        self.targets.remove(key);
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.targets.contains_key(key)
    }

    /// Sends a reply to the channel waiting for `key`. False if nobody waits.
    pub(crate) fn send(&self, key: &str, message: &Arc<Message>) -> bool {
        let Some(target) = self.targets.get(key).map(|t| t.clone()) else {
            return false;
        };
        target
            .connection
            .send(Outbound::DirectReply {
                channel: target.channel,
                consumer_tag: target.consumer_tag,
                message: message.clone(),
            })
            .is_ok()
    }
}
