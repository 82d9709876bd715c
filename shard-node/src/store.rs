//! A replica's rows, in redb, and the state machine that applies the shard's log to them.
//!
//! One redb file per replica holds: `rows` (encoded primary key → row version and row), `meta`
//! (the last applied log id and membership, written in the same transaction as the rows they
//! describe, and the epoch a split fenced the replica at), `requests` (the ids of recently
//! applied requests with the outcome their statement reported, so a retried write is applied
//! at most once and answered as the first time), `staged` (leading pieces of big write sets),
//! and for multi-shard transactions `prepared` (their prepared writes), `locks` (the rows
//! those hold) and `decisions` (the outcomes this shard decided as a coordinator). A batch of
//! log entries is applied in one transaction.
//!
//! Applying does not fsync: the log is already durable, and a crash rolls redb back to its last
//! durable commit, from where the log is re-applied. A durable commit is made when openraft asks
//! for a snapshot, and the log is only purged up to that point.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use serde::{Deserialize, Serialize};
use tessera_types::fragment::WriteOutcome;
use tessera_types::rpc::TxnId;
use tessera_types::schema::{ReplicaId, ShardId};
use tessera_types::Row;

use crate::raft::{
    ApplyOutcome, Control, KeyWrite, LogId, Piece, ShardRaft, SnapshotMeta, StorageError, StoredMembership, WriteSet,
};

const ROWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("rows");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const REQUESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("requests");
/// Staged pieces of big write sets (`raft::Piece`): request id and piece number, to the log
/// index that staged it and the piece's key writes.
const STAGED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("staged");

/// The prepared writes of multi-shard transactions (`raft::Control::Prepare`): transaction id
/// to its coordinator shard and key writes.
const PREPARED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("prepared");
/// The rows prepared transactions hold: encoded key to the transaction id.
const LOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("locks");
/// On a coordinator shard, the outcome of each multi-shard transaction it decided: id to the
/// log index of the decision and 1 (commit) or 0 (abort).
const DECISIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("decisions");

/// Request ids are remembered for this many log entries after they were applied.
const REQUEST_MEMORY: u64 = 100_000;

/// Decisions are remembered for this many log entries: far longer than a participant takes to
/// ask (seconds), since one forgotten would be decided again as an abort.
const DECISION_MEMORY: u64 = 10_000_000;

/// A prepared transaction, as kept in `PREPARED`.
#[derive(Debug, Serialize, Deserialize)]
struct PreparedTxn {
    coordinator: ShardId,
    writes: Vec<KeyWrite>,
}

/// The tables a batch of log entries writes, open in its one write transaction.
struct Tables<'t> {
    meta: redb::Table<'t, &'static str, &'static [u8]>,
    /// The primary key a `Control::Rekey` of the batch keyed the rows by.
    rekeyed: Option<Vec<usize>>,
    rows: redb::Table<'t, &'static [u8], &'static [u8]>,
    requests: redb::Table<'t, &'static [u8], &'static [u8]>,
    staged: redb::Table<'t, &'static [u8], &'static [u8]>,
    prepared: redb::Table<'t, &'static [u8], &'static [u8]>,
    locks: redb::Table<'t, &'static [u8], &'static [u8]>,
    decisions: redb::Table<'t, &'static [u8], &'static [u8]>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error in {path}: {message}")]
    Redb { path: PathBuf, message: String },
    #[error("corrupt row in {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// A row as read from the store: its key, its version and its values.
pub type StoredRow = (Vec<u8>, u64, Row);

/// Raw key/value pairs of a table, for snapshots.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Stored rows by key, as raw bytes.
type RawRows = BTreeMap<Vec<u8>, Vec<u8>>;

/// A stored row: its version (the log index that wrote it) and its values.
pub fn encode_row(version: u64, row: &Row) -> Vec<u8> {
    let mut out = version.to_le_bytes().to_vec();
    if bincode::serialize_into(&mut out, row).is_err() {
        out.truncate(8);
    }
    out
}

