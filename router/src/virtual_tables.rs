//! The `tessera` schema: read-only tables that show the cluster's state through SQL, so any
//! client can inspect it (`SELECT * FROM tessera.replicas WHERE role = 'leader'`).
//!
//! - `tessera.nodes`: every node the catalog knows, with its state and replica count.
//! - `tessera.shards`: every shard with its table, bounds and placement.
//! - `tessera.replicas`: every replica with its role, term, log, commit and applied indexes and
//!   its lag behind its primary, as the nodes report them right now, and the reads it has
//!   served since its node started.
//! - `tessera.checksums`: a checksum of every replica's rows with the log index it covers;
//!   replicas of a shard at the same applied index must agree.
//! - `tessera.tasks`: the catalog's replica changes (re-replication after a node died, moves),
//!   running and recently finished, with the step each is at.
//!
//! Rows are computed by the router when queried; the full SQL of SELECT runs over them.

use std::collections::HashMap;
use std::time::Duration;

use tessera_types::rpc::{ReplicaStatus, Request, Response};
use tessera_types::schema::{ClusterMap, ColumnDef, Table, TableId};
use tessera_types::{DataType, Row, Value};

use crate::routing::Routing;

/// Virtual table ids live at the top of the id space, far from catalog-assigned ones.
const BASE: TableId = u64::MAX - 16;
const NODES: TableId = BASE;
const SHARDS: TableId = BASE + 1;
const REPLICAS: TableId = BASE + 2;
const CHECKSUMS: TableId = BASE + 3;
const TASKS: TableId = BASE + 4;

pub fn is_virtual(id: TableId) -> bool {
    id >= BASE
}

fn col(name: &str, ty: DataType) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        ty,
        not_null: false,
        default: None,
    }
}

fn table(id: TableId, name: &str, columns: Vec<ColumnDef>) -> Table {
    Table {
        id,
        name: name.into(),
        columns,
        primary_key: Vec::new(),
        partitioning: None,
        replicas: 1,
    }
}

/// The virtual table called `name` in schema `tessera`.
pub fn lookup(name: &str) -> Option<Table> {
    Some(match name {
        "nodes" => table(
            NODES,
            "nodes",
            vec![
                col("node_id", DataType::Int8),
                col("address", DataType::Text),
                col("state", DataType::Text),
                col("replicas", DataType::Int8),
            ],
        ),
        "shards" => table(
            SHARDS,
            "shards",
            vec![
                col("shard_id", DataType::Int8),
                col("table_name", DataType::Text),
                col("shard_name", DataType::Text),
                col("bounds", DataType::Text),
                col("replicas", DataType::Int4),
                col("nodes", DataType::Text),
                col("epoch", DataType::Int8),
            ],
        ),
        "replicas" => table(
            REPLICAS,
            "replicas",
            vec![
                col("shard_id", DataType::Int8),
                col("shard_name", DataType::Text),
                col("replica_id", DataType::Int8),
                col("node_id", DataType::Int8),
                col("address", DataType::Text),
                col("role", DataType::Text),
                col("term", DataType::Int8),
                col("last_log_index", DataType::Int8),
                col("commit_index", DataType::Int8),
                col("applied_index", DataType::Int8),
                col("lag", DataType::Int8),
                col("reads", DataType::Int8),
            ],
        ),
        "checksums" => table(
            CHECKSUMS,
            "checksums",
            vec![
                col("shard_id", DataType::Int8),
                col("replica_id", DataType::Int8),
                col("node_id", DataType::Int8),
                col("applied_index", DataType::Int8),
                col("row_count", DataType::Int8),
                col("checksum", DataType::Text),
            ],
        ),
        "tasks" => table(
            TASKS,
            "tasks",
            vec![
                col("task_id", DataType::Int8),
                col("kind", DataType::Text),
                col("shard_id", DataType::Int8),
                col("shard_name", DataType::Text),
                col("add_replica", DataType::Int8),
                col("add_node", DataType::Int8),
                col("remove_replica", DataType::Int8),
                col("remove_node", DataType::Int8),
                col("state", DataType::Text),
                col("step", DataType::Text),
                col("started", DataType::TimestampTz),
                col("finished", DataType::TimestampTz),
            ],
        ),
        _ => return None,
    })
}

/// The virtual table with this id.
pub fn by_id(id: TableId) -> Option<Table> {
    match id {
        NODES => lookup("nodes"),
        SHARDS => lookup("shards"),
        REPLICAS => lookup("replicas"),
        CHECKSUMS => lookup("checksums"),
        TASKS => lookup("tasks"),
        _ => None,
    }
}

fn int(v: Option<u64>) -> Value {
    v.map(|v| Value::Int8(v as i64)).unwrap_or(Value::Null)
}

/// The current rows of a virtual table.
pub async fn rows(routing: &Routing, id: TableId) -> Vec<Row> {
    let map = routing.current();
    match id {
        NODES => nodes(&map),
        SHARDS => shards(&map),
        REPLICAS => replicas(routing, &map).await,
        CHECKSUMS => checksums(routing, &map).await,
        TASKS => tasks(routing, &map).await,
        _ => Vec::new(),
    }
}

