//! The catalog's control loop: it gives every shard that lost a replica with a dead node a new
//! replica on a live node, carries out the replica changes asked for through admin SQL, and
//! deletes replicas that no shard owns any more (those of a node that came back after being
//! replaced, or of a dropped table whose node was away).
//!
//! A replica change is a task, recorded before its first step so that a restarted catalog
//! resumes it with the same new replica id (DESIGN.md: never reuse a Raft node id). Its steps,
//! each safe to repeat:
//!
//! 1. create the new replica on its node (it joins its group empty, without initializing it);
//! 2. ask the shard's primary to add it as a Raft learner, which catches up by log or snapshot;
//! 3. once it has caught up, ask the primary to make the group's voters the new set: one
//!    membership change, which openraft carries out through a joint configuration;
//! 4. record the new placement in the map (and bump the shard's epoch);
//! 5. delete the replaced replica if its node is alive (a dead node's is deleted by the
//!    cleanup when the node comes back).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_types::rpc::{AdminRequest, Request, Response, RpcError};
use tessera_types::schema::{
    NodeId, NodeState, ReplicaId, ReplicaInfo, ShardId, TaskId, TaskInfo, TaskKind, TaskState,
};
use tessera_types::ExecError;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::service::{now_ms, Catalog};
use crate::state::{CatalogState, Command, Plan};

/// How often the control loop looks for work.
const TICK: Duration = Duration::from_millis(250);
/// How often it looks for replicas no shard owns.
const CLEANUP_EVERY: Duration = Duration::from_secs(3);
/// Replica changes carried out at once (each adds load on a primary and a new node).
const CONCURRENT_TASKS: usize = 4;
/// How long a new replica may catch up without progress before its task fails.
const STALL_LIMIT: Duration = Duration::from_secs(120);
/// How often a task's progress is saved.
const STEP_EVERY: Duration = Duration::from_secs(1);
/// How often the primary is asked whether a new replica has caught up.
const POLL: Duration = Duration::from_millis(200);
/// Most nodes one `tessera_add_nodes` call starts.
const MAX_PROVISIONED_AT_ONCE: i64 = 16;
/// How long a replica taken out of its group lives on before it is deleted.
const REMOVED_GRACE: Duration = Duration::from_secs(3);

