//! How a shard's replicas replicate: the openraft type configuration (what a log entry
//! carries), the Raft timing, and the network that carries Raft messages between nodes over the
//! shared RPC connections, tagged with the shard they belong to.

use std::io::Cursor;
use std::sync::Arc;

use openraft::error::{InstallSnapshotError, RPCError, RaftError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};
use tessera_types::fragment::WriteOutcome;
use tessera_types::rpc::{RaftKind, Request, RequestId, RpcError, RpcPool, TxnId};
use tessera_types::schema::{NodeId, ReplicaId, ShardId};
use tessera_types::Row;

/// A statement's or transaction's row writes, which commit together, each conditioned on the
/// version of the row it replaces (optimistic concurrency: a write computed from a row that
/// changed in between is refused as a whole). `outcome` is what the statement reports; it is
/// remembered with the request id, so a retried request gets the same answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteSet {
    pub request_id: RequestId,
    /// The placement epoch the writes were computed at. Once a split has fenced the shard at a
    /// newer epoch (`Control::Fence`), a set computed before is refused (`ApplyOutcome::Stale`):
    /// its rows may belong to the new shard now.
    pub epoch: u64,
    pub writes: Vec<KeyWrite>,
    pub outcome: WriteOutcome,
    pub piece: Piece,
    /// What a shard split asks of the state machine besides row writes.
    pub control: Option<Control>,
}

/// What a write set asks of the state machine besides applying row writes: its part in a
/// shard split (`tessera_split_shard`) and in a multi-shard commit (see `txn`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Control {
    /// On the shard being split: raise the replica's epoch to the set's, so that every write
    /// set computed at an older epoch is refused from here on, whatever replica proposed it.
    Fence,
    /// On the shard split off: remember the outcomes of the requests its source applied, so a
    /// write retried after the split is still applied at most once.
    Remember(Vec<(RequestId, WriteOutcome)>),
    /// Phase one of a multi-shard commit: check the set's writes as a commit would, then keep
    /// them as the prepared writes of `txn` instead of applying them. Their rows are held
    /// until the transaction is decided: any other write set touching one is refused
    /// (`ApplyOutcome::Locked`).
    Prepare { txn: TxnId, coordinator: ShardId },
    /// On the coordinator shard: record the transaction's outcome unless one is recorded
    /// already (which then wins), and apply or drop the prepared writes it holds here. A
    /// commit without prepared writes here records an abort. Answers `Committed` or
    /// `Aborted`, whatever was asked.
    Decide { txn: TxnId, commit: bool },
    /// On another shard of a decided transaction: apply or drop its prepared writes here.
    Finish { txn: TxnId, commit: bool },
    /// `ALTER TABLE ... ADD PRIMARY KEY`: store every row under the key made of these columns
    /// (refused as a `Conflict`, changing nothing, if two rows would share one or a value is
    /// null), and raise the replica's epoch to the set's, like `Fence`.
    Rekey { primary_key: Vec<usize> },
}

/// Which part of its statement's writes a write set carries. A statement that writes more
/// than one log entry should hold (a big DELETE, say) is proposed in pieces: the state
/// machine stages the leading ones, and the last applies them all, with itself, atomically.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Piece {
    /// All of them.
    #[default]
    Whole,
    /// The staged piece number `n` (from 0).
    Staged(u32),
    /// The last piece, after this many staged ones.
    Last(u32),
}

/// A shard's log entry: the write sets proposed together (see `proposer`). Each is checked and
/// applied on its own, in order, so one that conflicts leaves the others unaffected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteBatch {
    /// Shared: openraft copies an entry for the log, for each follower it sends it to and for
    /// applying it, and an entry may hold megabytes of rows.
    pub sets: Arc<Vec<WriteSet>>,
}

