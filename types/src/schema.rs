//! Cluster metadata as the catalog keeps it and hands it out: nodes, tables with their columns
//! and partitioning, shards with their bounds and replica placement. The catalog owns the truth;
//! routers and nodes hold immutable copies (`ClusterMap`) tagged with a version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::datatype::DataType;
use crate::value::Value;

pub type NodeId = u64;
pub type TableId = u64;
pub type ShardId = u64;
/// Identifies one replica of one shard, for life: a replica that is wiped and re-created gets a
/// new id (it is the Raft node id of its group).
pub type ReplicaId = u64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    /// Address other processes reach the node at (host:port).
    pub addr: String,
    pub state: NodeState,
    /// Milliseconds since the UNIX epoch of the last heartbeat the catalog saw.
    pub last_heartbeat_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    Alive,
    /// Alive, but leaving (`tessera_remove_node`): its replicas move to other nodes, none is
    /// placed on it, and it leaves the map once it holds none.
    Draining,
    Dead,
}

impl NodeState {
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Alive => "alive",
            NodeState::Draining => "draining",
            NodeState::Dead => "dead",
        }
    }

    /// Whether the node runs and answers (its replicas count towards their group's majority).
    pub fn is_up(self) -> bool {
        self != NodeState::Dead
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub ty: DataType,
    pub not_null: bool,
    /// The DEFAULT expression as SQL text, parsed and bound by the router when it is used.
    pub default: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionMethod {
    Range,
    Hash,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partitioning {
    pub method: PartitionMethod,
    /// The partition key column (Tessera supports a single-column key).
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub id: TableId,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    /// Positions of the primary key columns; empty when the table has none (rows are then
    /// keyed by a hidden row id).
    pub primary_key: Vec<usize>,
    /// `None` for a table without `PARTITION BY`: it is a single shard.
    pub partitioning: Option<Partitioning>,
    /// How many replicas each of its shards has.
    pub replicas: u32,
}

impl Table {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Name of the primary key constraint, as PostgreSQL names it.
    pub fn pkey_name(&self) -> String {
        format!("{}_pkey", self.name)
    }
}

/// Which rows of its table a shard holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShardBounds {
    /// The only shard of an unpartitioned table.
    All,
    /// `FOR VALUES FROM (from) TO (to)`: from inclusive, to exclusive; `None` is MINVALUE or
    /// MAXVALUE.
    Range { from: Option<Value>, to: Option<Value> },
    /// `FOR VALUES WITH (MODULUS m, REMAINDER r)`.
    Hash { modulus: u32, remainder: u32 },
}

impl ShardBounds {
    /// Whether a range shard holds key `v` (hash shards are checked with `hash_partition`).
    pub fn range_contains(&self, v: &Value) -> bool {
        match self {
            ShardBounds::All => true,
            ShardBounds::Range { from, to } => {
                from.as_ref().is_none_or(|f| v.total_cmp(f) != std::cmp::Ordering::Less)
                    && to.as_ref().is_none_or(|t| v.total_cmp(t) == std::cmp::Ordering::Less)
            }
            ShardBounds::Hash { .. } => false,
        }
    }

    /// The bounds as PostgreSQL prints them in `\d+` (`FOR VALUES FROM (0) TO (4096)`).
    pub fn describe(&self) -> String {
        let lit = |v: &Option<Value>, inf: &str| match v {
            None => inf.to_string(),
            Some(Value::Text(s)) => format!("'{}'", s.replace('\'', "''")),
            Some(v) => v.to_text().unwrap_or_default(),
        };
        match self {
            ShardBounds::All => String::new(),
            ShardBounds::Range { from, to } => {
                format!(
                    "FOR VALUES FROM ({}) TO ({})",
                    lit(from, "MINVALUE"),
                    lit(to, "MAXVALUE")
                )
            }
            ShardBounds::Hash { modulus, remainder } => {
                format!("FOR VALUES WITH (modulus {modulus}, remainder {remainder})")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaInfo {
    pub id: ReplicaId,
    pub node: NodeId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub id: ShardId,
    pub table: TableId,
    /// The partition's table name (`sh1`), or the table's own name for an unpartitioned table.
    pub name: String,
    pub bounds: ShardBounds,
    pub replicas: Vec<ReplicaInfo>,
    /// Bumped whenever the shard's bounds or placement change; requests carry it so a node can
    /// tell a router its map is stale.
    pub epoch: u64,
}

pub type TaskId = u64;

/// A change of a shard's replicas that the catalog carries out step by step: a replica added
/// (created on its node, caught up as a Raft learner, promoted to voter), one removed, or
/// both (a move). Shown by `tessera.tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub id: TaskId,
    pub kind: TaskKind,
    pub shard: ShardId,
    /// The replica the task creates (its id is new, never a reused one).
    pub add: Option<ReplicaInfo>,
    /// The replica the task takes out of the group.
    pub remove: Option<ReplicaInfo>,
    pub state: TaskState,
    /// What the task is doing now, or how it ended.
    pub step: String,
    /// Milliseconds since the UNIX epoch.
    pub started_ms: u64,
    pub finished_ms: Option<u64>,
    /// What a split makes (`TaskKind::Split` only).
    #[serde(default)]
    pub split: Option<SplitPlan>,
}

/// A shard split (`tessera_split_shard`): the shard keeps the rows below `at`, a new shard
/// gets the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitPlan {
    /// The partition key value the shard is split at.
    pub at: Value,
    /// The shard split off, on the nodes of the shard being split. Its id and replica ids are
    /// given when the task is recorded; it joins the map when the task ends.
    pub shard: Shard,
    /// The epoch the shard being split is fenced at, and has once the task has ended.
    pub fence_epoch: u64,
    /// Whether the fence may have been raised: from then on the task no longer fails, it
    /// tries again until the split is complete.
    pub fenced: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskKind {
    /// A replica on a dead node replaced by one on a live node.
    Repair,
    /// A replica moved from one node to another (`tessera_move_replica`, draining a node).
    Move,
    /// A replica added to reach a table's replication factor (`tessera_set_replicas`).
    AddReplica,
    /// A replica removed to reach a table's replication factor.
    RemoveReplica,
    /// A replica moved from the fullest node to the emptiest (`tessera_rebalance`).
    Rebalance,
    /// A range shard split in two (`tessera_split_shard`).
    Split,
}

impl TaskKind {
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Repair => "repair",
            TaskKind::Move => "move",
            TaskKind::AddReplica => "add replica",
            TaskKind::RemoveReplica => "remove replica",
            TaskKind::Rebalance => "rebalance",
            TaskKind::Split => "split",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Running,
    Done,
    Failed,
}

impl TaskState {
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
        }
    }
}

/// An immutable copy of the whole cluster map at one catalog version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterMap {
    pub version: u64,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub tables: BTreeMap<TableId, Table>,
    pub shards: BTreeMap<ShardId, Shard>,
    /// Roles by name (`CREATE ROLE`), with what their passwords are checked against.
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
}

/// A role clients log in as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub superuser: bool,
    /// Whether clients may log in as this role.
    pub login: bool,
    #[serde(default)]
    pub password: crate::auth::RolePassword,
}