fn nodes(map: &ClusterMap) -> Vec<Row> {
    let mut count: HashMap<u64, i64> = HashMap::new();
    for s in map.shards.values() {
        for r in &s.replicas {
            *count.entry(r.node).or_default() += 1;
        }
    }
    map.nodes
        .values()
        .map(|n| {
            vec![
                Value::Int8(n.id as i64),
                Value::Text(n.addr.clone()),
                Value::Text(n.state.name().into()),
                Value::Int8(count.get(&n.id).copied().unwrap_or(0)),
            ]
        })
        .collect()
}

fn shards(map: &ClusterMap) -> Vec<Row> {
    map.shards
        .values()
        .map(|s| {
            let table = map.tables.get(&s.table).map(|t| t.name.clone()).unwrap_or_default();
            let nodes: Vec<String> = s.replicas.iter().map(|r| r.node.to_string()).collect();
            vec![
                Value::Int8(s.id as i64),
                Value::Text(table),
                Value::Text(s.name.clone()),
                Value::Text(s.bounds.describe()),
                Value::Int4(s.replicas.len() as i32),
                Value::Text(nodes.join(",")),
                Value::Int8(s.epoch as i64),
            ]
        })
        .collect()
}

async fn replicas(routing: &Routing, map: &ClusterMap) -> Vec<Row> {
    // Ask every node for its replicas' state, in parallel, briefly.
    let asks = map.nodes.values().map(|n| {
        let client = routing.pool.client(&n.addr);
        let id = n.id;
        async move {
            let reply = client.call_timeout(Request::NodeStatus, Duration::from_secs(2)).await;
            (id, reply)
        }
    });
    let mut status: HashMap<(u64, u64), ReplicaStatus> = HashMap::new();
    for (node, reply) in futures::future::join_all(asks).await {
        if let Ok(Response::NodeStatus(list)) = reply {
            for s in list {
                status.insert((node, s.replica), s);
            }
        }
    }
    let mut rows = Vec::new();
    for s in map.shards.values() {
        let leader_last = s
            .replicas
            .iter()
            .filter_map(|r| status.get(&(r.node, r.id)))
            .find(|st| st.role == "leader")
            .and_then(|st| st.last_log_index);
        for r in &s.replicas {
            let st = status.get(&(r.node, r.id));
            let lag = match (leader_last, st.and_then(|st| st.applied_index)) {
                (Some(l), Some(a)) => Some(l.saturating_sub(a)),
                _ => None,
            };
            rows.push(vec![
                Value::Int8(s.id as i64),
                Value::Text(s.name.clone()),
                Value::Int8(r.id as i64),
                Value::Int8(r.node as i64),
                Value::Text(map.node_addr(r.node).unwrap_or("").to_string()),
                Value::Text(st.map(|st| st.role.clone()).unwrap_or_else(|| "unreachable".into())),
                int(st.map(|st| st.term)),
                int(st.and_then(|st| st.last_log_index)),
                int(st.and_then(|st| st.commit_index)),
                int(st.and_then(|st| st.applied_index)),
                int(lag),
                int(st.map(|st| st.reads)),
            ]);
        }
    }
    rows
}

async fn checksums(routing: &Routing, map: &ClusterMap) -> Vec<Row> {
    let asks = map.nodes.values().map(|n| {
        let client = routing.pool.client(&n.addr);
        let id = n.id;
        async move {
            (
                id,
                client.call_timeout(Request::Checksums, Duration::from_secs(30)).await,
            )
        }
    });
    let mut rows = Vec::new();
    for (node, reply) in futures::future::join_all(asks).await {
        if let Ok(Response::Checksums(list)) = reply {
            for c in list {
                rows.push(vec![
                    Value::Int8(c.shard as i64),
                    Value::Int8(c.replica as i64),
                    Value::Int8(node as i64),
                    int(c.applied_index),
                    Value::Int8(c.rows as i64),
                    Value::Text(format!("{:016x}", c.checksum)),
                ]);
            }
        }
    }
    rows
}

async fn tasks(routing: &Routing, map: &ClusterMap) -> Vec<Row> {
    let Ok(Response::Tasks(list)) = routing.call_catalog(Request::Tasks).await else {
        return Vec::new();
    };
    // Milliseconds since 1970 to PostgreSQL's microseconds since 2000.
    let time = |ms: u64| Value::TimestampTz((ms as i64 - 946_684_800_000) * 1_000);
    list.into_iter()
        .map(|t| {
            vec![
                Value::Int8(t.id as i64),
                Value::Text(t.kind.name().into()),
                Value::Int8(t.shard as i64),
                map.shards
                    .get(&t.shard)
                    .map(|s| Value::Text(s.name.clone()))
                    .unwrap_or(Value::Null),
                int(t.add.as_ref().map(|a| a.id)),
                int(t.add.as_ref().map(|a| a.node)),
                int(t.remove.as_ref().map(|r| r.id)),
                int(t.remove.as_ref().map(|r| r.node)),
                Value::Text(t.state.name().into()),
                Value::Text(t.step),
                time(t.started_ms),
                t.finished_ms.map(time).unwrap_or(Value::Null),
            ]
        })
        .collect()
}
