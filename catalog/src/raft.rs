//! The catalog's own Raft group (1, 3 or more members): every change to the catalog's state is
//! a log entry (a batch of `Command`s, applied all or nothing), committed once a majority of
//! members hold it on disk. The log is the member's write-ahead log (`tessera-wal`, group 0);
//! the state machine is `CatalogState`, saved to `catalog.json` with the log index it covers
//! after every applied batch, which also serves as the snapshot a lagging member is sent.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::error::{InstallSnapshotError, RPCError, RaftError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, StorageError, StorageIOError};
use serde::{Deserialize, Serialize};
use tessera_types::rpc::{RaftKind, Request, RpcPool};
use tessera_types::schema::ClusterMap;
use tessera_types::ExecError;
use tokio::sync::watch;

use crate::state::{CatalogState, Command};

/// A catalog member's id (1 for a single catalog; 1 to N for the members of `--peers`).
pub type MemberId = u64;

/// A member as the group records it: where the others reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub addr: String,
}

/// What applying one batch of commands returns: one result per command, or the error of the
/// command that refused (and then nothing of the batch applied).
pub type BatchResult = Result<Vec<Option<u64>>, ExecError>;

openraft::declare_raft_types!(
    pub CatalogRaft:
        D = Vec<Command>,
        R = BatchResult,
        NodeId = MemberId,
        Node = Member,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<CatalogRaft>;
type LogId = openraft::LogId<MemberId>;
type StoredMembership = openraft::StoredMembership<MemberId, Member>;
type SnapshotMeta = openraft::SnapshotMeta<MemberId, Member>;

/// Raft timing for the catalog: the same as a shard's (`shard-node/src/raft.rs`).
pub fn raft_config() -> Arc<openraft::Config> {
    let config = openraft::Config {
        cluster_name: "tessera-catalog".into(),
        heartbeat_interval: 200,
        election_timeout_min: 700,
        election_timeout_max: 1_400,
        install_snapshot_timeout: 5_000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1_000),
        max_in_snapshot_log_to_keep: 100,
        purge_batch_size: 64,
        ..Default::default()
    };
    Arc::new(
        config
            .validate()
            .unwrap_or_else(|e| panic!("built-in Raft configuration is invalid: {e}")),
    )
}

/// The applied state and how far it goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied {
    pub state: CatalogState,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

/// The state machine's data, shared with the catalog service, which reads it and publishes
/// each new map to its long-polling routers and nodes.
pub struct Shared {
    pub applied: Mutex<Applied>,
    pub map_tx: watch::Sender<Arc<ClusterMap>>,
    path: PathBuf,
}

impl Shared {
    /// Loads `catalog.json` from `dir` (an empty state when there is none). A file written
    /// before the catalog was replicated holds the bare state; it is taken as the state at the
    /// start of the log.
    pub fn load(dir: &Path) -> Result<Arc<Shared>, String> {
        let path = dir.join("catalog.json");
        let applied = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Applied>(&bytes) {
                Ok(applied) => applied,
                Err(_) => Applied {
                    state: serde_json::from_slice(&bytes).map_err(|e| format!("unreadable: {e}"))?,
                    ..Applied::default()
                },
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Applied::default(),
            Err(e) => return Err(e.to_string()),
        };
        let (map_tx, _) = watch::channel(Arc::new(applied.state.map.clone()));
        Ok(Arc::new(Shared {
            applied: Mutex::new(applied),
            map_tx,
            path,
        }))
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves `applied` durably (write, fsync, rename, fsync the directory).
    fn save(&self, applied: &Applied) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(applied).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Makes `next` the applied state: saved first, then visible.
    fn install(&self, next: Applied) -> std::io::Result<()> {
        self.save(&next)?;
        let changed = next.state.map.version != self.lock().state.map.version;
        let map = next.state.map.clone();
        *self.lock() = next;
        if changed {
            self.map_tx.send_replace(Arc::new(map));
        }
        Ok(())
    }
}

/// openraft's view of the catalog's state.
pub struct StateMachine {
    pub shared: Arc<Shared>,
}

fn snapshot_of(applied: &Applied) -> Result<Snapshot<CatalogRaft>, serde_json::Error> {
    let bytes = serde_json::to_vec(applied)?;
    let snapshot_id = match &applied.last_applied {
        Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
        None => "empty".to_string(),
    };
    Ok(Snapshot {
        meta: SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
            snapshot_id,
        },
        snapshot: Box::new(Cursor::new(bytes)),
    })
}

