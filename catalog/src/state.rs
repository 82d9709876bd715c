//! The catalog's state and the commands that change it. This is a pure state machine: `apply`
//! takes a command and returns the new state or an error, and does no I/O, so the same code can
//! sit behind a replicated log. Validation that needs no I/O (name clashes, overlapping
//! partitions, primary keys that omit the partition key) happens here too.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use tessera_types::schema::{
    ClusterMap, ColumnDef, NodeId, NodeInfo, NodeState, PartitionMethod, Partitioning, ReplicaId, ReplicaInfo, Shard,
    ShardBounds, ShardId, Table, TableId,
};
use tessera_types::ExecError;

/// Everything the catalog persists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CatalogState {
    pub map: ClusterMap,
    pub next_node: NodeId,
    pub next_table: TableId,
    pub next_shard: ShardId,
    pub next_replica: ReplicaId,
}

/// A change to the catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    RegisterNode {
        node: Option<NodeId>,
        addr: String,
        now_ms: u64,
    },
    SetNodeState {
        node: NodeId,
        state: NodeState,
    },
    /// A table, with its only shard when it is not partitioned.
    CreateTable {
        table: Table,
        shard: Option<Shard>,
    },
    /// A partition's shard with its placement (replica ids already allocated).
    AddShard {
        shard: Shard,
    },
    DropTable {
        table: TableId,
    },
    DropShard {
        shard: ShardId,
    },
}

fn err(code: &str, message: impl Into<String>) -> ExecError {
    ExecError::other(code, message)
}

impl CatalogState {
    pub fn allocate_table(&mut self) -> TableId {
        self.next_table += 1;
        self.next_table
    }

    pub fn allocate_shard(&mut self) -> ShardId {
        self.next_shard += 1;
        self.next_shard
    }

    pub fn allocate_replica(&mut self) -> ReplicaId {
        self.next_replica += 1;
        self.next_replica
    }

    /// Whether a relation (table or partition) of this name exists.
    pub fn relation_exists(&self, name: &str) -> bool {
        self.map.table_by_name(name).is_some() || self.map.shard_by_name(name).is_some()
    }

    /// Applies a command, bumping the map version. Returns the node id for `RegisterNode`.
    pub fn apply(&mut self, cmd: Command) -> Result<Option<NodeId>, ExecError> {
        let mut result = None;
        match cmd {
            Command::RegisterNode { node, addr, now_ms } => {
                let id = match node.filter(|n| self.map.nodes.contains_key(n)) {
                    Some(id) => id,
                    None => {
                        self.next_node += 1;
                        self.next_node
                    }
                };
                self.map.nodes.insert(
                    id,
                    NodeInfo {
                        id,
                        addr,
                        state: NodeState::Alive,
                        last_heartbeat_ms: now_ms,
                    },
                );
                result = Some(id);
            }
            Command::SetNodeState { node, state } => {
                if let Some(n) = self.map.nodes.get_mut(&node) {
                    n.state = state;
                }
            }
            Command::CreateTable { table, shard } => {
                self.map.tables.insert(table.id, table);
                if let Some(shard) = shard {
                    self.map.shards.insert(shard.id, shard);
                }
            }
            Command::AddShard { shard } => {
                self.map.shards.insert(shard.id, shard);
            }
            Command::DropTable { table } => {
                self.map.tables.remove(&table);
                self.map.shards.retain(|_, s| s.table != table);
            }
            Command::DropShard { shard } => {
                self.map.shards.remove(&shard);
            }
        }
        self.map.version += 1;
        Ok(result)
    }
}

/// Checks a new table definition.
pub fn validate_table(
    state: &CatalogState,
    name: &str,
    columns: &[ColumnDef],
    primary_key: &[usize],
    partitioning: Option<&Partitioning>,
) -> Result<(), ExecError> {
    if state.relation_exists(name) {
        return Err(err("42P07", format!("relation \"{name}\" already exists")));
    }
    if columns.is_empty() {
        return Err(err("0A000", "tables without columns are not supported"));
    }
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].iter().any(|o| o.name == c.name) {
            return Err(err("42701", format!("column \"{}\" specified more than once", c.name)));
        }
    }
    if let Some(p) = partitioning {
        if p.column >= columns.len() {
            return Err(err("42703", "partition key column does not exist"));
        }
        if !primary_key.is_empty() && !primary_key.contains(&p.column) {
            return Err(ExecError::Other {
                code: "0A000".into(),
                message: format!(
                    "unique constraint on partitioned table must include all partitioning columns: PRIMARY KEY constraint on table \"{name}\" lacks column \"{}\" which is part of the partition key.",
                    columns[p.column].name
                ),
            });
        }
    }
    Ok(())
}