/// The version of a stored row, without decoding its values.
fn stored_version(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

pub fn decode_row(bytes: &[u8]) -> Option<(u64, Row)> {
    let version = stored_version(bytes)?;
    let row = bincode::deserialize(&bytes[8..]).ok()?;
    Some((version, row))
}

/// The redb database of one replica.
pub struct Store {
    pub db: Database,
    pub path: PathBuf,
    /// The epoch a split's fence raised the replica to (0 if none did): write sets computed
    /// at an older one are refused.
    epoch: AtomicU64,
    /// The primary key an `ALTER TABLE ... ADD PRIMARY KEY` gave the rows (`Control::Rekey`),
    /// if one did: writes planned with another are refused.
    primary_key: std::sync::RwLock<Option<Vec<usize>>>,
    /// How many rows prepared transactions hold, as of the last applied batch.
    locked_rows: AtomicU64,
}

impl Store {
    pub fn open(path: &Path) -> Result<Arc<Store>, StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError::Redb {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let db = Database::builder()
            .set_cache_size(32 << 20)
            .create(path)
            .map_err(|e| err(&e))?;
        let txn = db.begin_write().map_err(|e| err(&e))?;
        {
            txn.open_table(ROWS).map_err(|e| err(&e))?;
            txn.open_table(META).map_err(|e| err(&e))?;
            txn.open_table(REQUESTS).map_err(|e| err(&e))?;
            txn.open_table(STAGED).map_err(|e| err(&e))?;
            txn.open_table(PREPARED).map_err(|e| err(&e))?;
            txn.open_table(LOCKS).map_err(|e| err(&e))?;
            txn.open_table(DECISIONS).map_err(|e| err(&e))?;
        }
        txn.commit().map_err(|e| err(&e))?;
        let store = Store {
            db,
            path: path.to_path_buf(),
            epoch: AtomicU64::new(0),
            primary_key: std::sync::RwLock::new(None),
            locked_rows: AtomicU64::new(0),
        };
        let epoch: Option<u64> = store.read_meta("epoch")?;
        store.epoch.store(epoch.unwrap_or(0), Ordering::Relaxed);
        let locked = {
            let txn = store.db.begin_read().map_err(|e| store.err(e))?;
            let locks = txn.open_table(LOCKS).map_err(|e| store.err(e))?;
            locks.len().map_err(|e| store.err(e))?
        };
        store.locked_rows.store(locked, Ordering::Relaxed);
        let primary_key: Option<Option<Vec<usize>>> = store.read_meta("primary_key")?;
        *store.primary_key.write().unwrap_or_else(|p| p.into_inner()) = primary_key.flatten();
        Ok(Arc::new(store))
    }

    /// The epoch a split fenced this replica at (0 if none did).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// The primary key `ALTER TABLE ... ADD PRIMARY KEY` keyed the rows by, if it ran here.
    pub fn primary_key(&self) -> Option<Vec<usize>> {
        self.primary_key.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Redb {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// A consistent read-only view of the rows, with the epoch they were fenced at.
    pub fn reader(&self) -> Result<RowsReader, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(ROWS).map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let epoch = meta
            .get("epoch")
            .map_err(|e| self.err(e))?
            .and_then(|g| bincode::deserialize::<u64>(g.value()).ok())
            .unwrap_or(0);
        Ok(RowsReader {
            table,
            epoch,
            path: self.path.clone(),
        })
    }

    /// Every remembered request with its outcome (carried to the shard a split makes).
    pub fn requests(&self) -> Result<Vec<(u128, WriteOutcome)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(REQUESTS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let Ok(rid) = <[u8; 16]>::try_from(k.value()) else {
                continue;
            };
            let outcome = v
                .value()
                .get(8..)
                .and_then(|b| bincode::deserialize(b).ok())
                .unwrap_or_default();
            out.push((u128::from_be_bytes(rid), outcome));
        }
        Ok(out)
    }

    fn read_meta<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(META).map_err(|e| self.err(e))?;
        let Some(v) = table.get(key).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        bincode::deserialize(v.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                message: format!("meta {key}: {e}"),
            })
    }

    pub fn applied(&self) -> Result<(Option<LogId>, StoredMembership), StoreError> {
        let applied: Option<Option<LogId>> = self.read_meta("applied")?;
        let membership: Option<StoredMembership> = self.read_meta("membership")?;
        Ok((applied.flatten(), membership.unwrap_or_default()))
    }

    /// Makes everything applied so far durable, and returns what that covers: the applied
    /// log id and membership, read in the same write transaction so no apply slips between.
    pub fn flush(&self) -> Result<(Option<LogId>, StoredMembership), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate).map_err(|e| self.err(e))?;
        txn.set_quick_repair(true);
        let covered = {
            let meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let read = |k: &str| -> Result<Option<Vec<u8>>, StoreError> {
                Ok(meta.get(k).map_err(|e| self.err(e))?.map(|g| g.value().to_vec()))
            };
            let applied: Option<LogId> = read("applied")?
                .and_then(|b| bincode::deserialize::<Option<LogId>>(&b).ok())
                .flatten();
            let membership: StoredMembership = read("membership")?
                .and_then(|b| bincode::deserialize(&b).ok())
                .unwrap_or_default();
            (applied, membership)
        };
        txn.commit().map_err(|e| self.err(e))?;
        Ok(covered)
    }

    /// Applies a batch of entries in one transaction, returning each entry's outcomes (one per
    /// write set it carries).
    fn apply_batch(&self, entries: Vec<openraft::Entry<ShardRaft>>) -> Result<Vec<Vec<ApplyOutcome>>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::None).map_err(|e| self.err(e))?;
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut epoch = self.epoch();
        let rekeyed;
        let locked_rows;
        {
            let mut t = Tables {
                meta: txn.open_table(META).map_err(|e| self.err(e))?,
                rekeyed: None,
                rows: txn.open_table(ROWS).map_err(|e| self.err(e))?,
                requests: txn.open_table(REQUESTS).map_err(|e| self.err(e))?,
                staged: txn.open_table(STAGED).map_err(|e| self.err(e))?,
                prepared: txn.open_table(PREPARED).map_err(|e| self.err(e))?,
                locks: txn.open_table(LOCKS).map_err(|e| self.err(e))?,
                decisions: txn.open_table(DECISIONS).map_err(|e| self.err(e))?,
            };
            let mut last_applied: Option<LogId> = None;
            let mut membership: Option<StoredMembership> = None;
            for entry in entries {
                let index = entry.log_id.index;
                last_applied = Some(entry.log_id);
                let outcome = match entry.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Membership(m) => {
                        membership = Some(StoredMembership::new(Some(entry.log_id), m));
                        Vec::new()
                    }
                    EntryPayload::Normal(batch) => batch
                        .sets
                        .iter()
                        .map(|ws| self.apply_write_set(&mut t, index, &mut epoch, ws))
                        .collect::<Result<Vec<_>, _>>()?,
                };
                outcomes.push(outcome);
                if index % 4096 == 0 {
                    forget_old(&mut t.requests, index, REQUEST_MEMORY).map_err(|e| self.err(e))?;
                    forget_old(&mut t.staged, index, REQUEST_MEMORY).map_err(|e| self.err(e))?;
                    forget_old(&mut t.decisions, index, DECISION_MEMORY).map_err(|e| self.err(e))?;
                }
            }
            let applied = bincode::serialize(&last_applied).unwrap_or_default();
            t.meta.insert("applied", applied.as_slice()).map_err(|e| self.err(e))?;
            if let Some(m) = membership {
                let m = bincode::serialize(&m).unwrap_or_default();
                t.meta.insert("membership", m.as_slice()).map_err(|e| self.err(e))?;
            }
            if epoch != self.epoch() {
                let e = bincode::serialize(&epoch).unwrap_or_default();
                t.meta.insert("epoch", e.as_slice()).map_err(|e| self.err(e))?;
            }
            rekeyed = t.rekeyed.take();
            locked_rows = t.locks.len().map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))?;
        self.epoch.fetch_max(epoch, Ordering::Relaxed);
        self.locked_rows.store(locked_rows, Ordering::Relaxed);
        if let Some(pk) = rekeyed {
            *self.primary_key.write().unwrap_or_else(|p| p.into_inner()) = Some(pk);
        }
        Ok(outcomes)
    }

    fn apply_write_set(
        &self,
        t: &mut Tables,
        index: u64,
        epoch: &mut u64,
        ws: &WriteSet,
    ) -> Result<ApplyOutcome, StoreError> {
        // A decided transaction's prepared writes apply whatever the epoch: they were checked
        // when prepared, and a split waits until none are left (below).
        match &ws.control {
            Some(Control::Decide { txn, commit }) => return self.decide(t, index, *txn, *commit),
            Some(Control::Finish { txn, commit }) => {
                if let Some(prepared) = self.take_prepared(t, *txn)? {
                    if *commit {
                        self.write_rows(t, index, &prepared.writes)?;
                    }
                }
                return Ok(ApplyOutcome::Applied);
            }
            _ => {}
        }
        let rid = ws.request_id.to_be_bytes();
        if t.requests.get(rid.as_slice()).map_err(|e| self.err(e))?.is_some() {
            return Ok(ApplyOutcome::Duplicate);
        }
        if ws.epoch < *epoch {
            return Ok(ApplyOutcome::Stale);
        }
        match &ws.control {
            None | Some(Control::Prepare { .. } | Control::Decide { .. } | Control::Finish { .. }) => {}
            Some(Control::Rekey { primary_key }) => {
                if !t.prepared.is_empty().map_err(|e| self.err(e))? {
                    return Ok(ApplyOutcome::Locked);
                }
                // Keyed once; never again by other columns.
                let current = t.rekeyed.clone().or_else(|| self.primary_key());
                if current.is_some_and(|c| c != *primary_key) {
                    return Ok(ApplyOutcome::Conflict);
                }
                let Some(rekeyed) = self.rekeyed_rows(t, primary_key)? else {
                    return Ok(ApplyOutcome::Conflict);
                };
                t.rows.retain(|_, _| false).map_err(|e| self.err(e))?;
                for (k, v) in &rekeyed {
                    t.rows.insert(k.as_slice(), v.as_slice()).map_err(|e| self.err(e))?;
                }
                *epoch = ws.epoch;
                let pk = bincode::serialize(&Some(primary_key.clone())).map_err(|e| self.err(e))?;
                t.meta.insert("primary_key", pk.as_slice()).map_err(|e| self.err(e))?;
                t.rekeyed = Some(primary_key.clone());
                let record = index.to_le_bytes();
                t.requests
                    .insert(rid.as_slice(), record.as_slice())
                    .map_err(|e| self.err(e))?;
                return Ok(ApplyOutcome::Applied);
            }
            Some(Control::Fence) => {
                // Transactions prepared before still commit or abort (their decisions ignore
                // the epoch); no new one can prepare. The split reads the rows once they are
                // all decided (`Replica::drain_prepared`).
                *epoch = ws.epoch;
                let record = index.to_le_bytes();
                t.requests
                    .insert(rid.as_slice(), record.as_slice())
                    .map_err(|e| self.err(e))?;
                return Ok(ApplyOutcome::Applied);
            }
            Some(Control::Remember(carried)) => {
                // Stamped with this log's index, so they are forgotten on this shard's clock.
                for (id, outcome) in carried {
                    let mut record = index.to_le_bytes().to_vec();
                    record.extend(bincode::serialize(outcome).map_err(|e| self.err(e))?);
                    t.requests
                        .insert(id.to_be_bytes().as_slice(), record.as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        let piece_key = |n: u32| -> Vec<u8> {
            let mut k = rid.to_vec();
            k.extend_from_slice(&n.to_be_bytes());
            k
        };
        let earlier: Vec<KeyWrite> = match ws.piece {
            Piece::Whole => Vec::new(),
            Piece::Staged(n) => {
                let mut record = index.to_le_bytes().to_vec();
                record.extend(bincode::serialize(&ws.writes).map_err(|e| self.err(e))?);
                t.staged
                    .insert(piece_key(n).as_slice(), record.as_slice())
                    .map_err(|e| self.err(e))?;
                return Ok(ApplyOutcome::Applied);
            }
            Piece::Last(count) => {
                let mut all = Vec::new();
                let mut complete = true;
                for n in 0..count {
                    match t.staged.get(piece_key(n).as_slice()).map_err(|e| self.err(e))? {
                        Some(v) => {
                            let part: Vec<KeyWrite> = bincode::deserialize(v.value().get(8..).unwrap_or_default())
                                .map_err(|e| self.corrupt("a staged piece", e))?;
                            all.extend(part);
                        }
                        None => complete = false,
                    }
                }
                // The pieces go, whatever happens: applied now, or proposed anew by a retry.
                let mut upper = rid.to_vec();
                upper.extend_from_slice(&u32::MAX.to_be_bytes());
                t.staged
                    .retain_in(rid.as_slice()..=upper.as_slice(), |_, _| false)
                    .map_err(|e| self.err(e))?;
                if !complete {
                    return Ok(ApplyOutcome::Conflict);
                }
                all
            }
        };
        let any_locks = !t.locks.is_empty().map_err(|e| self.err(e))?;
        let prepare = matches!(ws.control, Some(Control::Prepare { .. }));
        if !any_locks && !prepare {
            // The common case: each row checked as it is written.
            if !self.write_expected(t, index, earlier.iter().chain(&ws.writes))? {
                return Ok(ApplyOutcome::Conflict);
            }
            return self.remember(t, index, &rid, &ws.outcome);
        }
        for w in earlier.iter().chain(&ws.writes) {
            let current = t
                .rows
                .get(w.key.as_slice())
                .map_err(|e| self.err(e))?
                .map(|g| u64::from_le_bytes(g.value()[..8].try_into().unwrap_or([0; 8])));
            if current != w.expected {
                return Ok(ApplyOutcome::Conflict);
            }
            if any_locks && t.locks.get(w.key.as_slice()).map_err(|e| self.err(e))?.is_some() {
                return Ok(ApplyOutcome::Locked);
            }
        }
        if let Some(Control::Prepare { txn, coordinator }) = &ws.control {
            // Too late: this shard, the coordinator, decided the transaction already.
            if t.decisions
                .get(txn.to_be_bytes().as_slice())
                .map_err(|e| self.err(e))?
                .is_some()
            {
                return Ok(ApplyOutcome::Conflict);
            }
            let mut writes = earlier;
            writes.extend(ws.writes.iter().cloned());
            let id = txn.to_be_bytes();
            for w in &writes {
                t.locks
                    .insert(w.key.as_slice(), id.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let record = bincode::serialize(&PreparedTxn {
                coordinator: *coordinator,
                writes,
            })
            .map_err(|e| self.err(e))?;
            t.prepared
                .insert(id.as_slice(), record.as_slice())
                .map_err(|e| self.err(e))?;
        } else {
            self.write_rows(t, index, &earlier)?;
            self.write_rows(t, index, &ws.writes)?;
        }
        self.remember(t, index, &rid, &ws.outcome)
    }

    /// Records an applied request with the outcome its statement reported.
    fn remember(
        &self,
        t: &mut Tables,
        index: u64,
        rid: &[u8],
        outcome: &WriteOutcome,
    ) -> Result<ApplyOutcome, StoreError> {
        let mut record = index.to_le_bytes().to_vec();
        record.extend(bincode::serialize(outcome).map_err(|e| self.err(e))?);
        t.requests.insert(rid, record.as_slice()).map_err(|e| self.err(e))?;
        Ok(ApplyOutcome::Applied)
    }

    /// Writes `writes` if every row is at the version its write expects, checking each as it
    /// is written: one B-tree walk per row where reading first takes two. At the first
    /// mismatch it puts back what it changed and answers false. Each key must come at most
    /// once (sets come from one overlay, its pieces, or one range scan of a split): a key
    /// written twice would be checked against its first write and refused.
    fn write_expected<'w>(
        &self,
        t: &mut Tables,
        index: u64,
        writes: impl Iterator<Item = &'w KeyWrite>,
    ) -> Result<bool, StoreError> {
        let mut undo: Vec<(&[u8], Option<Vec<u8>>)> = Vec::new();
        for w in writes {
            let old = match &w.row {
                Some(row) => t
                    .rows
                    .insert(w.key.as_slice(), encode_row(index, row).as_slice())
                    .map_err(|e| self.err(e))?
                    .map(|g| g.value().to_vec()),
                None => t
                    .rows
                    .remove(w.key.as_slice())
                    .map_err(|e| self.err(e))?
                    .map(|g| g.value().to_vec()),
            };
            let expected = old.as_deref().and_then(stored_version) == w.expected;
            undo.push((w.key.as_slice(), old));
            if !expected {
                for (key, old) in undo.into_iter().rev() {
                    match old {
                        Some(v) => t.rows.insert(key, v.as_slice()).map(drop),
                        None => t.rows.remove(key).map(drop),
                    }
                    .map_err(|e| self.err(e))?;
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn write_rows(&self, t: &mut Tables, index: u64, writes: &[KeyWrite]) -> Result<(), StoreError> {
        for w in writes {
            match &w.row {
                Some(row) => {
                    t.rows
                        .insert(w.key.as_slice(), encode_row(index, row).as_slice())
                        .map_err(|e| self.err(e))?;
                }
                None => {
                    t.rows.remove(w.key.as_slice()).map_err(|e| self.err(e))?;
                }
            }
        }
        Ok(())
    }

    /// Every row under the key made of the `primary_key` columns, or `None` if two rows would
    /// share one or a key value is null.
    fn rekeyed_rows(&self, t: &Tables, primary_key: &[usize]) -> Result<Option<RawRows>, StoreError> {
        let mut out = BTreeMap::new();
        for item in t.rows.iter().map_err(|e| self.err(e))? {
            let (_, v) = item.map_err(|e| self.err(e))?;
            let (_, row) = decode_row(v.value()).ok_or_else(|| self.corrupt("a row", "undecodable"))?;
            let Some(key) = primary_key_of(&row, primary_key) else {
                return Ok(None);
            };
            if out.insert(key, v.value().to_vec()).is_some() {
                return Ok(None);
            }
        }
        Ok(Some(out))
    }

    /// Removes a prepared transaction and the locks it holds, returning it.
    fn take_prepared(&self, t: &mut Tables, txn: TxnId) -> Result<Option<PreparedTxn>, StoreError> {
        let Some(bytes) = t
            .prepared
            .remove(txn.to_be_bytes().as_slice())
            .map_err(|e| self.err(e))?
            .map(|g| g.value().to_vec())
        else {
            return Ok(None);
        };
        let prepared: PreparedTxn =
            bincode::deserialize(&bytes).map_err(|e| self.corrupt("a prepared transaction", e))?;
        for w in &prepared.writes {
            t.locks.remove(w.key.as_slice()).map_err(|e| self.err(e))?;
        }
        Ok(Some(prepared))
    }

    /// `Control::Decide`: the outcome recorded first is the transaction's.
    fn decide(&self, t: &mut Tables, index: u64, txn: TxnId, commit: bool) -> Result<ApplyOutcome, StoreError> {
        let id = txn.to_be_bytes();
        let recorded = t
            .decisions
            .get(id.as_slice())
            .map_err(|e| self.err(e))?
            .map(|d| d.value().get(8) == Some(&1));
        if let Some(committed) = recorded {
            // Writes prepared here after the decision (a late prepare) follow it too.
            if let Some(p) = self.take_prepared(t, txn)? {
                if committed {
                    self.write_rows(t, index, &p.writes)?;
                }
            }
            return Ok(if committed {
                ApplyOutcome::Committed
            } else {
                ApplyOutcome::Aborted
            });
        }
        let prepared = self.take_prepared(t, txn)?;
        let committed = commit && prepared.is_some();
        if let (true, Some(p)) = (committed, &prepared) {
            self.write_rows(t, index, &p.writes)?;
        }
        let mut record = index.to_le_bytes().to_vec();
        record.push(u8::from(committed));
        t.decisions
            .insert(id.as_slice(), record.as_slice())
            .map_err(|e| self.err(e))?;
        Ok(if committed {
            ApplyOutcome::Committed
        } else {
            ApplyOutcome::Aborted
        })
    }

    fn corrupt(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            message: format!("{what}: {e}"),
        }
    }

    /// Whether a prepared transaction holds one of `keys` (as far as this replica has applied).
    pub fn held<'k>(&self, mut keys: impl Iterator<Item = &'k [u8]>) -> Result<bool, StoreError> {
        if self.locked_rows.load(Ordering::Relaxed) == 0 {
            return Ok(false);
        }
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let locks = txn.open_table(LOCKS).map_err(|e| self.err(e))?;
        keys.try_fold(false, |held, key| {
            Ok(held || locks.get(key).map_err(|e| self.err(e))?.is_some())
        })
    }

    /// The prepared transactions this replica holds, with their coordinator shards.
    pub fn prepared(&self) -> Result<Vec<(TxnId, ShardId)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(PREPARED).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let id = TxnId::from_be_bytes(
                k.value()
                    .try_into()
                    .map_err(|e| self.corrupt("a prepared transaction id", e))?,
            );
            let p: PreparedTxn =
                bincode::deserialize(v.value()).map_err(|e| self.corrupt("a prepared transaction", e))?;
            out.push((id, p.coordinator));
        }
        Ok(out)
    }

    /// What the statement of an applied request reported, if that request was applied.
    pub fn request_outcome(&self, request_id: u128) -> Result<Option<WriteOutcome>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(REQUESTS).map_err(|e| self.err(e))?;
        let rid = request_id.to_be_bytes();
        let Some(v) = table.get(rid.as_slice()).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let bytes = v.value();
        let outcome = bytes
            .get(8..)
            .and_then(|b| bincode::deserialize(b).ok())
            .unwrap_or_default();
        Ok(Some(outcome))
    }

    /// A checksum of every stored row (keys, versions and values, in key order) with the
    /// applied log index it describes, read in one transaction: replicas that applied the same
    /// log have the same checksum.
    pub fn checksum(&self) -> Result<(Option<u64>, u64, u64), StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let applied: Option<LogId> = meta
            .get("applied")
            .map_err(|e| self.err(e))?
            .and_then(|g| bincode::deserialize::<Option<LogId>>(g.value()).ok())
            .flatten();
        let rows = txn.open_table(ROWS).map_err(|e| self.err(e))?;
        // FNV-1a, 64 bits: stable across processes and versions.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        let mut count = 0u64;
        for item in rows.iter().map_err(|e| self.err(e))? {
            let (k, v) = item.map_err(|e| self.err(e))?;
            feed(&(k.value().len() as u32).to_le_bytes());
            feed(k.value());
            feed(&(v.value().len() as u32).to_le_bytes());
            feed(v.value());
            count += 1;
        }
        // The multi-shard transactions' state must agree as well (not counted as rows).
        for def in [PREPARED, LOCKS, DECISIONS] {
            feed(def.name().as_bytes());
            for item in txn
                .open_table(def)
                .map_err(|e| self.err(e))?
                .iter()
                .map_err(|e| self.err(e))?
            {
                let (k, v) = item.map_err(|e| self.err(e))?;
                feed(&(k.value().len() as u32).to_le_bytes());
                feed(k.value());
                feed(&(v.value().len() as u32).to_le_bytes());
                feed(v.value());
            }
        }
        Ok((applied.map(|l| l.index), count, hash))
    }

    /// Serializes the whole replica state (for a snapshot sent to another replica).
    fn export(&self) -> Result<(SnapshotMeta, Vec<u8>), StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let collect = |def: TableDefinition<&[u8], &[u8]>| -> Result<Pairs, StoreError> {
            let table = txn.open_table(def).map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            for item in table.iter().map_err(|e| self.err(e))? {
                let (k, v) = item.map_err(|e| self.err(e))?;
                out.push((k.value().to_vec(), v.value().to_vec()));
            }
            Ok(out)
        };
        let rows = collect(ROWS)?;
        let requests = collect(REQUESTS)?;
        let staged = collect(STAGED)?;
        let prepared = collect(PREPARED)?;
        let locks = collect(LOCKS)?;
        let decisions = collect(DECISIONS)?;
        let meta_table = txn.open_table(META).map_err(|e| self.err(e))?;
        let get = |k: &str| -> Result<Option<Vec<u8>>, StoreError> {
            Ok(meta_table.get(k).map_err(|e| self.err(e))?.map(|g| g.value().to_vec()))
        };
        let applied: Option<LogId> = get("applied")?
            .and_then(|b| bincode::deserialize::<Option<LogId>>(&b).ok())
            .flatten();
        let membership: StoredMembership = get("membership")?
            .and_then(|b| bincode::deserialize(&b).ok())
            .unwrap_or_default();
        let epoch: u64 = get("epoch")?.and_then(|b| bincode::deserialize(&b).ok()).unwrap_or(0);
        let primary_key: Option<Vec<usize>> = get("primary_key")?
            .and_then(|b| bincode::deserialize::<Option<Vec<usize>>>(&b).ok())
            .flatten();
        let meta = snapshot_meta(applied, membership);
        let data = SnapshotData {
            rows,
            requests,
            staged,
            prepared,
            locks,
            decisions,
            epoch,
            primary_key,
            meta: meta.clone(),
        };
        let bytes = bincode::serialize(&data).map_err(|e| self.err(e))?;
        Ok((meta, bytes))
    }

    /// Replaces the replica state with a snapshot's.
    fn import(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let data: SnapshotData = bincode::deserialize(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            message: format!("snapshot: {e}"),
        })?;
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate).map_err(|e| self.err(e))?;
        {
            for (def, pairs) in [
                (ROWS, &data.rows),
                (REQUESTS, &data.requests),
                (STAGED, &data.staged),
                (PREPARED, &data.prepared),
                (LOCKS, &data.locks),
                (DECISIONS, &data.decisions),
            ] {
                txn.delete_table(def).map_err(|e| self.err(e))?;
                let mut table = txn.open_table(def).map_err(|e| self.err(e))?;
                for (k, v) in pairs {
                    table.insert(k.as_slice(), v.as_slice()).map_err(|e| self.err(e))?;
                }
            }
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let applied = bincode::serialize(&data.meta.last_log_id).unwrap_or_default();
            meta.insert("applied", applied.as_slice()).map_err(|e| self.err(e))?;
            let m = bincode::serialize(&data.meta.last_membership).unwrap_or_default();
            meta.insert("membership", m.as_slice()).map_err(|e| self.err(e))?;
            let e = bincode::serialize(&data.epoch).unwrap_or_default();
            meta.insert("epoch", e.as_slice()).map_err(|e| self.err(e))?;
            let pk = bincode::serialize(&data.primary_key).unwrap_or_default();
            meta.insert("primary_key", pk.as_slice()).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))?;
        self.epoch.store(data.epoch, Ordering::Relaxed);
        self.locked_rows.store(data.locks.len() as u64, Ordering::Relaxed);
        *self.primary_key.write().unwrap_or_else(|p| p.into_inner()) = data.primary_key;
        Ok(())
    }
}