impl RaftSnapshotBuilder<CatalogRaft> for StateMachine {
    /// The applied state is saved after every batch, so a snapshot is a copy of it.
    async fn build_snapshot(&mut self) -> Result<Snapshot<CatalogRaft>, StorageError<MemberId>> {
        let applied = self.shared.lock().clone();
        snapshot_of(&applied).map_err(|e| StorageIOError::read_snapshot(None, &e).into())
    }
}

impl RaftStateMachine<CatalogRaft> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError<MemberId>> {
        let applied = self.shared.lock();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BatchResult>, StorageError<MemberId>>
    where
        I: IntoIterator<Item = openraft::Entry<CatalogRaft>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut next = self.shared.lock().clone();
        let mut results = Vec::new();
        for entry in entries {
            next.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => results.push(Ok(Vec::new())),
                EntryPayload::Membership(m) => {
                    next.membership = StoredMembership::new(Some(entry.log_id), m);
                    results.push(Ok(Vec::new()));
                }
                EntryPayload::Normal(commands) => {
                    let mut trial = next.state.clone();
                    let outcome: BatchResult = commands.into_iter().map(|c| trial.apply(c)).collect();
                    if outcome.is_ok() {
                        next.state = trial;
                    }
                    results.push(outcome);
                }
            }
        }
        self.shared
            .install(next)
            .map_err(|e| StorageError::from(StorageIOError::write_state_machine(&e)))?;
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        StateMachine {
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<MemberId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<MemberId>> {
        let mut applied: Applied = serde_json::from_slice(&snapshot.into_inner())
            .map_err(|e| StorageError::from(StorageIOError::read_snapshot(None, &e)))?;
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        tracing::info!(snapshot = %meta.snapshot_id, "installing a snapshot of the catalog from its leader");
        self.shared
            .install(applied)
            .map_err(|e| StorageIOError::write_state_machine(&e).into())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<CatalogRaft>>, StorageError<MemberId>> {
        let applied = self.shared.lock().clone();
        snapshot_of(&applied)
            .map(Some)
            .map_err(|e| StorageIOError::read_snapshot(None, &e).into())
    }
}

/// Creates network clients to the other members.
pub struct CatalogNetwork {
    pub pool: Arc<RpcPool>,
}

pub struct CatalogPeer {
    target: MemberId,
    addr: String,
    pool: Arc<RpcPool>,
}

impl RaftNetworkFactory<CatalogRaft> for CatalogNetwork {
    type Network = CatalogPeer;

    async fn new_client(&mut self, target: MemberId, node: &Member) -> CatalogPeer {
        CatalogPeer {
            target,
            addr: node.addr.clone(),
            pool: self.pool.clone(),
        }
    }
}

impl CatalogPeer {
    async fn send<Req: Serialize, Resp: for<'de> Deserialize<'de>, E>(
        &self,
        kind: RaftKind,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<MemberId, Member, RaftError<MemberId, E>>>
    where
        E: std::error::Error + for<'de> Deserialize<'de>,
    {
        let client = self.pool.client(&self.addr);
        tessera_types::rpc::raft::send::<CatalogRaft, _, _, _>(
            Some(&client),
            self.target,
            req,
            |payload| Request::CatalogRaft { kind, payload },
            option.hard_ttl(),
        )
        .await
    }
}

impl RaftNetwork<CatalogRaft> for CatalogPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<CatalogRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<MemberId>, RPCError<MemberId, Member, RaftError<MemberId>>> {
        self.send(RaftKind::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<CatalogRaft>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<MemberId>, RPCError<MemberId, Member, RaftError<MemberId, InstallSnapshotError>>>
    {
        self.send(RaftKind::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<MemberId>,
        option: RPCOption,
    ) -> Result<VoteResponse<MemberId>, RPCError<MemberId, Member, RaftError<MemberId>>> {
        self.send(RaftKind::Vote, &rpc, &option).await
    }
}
