//! Online shard splits (`SELECT tessera_split_shard('studt', 'sh2', 6144)`): a range shard
//! keeps the rows below the split point and a new shard, with its own replication group on the
//! same nodes, gets the others, while clients go on writing.
//!
//! A split is a task (`TaskKind::Split`, shown by `tessera.tasks`), whose steps are each safe
//! to repeat, so that a new catalog leader resumes it:
//!
//! 1. create the new shard's replicas on the nodes of the shard being split (it is not in the
//!    map yet: no router sends it anything);
//! 2. fence the shard at a new epoch through its own log (`Request::SplitRead`): from that
//!    entry on, every replica refuses write sets computed at an older epoch, and requests
//!    carrying one, so nothing more changes in it; then read the rows from the split point up
//!    and every request the shard remembers;
//! 3. copy them into the new shard (`Request::SplitIngest`) as staged parts of one write set,
//!    applied all at once by the last, together with the request memory, so a write retried
//!    after the split is still applied at most once;
//! 4. delete the copied rows from the shard being split (`Request::SplitCleanup`);
//! 5. record the narrowed bounds, the fence's epoch and the new shard in the map. Routers then
//!    meet the new epoch, fetch the map and plan the refused statements again.
//!
//! Writes to the shard pause from step 2 to step 5 (the router retries them); no row is in
//! two shards or none. Up to the fence the task may fail, leaving the shard as it was; after
//! it, it only tries again, because the rows may already have left.

use std::time::{Duration, Instant};

use tessera_types::cast::cast;
use tessera_types::fragment::{TableLayout, WriteOutcome};
use tessera_types::rpc::{Request, RequestId, Response, RpcError};
use tessera_types::schema::{
    NodeId, NodeState, PartitionMethod, ReplicaInfo, Shard, ShardBounds, SplitPlan, TaskId, TaskInfo, TaskKind,
    TaskState,
};
use tessera_types::{ExecError, Row, Value};
use tracing::{info, warn};

use crate::service::{now_ms, Catalog};
use crate::state::{CatalogState, Command};

/// How long `tessera_split_shard` waits for its task before answering that it still runs.
const SPLIT_WAIT: Duration = Duration::from_secs(120);
/// Rows per batch read from the shard being split, and per part copied to the new one.
const SPLIT_BATCH_ROWS: u32 = 2_000;
/// How long the steps before the fence may keep failing before the task gives up.
const BEFORE_FENCE_LIMIT: Duration = Duration::from_secs(30);
/// How long to wait between two attempts of a step.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// One batch a `SplitRead` streams: rows (keyed as stored) and remembered requests.
type MovedBatch = (Vec<(Vec<u8>, Row)>, Vec<(RequestId, WriteOutcome)>);

fn refuse(code: &str, message: String) -> RpcError {
    RpcError::Exec(ExecError::other(code, message))
}

/// The request id of one step of a split task: the high half all ones, which no router's
/// request id has (its high half is a time in microseconds).
fn step_request_id(task: TaskId, step: u8) -> RequestId {
    (u128::from(u64::MAX) << 64) | (u128::from(task) << 8) | u128::from(step)
}

/// The default name of the shard split off: the shard's name and the split point.
fn default_name(shard: &str, at: &Value) -> String {
    let at = at.to_text().unwrap_or_default();
    let at: String = at
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{shard}_{at}")
}

