//! This node's side of a deep quorum queue (`machine/paging.rs`): the
//! messages the machine notes past its window go to this node's store
//! after each entry, and come back from it on a blocking thread before
//! this node's consumers reach them: first those checked out to this node
//! (dispatch waits for them, in order), then, while it has consumers,
//! those near the head of the queue.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::machine::{Machine, Outcome, Seq, WINDOW_MESSAGES};
use super::Shared;
use crate::message::StoredBody;

/// Most paged-out messages read back at once.
const READ_BATCH: usize = 512;

impl Shared {
    /// Pages out what the machine noted past its window, into this node's
    /// store; true if it stored anything.
    pub(super) fn page_out(&self, machine: &mut Machine) -> bool {
        if !machine.has_to_page() {
            return false;
        }
        let mut paged = false;
        machine.page_out(|stored| {
            // Without a store, everything stays in memory.
            let durability = self.durability.as_ref()?;
            let bytes = stored.memory_bytes()?;
            match StoredBody::write(durability.shared_store(), bytes) {
                Ok(body) => {
                    paged = true;
                    Some(stored.paged_to(body))
                }
                Err(e) => {
                    tracing::warn!("a quorum queue's message stays in memory: storing it failed: {e}");
                    None
                }
            }
        });
        paged
    }

    /// Reads paged-out messages back, on a blocking thread: those checked
    /// out to this node first, then, while it has consumers, those near
    /// the head of the queue. One read at a time; dispatch goes on when it
    /// lands.
    pub(super) fn read_ahead(&self) {
        if self.durability.is_none() || self.reading.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut wanted: Vec<(Seq, Arc<StoredBody>)> = Vec::new();
        let consumers = {
            let local = self.local.lock();
            wanted.extend(
                local
                    .buffer
                    .iter()
                    .filter_map(|(seq, held)| Some((*seq, held.message.paged()?.clone())))
                    .take(READ_BATCH),
            );
            !local.consumers.is_empty()
        };
        if wanted.len() < READ_BATCH && consumers {
            let ahead = self
                .machine
                .lock()
                .paged_ahead(WINDOW_MESSAGES as usize / 2, READ_BATCH - wanted.len());
            let checked_out: HashSet<Seq> = wanted.iter().map(|(seq, _)| *seq).collect();
            wanted.extend(ahead.into_iter().filter(|(seq, _)| !checked_out.contains(seq)));
        }
        let this = self.this.upgrade();
        let (false, Some(this)) = (wanted.is_empty(), this) else {
            self.reading.store(false, Ordering::Release);
            return;
        };
        crate::blocking::spawn(move || {
            // Should the read not land (a panic), the flag is cleared anyway,
            // so the next entry reads again rather than stall dispatch.
            let reading = Reading(&this.reading);
            let bodies: Vec<&StoredBody> = wanted.iter().map(|(_, body)| &**body).collect();
            let read = StoredBody::read_many(&bodies);
            this.landed(wanted, read);
            // Landed cleared it, and may have started the next read.
            std::mem::forget(reading);
        });
    }

    /// Paged-out messages read back (`read[i]` for `wanted[i]`; None: it
    /// could not be read) are in memory again, here and in the machine.
    fn landed(&self, wanted: Vec<(Seq, Arc<StoredBody>)>, read: Vec<Option<Bytes>>) {
        {
            let mut machine = self.machine.lock();
            for ((seq, body), bytes) in wanted.iter().zip(&read) {
                if let Some(bytes) = bytes {
                    machine.loaded(*seq, body, bytes.clone());
                }
            }
        }
        let lost: Vec<Seq> = {
            let by_seq: HashMap<Seq, usize> = wanted.iter().enumerate().map(|(at, (seq, _))| (*seq, at)).collect();
            let mut local = self.local.lock();
            let mut lost = Vec::new();
            for (seq, held) in local.buffer.iter_mut() {
                let Some(body) = held.message.paged() else { continue };
                let Some(&at) = by_seq.get(seq) else { continue };
                if !Arc::ptr_eq(body, &wanted[at].1) {
                    continue;
                }
                match read.get(at).cloned().flatten() {
                    Some(bytes) => held.message = held.message.in_memory(bytes),
                    None => lost.push(*seq),
                }
            }
            local.buffer.retain(|(seq, _)| !lost.contains(seq));
            lost
        };
        let failed = read.iter().any(Option::is_none);
        if !lost.is_empty() {
            // This node's copy failed (logged by the store); the group's
            // log and the other members still have them: back to the queue.
            tracing::error!(
                "a quorum queue's {} paged-out messages could not be read back here; they go back to the queue",
                lost.len()
            );
            self.settle_here(lost, Outcome::Release);
        }
        self.reading.store(false, Ordering::Release);
        self.dispatch();
        if !failed {
            // More may be near the head by now (a failed read waits for
            // the next entry rather than spin).
            self.read_ahead();
        }
        self.wake.notify_one();
    }
}

/// Clears the reading flag when dropped.
struct Reading<'a>(&'a AtomicBool);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
