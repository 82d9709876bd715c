//! A cluster's replication state as the router shows it through SQL: which replica leads each
//! shard (`tessera.replicas`), mapped to the harness's node indexes, and whether the replicas
//! of every shard hold the same rows (`tessera.checksums`).
//!
//! The fault tests use it to pick their victim (the primary of a shard) and, once the faults
//! are over, to check that replicas converged. It only reads; faults are in [`crate::cluster`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::client::simple_rows;
use crate::cluster::Cluster;

/// One row of `tessera.replicas`. Numbers are `None` where the replica did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    pub shard_id: i64,
    pub shard_name: String,
    pub replica_id: i64,
    /// The catalog's node id (not the harness's node index: see [`Cluster::node_index`]).
    pub node_id: i64,
    pub address: String,
    /// leader, follower, candidate, learner or unreachable.
    pub role: String,
    pub term: Option<i64>,
    pub last_log_index: Option<i64>,
    pub commit_index: Option<i64>,
    pub applied_index: Option<i64>,
    pub lag: Option<i64>,
}

/// One row of `tessera.checksums`: what one replica holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaChecksum {
    pub shard_id: i64,
    pub replica_id: i64,
    pub node_id: i64,
    pub applied_index: Option<i64>,
    pub row_count: i64,
    pub checksum: String,
}

/// What every replica of one shard agrees on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardAgreement {
    pub shard_name: String,
    /// How many replicas agree (every replica of the shard).
    pub replicas: usize,
    pub applied_index: Option<i64>,
    pub row_count: i64,
    pub checksum: String,
}

fn parse_opt(value: &Option<String>, column: &str) -> Result<Option<i64>, String> {
    value
        .as_deref()
        .map(|v| {
            v.parse()
                .map_err(|e| format!("{column} = {v:?} is not an integer: {e}"))
        })
        .transpose()
}

fn parse(value: &Option<String>, column: &str) -> Result<i64, String> {
    parse_opt(value, column)?.ok_or_else(|| format!("{column} is NULL"))
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// Every replica of every shard, as `tessera.replicas` lists them.
pub async fn replicas(client: &Client) -> Result<Vec<ReplicaState>, String> {
    let rows = simple_rows(
        client,
        "SELECT shard_id, shard_name, replica_id, node_id, address, role, term, last_log_index, \
         commit_index, applied_index, lag FROM tessera.replicas ORDER BY shard_id, replica_id",
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReplicaState {
                shard_id: parse(&r[0], "shard_id")?,
                shard_name: text(&r[1]),
                replica_id: parse(&r[2], "replica_id")?,
                node_id: parse(&r[3], "node_id")?,
                address: text(&r[4]),
                role: text(&r[5]),
                term: parse_opt(&r[6], "term")?,
                last_log_index: parse_opt(&r[7], "last_log_index")?,
                commit_index: parse_opt(&r[8], "commit_index")?,
                applied_index: parse_opt(&r[9], "applied_index")?,
                lag: parse_opt(&r[10], "lag")?,
            })
        })
        .collect()
}

/// What every replica holds, as `tessera.checksums` lists it (replicas whose node does not
/// answer are absent).
pub async fn checksums(client: &Client) -> Result<Vec<ReplicaChecksum>, String> {
    let rows = simple_rows(
        client,
        "SELECT shard_id, replica_id, node_id, applied_index, row_count, checksum FROM tessera.checksums",
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReplicaChecksum {
                shard_id: parse(&r[0], "shard_id")?,
                replica_id: parse(&r[1], "replica_id")?,
                node_id: parse(&r[2], "node_id")?,
                applied_index: parse_opt(&r[3], "applied_index")?,
                row_count: parse(&r[4], "row_count")?,
                checksum: text(&r[5]),
            })
        })
        .collect()
}

/// The current primary of the shard named `shard_name`: the leader with the highest term (a
/// deposed leader may still call itself one for a moment). `None` while there is none.
pub fn primary_of<'a>(replicas: &'a [ReplicaState], shard_name: &str) -> Option<&'a ReplicaState> {
    replicas
        .iter()
        .filter(|r| r.shard_name == shard_name && r.role == "leader")
        .max_by_key(|r| r.term)
}