impl WriteBatch {
    pub fn new(sets: Vec<WriteSet>) -> WriteBatch {
        WriteBatch { sets: Arc::new(sets) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyWrite {
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The version the row had when the write was computed; `None` when it did not exist.
    pub expected: Option<u64>,
    /// The new row; `None` deletes it.
    pub row: Option<Row>,
}

/// What applying a write set did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    Applied,
    /// A row changed since the write set was computed; nothing was written (and nothing is
    /// remembered: the request may be computed again and retried under the same id).
    Conflict,
    /// This request id was applied before; nothing was written this time. The first outcome
    /// is in the store (`Store::request_outcome`).
    Duplicate,
    /// The set was computed at an epoch older than the replica's (a split fenced the shard in
    /// between); nothing was written or remembered.
    Stale,
    /// A row it writes is held by a prepared multi-shard transaction (or, for a split's fence,
    /// the shard holds one): nothing was written; it may be tried again once that is decided.
    Locked,
    /// A `Decide`: the transaction's recorded outcome is commit.
    Committed,
    /// A `Decide`: the transaction's recorded outcome is abort.
    Aborted,
}

/// A group member as Raft records it: the node that hosts the replica. Addresses are looked up
/// in the current cluster map when a message is sent, so a node may change address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaNode {
    pub node: NodeId,
}

openraft::declare_raft_types!(
    pub ShardRaft:
        D = WriteBatch,
        R = Vec<ApplyOutcome>,
        NodeId = ReplicaId,
        Node = ReplicaNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<ShardRaft>;
pub type LogId = openraft::LogId<ReplicaId>;
pub type StoredMembership = openraft::StoredMembership<ReplicaId, ReplicaNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<ReplicaId, ReplicaNode>;
pub type StorageError = openraft::StorageError<ReplicaId>;

/// The longest election timeout of shard groups, which is also how long a follower refuses to
/// vote after it last heard from its primary (openraft's leader lease).
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 600;

/// How often a primary sends heartbeats to its followers. A node sends those of all the groups
/// it leads at the same moment (`Node::beat_groups`), so openraft's own per-group heartbeat
/// timers are off; the interval still bounds how long openraft waits for an AppendEntries.
pub const HEARTBEAT_MS: u64 = 100;

/// Raft timing for shard groups. Heartbeats every 100 ms. openraft's leader lease makes a
/// follower that has a primary refuse to vote until `election_timeout_max` (600 ms) has passed
/// since it last heard from it, and wait that lease plus its election timeout (450–600 ms)
/// before standing itself: left alone, a failover takes 1.05–1.2 s, which is why the range is
/// narrow and short. When the primary's process is gone, `Node::watch_primaries` has a
/// follower stand just after the lease instead (the voters still enforce it). openraft gives every
/// AppendEntries one heartbeat interval to be answered (a follower's fsync included): a loaded
/// follower's answer can come late, and the entries are then sent again. The read lease
/// (`replica::LEADER_LEASE`) must stay below the minimum. A snapshot is taken every
/// `snapshot_after` entries (`NodeConfig::snapshot_after`).
pub fn raft_config(snapshot_after: u64) -> Arc<openraft::Config> {
    let config = openraft::Config {
        cluster_name: "tessera-shard".into(),
        heartbeat_interval: HEARTBEAT_MS,
        enable_heartbeat: false,
        election_timeout_min: 450,
        election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
        install_snapshot_timeout: 5_000,
        max_payload_entries: 512,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_after),
        max_in_snapshot_log_to_keep: snapshot_after.min(500),
        purge_batch_size: snapshot_after.min(256),
        ..Default::default()
    };
    Arc::new(
        config
            .validate()
            .unwrap_or_else(|e| panic!("built-in Raft configuration is invalid: {e}")),
    )
}

/// Creates network clients for one shard's group.
pub struct ShardNetwork {
    pub shard: ShardId,
    pub peers: Arc<Peers>,
}

/// Where other nodes are: the RPC pool, the latest cluster map's node addresses, and the nodes
/// that host each shard's replicas.
pub struct Peers {
    pub pool: Arc<RpcPool>,
    pub addrs: std::sync::RwLock<std::collections::HashMap<NodeId, String>>,
    pub shards: std::sync::RwLock<std::collections::HashMap<ShardId, Vec<NodeId>>>,
}

impl Peers {
    pub fn addr(&self, node: NodeId) -> Option<String> {
        self.addrs.read().unwrap_or_else(|p| p.into_inner()).get(&node).cloned()
    }

