//! Credit between a queue and a consumer's connection: how many deliveries
//! (and bytes) the queue has handed to the connection's inbox that the
//! connection has not yet written out.
//!
//! Prefetch bounds what a client holds unacknowledged, but a no-ack
//! consumer, or one without a prefetch limit, has none: without this a
//! queue would move itself into the inbox of a connection that cannot keep
//! up (a slow socket, a stalled reader), and a queue paged to disk would be
//! read back into memory to sit there. The connection reads its inbox only
//! while its socket keeps up (its writer below the high-water mark), so
//! these windows bound what waits between the two, as RabbitMQ's credit
//! flow between queue and channel processes does.
//!
//! Only the consumer's queue, under its lock, adds to a window; the
//! connection takes away as it writes. When the queue finds a window full
//! it marks it stalled; the connection kicks the queue once the window has
//! drained to half, so the queue is woken once per half window, not per
//! message.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Deliveries a consumer may have on their way to its connection.
pub(crate) const TRANSIT_MESSAGES: u32 = 1024;
/// Bytes of bodies a consumer may have on their way to its connection (one
/// message more, however large, always goes).
pub(crate) const TRANSIT_BYTES: u64 = 4 << 20;

/// One message in the packed count: messages above, bytes below.
const ONE_MESSAGE: u64 = 1 << 32;

/// One consumer's deliveries on their way to its connection.
#[derive(Debug, Default)]
pub(crate) struct Transit {
    /// Messages in the high 32 bits, their bytes in the low 32 (at most
    /// the window plus one message of at most 512 MiB: it fits), so one
    /// atomic operation counts both.
    packed: AtomicU64,
    /// The queue stopped delivering to this consumer for want of room.
    stalled: AtomicBool,
}

impl Transit {
    /// Whether the queue may hand over another delivery. When not, the
    /// window is marked stalled, so the connection wakes the queue once it
    /// has drained.
    pub(crate) fn has_room(&self) -> bool {
        if self.room() {
            return true;
        }
        self.stalled.store(true, Ordering::SeqCst);
        // The connection may have drained the window between the two
        // lines above, before it could see the mark: look again.
        self.room()
    }

    fn room(&self) -> bool {
        let (messages, bytes) = unpack(self.packed.load(Ordering::SeqCst));
        messages < TRANSIT_MESSAGES && bytes < TRANSIT_BYTES
    }

    /// Whether nothing is on its way (every delivery handed over was
    /// written or given back).
    pub(crate) fn is_empty(&self) -> bool {
        unpack(self.packed.load(Ordering::SeqCst)).0 == 0
    }

    /// The queue handed over a delivery of `bytes`.
    pub(crate) fn sent(&self, bytes: usize) {
        self.sent_many(1, bytes);
    }

    /// The queue handed over `count` deliveries of `bytes` in all.
    pub(crate) fn sent_many(&self, count: u32, bytes: usize) {
        self.packed
            .fetch_add(u64::from(count) * ONE_MESSAGE + bytes as u64, Ordering::SeqCst);
    }

    /// The connection took a delivery of `bytes` off its inbox (wrote it
    /// or gave it back). True when the queue stopped for want of room and
    /// the window has drained to half: the caller should kick the queue.
    pub(crate) fn arrived(&self, bytes: usize) -> bool {
        self.arrived_many(1, bytes)
    }

    /// [`Self::arrived`] for `count` deliveries of `bytes` in all.
    pub(crate) fn arrived_many(&self, count: u32, bytes: usize) -> bool {
        let one = u64::from(count) * ONE_MESSAGE + bytes as u64;
        let (messages, left) = unpack(self.packed.fetch_sub(one, Ordering::SeqCst).wrapping_sub(one));
        messages <= TRANSIT_MESSAGES / 2
            && left <= TRANSIT_BYTES / 2
            && self.stalled.load(Ordering::SeqCst)
            && self.stalled.swap(false, Ordering::SeqCst)
    }
}

fn unpack(packed: u64) -> (u32, u64) {
    ((packed >> 32) as u32, packed & (ONE_MESSAGE - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_stalls_and_asks_for_a_kick_once_half_drained() {
        let transit = Transit::default();
        for _ in 0..TRANSIT_MESSAGES {
            assert!(transit.has_room());
            transit.sent(10);
        }
        assert!(!transit.has_room(), "a full window has no room");
        for n in 1..TRANSIT_MESSAGES / 2 {
            assert!(!transit.arrived(10), "no kick before half is drained ({n})");
        }
        assert!(transit.arrived(10), "half drained: kick the queue");
        assert!(!transit.arrived(10), "once");
        assert!(transit.has_room());
    }

    #[test]
    fn bytes_fill_a_window_too_and_a_window_never_stalled_never_kicks() {
        let transit = Transit::default();
        transit.sent(TRANSIT_BYTES as usize);
        assert!(!transit.has_room(), "one large message fills the byte window");
        assert!(transit.arrived(TRANSIT_BYTES as usize));
        for _ in 0..10 {
            transit.sent(1);
        }
        for _ in 0..10 {
            assert!(!transit.arrived(1));
        }
    }
}