/// The encoded key of `row` made of the `primary_key` columns; `None` if one is null.
pub fn primary_key_of(row: &Row, primary_key: &[usize]) -> Option<Vec<u8>> {
    let values: Option<Vec<&tessera_types::Value>> = primary_key
        .iter()
        .map(|i| row.get(*i).filter(|v| !v.is_null()))
        .collect();
    Some(tessera_types::key::encode_key(&values?))
}

/// Drops the records of `table` (values starting with the log index that wrote them) older
/// than `memory` entries.
fn forget_old(table: &mut redb::Table<&[u8], &[u8]>, index: u64, memory: u64) -> Result<(), redb::StorageError> {
    let horizon = index.saturating_sub(memory);
    table.retain(|_, v| v.len() >= 8 && u64::from_le_bytes(v[..8].try_into().unwrap_or([0; 8])) >= horizon)
}

fn snapshot_meta(applied: Option<LogId>, membership: StoredMembership) -> SnapshotMeta {
    let snapshot_id = match &applied {
        Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
        None => "empty".to_string(),
    };
    SnapshotMeta {
        last_log_id: applied,
        last_membership: membership,
        snapshot_id,
    }
}

#[derive(Serialize, Deserialize)]
struct SnapshotData {
    rows: Pairs,
    requests: Pairs,
    staged: Pairs,
    prepared: Pairs,
    locks: Pairs,
    decisions: Pairs,
    /// The epoch a split fenced the replica at.
    epoch: u64,
    /// The primary key `Control::Rekey` keyed the rows by.
    primary_key: Option<Vec<usize>>,
    meta: SnapshotMeta,
}