/// A table of replicas for failure messages.
pub fn describe_replicas(replicas: &[ReplicaState]) -> String {
    replicas
        .iter()
        .map(|r| {
            format!(
                "  {} (shard {}) replica {} on node {} ({}): {} term {:?} log {:?} commit {:?} applied {:?} lag {:?}",
                r.shard_name,
                r.shard_id,
                r.replica_id,
                r.node_id,
                r.address,
                r.role,
                r.term,
                r.last_log_index,
                r.commit_index,
                r.applied_index,
                r.lag
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until shard `shard_name` has a primary that the router can reach, and returns the
/// harness's index of the node it runs on.
pub async fn wait_for_primary(
    cluster: &Cluster,
    client: &Client,
    shard_name: &str,
    timeout: Duration,
) -> Result<usize, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match replicas(client).await {
            Ok(list) => match primary_of(&list, shard_name) {
                Some(p) => match cluster.node_index(&p.address) {
                    Some(i) => return Ok(i),
                    None => format!("the primary's address {} is no node of this cluster", p.address),
                },
                None => format!("no leader yet:\n{}", describe_replicas(&list)),
            },
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "shard {shard_name} had no reachable primary within {timeout:?}; last: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every replica that `tessera.replicas` lists reports its checksum and, shard by
/// shard, all replicas have applied the same log index; then compares their row counts and
/// checksums. Replicas at the same applied index must hold the same rows: a difference is an
/// error at once (it cannot heal). Returns what each shard's replicas agree on, by shard id.
///
/// Retries (errors and replicas that have not caught up) until `timeout`.
pub async fn wait_for_replicas_to_agree(
    client: &Client,
    timeout: Duration,
) -> Result<BTreeMap<i64, ShardAgreement>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match agreement(client).await {
            Ok(Ok(agreed)) => return Ok(agreed),
            Ok(Err(Diverged(why))) => return Err(why),
            Err(NotYet(why)) => why,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "the replicas did not reach the same applied index within {timeout:?}; last: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct NotYet(String);
struct Diverged(String);

async fn agreement(client: &Client) -> Result<Result<BTreeMap<i64, ShardAgreement>, Diverged>, NotYet> {
    let expected = replicas(client).await.map_err(NotYet)?;
    let reported = checksums(client).await.map_err(NotYet)?;
    let mut by_shard: BTreeMap<i64, Vec<&ReplicaChecksum>> = BTreeMap::new();
    let mut names: BTreeMap<i64, &str> = BTreeMap::new();
    for r in &expected {
        names.insert(r.shard_id, &r.shard_name);
        match reported
            .iter()
            .find(|c| c.shard_id == r.shard_id && c.replica_id == r.replica_id)
        {
            Some(c) => by_shard.entry(r.shard_id).or_default().push(c),
            None => {
                return Err(NotYet(format!(
                    "replica {} of {} (node {}, {}) reports no checksum",
                    r.replica_id, r.shard_name, r.node_id, r.role
                )))
            }
        }
    }
    let mut agreed = BTreeMap::new();
    for (shard, list) in by_shard {
        let first = list[0];
        let name = names.get(&shard).copied().unwrap_or_default();
        if list.iter().any(|c| c.applied_index != first.applied_index) {
            let indexes: Vec<String> = list
                .iter()
                .map(|c| format!("replica {} at {:?}", c.replica_id, c.applied_index))
                .collect();
            return Err(NotYet(format!(
                "shard {name} ({shard}): replicas at different applied indexes: {}",
                indexes.join(", ")
            )));
        }
        if list
            .iter()
            .any(|c| c.checksum != first.checksum || c.row_count != first.row_count)
        {
            let states: Vec<String> = list
                .iter()
                .map(|c| {
                    format!(
                        "replica {} on node {}: {} rows, checksum {}",
                        c.replica_id, c.node_id, c.row_count, c.checksum
                    )
                })
                .collect();
            return Ok(Err(Diverged(format!(
                "shard {name} ({shard}): replicas at the same applied index {:?} hold different rows: {}",
                first.applied_index,
                states.join("; ")
            ))));
        }
        agreed.insert(
            shard,
            ShardAgreement {
                shard_name: name.to_string(),
                replicas: list.len(),
                applied_index: first.applied_index,
                row_count: first.row_count,
                checksum: first.checksum.clone(),
            },
        );
    }
    Ok(Ok(agreed))
}
