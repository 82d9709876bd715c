//! openraft's storage conformance suite run against a `GroupLog`: a fresh `Wal` in a temporary
//! directory for every case, paired with a minimal in-memory state machine (the log crate does
//! not know the shard state machine; `tessera-shard-node` runs the suite against the real one).

mod common;

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use common::{TestEntry, TestRaft};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    BasicNode, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use tessera_wal::{GroupLog, SyncMode, Wal};

/// What the memory state machine holds: enough for the suite (applied log id, membership) plus
/// the payload ids applied, so a snapshot carries real data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MemData {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    applied_ids: Vec<u64>,
}

#[derive(Default)]
struct MemInner {
    data: MemData,
    builds: u64,
    current: Option<(SnapshotMeta<u64, BasicNode>, Vec<u8>)>,
}

#[derive(Clone, Default)]
struct MemStateMachine {
    inner: Arc<Mutex<MemInner>>,
}

impl MemStateMachine {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RaftSnapshotBuilder<TestRaft> for MemStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TestRaft>, StorageError<u64>> {
        let mut inner = self.lock();
        let bytes = bincode::serialize(&inner.data).map_err(|e| StorageIOError::read_state_machine(&e))?;
        inner.builds += 1;
        let snapshot_id = match &inner.data.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, inner.builds),
            None => format!("--{}", inner.builds),
        };
        let meta = SnapshotMeta {
            last_log_id: inner.data.last_applied,
            last_membership: inner.data.membership.clone(),
            snapshot_id,
        };
        inner.current = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TestRaft> for MemStateMachine {
    type SnapshotBuilder = MemStateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let inner = self.lock();
        Ok((inner.data.last_applied, inner.data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError<u64>>
    where
        I: IntoIterator<Item = TestEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.lock();
        let mut replies = Vec::new();
        for entry in entries {
            inner.data.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(p) => inner.data.applied_ids.push(p.id),
                EntryPayload::Membership(m) => inner.data.membership = StoredMembership::new(Some(entry.log_id), m),
            }
            replies.push(());
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = snapshot.into_inner();
        let mut data: MemData =
            bincode::deserialize(&bytes).map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        data.last_applied = meta.last_log_id;
        data.membership = meta.last_membership.clone();
        let mut inner = self.lock();
        inner.data = data;
        inner.current = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TestRaft>>, StorageError<u64>> {
        let inner = self.lock();
        Ok(inner.current.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}

/// Keeps the log's directory and the `Wal` alive for one suite case.
struct Guard {
    _wal: Wal<TestRaft>,
    _dir: tempfile::TempDir,
}

struct WalBuilder;

impl StoreBuilder<TestRaft, GroupLog<TestRaft>, MemStateMachine, Guard> for WalBuilder {
    async fn build(&self) -> Result<(Guard, GroupLog<TestRaft>, MemStateMachine), StorageError<u64>> {
        let dir = common::tempdir();
        let wal = Wal::<TestRaft>::open(dir.path(), SyncMode::Durable).map_err(|e| StorageIOError::read_logs(&e))?;
        let log = wal.group(1);
        Ok((Guard { _wal: wal, _dir: dir }, log, MemStateMachine::default()))
    }
}

#[test]
fn group_log_passes_the_openraft_storage_suite() {
    if let Err(e) = Suite::test_all(WalBuilder) {
        panic!("openraft storage suite failed on GroupLog: {e}");
    }
}