    /// The nodes hosting replicas of `shard`, as the latest map has them.
    pub fn shard_nodes(&self, shard: ShardId) -> Vec<NodeId> {
        self.shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&shard)
            .cloned()
            .unwrap_or_default()
    }
}

pub struct ShardPeer {
    shard: ShardId,
    target: ReplicaId,
    node: NodeId,
    peers: Arc<Peers>,
}

impl RaftNetworkFactory<ShardRaft> for ShardNetwork {
    type Network = ShardPeer;

    async fn new_client(&mut self, target: ReplicaId, node: &ReplicaNode) -> ShardPeer {
        ShardPeer {
            shard: self.shard,
            target,
            node: node.node,
            peers: self.peers.clone(),
        }
    }
}

impl ShardPeer {
    async fn send<Req: Serialize, Resp: for<'de> Deserialize<'de>, E>(
        &self,
        kind: RaftKind,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<ReplicaId, ReplicaNode, RaftError<ReplicaId, E>>>
    where
        E: std::error::Error + for<'de> Deserialize<'de>,
    {
        let client = self.peers.addr(self.node).map(|addr| self.peers.pool.client(&addr));
        let (shard, to) = (self.shard, self.target);
        tessera_types::rpc::raft::send::<ShardRaft, _, _, _>(
            client.as_deref(),
            self.target,
            req,
            |payload| Request::Raft {
                shard,
                to,
                kind,
                payload,
            },
            option.hard_ttl(),
        )
        .await
    }
}

/// The most bytes of entries one AppendEntries carries (a single larger entry goes alone): small
/// enough to be written and fsynced by a busy follower within a heartbeat interval.
const APPEND_BYTES: u64 = 1 << 20;

/// How many of `entries` (at least one) fit in one AppendEntries message of `APPEND_BYTES`.
fn entries_that_fit(entries: &[openraft::Entry<ShardRaft>]) -> usize {
    let mut bytes = 0;
    entries
        .iter()
        .take_while(|e| {
            bytes += bincode::serialized_size(e).unwrap_or(u64::MAX);
            bytes <= APPEND_BYTES
        })
        .count()
        .max(1)
        .min(entries.len())
}

impl RaftNetwork<ShardRaft> for ShardPeer {
    /// Sends at most `APPEND_BYTES` of entries at a time: openraft allows an AppendEntries
    /// one heartbeat interval, so a follower catching up gets its backlog in pieces, each
    /// reported as a partial success so that openraft sends the rest next.
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<ShardRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<ReplicaId>, RPCError<ReplicaId, ReplicaNode, RaftError<ReplicaId>>> {
        let fit = entries_that_fit(&rpc.entries);
        if fit == rpc.entries.len() {
            return self.send(RaftKind::AppendEntries, &rpc, &option).await;
        }
        rpc.entries.truncate(fit);
        let last = rpc.entries.last().map(|e| e.log_id);
        match self.send(RaftKind::AppendEntries, &rpc, &option).await? {
            AppendEntriesResponse::Success => Ok(AppendEntriesResponse::PartialSuccess(last)),
            other => Ok(other),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<ShardRaft>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<ReplicaId>,
        RPCError<ReplicaId, ReplicaNode, RaftError<ReplicaId, InstallSnapshotError>>,
    > {
        self.send(RaftKind::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<ReplicaId>,
        option: RPCOption,
    ) -> Result<VoteResponse<ReplicaId>, RPCError<ReplicaId, ReplicaNode, RaftError<ReplicaId>>> {
        self.send(RaftKind::Vote, &rpc, &option).await
    }
}

/// Serves an incoming Raft message for `raft`, returning the serialized result.
pub async fn handle_raft_message(raft: &Raft, kind: RaftKind, payload: &[u8]) -> Result<Vec<u8>, RpcError> {
    tessera_types::rpc::raft::handle(raft, kind, payload).await
}
