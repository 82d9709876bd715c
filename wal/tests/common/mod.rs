//! What the write-ahead log's integration tests share: a tiny Raft type configuration (the log
//! knows nothing about what entries mean, so any payload will do) and helpers that build
//! entries, read a group's state back and find the segment files on disk.

#![allow(dead_code)] // Each test binary uses its own subset of these helpers.

use std::io::Cursor; // `declare_raft_types!` names the default snapshot type as a bare `Cursor`.
use std::path::{Path, PathBuf};

use openraft::storage::{LogState, RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};
use serde::{Deserialize, Serialize};
use tessera_wal::GroupLog;

/// A test payload: an id to recognise it by, and a body whose size the test chooses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub id: u64,
    pub body: Vec<u8>,
}

openraft::declare_raft_types!(
    pub TestRaft:
        D = Payload,
        R = (),
);

pub type TestEntry = Entry<TestRaft>;

pub fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

/// A normal entry whose payload names its own index.
pub fn entry(term: u64, index: u64) -> TestEntry {
    sized_entry(term, index, 16)
}

/// A normal entry whose payload body is `body_len` bytes derived from the index.
pub fn sized_entry(term: u64, index: u64, body_len: usize) -> TestEntry {
    let body = (0..body_len)
        .map(|i| (index as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Payload { id: index, body }),
    }
}

/// Entries `from..=to` of `term`.
pub fn entries(term: u64, from: u64, to: u64) -> Vec<TestEntry> {
    (from..=to).map(|i| entry(term, i)).collect()
}

/// Appends and waits until the append is reported durable.
pub async fn append(log: &mut GroupLog<TestRaft>, entries: Vec<TestEntry>) {
    log.blocking_append(entries)
        .await
        .expect("append to the write-ahead log");
}

/// Everything a group's log reports about itself.
#[derive(Debug, PartialEq)]
pub struct Observed {
    pub state: LogState<TestRaft>,
    pub vote: Option<Vote<u64>>,
    pub committed: Option<LogId<u64>>,
    pub entries: Vec<TestEntry>,
}

pub async fn observe(log: &mut GroupLog<TestRaft>) -> Observed {
    Observed {
        state: log.get_log_state().await.expect("get_log_state"),
        vote: log.read_vote().await.expect("read_vote"),
        committed: log.read_committed().await.expect("read_committed"),
        entries: log.try_get_log_entries(..).await.expect("try_get_log_entries"),
    }
}

/// The log's segment files, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the log directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    files.sort();
    files
}

/// The newest segment file (where writing continues after a restart).
pub fn newest_segment(dir: &Path) -> PathBuf {
    segments(dir).pop().expect("the log has at least one segment")
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("segment metadata").len()
}

/// A temporary directory on the same disk as the build (real fsyncs, not a RAM disk).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tessera-wal-test")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir")
}

/// The `(offset, total length)` of every whole record framed in a segment file
/// (`[len u32][crc32 u32][payload]`), stopping at the first frame that does not fit.
pub fn record_frames(path: &Path) -> Vec<(usize, usize)> {
    let data = std::fs::read(path).expect("read segment");
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset + 8 <= data.len() {
        let len = u32::from_le_bytes(data[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        if offset + 8 + len > data.len() {
            break;
        }
        frames.push((offset, 8 + len));
        offset += 8 + len;
    }
    frames
}

/// Flips every bit of the byte at `at`.
pub fn flip_byte(path: &Path, at: usize) {
    let mut data = std::fs::read(path).expect("read segment");
    data[at] ^= 0xff;
    std::fs::write(path, data).expect("write segment");
}

pub fn append_bytes(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open segment");
    f.write_all(bytes).expect("append to segment");
    f.sync_all().expect("sync segment");
}

pub fn set_len(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open segment");
    f.set_len(len).expect("cut segment");
    f.sync_all().expect("sync segment");
}