impl ClusterMap {
    pub fn table_by_name(&self, name: &str) -> Option<&Table> {
        self.tables.values().find(|t| t.name == name)
    }

    /// A shard found by its partition name.
    pub fn shard_by_name(&self, name: &str) -> Option<&Shard> {
        self.shards
            .values()
            .find(|s| s.name == name && self.tables.get(&s.table).is_some_and(|t| t.partitioning.is_some()))
    }

    /// The shards of a table, in bound order for range tables and remainder order for hash.
    pub fn shards_of(&self, table: TableId) -> Vec<&Shard> {
        let mut shards: Vec<&Shard> = self.shards.values().filter(|s| s.table == table).collect();
        shards.sort_by(|a, b| match (&a.bounds, &b.bounds) {
            (ShardBounds::Range { from: fa, .. }, ShardBounds::Range { from: fb, .. }) => match (fa, fb) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => x.total_cmp(y),
            },
            (ShardBounds::Hash { remainder: ra, .. }, ShardBounds::Hash { remainder: rb, .. }) => ra.cmp(rb),
            _ => a.id.cmp(&b.id),
        });
        shards
    }

    pub fn node_addr(&self, node: NodeId) -> Option<&str> {
        self.nodes.get(&node).map(|n| n.addr.as_str())
    }
}
