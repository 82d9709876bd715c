//! The log's records, their checksummed framing, and replay at start-up.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use openraft::{LogId, RaftLogId, RaftTypeConfig, Vote};
use serde::{Deserialize, Serialize};

use crate::{GroupId, GroupState, WalError};

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum Record<C: RaftTypeConfig> {
    Entries {
        group: GroupId,
        entries: Vec<C::Entry>,
    },
    Vote {
        group: GroupId,
        vote: Vote<C::NodeId>,
    },
    Committed {
        group: GroupId,
        committed: Option<LogId<C::NodeId>>,
    },
    /// Entries from `since` on were removed (a conflicting suffix).
    Truncate {
        group: GroupId,
        since: u64,
    },
    /// Entries up to and including `upto` were removed (covered by a snapshot).
    Purge {
        group: GroupId,
        upto: LogId<C::NodeId>,
    },
    DropGroup {
        group: GroupId,
    },
    /// The whole live state of a group, written at the start of a segment.
    Checkpoint {
        group: GroupId,
        vote: Option<Vote<C::NodeId>>,
        committed: Option<LogId<C::NodeId>>,
        last_purged: Option<LogId<C::NodeId>>,
        entries: Vec<C::Entry>,
    },
}

pub(crate) const HEADER: usize = 8;

/// Every group's state, by group.
pub(crate) type Groups<C> = HashMap<GroupId, GroupState<C>>;

/// Frames one record: length, CRC32 of the payload, payload.
pub(crate) fn encode<C: RaftTypeConfig>(record: &Record<C>) -> Vec<u8> {
    let payload = bincode::serialize(record).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Every group's live state as checkpoint records, copied from `groups`: cheap when entries
/// share their payloads, so the copy can be taken under the lock and encoded after it.
pub(crate) fn checkpoint_records<C: RaftTypeConfig>(groups: &HashMap<GroupId, GroupState<C>>) -> Vec<Record<C>>
where
    C::Entry: Clone,
{
    groups
        .iter()
        .map(|(group, st)| Record::Checkpoint {
            group: *group,
            vote: st.vote.clone(),
            committed: st.committed.clone(),
            last_purged: st.last_purged.clone(),
            entries: st.entries.values().cloned().collect(),
        })
        .collect()
}

/// The checkpoint that opens a new segment.
pub(crate) fn checkpoint_bytes<C: RaftTypeConfig>(records: &[Record<C>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend(encode::<C>(r));
    }
    out
}

/// Applies one record to the in-memory state.
pub(crate) fn apply<C: RaftTypeConfig>(groups: &mut HashMap<GroupId, GroupState<C>>, record: Record<C>) {
    match record {
        Record::Entries { group, entries } => {
            let st = groups.entry(group).or_default();
            for e in entries {
                st.entries.insert(e.get_log_id().index, e);
            }
        }
        Record::Vote { group, vote } => groups.entry(group).or_default().vote = Some(vote),
        Record::Committed { group, committed } => groups.entry(group).or_default().committed = committed,
        Record::Truncate { group, since } => {
            let st = groups.entry(group).or_default();
            st.entries.split_off(&since);
        }
        Record::Purge { group, upto } => {
            let st = groups.entry(group).or_default();
            st.entries = st.entries.split_off(&(upto.index + 1));
            if st.last_purged.as_ref().is_none_or(|p| *p < upto) {
                st.last_purged = Some(upto);
            }
        }
        Record::DropGroup { group } => {
            groups.remove(&group);
        }
        Record::Checkpoint {
            group,
            vote,
            committed,
            last_purged,
            entries,
        } => {
            let st = groups.entry(group).or_default();
            st.vote = vote;
            st.committed = committed;
            st.last_purged = last_purged;
            st.entries = entries.into_iter().map(|e| (e.get_log_id().index, e)).collect();
        }
    }
}

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.wal"))
}

/// Segment sequence numbers present in `dir`, oldest first.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let io = |source| WalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".wal") {
            if let Ok(seq) = stem.parse::<u64>() {
                seqs.push(seq);
            }
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Replays every segment. Returns the recovered state and the segments that exist (the last
/// one, possibly cut back to its last whole record, is where writing continues).
pub(crate) fn replay<C: RaftTypeConfig>(dir: &Path) -> Result<(Groups<C>, Vec<u64>), WalError> {
    let segments = list_segments(dir)?;
    let mut groups: HashMap<GroupId, GroupState<C>> = HashMap::new();
    for (i, seq) in segments.iter().enumerate() {
        let path = segment_path(dir, *seq);
        let io = |source| WalError::Io {
            path: path.clone(),
            source,
        };
        let mut data = Vec::new();
        std::fs::File::open(&path)
            .map_err(io)?
            .read_to_end(&mut data)
            .map_err(io)?;
        let last_segment = i + 1 == segments.len();
        let mut offset = 0usize;
        while offset < data.len() {
            match read_record::<C>(&data[offset..]) {
                Ok((record, len)) => {
                    apply(&mut groups, record);
                    offset += len;
                }
                Err(reason) if last_segment && !valid_record_follows::<C>(&data[offset..]) => {
                    // A torn write at the tail: the crash came before the fsync, so nothing in it
                    // was acknowledged. Cut it off and continue from the last whole record.
                    tracing::warn!(path = %path.display(), offset, %reason, "cutting a torn record off the write-ahead log tail");
                    let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(io)?;
                    f.set_len(offset as u64).map_err(io)?;
                    f.sync_all().map_err(io)?;
                    break;
                }
                Err(reason) => {
                    return Err(WalError::Corrupt {
                        path: path.clone(),
                        offset: offset as u64,
                        reason,
                    });
                }
            }
        }
    }
    Ok((groups, segments))
}

/// Whether a whole, valid record starts anywhere after the first byte of `buf`: if so, the
/// damage is not a torn tail but corruption in the middle of the log.
fn valid_record_follows<C: RaftTypeConfig>(buf: &[u8]) -> bool {
    (1..buf.len()).any(|start| read_record::<C>(&buf[start..]).is_ok())
}

fn read_record<C: RaftTypeConfig>(buf: &[u8]) -> Result<(Record<C>, usize), String> {
    if buf.len() < HEADER {
        return Err(format!("{} stray bytes where a record header should be", buf.len()));
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let Some(payload) = buf.get(HEADER..HEADER + len) else {
        return Err(format!("record of {len} bytes runs past the end of the segment"));
    };
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let record = bincode::deserialize(payload).map_err(|e| format!("undecodable record: {e}"))?;
    Ok((record, HEADER + len))
}