impl Catalog {
    /// Runs the control loop until `stop` fires, acting while this member leads the catalog.
    /// Tasks cut short (by `stop`, or a new leader) resume where the leader is.
    pub async fn run_control_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        let mut running: JoinSet<TaskId> = JoinSet::new();
        let mut in_flight: HashSet<TaskId> = HashSet::new();
        let mut reported: HashSet<String> = HashSet::new();
        let mut last_cleanup = Instant::now();
        let mut led = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some(done) = running.join_next() => {
                    if let Ok(id) = done {
                        in_flight.remove(&id);
                    }
                    continue;
                }
                _ = stop.changed() => {
                    running.abort_all();
                    return;
                }
            }
            if !self.leading(&mut led) {
                continue;
            }
            self.bootstrap_superuser().await;
            self.plan_tasks(&mut reported).await;
            for task in self.with_state(|st| st.running_tasks()) {
                if in_flight.len() >= CONCURRENT_TASKS {
                    break;
                }
                if in_flight.insert(task.id) {
                    let catalog = self.clone();
                    running.spawn(async move {
                        let id = task.id;
                        catalog.run_task(task).await;
                        id
                    });
                }
            }
            if last_cleanup.elapsed() >= CLEANUP_EVERY {
                self.clean_orphans().await;
                last_cleanup = Instant::now();
            }
        }
    }

    /// Records the tasks that bring shards back to their replication factor on live nodes
    /// (`CatalogState::plan_tasks`), and lets drained nodes go. A shard that cannot be helped
    /// now is reported once per reason.
    async fn plan_tasks(&self, reported: &mut HashSet<String>) {
        // The task's and the new replica's ids are given when the task is recorded.
        let Plan { tasks, stuck, balanced } = self.with_state(|st| st.plan_tasks(now_ms()));
        if balanced && self.with_state(|st| st.balancing) {
            match self.commit(vec![Command::SetBalancing { on: false }]).await {
                Ok(_) => info!("the live nodes hold balanced numbers of replicas"),
                Err(e) => warn!(error = %e, "cannot record the end of rebalancing"),
            }
        }
        let drained = self.with_state(|st| st.drained_nodes());
        for node in drained {
            match self.commit(vec![Command::RemoveNode { node }]).await {
                Ok(_) => info!(
                    node,
                    "node drained: it holds no replica any more and leaves the cluster"
                ),
                Err(e) => warn!(node, error = %e, "cannot remove a drained node"),
            }
        }
        for (shard, why) in stuck {
            if reported.insert(why.clone()) {
                warn!(shard, "{why}");
            }
        }
        for task in tasks {
            match self.commit(vec![Command::StartTask { task: task.clone() }]).await {
                Ok(ids) => {
                    let recorded = ids
                        .into_iter()
                        .flatten()
                        .next()
                        .and_then(|id| self.with_state(|st| st.tasks.get(&id).cloned()));
                    if let Some(t) = recorded {
                        info!(task = t.id, "{}: started", describe(&t));
                    }
                }
                Err(e) => warn!(error = %e, "cannot record the task to {}", describe(&task)),
            }
        }
    }

    /// Carries a task out and records how it ended.
    async fn run_task(self: Arc<Self>, task: TaskInfo) {
        let describe = describe(&task);
        let result = if task.kind == TaskKind::Split {
            self.carry_out_split(&task).await
        } else {
            self.carry_out(&task).await
        };
        if let Err(e) = &result {
            warn!(task = task.id, error = %e, "could not {describe}");
        }
        let finished = self
            .commit(vec![Command::FinishTask {
                task: task.id,
                error: result.err(),
                now_ms: now_ms(),
            }])
            .await;
        match finished {
            Err(e) => warn!(task = task.id, error = %e, "cannot record the end of a task; it will run again"),
            Ok(_) => {
                let done = self.with_state(|st| st.tasks.get(&task.id).map(|t| t.state));
                if done == Some(TaskState::Done) {
                    info!(task = task.id, "{describe}: done");
                    if let Some(r) = task.remove.clone() {
                        // Later, so that routers learn the new placement first and the
                        // statements the replica is still serving (as a primary that just
                        // stepped down, say) end with an answer they can retry elsewhere.
                        let catalog = self.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(REMOVED_GRACE).await;
                            catalog.drop_replica_if_up(task.shard, r.id, r.node).await;
                        });
                    }
                }
            }
        }
    }

    /// Steps 1 to 3 of a task (see the module's comment).
    async fn carry_out(&self, task: &TaskInfo) -> Result<(), String> {
        let map = self.map();
        let shard = map
            .shards
            .get(&task.shard)
            .cloned()
            .ok_or_else(|| format!("shard {} was dropped", task.shard))?;
        if let Some(add) = &task.add {
            if !shard.replicas.iter().any(|r| r.id == add.id) {
                self.step(task.id, format!("creating replica {} on node {}", add.id, add.node))
                    .await;
                let addr = map
                    .node_addr(add.node)
                    .ok_or_else(|| format!("node {} is not registered", add.node))?;
                let mut members: Vec<(ReplicaId, NodeId)> = shard.replicas.iter().map(|r| (r.id, r.node)).collect();
                members.push((add.id, add.node));
                let req = Request::CreateReplica {
                    shard: shard.id,
                    replica: add.id,
                    members,
                    epoch: shard.epoch + 1,
                };
                self.pool
                    .client(addr)
                    .call_timeout(req, Duration::from_secs(30))
                    .await
                    .map_err(|e| format!("cannot create replica {} on node {}: {e}", add.id, add.node))?;
            }
        }
        let voters: Vec<ReplicaId> = shard
            .replicas
            .iter()
            .map(|r| r.id)
            .filter(|id| task.remove.as_ref().is_none_or(|r| r.id != *id))
            .chain(task.add.as_ref().map(|a| a.id))
            .collect();
        if voters.is_empty() {
            return Err(format!("shard \"{}\" would be left without replicas", shard.name));
        }
        self.change_group(task, shard.id, &shard.replicas, voters).await
    }

    /// Asks the shard's primary, wherever it is, to change the group until it answers `Ok`.
    async fn change_group(
        &self,
        task: &TaskInfo,
        shard: ShardId,
        replicas: &[ReplicaInfo],
        voters: Vec<ReplicaId>,
    ) -> Result<(), String> {
        let request = Request::ChangeReplicas {
            shard,
            add: task.add.as_ref().map(|a| (a.id, a.node)),
            voters,
        };
        let mut hint: Option<NodeId> = None;
        let mut progress_at = Instant::now();
        let mut best: Option<u64> = None;
        let mut last_error = String::from("no primary answered");
        let mut step_saved = Instant::now() - STEP_EVERY;
        self.step(task.id, "waiting for the shard's primary".into()).await;
        loop {
            if progress_at.elapsed() > STALL_LIMIT {
                return Err(format!(
                    "no progress for {} s (last: {last_error})",
                    STALL_LIMIT.as_secs()
                ));
            }
            let map = self.map();
            let mut candidates: Vec<NodeId> = hint.into_iter().collect();
            for r in replicas {
                if !candidates.contains(&r.node) {
                    candidates.push(r.node);
                }
            }
            hint = None;
            for node in candidates {
                let Some(info) = map.nodes.get(&node).filter(|n| n.state.is_up()) else {
                    continue;
                };
                let reply = self
                    .pool
                    .client(&info.addr)
                    .call_timeout(request.clone(), Duration::from_secs(30))
                    .await;
                match reply {
                    Ok(Response::Ok) => return Ok(()),
                    Ok(Response::CatchingUp { matched, last }) => {
                        if matched > best {
                            best = matched;
                            progress_at = Instant::now();
                        }
                        if step_saved.elapsed() >= STEP_EVERY {
                            let step = match (matched, last) {
                                (Some(m), Some(l)) => format!("catching up: log entry {m} of {l}"),
                                (None, Some(l)) => format!("catching up: 0 of {l} log entries (or a snapshot)"),
                                _ => "catching up".into(),
                            };
                            self.step(task.id, step).await;
                            step_saved = Instant::now();
                        }
                        hint = Some(node);
                        break;
                    }
                    Err(RpcError::NotLeader { leader, .. }) => {
                        last_error = format!("node {node} is not the primary");
                        if let Some(l) = leader.filter(|l| *l != node) {
                            hint = Some(l);
                            break;
                        }
                    }
                    Ok(other) => last_error = format!("unexpected reply {other:?}"),
                    Err(e) => last_error = e.to_string(),
                }
            }
            if hint.is_none() {
                tokio::time::sleep(POLL).await;
            } else {
                tokio::time::sleep(POLL / 4).await;
            }
        }
    }

    /// Records a task asked for through an admin function; returns its id.
    pub(crate) async fn start_task(&self, task: TaskInfo) -> Result<TaskId, RpcError> {
        self.commit(vec![Command::StartTask { task }])
            .await?
            .into_iter()
            .flatten()
            .next()
            .ok_or_else(|| RpcError::internal("the task was not recorded"))
    }

    /// Saves a running task's progress (`tessera.tasks.step`).
    pub(crate) async fn step(&self, task: TaskId, step: String) {
        if let Err(e) = self.commit(vec![Command::TaskStep { task, step }]).await {
            warn!(task, error = %e, "cannot record a task's progress");
        }
    }

    async fn drop_replica_if_up(&self, shard: ShardId, replica: ReplicaId, node: NodeId) {
        let map = self.map();
        let Some(info) = map.nodes.get(&node).filter(|n| n.state.is_up()) else {
            return;
        };
        let req = Request::DropReplica { shard, replica };
        if let Err(e) = self
            .pool
            .client(&info.addr)
            .call_timeout(req, Duration::from_secs(10))
            .await
        {
            warn!(shard, replica, node, error = %e, "cannot delete a replaced replica yet; the cleanup will");
        }
    }

    /// Deletes the replicas live nodes hold that no shard owns and no task is adding. The
    /// nodes are asked first; the decision is taken under the DDL lock, so that a replica
    /// created by a CREATE TABLE still in progress is never taken for an orphan.
    async fn clean_orphans(&self) {
        let map = self.map();
        let mut held = Vec::new();
        for node in map.nodes.values().filter(|n| n.state.is_up()) {
            let reply = self
                .pool
                .client(&node.addr)
                .call_timeout(Request::NodeStatus, Duration::from_secs(2))
                .await;
            if let Ok(Response::NodeStatus(replicas)) = reply {
                held.extend(
                    replicas
                        .into_iter()
                        .map(|r| (node.id, node.addr.clone(), r.shard, r.replica)),
                );
            }
        }
        let _one_at_a_time = self.ddl.lock().await;
        let (map, adding) = self.with_state(|st| {
            let adding: HashSet<(ReplicaId, NodeId)> = st
                .running_tasks()
                .iter()
                .flat_map(|t| {
                    let split = t.split.iter().flat_map(|p| p.shard.replicas.iter());
                    t.add.iter().chain(split).map(|a| (a.id, a.node))
                })
                .collect();
            (st.map.clone(), adding)
        });
        for (node, addr, shard, replica) in held {
            let owned = map
                .shards
                .get(&shard)
                .is_some_and(|s| s.replicas.iter().any(|r| r.id == replica && r.node == node));
            if owned || adding.contains(&(replica, node)) {
                continue;
            }
            info!(node, shard, replica, "deleting a replica no shard owns any more");
            let req = Request::DropReplica { shard, replica };
            if let Err(e) = self.pool.client(&addr).call_timeout(req, Duration::from_secs(10)).await {
                warn!(node, shard, replica, error = %e, "cannot delete an orphaned replica; will try again");
            }
        }
    }
}

