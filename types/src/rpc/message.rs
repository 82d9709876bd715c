//! The messages routers, shard nodes and the catalog exchange. Every request gets one reply,
//! or (for scans) a stream of replies ending with `Response::Done`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::ExecError;
use crate::fragment::{AggRow, ScanFragment, ShardRef, TableLayout, WriteFragment, WriteOutcome};
use crate::schema::{ClusterMap, ColumnDef, NodeId, Partitioning, ReplicaId, Role, ShardBounds, ShardId, TaskInfo};
use crate::value::Row;

/// Version of the framed protocol; both ends refuse a peer that speaks another.
pub const PROTOCOL_VERSION: u16 = 2;

/// Identifies a transaction a router opened on a shard.
pub type TxnId = u64;

/// Identifies one attempt of a client write across retries, so a retried write is applied at
/// most once.
pub type RequestId = u128;

/// How a write relates to transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnScope {
    /// Execute and commit at once (autocommit).
    Single,
    /// Open this transaction on the shard and execute inside it; nothing is durable until
    /// `Commit`.
    Begin(TxnId),
    /// Execute inside this transaction, which an earlier `Begin` opened on this shard; fails
    /// with `TxnGone` if the shard no longer has it (it restarted, or the connection broke).
    Continue(TxnId),
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadConsistency {
    /// Sees every write acknowledged before the read began, on any replica (read index).
    Linearizable,
    /// May be served by a follower that heard from its primary within `max_staleness_ms`.
    Follower { max_staleness_ms: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    // ---- router -> shard node ----
    /// Stream the fragment's output in batches of about `batch_rows` rows. With `txn`, the
    /// scan sees that transaction's uncommitted writes.
    Scan {
        shard: ShardRef,
        layout: Arc<TableLayout>,
        txn: Option<TxnId>,
        consistency: ReadConsistency,
        fragment: ScanFragment,
        batch_rows: u32,
    },
    Write {
        shard: ShardRef,
        layout: Arc<TableLayout>,
        scope: TxnScope,
        request_id: RequestId,
        fragment: WriteFragment,
    },
    /// Make a transaction's writes durable and visible, atomically.
    Commit {
        shard: ShardRef,
        txn: TxnId,
        request_id: RequestId,
    },
    /// Discard a transaction (unknown transactions are ignored).
    Rollback {
        shard: ShardRef,
        txn: TxnId,
    },
    /// A multi-shard commit, phase one, on every shard the transaction wrote to: make its
    /// writes durable as prepared, holding their rows against every other write, or fail (a
    /// row changed or is held by another prepared transaction). `coordinator` is the shard
    /// whose decision (`Decide`) settles the transaction.
    Prepare {
        shard: ShardRef,
        txn: TxnId,
        coordinator: ShardId,
        request_id: RequestId,
    },
    /// On the coordinator shard of a prepared transaction: record its outcome, once and for
    /// all, and apply (commit) or drop (abort) the coordinator's own prepared writes. A
    /// decision recorded earlier wins over the one asked for; a commit is refused (and the
    /// abort recorded) if the coordinator holds no prepared writes of the transaction.
    /// Answered with `Decided`.
    Decide {
        shard: ShardRef,
        txn: TxnId,
        commit: bool,
    },
    /// A multi-shard commit, phase two, on the other shards once the coordinator decided:
    /// apply or drop the transaction's prepared writes (nothing if it has none there).
    Finish {
        shard: ShardRef,
        txn: TxnId,
        commit: bool,
    },

    // ---- catalog -> shard node ----
    /// Create (or confirm) a replica of a shard, as a member of a group with `members`.
    CreateReplica {
        shard: ShardId,
        replica: ReplicaId,
        members: Vec<(ReplicaId, NodeId)>,
        epoch: u64,
    },
    /// Delete a replica and its data.
    DropReplica {
        shard: ShardId,
        replica: ReplicaId,
    },
    /// On a shard's primary: make `voters` the group's voting members, after adding `add` (a
    /// replica already created on its node) as a learner and letting it catch up. Answered
    /// with `CatchingUp` while the new replica is still behind; asked again until `Ok`.
    ChangeReplicas {
        shard: ShardId,
        add: Option<(ReplicaId, NodeId)>,
        voters: Vec<ReplicaId>,
    },

    /// A shard split (`tessera_split_shard`), on the primary of the shard being split: fence
    /// it at `epoch`, then stream (`Response::SplitRows`) the rows the bounds in `moved`
    /// hold and every request it remembers.
    SplitRead {
        shard: ShardId,
        epoch: u64,
        request_id: RequestId,
        moved: Arc<TableLayout>,
        batch_rows: u32,
    },
    /// On the primary of the shard split off: stage part `part` of what `SplitRead` sent;
    /// the `last` part applies them all at once.
    SplitIngest {
        shard: ShardRef,
        request_id: RequestId,
        part: u32,
        last: bool,
        rows: Vec<(Vec<u8>, Row)>,
        requests: Vec<(RequestId, WriteOutcome)>,
    },
    /// On the primary of the shard being split, once the shard split off holds its rows:
    /// delete the rows the narrowed bounds in `kept` no longer hold (`Response::Written`).
    SplitCleanup {
        shard: ShardId,
        epoch: u64,
        request_id: RequestId,
        kept: Arc<TableLayout>,
    },

    /// `ALTER TABLE ... ADD PRIMARY KEY`, on the primary of each of the table's shards: fence
    /// the shard at `epoch` (writes planned before are refused from then on), check that the
    /// rows' new keys (`layout.primary_key`) are unique and not null, and unless `check_only`,
    /// store every row under its new key. Repeatable under the same request id.
    Rekey {
        shard: ShardId,
        epoch: u64,
        request_id: RequestId,
        layout: Arc<TableLayout>,
        check_only: bool,
    },

    /// The state of every replica a node hosts (for `tessera.replicas`).
    NodeStatus,
    /// A checksum of every replica's rows on a node (for `tessera.checksums`).
    Checksums,

    // ---- shard node -> shard node ----
    /// Asks a shard's primary for its read index (confirming it still leads).
    ReadIndex {
        shard: ShardId,
    },
    /// A Raft message for one group's replica, serialized by the replication layer.
    Raft {
        shard: ShardId,
        to: ReplicaId,
        kind: RaftKind,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },

    // ---- catalog member -> catalog member ----
    /// A Raft message of the catalog's own group.
    CatalogRaft {
        kind: RaftKind,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },

    // ---- node / router -> catalog ----
    RegisterNode {
        node: Option<NodeId>,
        addr: String,
    },
    Heartbeat {
        node: NodeId,
    },
    /// The cluster map, as soon as its version exceeds `newer_than` (long poll; answered with
    /// the current map after `wait_ms` at most).
    GetMap {
        newer_than: u64,
        wait_ms: u64,
    },
    Ddl(DdlRequest),
    /// The catalog's tasks, running and recently finished (for `tessera.tasks`).
    Tasks,
    /// A change of placement asked for through an admin function; answered with `Admin`.
    Admin(AdminRequest),
}

/// The admin functions (`SELECT tessera_move_replica('sh1', 2, 4)`), carried out by the
/// catalog as tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Moves the replica of a shard (named as its partition, or its unpartitioned table) from
    /// one node to another.
    MoveReplica { shard: String, from: NodeId, to: NodeId },
    /// Changes a table's replication factor.
    SetReplicas { table: String, replicas: i64 },
    /// Moves every replica off a node, which then leaves the cluster.
    RemoveNode { node: NodeId },
    /// Waits until the node at `addr` has registered, then moves its share of replicas to it.
    AddNode { addr: String },
    /// Has the catalog's provisioner start `count` new nodes, waits until they have
    /// registered, then moves their share of replicas to them.
    ProvisionNodes { count: i64 },
    /// Moves replicas until the live nodes hold balanced numbers of them.
    Rebalance,
    /// Splits a range shard in two at `at` (a value of the partition key): the shard keeps
    /// the rows below it, a new shard named `name` gets the others.
    SplitShard {
        table: String,
        shard: String,
        at: crate::value::Value,
        name: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftKind {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

/// Schema changes, executed by the catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DdlRequest {
    CreateTable {
        name: String,
        columns: Vec<ColumnDef>,
        primary_key: Vec<usize>,
        partitioning: Option<Partitioning>,
        replicas: Option<u32>,
        if_not_exists: bool,
    },
    CreatePartition {
        name: String,
        parent: String,
        bounds: ShardBounds,
        if_not_exists: bool,
    },
    DropTable {
        names: Vec<String>,
        if_exists: bool,
    },
    /// `ALTER TABLE name ADD PRIMARY KEY (columns)` on a table that has none.
    AddPrimaryKey {
        table: String,
        columns: Vec<usize>,
    },
    CreateRoles {
        roles: Vec<Role>,
        if_not_exists: bool,
    },
    AlterRole {
        name: String,
        change: RoleChange,
    },
    DropRoles {
        names: Vec<String>,
        if_exists: bool,
    },
}

/// What `ALTER ROLE` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleChange {
    pub rename: Option<String>,
    pub superuser: Option<bool>,
    pub login: Option<bool>,
    /// The new password's verifiers (none of either removes the password).
    pub password: Option<crate::auth::RolePassword>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// A batch of output rows of a scan.
    Rows(Vec<Row>),
    /// A batch of partial aggregates of a scan.
    Aggs(Vec<AggRow>),
    /// The end of a stream.
    Done,
    /// A scan that produces no batch for a while says it is working (so the router does not
    /// take it for a stalled replica).
    Started,
    Written(WriteOutcome),
    Ok,
    Map(Arc<ClusterMap>),
    NodeRegistered {
        node: NodeId,
    },
    /// A notice for the client (e.g. "table does not exist, skipping") with the new map version.
    DdlDone {
        version: u64,
        notice: Option<String>,
    },
    Raft(#[serde(with = "serde_bytes")] Vec<u8>),
    ReadIndex(u64),
    NodeStatus(Vec<ReplicaStatus>),
    Checksums(Vec<ReplicaChecksum>),
    /// A new replica is still catching up: the primary has its log up to `matched` of `last`.
    CatchingUp {
        matched: Option<u64>,
        last: Option<u64>,
    },
    Tasks(Vec<TaskInfo>),
    /// A batch of a split's rows (keyed as stored) and remembered requests (`SplitRead`).
    SplitRows {
        rows: Vec<(Vec<u8>, Row)>,
        requests: Vec<(RequestId, WriteOutcome)>,
    },
    /// What an admin function returns (a task id, or how many replica changes it made).
    Admin(i64),
    /// The outcome a coordinator shard recorded for a multi-shard transaction (`Decide`).
    Decided {
        committed: bool,
    },
}

/// A checksum of one replica's rows at the log index it has applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaChecksum {
    pub shard: ShardId,
    pub replica: ReplicaId,
    pub applied_index: Option<u64>,
    pub rows: u64,
    pub checksum: u64,
}

/// One replica's replication state, as its node reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub shard: ShardId,
    pub replica: ReplicaId,
    /// leader, follower, candidate or learner.
    pub role: String,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// The replica this one believes leads its group.
    pub leader: Option<ReplicaId>,
    /// Reads (scans) this replica has served since its node started.
    pub reads: u64,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum RpcError {
    /// The statement's data caused an error; it goes to the client as is.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// This replica is not its shard's primary; `leader` is the node that hosts the primary,
    /// if known.
    #[error("replica of shard {shard} is not the primary")]
    NotLeader { shard: ShardId, leader: Option<NodeId> },
    /// This catalog member does not lead the catalog's group; `leader` is the address of the
    /// one that does, if known.
    #[error("this catalog member is not the leader")]
    NotCatalogLeader { leader: Option<String> },
    /// The node holds no replica of this shard (any more).
    #[error("this node holds no replica of shard {shard}")]
    UnknownShard { shard: ShardId },
    /// The sender's placement epoch is older than the node's.
    #[error("stale placement for shard {shard}: epoch {sent} < {current}")]
    StaleEpoch { shard: ShardId, sent: u64, current: u64 },
    /// The statement was planned with another primary key than the shard's rows now have
    /// (`ALTER TABLE ... ADD PRIMARY KEY` ran in between): plan it again.
    #[error("the primary key of the table of shard {shard} changed since the statement was planned")]
    LayoutChanged { shard: ShardId },
    /// The transaction is gone (the node restarted or it timed out).
    #[error("transaction {txn} is no longer open on shard {shard}")]
    TxnGone { shard: ShardId, txn: TxnId },
    /// The peer could not be reached or the connection broke.
    #[error("{addr} is unavailable: {reason}")]
    Unavailable { addr: String, reason: String },
    /// The connection broke after the request was sent: the peer may or may not have acted
    /// on it.
    #[error("connection to {addr} was lost during the call: {reason}")]
    Disconnected { addr: String, reason: String },
    /// A write was sent but whether it committed is unknown.
    #[error("the outcome of the write is unknown: {0}")]
    OutcomeUnknown(String),
    /// The request timed out before an answer.
    #[error("request timed out after {0} ms")]
    Timeout(u64),
    #[error("internal error: {0}")]
    Internal(String),
}

impl RpcError {
    pub fn internal(e: impl std::fmt::Display) -> RpcError {
        RpcError::Internal(e.to_string())
    }
}