/// Checks a new partition's bounds against its parent and its siblings.
pub fn validate_partition(
    state: &CatalogState,
    parent: &Table,
    name: &str,
    bounds: &ShardBounds,
) -> Result<(), ExecError> {
    if state.relation_exists(name) {
        return Err(err("42P07", format!("relation \"{name}\" already exists")));
    }
    let Some(part) = &parent.partitioning else {
        return Err(err("42809", format!("table \"{}\" is not partitioned", parent.name)));
    };
    let siblings = state.map.shards_of(parent.id);
    match (part.method, bounds) {
        (PartitionMethod::Range, ShardBounds::Range { from, to }) => {
            if let (Some(f), Some(t)) = (from, to) {
                if f.total_cmp(t) != Ordering::Less {
                    return Err(err(
                        "42P17",
                        format!("empty range bound specified for partition \"{name}\""),
                    ));
                }
            }
            for s in siblings {
                if let ShardBounds::Range { from: sf, to: st } = &s.bounds {
                    // [from, to) and [sf, st) overlap when from < st and sf < to.
                    let a = lower_lt_upper(from, st);
                    let b = lower_lt_upper(sf, to);
                    if a && b {
                        return Err(err(
                            "42P17",
                            format!("partition \"{name}\" would overlap partition \"{}\"", s.name),
                        ));
                    }
                }
            }
        }
        (PartitionMethod::Hash, ShardBounds::Hash { modulus, remainder }) => {
            if *modulus == 0 {
                return Err(err(
                    "42P16",
                    "modulus for hash partition must be an integer value greater than zero",
                ));
            }
            if remainder >= modulus {
                return Err(err("42P16", "remainder for hash partition must be less than modulus"));
            }
            for s in siblings {
                if let ShardBounds::Hash {
                    modulus: m,
                    remainder: r,
                } = &s.bounds
                {
                    let (small, large) = if m <= modulus { (*m, *modulus) } else { (*modulus, *m) };
                    if large % small != 0 {
                        return Err(err(
                            "42P17",
                            "every hash partition modulus must be a factor of the next larger modulus",
                        ));
                    }
                    if remainder % small == r % small {
                        return Err(err(
                            "42P17",
                            format!("partition \"{name}\" would overlap partition \"{}\"", s.name),
                        ));
                    }
                }
            }
        }
        (PartitionMethod::Range, _) => {
            return Err(err("42P16", "invalid bound specification for a range partition"));
        }
        (PartitionMethod::Hash, _) => {
            return Err(err("42P16", "invalid bound specification for a hash partition"));
        }
    }
    Ok(())
}

/// Whether a lower bound (None = MINVALUE) is below an upper bound (None = MAXVALUE).
fn lower_lt_upper(lower: &Option<tessera_types::Value>, upper: &Option<tessera_types::Value>) -> bool {
    match (lower, upper) {
        (None, _) | (_, None) => true,
        (Some(l), Some(u)) => l.total_cmp(u) == Ordering::Less,
    }
}

/// Picks `count` distinct live nodes for a shard's replicas: walking the node ring from the
/// shard's slot (consistent hashing), skipping nodes that already hold their fair share of
/// replicas (consistent hashing with bounded loads), so placement stays stable as nodes come
/// and go yet no node is piled up with shards while others stay empty.
pub fn place_replicas(map: &ClusterMap, shard: ShardId, count: u32) -> Result<Vec<NodeId>, ExecError> {
    let alive: Vec<NodeId> = map
        .nodes
        .values()
        .filter(|n| n.state == NodeState::Alive)
        .map(|n| n.id)
        .collect();
    if alive.len() < count as usize {
        return Err(err(
            "53000",
            format!(
                "a shard needs {count} replicas on distinct nodes but only {} node{} alive",
                alive.len(),
                if alive.len() == 1 { " is" } else { "s are" }
            ),
        ));
    }
    let mut load: std::collections::HashMap<NodeId, usize> = alive.iter().map(|n| (*n, 0)).collect();
    for s in map.shards.values() {
        for r in &s.replicas {
            if let Some(l) = load.get_mut(&r.node) {
                *l += 1;
            }
        }
    }
    let total: usize = load.values().sum::<usize>() + count as usize;
    let cap = total.div_ceil(alive.len()).max(1);
    let order = tessera_types::ring::Ring::new(alive.iter().copied()).successors(shard, alive.len());
    let mut chosen: Vec<NodeId> = order
        .iter()
        .copied()
        .filter(|n| load.get(n).copied().unwrap_or(0) < cap)
        .take(count as usize)
        .collect();
    for n in &order {
        if chosen.len() >= count as usize {
            break;
        }
        if !chosen.contains(n) {
            chosen.push(*n);
        }
    }
    Ok(chosen)
}

/// Replica records for a new shard placed on `nodes`.
pub fn new_replicas(state: &mut CatalogState, nodes: &[NodeId]) -> Vec<ReplicaInfo> {
    nodes
        .iter()
        .map(|n| ReplicaInfo {
            id: state.allocate_replica(),
            node: *n,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_types::schema::NodeInfo;

    fn cluster(nodes: u64) -> CatalogState {
        let mut st = CatalogState::default();
        for n in 1..=nodes {
            st.map.nodes.insert(
                n,
                NodeInfo {
                    id: n,
                    addr: format!("n{n}:1"),
                    state: NodeState::Alive,
                    last_heartbeat_ms: 0,
                },
            );
        }
        st
    }

    fn place(st: &mut CatalogState, replicas: u32) -> Vec<NodeId> {
        let id = st.allocate_shard();
        let nodes = place_replicas(&st.map, id, replicas).unwrap();
        let reps = new_replicas(st, &nodes);
        st.map.shards.insert(
            id,
            Shard {
                id,
                table: 1,
                name: format!("s{id}"),
                bounds: ShardBounds::All,
                replicas: reps,
                epoch: 1,
            },
        );
        nodes
    }

    #[test]
    fn shards_spread_evenly_over_nodes() {
        let mut st = cluster(3);
        let mut per_node = std::collections::HashMap::new();
        for _ in 0..9 {
            for n in place(&mut st, 1) {
                *per_node.entry(n).or_insert(0) += 1;
            }
        }
        assert_eq!(per_node.values().copied().collect::<Vec<_>>(), vec![3, 3, 3]);
    }

    #[test]
    fn replicas_go_to_distinct_nodes_and_too_many_are_refused() {
        let mut st = cluster(3);
        for _ in 0..5 {
            let mut nodes = place(&mut st, 3);
            nodes.sort();
            assert_eq!(nodes, vec![1, 2, 3]);
        }
        let e = place_replicas(&st.map, 99, 4).unwrap_err();
        assert!(e.to_string().contains("needs 4 replicas"), "{e}");
    }
}
