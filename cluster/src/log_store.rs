//! openraft's log storage over Warren's Raft log on disk
//! (`warren_store::RaftLog`): entries encoded with bincode, fsynced before
//! openraft hears they are written; the vote and the purge point in the
//! log's state files. Every disk operation runs on a blocking thread, never
//! on the runtime's workers. Generic over the group's types, so the
//! metadata group and (later) each quorum queue's group share it.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{LogId, RaftLogId, RaftTypeConfig, StorageError, StorageIOError, Vote};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use warren_store::{LogIndex, RaftLog};

/// One group's log. Cheap to clone: clones share the log.
pub(crate) struct LogStore<C> {
    log: Arc<Mutex<RaftLog>>,
    _types: PhantomData<C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            log: self.log.clone(),
            _types: PhantomData,
        }
    }
}

const VOTE: &str = "vote";
/// Most bytes of entries one append to a follower carries.
const APPEND_BYTES: usize = 2 << 20;
const PURGED: &str = "purged";

fn io_error<C: RaftTypeConfig>(e: impl std::error::Error + 'static) -> StorageError<C::NodeId> {
    StorageIOError::write_logs(&e).into()
}

fn read_error<C: RaftTypeConfig>(e: impl std::error::Error + 'static) -> StorageError<C::NodeId> {
    StorageIOError::read_logs(&e).into()
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned + Clone,
{
    /// Opens the log in `dir` (blocking: call it off the runtime), dropping
    /// entries a snapshot already covered.
    pub(crate) fn open(dir: &Path) -> Result<Self, StorageError<C::NodeId>> {
        let mut log = RaftLog::open(dir).map_err(read_error::<C>)?;
        if let Some(bytes) = log.state(PURGED).map_err(read_error::<C>)? {
            let purged: LogId<C::NodeId> = bincode::deserialize(&bytes).map_err(read_error::<C>)?;
            log.purge(LogIndex(purged.index)).map_err(io_error::<C>)?;
        }
        Ok(LogStore {
            log: Arc::new(Mutex::new(log)),
            _types: PhantomData,
        })
    }

    /// Runs `work` on the log on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut RaftLog) -> Result<T, StorageError<C::NodeId>> + Send + 'static,
    ) -> Result<T, StorageError<C::NodeId>> {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || work(&mut log.lock()))
            .await
            .map_err(|e| io_error::<C>(std::io::Error::other(e.to_string())))?
    }

    /// Bytes the log's segment files hold now.
    pub(crate) fn size_on_disk(&self) -> u64 {
        self.log.lock().size_on_disk()
    }

    fn decode(raw: &[Vec<u8>]) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        raw.iter()
            .map(|bytes| bincode::deserialize(bytes).map_err(read_error::<C>))
            .collect()
    }

    fn last_log_id(log: &RaftLog) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        let Some(bytes) = log.last_entry() else { return Ok(None) };
        let entry: C::Entry = bincode::deserialize(bytes).map_err(read_error::<C>)?;
        Ok(Some(entry.get_log_id().clone()))
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned + Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let from = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(i) => i + 1,
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        };
        // The newest entries come from memory; older ones from the disk,
        // on a blocking thread.
        let cached = self.log.lock().cached_entries(LogIndex(from), LogIndex(to));
        let raw = match cached {
            Some(raw) => raw,
            None => {
                self.blocking(move |log| log.entries(LogIndex(from), LogIndex(to)).map_err(read_error::<C>))
                    .await?
            }
        };
        Self::decode(&raw)
    }

    /// What one append to a follower carries: at most `APPEND_BYTES` of
    /// entries (at least one). openraft gives an append a heartbeat
    /// interval to cross and be written; 64 entries of a busy queue (up to
    /// 4 MiB each) never would, and the follower would never catch up.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let (from, to) = (LogIndex(start), LogIndex(end));
        // One look at the log for the newest entries (the usual case).
        let cached = {
            let log = self.log.lock();
            let end = log.end_within(from, to, APPEND_BYTES);
            log.cached_entries(from, end).ok_or(end)
        };
        match cached {
            Ok(raw) => Self::decode(&raw),
            Err(end) => self.try_get_log_entries(start..end.0).await,
        }
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned + Clone,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        self.blocking(|log| {
            let purged = match log.state(PURGED).map_err(read_error::<C>)? {
                Some(bytes) => Some(bincode::deserialize::<LogId<C::NodeId>>(&bytes).map_err(read_error::<C>)?),
                None => None,
            };
            let last = Self::last_log_id(log)?.or_else(|| purged.clone());
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let bytes = bincode::serialize(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        self.blocking(move |log| {
            log.save_state(VOTE, &bytes)
                .map_err(|e| StorageIOError::write_vote(&e).into())
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        self.blocking(
            |log| match log.state(VOTE).map_err(|e| StorageIOError::read_vote(&e))? {
                Some(bytes) => Ok(Some(
                    bincode::deserialize(&bytes).map_err(|e| StorageIOError::read_vote(&e))?,
                )),
                None => Ok(None),
            },
        )
        .await
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + Send,
        I::IntoIter: Send,
    {
        let mut encoded = Vec::new();
        for entry in entries {
            let index = entry.get_log_id().index;
            encoded.push((LogIndex(index), bincode::serialize(&entry).map_err(io_error::<C>)?));
        }
        // Written under the log's lock, synced outside it (a replication
        // read of the newest entries never waits for this flush), in one
        // trip to a blocking thread: an append is on the path of every
        // commit, the leader's and each follower's.
        let log = self.log.clone();
        let result = tokio::task::spawn_blocking(move || {
            let unsynced = log.lock().write(encoded).map_err(io_error::<C>)?;
            unsynced.sync().map_err(io_error::<C>)
        })
        .await
        .unwrap_or_else(|e| Err(io_error::<C>(std::io::Error::other(e.to_string()))));
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.blocking(move |log| log.truncate(LogIndex(log_id.index)).map_err(io_error::<C>))
            .await
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let bytes = bincode::serialize(&log_id).map_err(io_error::<C>)?;
        self.blocking(move |log| {
            // The purge point first: a crash between the two leaves entries
            // that the next open drops.
            log.save_state(PURGED, &bytes).map_err(io_error::<C>)?;
            log.purge(LogIndex(log_id.index)).map_err(io_error::<C>)
        })
        .await
    }
}
