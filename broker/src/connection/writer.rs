//! The half of a connection that writes to the socket.
//!
//! The connection task encodes frames into a [`WriteBuffer`] and hands the
//! filled chunks here in batches; this task writes them with vectored writes,
//! so a batch of deliveries costs one system call, and message bodies go out
//! from the message's own memory. The connection task watches how many bytes
//! are waiting and stops reading from the client while too many are.

use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

use crate::connections::Traffic;

/// How many bytes may wait for the socket before the connection stops
/// reading new work from its client.
pub(super) const HIGH_WATER_MARK: usize = 8 * 1024 * 1024;

#[derive(Default)]
pub(super) struct Backlog {
    bytes: AtomicUsize,
    drained: Notify,
}

impl Backlog {
    pub(super) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Waits until the backlog is below the high-water mark.
    pub(super) async fn wait_below_high_water(&self) {
        while self.bytes() > HIGH_WATER_MARK {
            let notified = self.drained.notified();
            if self.bytes() <= HIGH_WATER_MARK {
                break;
            }
            notified.await;
        }
    }
}

/// The sending side, kept by the connection task.
pub(super) struct WriterHandle {
    tx: mpsc::UnboundedSender<Vec<Bytes>>,
    pub backlog: Arc<Backlog>,
}

impl WriterHandle {
    /// Queues chunks for writing. False if the socket is gone.
    pub(super) fn send(&self, chunks: Vec<Bytes>) -> bool {
        let size: usize = chunks.iter().map(Bytes::len).sum();
        self.backlog.bytes.fetch_add(size, Ordering::AcqRel);
        self.tx.send(chunks).is_ok()
    }
}

/// Starts the writer task for a socket; what it writes is counted in
/// `traffic`.
pub(super) fn spawn<W: AsyncWrite + Unpin + Send + 'static>(
    socket: W,
    traffic: Arc<Traffic>,
) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(Backlog::default());
    let task = tokio::spawn(write_loop(socket, rx, backlog.clone(), traffic));
    (WriterHandle { tx, backlog }, task)
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut socket: W,
    mut rx: mpsc::UnboundedReceiver<Vec<Bytes>>,
    backlog: Arc<Backlog>,
    traffic: Arc<Traffic>,
) {
    let mut pending: Vec<Bytes> = Vec::new();
    while let Some(batch) = rx.recv().await {
        pending.extend(batch);
        // Gather whatever else is already waiting into the same writes.
        while let Ok(more) = rx.try_recv() {
            pending.extend(more);
        }
        let written: usize = pending.iter().map(Bytes::len).sum();
        if let Err(e) = write_all_vectored(&mut socket, &mut pending).await {
            tracing::debug!("socket write failed: {e}");
            break;
        }
        traffic.wrote(written);
        backlog.bytes.fetch_sub(written, Ordering::AcqRel);
        backlog.drained.notify_waiters();
    }
    let _ = socket.shutdown().await;
}

async fn write_all_vectored<W: AsyncWrite + Unpin>(socket: &mut W, chunks: &mut Vec<Bytes>) -> std::io::Result<()> {
    let mut first = 0;
    while first < chunks.len() {
        let mut n = {
            let slices: Vec<IoSlice<'_>> = chunks[first..].iter().take(64).map(|c| IoSlice::new(c)).collect();
            socket.write_vectored(&slices).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let chunk = &mut chunks[first];
            if n >= chunk.len() {
                n -= chunk.len();
                first += 1;
            } else {
                let _ = chunk.split_to(n);
                n = 0;
            }
        }
    }
    chunks.clear();
    Ok(())
}
