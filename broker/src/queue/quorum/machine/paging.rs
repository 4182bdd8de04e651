//! A quorum queue longer than memory: each member keeps a window of the
//! oldest ready messages in memory ([`WINDOW_MESSAGES`] messages or
//! [`WINDOW_BYTES`] of bodies) and pages the rest out to its own store, as
//! a classic queue does (`local/paging.rs`), so a deep queue costs each
//! member its store's few bytes a message, not the messages themselves.
//!
//! A message enqueued past the window is noted (`to_page`) and paged out by
//! the node after the entry is applied (`page_out`: an append to the
//! store's write buffer, no disk I/O). The node reads paged messages back
//! ahead of its consumers, off the runtime (`paged_ahead`, then `loaded`
//! with what was read). None of this changes what the machine decides:
//! where a message's bytes are is each member's own business.

use std::sync::Arc;

use bytes::Bytes;

use super::{Machine, Seq, Stored};
use crate::message::StoredBody;

/// Ready messages a member keeps in memory before it pages new ones out.
pub(crate) const WINDOW_MESSAGES: u64 = 4096;
/// Body bytes of ready messages a member keeps in memory.
pub(crate) const WINDOW_BYTES: u64 = 8 * 1024 * 1024;

impl Machine {
    /// Whether the ready messages in memory fill the window.
    pub(super) fn past_window(&self) -> bool {
        (self.ready.len() as u64).saturating_sub(self.paged_ready) > WINDOW_MESSAGES
            || self.ready_bytes.saturating_sub(self.paged_ready_bytes) > WINDOW_BYTES
    }

    /// Pages out what was enqueued past the window and still waits in
    /// memory: `page` stores a message's bytes (None: it stays in memory,
    /// a node without a store keeps everything there).
    pub(crate) fn page_out(&mut self, mut page: impl FnMut(&Stored) -> Option<Stored>) {
        for seq in std::mem::take(&mut self.to_page) {
            if !self.ready.contains(&seq) {
                continue;
            }
            let Some(held) = self.messages.get_mut(&seq) else {
                continue;
            };
            if held.message.is_paged() {
                continue;
            }
            let Some(paged) = page(&held.message) else { continue };
            self.paged_ready += 1;
            self.paged_ready_bytes += paged.body_size();
            held.message = paged;
        }
    }

    /// Notes every ready message past the window to be paged out (a
    /// machine rebuilt from a snapshot holds them all in memory).
    pub(crate) fn page_past_window(&mut self) {
        let (mut count, mut bytes) = (0u64, 0u64);
        for seq in &self.ready {
            let Some(held) = self.messages.get(seq) else { continue };
            if held.message.is_paged() {
                continue;
            }
            count += 1;
            bytes += held.message.body_size();
            if count > WINDOW_MESSAGES || bytes > WINDOW_BYTES {
                self.to_page.push(*seq);
            }
        }
    }

    /// Whether messages wait to be paged out.
    pub(crate) fn has_to_page(&self) -> bool {
        !self.to_page.is_empty()
    }

    /// Up to `max` paged messages among the first `within` ready ones: what
    /// to read back before consumers reach it.
    pub(crate) fn paged_ahead(&self, within: usize, max: usize) -> Vec<(Seq, Arc<StoredBody>)> {
        if self.paged_ready == 0 {
            return Vec::new();
        }
        self.ready
            .iter()
            .take(within)
            .filter_map(|seq| Some((*seq, self.messages.get(seq)?.message.paged()?.clone())))
            .take(max)
            .collect()
    }

    /// `seq`'s bytes were read back from `body`: it is in memory again
    /// (unless it changed meanwhile).
    pub(crate) fn loaded(&mut self, seq: Seq, body: &Arc<StoredBody>, bytes: Bytes) {
        let Some(held) = self.messages.get_mut(&seq) else {
            return;
        };
        if !held.message.paged().is_some_and(|b| Arc::ptr_eq(b, body)) {
            return;
        }
        held.message = held.message.in_memory(bytes);
        if self.ready.contains(&seq) {
            self.paged_ready = self.paged_ready.saturating_sub(1);
            self.paged_ready_bytes = self.paged_ready_bytes.saturating_sub(held.message.body_size());
        }
    }

    /// Of the ready messages, those paged out, and their body bytes.
    pub(crate) fn paged_ready(&self) -> (u64, u64) {
        (self.paged_ready, self.paged_ready_bytes)
    }
}