impl Catalog {
    /// `tessera_split_shard(table, shard, at [, name])`: checks the request, records the split
    /// task, and waits until it has ended; answers the task's id.
    pub(crate) async fn split_shard(
        &self,
        table: String,
        shard: String,
        at: Value,
        name: Option<String>,
    ) -> Result<Response, RpcError> {
        let id = {
            let _one_at_a_time = self.ddl.lock().await;
            let task = self.split_task(&table, &shard, at, name)?;
            let what = format!(
                "{} at {}",
                shard,
                task.split
                    .as_ref()
                    .map(|p| p.at.to_text().unwrap_or_default())
                    .unwrap_or_default()
            );
            let id = self.start_task(task).await?;
            info!(task = id, "split of {what} requested");
            id
        };
        let deadline = Instant::now() + SPLIT_WAIT;
        loop {
            let task = self.with_state(|st| st.tasks.get(&id).cloned());
            match task {
                Some(t) if t.state == TaskState::Done => return Ok(Response::Admin(id as i64)),
                Some(t) if t.state == TaskState::Failed => {
                    return Err(refuse(
                        "55000",
                        format!("the split of shard \"{shard}\" failed: {}", t.step),
                    ))
                }
                None => return Err(RpcError::internal(format!("task {id} is gone"))),
                Some(_) if Instant::now() >= deadline => {
                    return Err(refuse(
                        "57014",
                        format!(
                        "the split of shard \"{shard}\" is still running after {} s as task {id}: see tessera.tasks",
                        SPLIT_WAIT.as_secs()
                    ),
                    ))
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The split task for a request, or why it cannot be done.
    fn split_task(&self, table: &str, shard: &str, at: Value, name: Option<String>) -> Result<TaskInfo, RpcError> {
        let map = self.map();
        let t = map
            .table_by_name(table)
            .ok_or_else(|| refuse("42P01", format!("table \"{table}\" does not exist")))?;
        let Some(partitioning) = t.partitioning.as_ref().filter(|p| p.method == PartitionMethod::Range) else {
            return Err(refuse(
                "0A000",
                format!("table \"{table}\" is not partitioned by range: only range shards can be split"),
            ));
        };
        let s = map
            .shard_by_name(shard)
            .filter(|s| s.table == t.id)
            .ok_or_else(|| refuse("42P01", format!("table \"{table}\" has no shard \"{shard}\"")))?;
        let column = &t.columns[partitioning.column];
        let at = cast(at, column.ty, true).map_err(RpcError::Exec)?;
        if at.is_null() {
            return Err(refuse("22004", "the split point cannot be NULL".into()));
        }
        let ShardBounds::Range { from, to } = &s.bounds else {
            return Err(refuse("0A000", format!("shard \"{shard}\" is not a range shard")));
        };
        let inside = from.as_ref().is_none_or(|f| at.total_cmp(f).is_gt()) && s.bounds.range_contains(&at);
        if !inside {
            return Err(refuse(
                "22023",
                format!(
                    "split point {} of column \"{}\" is not inside shard \"{shard}\" ({})",
                    at.to_text().unwrap_or_default(),
                    column.name,
                    s.bounds.describe()
                ),
            ));
        }
        let name = name.unwrap_or_else(|| default_name(shard, &at));
        if map.tables.values().any(|t| t.name == name) || map.shards.values().any(|s| s.name == name) {
            return Err(refuse("42P07", format!("relation \"{name}\" already exists")));
        }
        if let Some(r) = s
            .replicas
            .iter()
            .find(|r| map.nodes.get(&r.node).is_none_or(|n| n.state == NodeState::Dead))
        {
            return Err(refuse(
                "55000",
                format!(
                    "shard \"{shard}\" has a replica on node {}, which is dead: split it once the replica is repaired",
                    r.node
                ),
            ));
        }
        let new_shard = Shard {
            id: 0,
            table: t.id,
            name,
            bounds: ShardBounds::Range {
                from: Some(at.clone()),
                to: to.clone(),
            },
            replicas: s.replicas.iter().map(|r| ReplicaInfo { id: 0, node: r.node }).collect(),
            epoch: 1,
        };
        let mut task = CatalogState::new_task(TaskKind::Split, s.id, None, None, now_ms());
        task.split = Some(SplitPlan {
            at,
            shard: new_shard,
            fence_epoch: 0,
            fenced: false,
        });
        Ok(task)
    }

    /// Carries a split task out (see the module's comment).
    pub(crate) async fn carry_out_split(&self, task: &TaskInfo) -> Result<(), String> {
        let Some(plan) = task.split.clone() else {
            return Err("a split task without a plan".into());
        };
        if !plan.fenced {
            self.step(task.id, "creating the new shard's replicas".into()).await;
            let started = Instant::now();
            loop {
                match self.create_replicas(&plan.shard).await {
                    Ok(()) => break,
                    Err(e) if started.elapsed() >= BEFORE_FENCE_LIMIT => return Err(e.to_string()),
                    Err(e) => {
                        warn!(task = task.id, error = %e, "cannot create the new shard's replicas yet");
                        tokio::time::sleep(RETRY_AFTER).await;
                    }
                }
            }
            self.commit(vec![Command::SplitFenced { task: task.id }])
                .await
                .map_err(|e| format!("cannot record the fence: {e}"))?;
        }
        let mut attempt = 0u32;
        loop {
            let map = self.map();
            let (Some(source), Some(table)) = (
                map.shards.get(&task.shard),
                map.shards.get(&task.shard).and_then(|s| map.tables.get(&s.table)),
            ) else {
                return Err(format!("shard {} was dropped", task.shard));
            };
            match self.split_steps(task.id, &plan, source, table).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    attempt += 1;
                    warn!(task = task.id, attempt, error = %e, "a split step failed; trying again");
                    self.step(task.id, format!("trying again (attempt {attempt}): {e}"))
                        .await;
                    tokio::time::sleep(RETRY_AFTER * attempt.min(10)).await;
                }
            }
        }
    }

    /// Steps 2 to 4: fence and read, copy, clean up.
    async fn split_steps(
        &self,
        task: TaskId,
        plan: &SplitPlan,
        source: &Shard,
        table: &tessera_types::schema::Table,
    ) -> Result<(), String> {
        self.step(task, "fencing the shard and reading the rows that move".into())
            .await;
        let read = Request::SplitRead {
            shard: source.id,
            epoch: plan.fence_epoch,
            request_id: step_request_id(task, 1),
            moved: TableLayout::of(table, &plan.shard),
            batch_rows: SPLIT_BATCH_ROWS,
        };
        let batches: Vec<MovedBatch> = self
            .on_primary(&source.replicas, |addr| {
                let read = read.clone();
                async move {
                    let mut stream = self.pool.client(&addr).stream(read).await?;
                    let mut batches = Vec::new();
                    while let Some(reply) = stream.next().await {
                        match reply? {
                            Response::SplitRows { rows, requests } => batches.push((rows, requests)),
                            Response::Done => return Ok(batches),
                            other => return Err(RpcError::internal(format!("unexpected split reply {other:?}"))),
                        }
                    }
                    Ok(batches)
                }
            })
            .await?;
        let rows: usize = batches.iter().map(|(r, _)| r.len()).sum();
        self.step(task, format!("copying {rows} rows to shard \"{}\"", plan.shard.name))
            .await;
        let parts = batches.len() as u32;
        let ingest_id = step_request_id(task, 2);
        let last = std::iter::once((Vec::new(), Vec::new()));
        for (part, (rows, requests)) in batches.into_iter().chain(last).enumerate() {
            let request = Request::SplitIngest {
                shard: tessera_types::fragment::ShardRef {
                    shard: plan.shard.id,
                    epoch: plan.shard.epoch,
                },
                request_id: ingest_id,
                part: part as u32,
                last: part as u32 == parts,
                rows,
                requests,
            };
            self.on_primary(&plan.shard.replicas, |addr| {
                let request = request.clone();
                async move {
                    self.pool
                        .client(&addr)
                        .call_timeout(request, Duration::from_secs(30))
                        .await
                }
            })
            .await?;
        }
        self.step(
            task,
            format!("deleting the {rows} copied rows from shard \"{}\"", source.name),
        )
        .await;
        let mut kept = source.clone();
        if let ShardBounds::Range { to, .. } = &mut kept.bounds {
            *to = Some(plan.at.clone());
        }
        let cleanup = Request::SplitCleanup {
            shard: source.id,
            epoch: plan.fence_epoch,
            request_id: step_request_id(task, 3),
            kept: TableLayout::of(table, &kept),
        };
        self.on_primary(&source.replicas, |addr| {
            let cleanup = cleanup.clone();
            async move {
                self.pool
                    .client(&addr)
                    .call_timeout(cleanup, Duration::from_secs(60))
                    .await
            }
        })
        .await?;
        Ok(())
    }

    /// Runs `call` against the primary of a group with these replicas: the node a refusal
    /// names first, then each live node in turn, for a few rounds.
    async fn on_primary<T, F, Fut>(&self, replicas: &[ReplicaInfo], call: F) -> Result<T, String>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, RpcError>>,
    {
        self.on_primary_rpc(replicas, call).await.map_err(|e| match e {
            RpcError::Exec(x) => x.to_string(),
            RpcError::Internal(why) => why,
            other => other.to_string(),
        })
    }

    /// `on_primary`, keeping the error (a statement error from the primary as it is).
    pub(crate) async fn on_primary_rpc<T, F, Fut>(&self, replicas: &[ReplicaInfo], call: F) -> Result<T, RpcError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, RpcError>>,
    {
        let mut last_error = String::from("no replica's node is up");
        let mut hint: Option<NodeId> = None;
        for _round in 0..50 {
            let map = self.map();
            let mut candidates: Vec<NodeId> = hint.take().into_iter().collect();
            for r in replicas {
                if !candidates.contains(&r.node) {
                    candidates.push(r.node);
                }
            }
            for node in candidates {
                let Some(info) = map.nodes.get(&node).filter(|n| n.state.is_up()) else {
                    continue;
                };
                match call(info.addr.clone()).await {
                    Ok(v) => return Ok(v),
                    Err(RpcError::NotLeader { leader, .. }) => {
                        last_error = format!("node {node} is not the primary");
                        if let Some(l) = leader.filter(|l| *l != node) {
                            hint = Some(l);
                            break;
                        }
                    }
                    Err(e @ RpcError::Exec(_)) => return Err(e),
                    Err(e) => last_error = format!("node {node}: {e}"),
                }
            }
            tokio::time::sleep(RETRY_AFTER / 2).await;
        }
        Err(RpcError::Internal(last_error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_request_ids_are_distinct_per_step_and_unlike_a_routers() {
        let ids = [step_request_id(7, 1), step_request_id(7, 2), step_request_id(8, 1)];
        assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 3);
        assert!(ids.iter().all(|id| (id >> 64) as u64 == u64::MAX));
        assert_eq!(default_name("sh2", &Value::Int8(6144)), "sh2_6144");
        assert_eq!(default_name("sh2", &Value::Int8(-5)), "sh2__5");
    }
}