/// A read-only view of a replica's rows at one point in time.
pub struct RowsReader {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    /// The epoch a split fenced the replica at, as of this view.
    pub epoch: u64,
    path: PathBuf,
}

impl RowsReader {
    /// The row stored under `key`, with its version.
    pub fn get(&self, key: &[u8]) -> Result<Option<(u64, Row)>, StoreError> {
        self.stored(key, decode_row)
    }

    /// The version of the row stored under `key`, if there is one, without decoding it.
    pub fn version(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        self.stored(key, stored_version)
    }

    /// What `decode` reads from the bytes stored under `key`, if any are.
    fn stored<T>(&self, key: &[u8], decode: impl FnOnce(&[u8]) -> Option<T>) -> Result<Option<T>, StoreError> {
        let Some(v) = self.table.get(key).map_err(|e| StoreError::Redb {
            path: self.path.clone(),
            message: e.to_string(),
        })?
        else {
            return Ok(None);
        };
        decode(v.value()).map(Some).ok_or_else(|| StoreError::Corrupt {
            path: self.path.clone(),
            message: "undecodable row".into(),
        })
    }

    /// Rows with keys in `range`, in key order.
    pub fn range(
        &self,
        range: &tessera_types::key::KeyRange,
    ) -> Result<impl Iterator<Item = Result<StoredRow, StoreError>> + '_, StoreError> {
        use std::ops::Bound;
        fn as_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
            match b {
                Bound::Included(v) => Bound::Included(v.as_slice()),
                Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
                Bound::Unbounded => Bound::Unbounded,
            }
        }
        let empty = range.is_empty();
        let iter = self
            .table
            .range::<&[u8]>((as_slice(&range.start), as_slice(&range.end)))
            .map_err(|e| StoreError::Redb {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        let path = self.path.clone();
        Ok(iter.take_while(move |_| !empty).map(move |item| {
            let (k, v) = item.map_err(|e| StoreError::Redb {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let (version, row) = decode_row(v.value()).ok_or_else(|| StoreError::Corrupt {
                path: path.clone(),
                message: "undecodable row".into(),
            })?;
            Ok((k.value().to_vec(), version, row))
        }))
    }
}

/// openraft's view of a replica's store.
pub struct StateMachine {
    pub store: Arc<Store>,
    replica: ReplicaId,
    /// Meta of the last snapshot built, so openraft can purge the log behind it.
    built: Arc<Mutex<Option<SnapshotMeta>>>,
}

impl StateMachine {
    pub fn new(store: Arc<Store>, replica: ReplicaId) -> StateMachine {
        StateMachine {
            store,
            replica,
            built: Arc::default(),
        }
    }
}

fn io_err(e: StoreError) -> StorageError {
    StorageIOError::write_state_machine(&e).into()
}

impl RaftSnapshotBuilder<ShardRaft> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ShardRaft>, StorageError> {
        let store = self.store.clone();
        let replica = self.replica;
        // A durable commit is the snapshot: the log may be purged up to what it covers. The data
        // itself is only serialized when a replica needs it (get_current_snapshot).
        let meta = tokio::task::spawn_blocking(move || -> Result<SnapshotMeta, StoreError> {
            let (applied, membership) = store.flush()?;
            Ok(snapshot_meta(applied, membership))
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(None, &e))?
        .map_err(io_err)?;
        tracing::debug!(replica, snapshot = %meta.snapshot_id, "replica state flushed for a snapshot");
        *self.built.lock().unwrap_or_else(|p| p.into_inner()) = Some(meta.clone());
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}

impl RaftStateMachine<ShardRaft> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        self.store.applied().map_err(io_err)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<ApplyOutcome>>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<ShardRaft>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.apply_batch(entries))
            .await
            .map_err(|e| StorageIOError::write_state_machine(&e))?
            .map_err(io_err)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        StateMachine {
            store: self.store.clone(),
            replica: self.replica,
            built: self.built.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let store = self.store.clone();
        let bytes = snapshot.into_inner();
        tracing::info!(
            replica = self.replica,
            snapshot = %meta.snapshot_id,
            bytes = bytes.len(),
            "installing a snapshot from the primary"
        );
        tokio::task::spawn_blocking(move || store.import(&bytes))
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?
            .map_err(io_err)?;
        *self.built.lock().unwrap_or_else(|p| p.into_inner()) = Some(meta.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<ShardRaft>>, StorageError> {
        if self.built.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return Ok(None);
        }
        let store = self.store.clone();
        let (meta, bytes) = tokio::task::spawn_blocking(move || store.export())
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?
            .map_err(|e| StorageError::from(StorageIOError::read_snapshot(None, &e)))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
