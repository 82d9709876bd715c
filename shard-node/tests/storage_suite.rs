//! openraft's storage conformance suite against the real shard stack: a group of the node's
//! write-ahead log (`tessera_wal::GroupLog<ShardRaft>`) and the redb state machine, each case on
//! a fresh data directory.

use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};
use tessera_shard_node::raft::ShardRaft;
use tessera_shard_node::store::{StateMachine, Store};
use tessera_wal::{GroupLog, SyncMode, Wal};

/// Keeps the data directory and the log alive for one suite case.
struct Guard {
    _wal: Wal<ShardRaft>,
    _dir: tempfile::TempDir,
}

struct ShardStackBuilder;

impl StoreBuilder<ShardRaft, GroupLog<ShardRaft>, StateMachine, Guard> for ShardStackBuilder {
    async fn build(&self) -> Result<(Guard, GroupLog<ShardRaft>, StateMachine), StorageError<u64>> {
        let dir = tempfile::Builder::new()
            .prefix("tessera-shard-suite")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let wal = Wal::<ShardRaft>::open(&dir.path().join("wal"), SyncMode::Durable)
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let store =
            Store::open(&dir.path().join("replica-7.redb")).map_err(|e| StorageIOError::read_state_machine(&e))?;
        let log = wal.group(7);
        Ok((Guard { _wal: wal, _dir: dir }, log, StateMachine::new(store, 7)))
    }
}

#[test]
fn wal_group_and_redb_state_machine_pass_the_openraft_storage_suite() {
    if let Err(e) = Suite::test_all(ShardStackBuilder) {
        panic!("openraft storage suite failed on the shard stack (GroupLog + redb StateMachine): {e}");
    }
}
