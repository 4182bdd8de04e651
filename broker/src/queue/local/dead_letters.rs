//! Publishing a queue's dead letters to its dead-letter exchange, in the
//! order they died, through the vhost ([`QueueHost`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Dead, LocalQueue};
use crate::queue::dead_letter;
use crate::queue::Queue;

impl LocalQueue {
    /// Publishes the queued dead letters to the dead-letter exchange, if the
    /// queue has one (otherwise they are dropped, as in RabbitMQ). One thread
    /// at a time does it, so the order holds; one that finds another at it
    /// leaves its letters to that one. No lock is held while publishing, so
    /// two queues dead-lettering into each other never wait on each other.
    pub(super) fn publish_queued_dead_letters(&self, queue: &Arc<Queue>) {
        while !self.dead_lettering.swap(true, Ordering::AcqRel) {
            loop {
                let batch: Dead = self.dead_letters.lock().drain(..).collect();
                if batch.is_empty() {
                    break;
                }
                self.publish_dead_letters(queue, &batch);
                for (entry, _) in &batch {
                    self.forget(queue, entry);
                }
            }
            self.dead_lettering.store(false, Ordering::Release);
            // Letters queued between the last drain and the release above
            // would otherwise wait for the next death.
            if self.dead_letters.lock().is_empty() {
                return;
            }
        }
    }

    fn publish_dead_letters(&self, queue: &Arc<Queue>, dead: &Dead) {
        let Some(dlx) = &queue.args().dead_letter_exchange else {
            return;
        };
        let Some(host) = self.host.upgrade() else {
            return;
        };
        for (entry, reason) in dead {
            dead_letter::republish(queue, &*host, dlx, &entry.message, *reason);
        }
    }
}