/// What a task does, in words, for the log.
fn describe(task: &TaskInfo) -> String {
    let add = task
        .add
        .as_ref()
        .map(|a| format!("add replica {} on node {}", a.id, a.node));
    let remove = task
        .remove
        .as_ref()
        .map(|r| format!("remove replica {} on node {}", r.id, r.node));
    let split = task.split.as_ref().map(|p| {
        format!(
            "at {} into shard {} \"{}\"",
            p.at.to_text().unwrap_or_default(),
            p.shard.id,
            p.shard.name
        )
    });
    let what = [add, remove, split]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" and ");
    format!("{} of shard {} ({what})", task.kind.name(), task.shard)
}

/// How long `tessera_add_node` waits for the node to register.
const ADD_NODE_WAIT: Duration = Duration::from_secs(30);

fn refuse(code: &str, message: String) -> RpcError {
    RpcError::Exec(ExecError::other(code, message))
}

impl Catalog {
    /// Waits until a live node at `addr` has registered.
    async fn wait_for_node(&self, addr: &str) -> Result<(), RpcError> {
        let deadline = Instant::now() + ADD_NODE_WAIT;
        loop {
            let known = self.map().nodes.values().find(|n| n.addr == addr).map(|n| n.state);
            match known {
                Some(NodeState::Alive) => return Ok(()),
                Some(state) if Instant::now() >= deadline => {
                    return Err(refuse(
                        "55000",
                        format!("the node at {addr} is {}, not alive", state.name()),
                    ))
                }
                None if Instant::now() >= deadline => {
                    return Err(refuse(
                        "55000",
                        format!(
                            "no node at {addr} registered within {} s: start `tessera node --listen {addr} --catalog ...` first",
                            ADD_NODE_WAIT.as_secs()
                        ),
                    ))
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Has the provisioner start `count` nodes (one more each for the target, if any), and
    /// waits until they have registered.
    async fn provision_nodes(&self, count: i64) -> Result<(), RpcError> {
        if self.provisioning.provisioner.is_none() {
            return Err(refuse(
                "0A000",
                "this cluster's catalog has no node provisioner (it runs with --provisioner none): start `tessera node --catalog ...` yourself, then call tessera_add_node('host:port')".into(),
            ));
        }
        if !(1..=MAX_PROVISIONED_AT_ONCE).contains(&count) {
            return Err(refuse(
                "22023",
                format!("nodes to add must be between 1 and {MAX_PROVISIONED_AT_ONCE}, not {count}"),
            ));
        }
        let addrs = self
            .provisioning
            .start(count as u32)
            .await
            .map_err(|e| refuse("58000", format!("cannot start a node: {e}")))?;
        self.commit(vec![Command::AdjustNodeTarget {
            from_flag: self.provisioning.target_flag,
            delta: count as i32,
        }])
        .await?;
        for addr in &addrs {
            self.wait_for_node(addr).await?;
        }
        Ok(())
    }

    /// Runs an admin function. The change itself is carried out by the control loop (as
    /// tasks, shown in `tessera.tasks`); the answer comes once it is recorded.
    pub(crate) async fn admin(&self, request: AdminRequest) -> Result<Response, RpcError> {
        if let AdminRequest::SplitShard { table, shard, at, name } = request {
            return self.split_shard(table, shard, at, name).await;
        }
        match &request {
            AdminRequest::AddNode { addr } => self.wait_for_node(addr).await?,
            AdminRequest::ProvisionNodes { count } => self.provision_nodes(*count).await?,
            _ => {}
        }
        let _one_at_a_time = self.ddl.lock().await;
        let map = self.map();
        match request {
            AdminRequest::MoveReplica { shard, from, to } => {
                let s = map
                    .shard_by_name(&shard)
                    .or_else(|| {
                        map.table_by_name(&shard)
                            .filter(|t| t.partitioning.is_none())
                            .and_then(|t| map.shards_of(t.id).into_iter().next())
                    })
                    .ok_or_else(|| refuse("42P01", format!("shard \"{shard}\" does not exist")))?;
                let replica = s
                    .replicas
                    .iter()
                    .find(|r| r.node == from)
                    .cloned()
                    .ok_or_else(|| refuse("22023", format!("shard \"{shard}\" has no replica on node {from}")))?;
                match map.nodes.get(&to) {
                    None => return Err(refuse("22023", format!("node {to} does not exist"))),
                    Some(n) if n.state != NodeState::Alive => {
                        return Err(refuse(
                            "22023",
                            format!("node {to} is {}: replicas go to alive nodes only", n.state.name()),
                        ))
                    }
                    Some(_) => {}
                }
                if s.replicas.iter().any(|r| r.node == to) {
                    return Err(refuse(
                        "22023",
                        format!("node {to} already holds a replica of shard \"{shard}\""),
                    ));
                }
                let task = CatalogState::new_task(TaskKind::Move, s.id, Some(to), Some(replica), now_ms());
                let id = self.start_task(task).await?;
                info!(task = id, shard = %shard, from, to, "replica move requested");
                Ok(Response::Admin(id as i64))
            }
            AdminRequest::SetReplicas { table, replicas } => {
                let t = map
                    .table_by_name(&table)
                    .ok_or_else(|| refuse("42P01", format!("table \"{table}\" does not exist")))?;
                if !(1..=9).contains(&replicas) {
                    return Err(refuse(
                        "22023",
                        format!("replicas must be between 1 and 9, not {replicas}"),
                    ));
                }
                let alive = map.nodes.values().filter(|n| n.state == NodeState::Alive).count() as i64;
                if replicas > alive {
                    return Err(refuse(
                        "53000",
                        format!("table \"{table}\" cannot have {replicas} replicas per shard on distinct nodes: only {alive} nodes are alive"),
                    ));
                }
                let changes: i64 = map
                    .shards_of(t.id)
                    .iter()
                    .map(|s| (s.replicas.len() as i64 - replicas).abs())
                    .sum();
                self.commit(vec![Command::SetTableReplicas {
                    table: t.id,
                    replicas: replicas as u32,
                }])
                .await?;
                info!(table = %table, replicas, changes, "replication factor changed");
                Ok(Response::Admin(changes))
            }
            AdminRequest::SplitShard { .. } => Err(RpcError::internal("a split is handled above")),
            AdminRequest::AddNode { .. } | AdminRequest::ProvisionNodes { .. } | AdminRequest::Rebalance => {
                // Counted before balancing starts: the control loop may finish a move before
                // this answer goes out. Balanced nodes leave balancing off, so that a node
                // added just after does not start receiving replicas before its own count.
                let moves = self.with_state(|st| st.moves_to_balance());
                if moves > 0 {
                    self.commit(vec![Command::SetBalancing { on: true }]).await?;
                }
                info!(moves, "rebalancing");
                Ok(Response::Admin(moves as i64))
            }
            AdminRequest::RemoveNode { node } => {
                let n = map
                    .nodes
                    .get(&node)
                    .ok_or_else(|| refuse("22023", format!("node {node} does not exist")))?;
                let held: Vec<_> = map
                    .shards
                    .values()
                    .filter(|s| s.replicas.iter().any(|r| r.node == node))
                    .collect();
                if n.state == NodeState::Dead {
                    if !held.is_empty() {
                        return Err(refuse(
                            "55000",
                            format!(
                                "node {node} is dead and its {} replicas are being re-created elsewhere; remove it once that is done",
                                held.len()
                            ),
                        ));
                    }
                    self.commit(vec![Command::RemoveNode { node }]).await?;
                    return Ok(Response::Admin(0));
                }
                for s in &held {
                    let room = map
                        .nodes
                        .values()
                        .filter(|o| o.state == NodeState::Alive && o.id != node)
                        .filter(|o| !s.replicas.iter().any(|r| r.node == o.id))
                        .count();
                    if room == 0 {
                        return Err(refuse(
                            "53000",
                            format!(
                                "node {node} cannot be removed: shard \"{}\" has {} replicas and no other live node to move one to",
                                s.name,
                                s.replicas.len()
                            ),
                        ));
                    }
                }
                // The node leaves for good: keeping the target would start another.
                self.commit(vec![
                    Command::SetNodeState {
                        node,
                        state: NodeState::Draining,
                    },
                    Command::AdjustNodeTarget {
                        from_flag: self.provisioning.target_flag,
                        delta: -1,
                    },
                ])
                .await?;
                info!(node, replicas = held.len(), "node draining");
                Ok(Response::Admin(held.len() as i64))
            }
        }
    }
}
