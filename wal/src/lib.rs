//! The write-ahead log of a process: one append-only, checksummed, fsynced log shared by every
//! Raft group the process hosts (each shard replica is a group). It implements openraft's
//! `RaftLogStorage` per group, so each group's Raft log *is* its write-ahead log.
//!
//! - **Group commit.** All groups append through one writer thread that writes whatever is
//!   queued and then issues a single `fdatasync` for the lot, so concurrent writes to many shards
//!   share one disk flush. openraft learns an append is durable only after that flush.
//! - **Records.** `[len u32][crc32 u32][bincode record]`. On start the log is replayed; a torn
//!   record at the tail of the newest segment (a crash mid-write) is cut off, as it was never
//!   acknowledged. A bad checksum anywhere else is reported as corruption.
//! - **Segments.** When the active segment grows past its limit the writer starts a new one
//!   that opens with a checkpoint of every group's live state (vote, committed, purge point,
//!   unpurged entries); once that is durable the older segments are deleted.
//! - **Memory.** Unpurged entries are also kept in memory, decoded, for reads; openraft's
//!   snapshot policy bounds how many there are.
//!
//! This crate knows nothing about what the entries mean.

mod group;
mod record;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::{LogId, RaftTypeConfig, Vote};

pub use group::GroupLog;
use record::Record;
use writer::{Completion, Writer};

/// Identifies a Raft group within the log (a shard id, or 0 for the catalog).
pub type GroupId = u64;

/// Whether appends wait for the disk. `Durable` is the only setting a real deployment uses;
/// `Unsafe` acknowledges appends while they are still in memory (written out about once a
/// second, never fsynced), so that tests can show the durability checks notice its absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Durable,
    Unsafe,
}

pub(crate) struct GroupState<C: RaftTypeConfig> {
    pub vote: Option<Vote<C::NodeId>>,
    pub committed: Option<LogId<C::NodeId>>,
    pub last_purged: Option<LogId<C::NodeId>>,
    pub entries: BTreeMap<u64, C::Entry>,
}

impl<C: RaftTypeConfig> Default for GroupState<C> {
    fn default() -> Self {
        GroupState {
            vote: None,
            committed: None,
            last_purged: None,
            entries: BTreeMap::new(),
        }
    }
}

pub(crate) struct Shared<C: RaftTypeConfig> {
    pub groups: Mutex<HashMap<GroupId, GroupState<C>>>,
    pub writer: Writer,
}

/// The process's write-ahead log.
pub struct Wal<C: RaftTypeConfig> {
    shared: Arc<Shared<C>>,
}

impl<C: RaftTypeConfig> Clone for Wal<C> {
    fn clone(&self) -> Self {
        Wal {
            shared: self.shared.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log I/O error in {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("write-ahead log segment {path} is corrupt at byte {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
}

impl<C: RaftTypeConfig> Wal<C>
where
    C::Entry: Clone,
{
    /// Opens (or creates) the log in `dir` and replays it.
    pub fn open(dir: &Path, sync: SyncMode) -> Result<Wal<C>, WalError> {
        Self::open_with_segment_bytes(dir, sync, writer::SEGMENT_BYTES)
    }

    /// `open`, rotating segments past `segment_bytes` instead of `SEGMENT_BYTES` (for tests
    /// of rotation that should not write hundreds of megabytes).
    pub fn open_with_segment_bytes(dir: &Path, sync: SyncMode, segment_bytes: u64) -> Result<Wal<C>, WalError> {
        std::fs::create_dir_all(dir).map_err(|source| WalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (groups, segments) = record::replay::<C>(dir)?;
        let shared = Arc::new_cyclic(|weak: &std::sync::Weak<Shared<C>>| {
            let weak = weak.clone();
            // `None` once every handle is gone: the writer then must not rotate, since an empty
            // checkpoint would replace segments that still hold acknowledged records.
            // The state is copied under the lock and encoded after it, so that appends to
            // other groups do not wait for a big checkpoint to be encoded.
            let checkpoint: writer::CheckpointFn = Box::new(move || {
                let shared = weak.upgrade()?;
                let records = {
                    let groups = shared.groups.lock().unwrap_or_else(|p| p.into_inner());
                    record::checkpoint_records::<C>(&groups)
                };
                Some(record::checkpoint_bytes::<C>(&records))
            });
            Shared {
                groups: Mutex::new(groups),
                writer: Writer::start(dir.to_path_buf(), segments, sync, segment_bytes, checkpoint),
            }
        });
        Ok(Wal { shared })
    }

    /// The log of one group (created empty if the log holds nothing for it).
    pub fn group(&self, group: GroupId) -> GroupLog<C> {
        self.shared
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(group)
            .or_default();
        GroupLog::new(self.shared.clone(), group)
    }

    /// Groups the log holds state for.
    pub fn groups(&self) -> Vec<GroupId> {
        let mut ids: Vec<GroupId> = self
            .shared
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Forgets a group entirely (its replica was deleted). Durable once this returns.
    pub async fn drop_group(&self, group: GroupId) -> std::io::Result<()> {
        self.shared
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&group);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shared.writer.submit(
            record::encode::<C>(&Record::DropGroup { group }),
            Completion::Notify(tx),
        );
        rx.await
            .unwrap_or_else(|_| Err(std::io::Error::other("write-ahead log writer stopped")))
    }

    /// Flushes and stops the writer (also done when the last handle is dropped).
    pub fn shutdown(&self) {
        self.shared.writer.stop();
    }

    /// Bytes and fsyncs written so far, for metrics and benchmarks.
    pub fn stats(&self) -> writer::WalStats {
        self.shared.writer.stats()
    }
}

pub use writer::WalStats;
