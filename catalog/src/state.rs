//! The catalog's state and the commands that change it. This is a pure state machine: `apply`
//! takes a command and returns the new state or an error, and does no I/O, so the same code can
//! sit behind a replicated log. Validation that needs no I/O (name clashes, overlapping
//! partitions, primary keys that omit the partition key) happens here too.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use tessera_types::rpc::RoleChange;
use tessera_types::schema::{
    ClusterMap, ColumnDef, NodeId, NodeInfo, NodeState, PartitionMethod, Partitioning, ReplicaId, ReplicaInfo, Role,
    Shard, ShardBounds, ShardId, Table, TableId, TaskId, TaskInfo, TaskKind, TaskState,
};

/// How many finished tasks the catalog keeps for `tessera.tasks`.
const FINISHED_TASKS_KEPT: usize = 100;
use tessera_types::ExecError;

/// Everything the catalog persists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CatalogState {
    pub map: ClusterMap,
    pub next_node: NodeId,
    pub next_table: TableId,
    pub next_shard: ShardId,
    pub next_replica: ReplicaId,
    /// Replica changes, running and recently finished.
    #[serde(default)]
    pub tasks: std::collections::BTreeMap<TaskId, TaskInfo>,
    #[serde(default)]
    pub next_task: TaskId,
    /// Whether replicas are being moved until the live nodes hold balanced numbers of them
    /// (`tessera_rebalance`, `tessera_add_node`); cleared once they do.
    #[serde(default)]
    pub balancing: bool,
    /// The live nodes to keep, as `tessera_add_node()` and `tessera_remove_node` last moved it,
    /// with the `--target-nodes` it started from; absent until one of them does.
    #[serde(default)]
    pub node_target: Option<NodeTarget>,
}

/// The number of live nodes the catalog's provisioner keeps (`--target-nodes`, then moved by
/// the admin functions that add and remove nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTarget {
    /// The `--target-nodes` of the leader that last moved the target.
    pub from_flag: u32,
    pub target: u32,
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
    /// Starts or stops moving replicas until the live nodes are balanced.
    SetBalancing {
        on: bool,
    },
    /// Hands out `count` new ids of a kind (for a table, shard or replicas about to be made).
    AllocateIds {
        kind: IdKind,
        count: u64,
    },
    /// Forgets a node (drained by `tessera_remove_node`).
    RemoveNode {
        node: NodeId,
    },
    /// `ALTER TABLE ... ADD PRIMARY KEY`, once every shard has keyed its rows by it (or
    /// `primary_key` empty: only the epochs, after a refused one fenced the shards).
    SetPrimaryKey {
        table: TableId,
        primary_key: Vec<usize>,
        epochs: Vec<(ShardId, u64)>,
    },
    /// Changes a table's replication factor; the control loop then adds or removes replicas.
    SetTableReplicas {
        table: TableId,
        replicas: u32,
    },
    /// Roles made by `CREATE ROLE`.
    CreateRoles {
        roles: Vec<Role>,
    },
    AlterRole {
        name: String,
        change: RoleChange,
    },
    DropRoles {
        names: Vec<String>,
    },
    /// Moves the target of live nodes by `delta` (`NodeTarget`); `from_flag` is the leader's
    /// `--target-nodes`, which restarts the count when it differs from the recorded one.
    AdjustNodeTarget {
        from_flag: u32,
        delta: i32,
    },
    /// Records a task before any of its steps is taken, so that a restarted catalog resumes
    /// it with the same new replica id.
    StartTask {
        task: TaskInfo,
    },
    /// A split task is about to fence its shard: from now on it does not fail.
    SplitFenced {
        task: TaskId,
    },
    /// A running task's progress.
    TaskStep {
        task: TaskId,
        step: String,
    },
    /// Ends a task. On success the shard's placement becomes what the task made it: the added
    /// replica in, the removed one out, and the shard's epoch bumped.
    FinishTask {
        task: TaskId,
        error: Option<String>,
        now_ms: u64,
    },
}

fn err(code: &str, message: impl Into<String>) -> ExecError {
    ExecError::other(code, message)
}

/// What the control loop should do next (`CatalogState::plan_tasks`).
#[derive(Debug, Default)]
pub struct Plan {
    /// Tasks to start.
    pub tasks: Vec<TaskInfo>,
    /// Shards that need a change that cannot be made now, and why.
    pub stuck: Vec<(ShardId, String)>,
    /// Whether the live nodes hold balanced numbers of replicas.
    pub balanced: bool,
}

/// The kinds of ids the catalog hands out, each from its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdKind {
    Table,
    Shard,
    Replica,
}

impl CatalogState {
    /// Takes `count` new ids of a kind; returns the first (the others follow it).
    fn allocate(&mut self, kind: IdKind, count: u64) -> u64 {
        let counter = match kind {
            IdKind::Table => &mut self.next_table,
            IdKind::Shard => &mut self.next_shard,
            IdKind::Replica => &mut self.next_replica,
        };
        let first = *counter + 1;
        *counter += count;
        first
    }

    /// The running task on a shard, if any (a shard has at most one).
    pub fn running_task(&self, shard: ShardId) -> Option<&TaskInfo> {
        self.tasks
            .values()
            .find(|t| t.shard == shard && t.state == TaskState::Running)
    }

    /// Every running task, oldest first.
    pub fn running_tasks(&self) -> Vec<TaskInfo> {
        self.tasks
            .values()
            .filter(|t| t.state == TaskState::Running)
            .cloned()
            .collect()
    }

    /// The live nodes to keep for a leader started with `--target-nodes flag`: the recorded
    /// target, unless the flag changed since it was recorded.
    pub fn node_target(&self, flag: u32) -> u32 {
        match self.node_target {
            Some(t) if t.from_flag == flag => t.target,
            _ => flag,
        }
    }

    /// Whether a relation (table or partition) of this name exists.
    pub fn relation_exists(&self, name: &str) -> bool {
        self.map.table_by_name(name).is_some() || self.map.shard_by_name(name).is_some()
    }

    /// Applies a command, bumping the map version when the map changes. Returns the node id
    /// for `RegisterNode`, the first id for `AllocateIds` and the task id for `StartTask`.
    pub fn apply(&mut self, cmd: Command) -> Result<Option<u64>, ExecError> {
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
            Command::CreateRoles { roles } => {
                let mut named = std::collections::BTreeSet::new();
                if let Some(r) = roles
                    .iter()
                    .find(|r| self.map.roles.contains_key(&r.name) || !named.insert(r.name.as_str()))
                {
                    return Err(err("42710", format!("role \"{}\" already exists", r.name)));
                }
                for r in roles {
                    self.map.roles.insert(r.name.clone(), r);
                }
            }
            Command::AlterRole { name, change } => {
                let Some(mut role) = self.map.roles.remove(&name) else {
                    return Err(err("42704", format!("role \"{name}\" does not exist")));
                };
                if let Some(new) = change.rename.filter(|new| *new != name) {
                    if self.map.roles.contains_key(&new) {
                        self.map.roles.insert(name, role);
                        return Err(err("42710", format!("role \"{new}\" already exists")));
                    }
                    // An md5 verifier hashes the name with the password.
                    role.password.md5 = None;
                    role.name = new;
                }
                role.superuser = change.superuser.unwrap_or(role.superuser);
                role.login = change.login.unwrap_or(role.login);
                if let Some(p) = change.password {
                    role.password = p;
                }
                self.map.roles.insert(role.name.clone(), role);
            }
            Command::DropRoles { names } => {
                for n in &names {
                    self.map.roles.remove(n);
                }
            }
            Command::AllocateIds { kind, count } => return Ok(Some(self.allocate(kind, count))),
            Command::SetBalancing { on } => {
                self.balancing = on;
                return Ok(None);
            }
            Command::AdjustNodeTarget { from_flag, delta } => {
                let base = self.node_target(from_flag);
                // No target stays no target, and a kept cluster keeps at least one node.
                let target = if base == 0 {
                    0
                } else {
                    base.saturating_add_signed(delta).max(1)
                };
                self.node_target = Some(NodeTarget { from_flag, target });
                return Ok(None);
            }
            Command::RemoveNode { node } => {
                self.map.nodes.remove(&node);
            }
            Command::SetTableReplicas { table, replicas } => {
                if let Some(t) = self.map.tables.get_mut(&table) {
                    t.replicas = replicas;
                }
            }
            Command::SetPrimaryKey {
                table,
                primary_key,
                epochs,
            } => {
                if let Some(t) = self.map.tables.get_mut(&table) {
                    if !primary_key.is_empty() && !t.primary_key.is_empty() && t.primary_key != primary_key {
                        return Err(err(
                            "42P16",
                            format!("multiple primary keys for table \"{}\" are not allowed", t.name),
                        ));
                    }
                    for &i in &primary_key {
                        if let Some(c) = t.columns.get_mut(i) {
                            c.not_null = true;
                        }
                    }
                    if !primary_key.is_empty() {
                        t.primary_key = primary_key;
                    }
                }
                for (shard, epoch) in epochs {
                    if let Some(s) = self.map.shards.get_mut(&shard) {
                        s.epoch = s.epoch.max(epoch);
                    }
                }
            }
            Command::StartTask { task } => {
                if let Some(running) = self.running_task(task.shard) {
                    return Err(err(
                        "55006",
                        format!(
                            "shard {} is already being changed by task {}; wait until it finishes",
                            task.shard, running.id
                        ),
                    ));
                }
                // Ids are given here, in log order, so that every member gives the same.
                let mut task = task;
                self.next_task += 1;
                task.id = self.next_task;
                if let Some(add) = task.add.as_mut() {
                    add.id = self.allocate(IdKind::Replica, 1);
                }
                if let Some(plan) = task.split.as_mut() {
                    let source = self
                        .map
                        .shards
                        .get(&task.shard)
                        .ok_or_else(|| err("42P01", format!("shard {} does not exist", task.shard)))?;
                    if self.relation_exists(&plan.shard.name) {
                        return Err(err("42P07", format!("relation \"{}\" already exists", plan.shard.name)));
                    }
                    plan.fence_epoch = source.epoch + 1;
                    plan.shard.id = self.allocate(IdKind::Shard, 1);
                    for r in plan.shard.replicas.iter_mut() {
                        r.id = self.allocate(IdKind::Replica, 1);
                    }
                }
                let id = task.id;
                self.tasks.insert(id, task);
                self.prune_tasks();
                // The map is unchanged: routers and nodes need not hear of it.
                return Ok(Some(id));
            }
            Command::SplitFenced { task } => {
                if let Some(plan) = self.tasks.get_mut(&task).and_then(|t| t.split.as_mut()) {
                    plan.fenced = true;
                }
                return Ok(None);
            }
            Command::TaskStep { task, step } => {
                if let Some(t) = self.tasks.get_mut(&task) {
                    t.step = step;
                }
                return Ok(None);
            }
            Command::FinishTask { task, error, now_ms } => {
                let Some(t) = self.tasks.get(&task).cloned() else {
                    return Err(err("XX000", format!("task {task} does not exist")));
                };
                let error = match (error, self.map.shards.get_mut(&t.shard), &t.split) {
                    (error, Some(shard), Some(plan)) => {
                        // Whatever the outcome, the shard leaves its fence behind: requests
                        // must carry the fence's epoch to be served again.
                        shard.epoch = shard.epoch.max(plan.fence_epoch);
                        match error {
                            Some(e) => Some(e),
                            None => {
                                if let ShardBounds::Range { to, .. } = &mut shard.bounds {
                                    *to = Some(plan.at.clone());
                                }
                                self.map.shards.insert(plan.shard.id, plan.shard.clone());
                                None
                            }
                        }
                    }
                    (Some(e), _, _) => Some(e),
                    (None, None, _) => Some(format!("shard {} was dropped", t.shard)),
                    (None, Some(shard), None) => {
                        if let Some(r) = &t.remove {
                            shard.replicas.retain(|x| x.id != r.id);
                        }
                        if let Some(a) = &t.add {
                            if !shard.replicas.iter().any(|x| x.id == a.id) {
                                shard.replicas.push(a.clone());
                            }
                        }
                        shard.epoch += 1;
                        None
                    }
                };
                let changed_map = error.is_none() || t.split.is_some();
                if let Some(t) = self.tasks.get_mut(&task) {
                    t.state = if error.is_none() {
                        TaskState::Done
                    } else {
                        TaskState::Failed
                    };
                    t.step = error.unwrap_or_else(|| "done".into());
                    t.finished_ms = Some(now_ms);
                }
                if !changed_map {
                    return Ok(None);
                }
            }
        }
        self.map.version += 1;
        Ok(result)
    }

    /// Forgets the oldest finished tasks beyond `FINISHED_TASKS_KEPT`.
    fn prune_tasks(&mut self) {
        let finished: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|t| t.state != TaskState::Running)
            .map(|t| t.id)
            .collect();
        for id in finished.iter().take(finished.len().saturating_sub(FINISHED_TASKS_KEPT)) {
            self.tasks.remove(id);
        }
    }

    /// A task that replaces, adds or removes one replica of `shard`. Its id and the new
    /// replica's are given when `Command::StartTask` records it.
    pub fn new_task(
        kind: TaskKind,
        shard: ShardId,
        add_on: Option<NodeId>,
        remove: Option<ReplicaInfo>,
        now_ms: u64,
    ) -> TaskInfo {
        TaskInfo {
            id: 0,
            kind,
            shard,
            add: add_on.map(|node| ReplicaInfo { id: 0, node }),
            remove,
            state: TaskState::Running,
            step: "starting".into(),
            started_ms: now_ms,
            finished_ms: None,
            split: None,
        }
    }

    /// The replica changes to start now, one per shard at most (a shard with a running task
    /// waits for it), bringing every shard to its table's replication factor on live nodes:
    ///
    /// - a replica on a dead node is replaced by one on a live node (`Repair`), one on a
    ///   draining node likewise (`Move`);
    /// - a shard with fewer replicas than its table asks for gets one more (`AddReplica`), one
    ///   with more loses one (`RemoveReplica`), from the node holding the most replicas;
    /// - while rebalancing, once nothing of the above is to be done, one replica moves from the
    ///   fullest live node to the emptiest (`Rebalance`).
    ///
    /// A shard whose running replicas are not a majority cannot change its group (its Raft
    /// group has no primary), and one with no node to go to cannot grow: those are reported
    /// in `stuck`, with the reason.
    pub fn plan_tasks(&self, now_ms: u64) -> Plan {
        let mut tasks = Vec::new();
        let mut stuck = Vec::new();
        let state_of = |map: &ClusterMap, node: NodeId| map.nodes.get(&node).map_or(NodeState::Dead, |n| n.state);
        let shards: Vec<Shard> = self.map.shards.values().cloned().collect();
        for shard in shards {
            if self.running_task(shard.id).is_some() {
                continue;
            }
            let wanted = self
                .map
                .tables
                .get(&shard.table)
                .map_or(shard.replicas.len(), |t| t.replicas as usize);
            let holding: Vec<NodeId> = shard.replicas.iter().map(|r| r.node).collect();
            let leaving = shard
                .replicas
                .iter()
                .find(|r| state_of(&self.map, r.node) != NodeState::Alive)
                .cloned();
            let up = shard
                .replicas
                .iter()
                .filter(|r| state_of(&self.map, r.node).is_up())
                .count();
            if leaving.is_some() && up * 2 <= shard.replicas.len() {
                stuck.push((
                    shard.id,
                    format!(
                        "shard \"{}\" has {up} running replica{} of {}: without a majority its placement cannot change until its nodes come back",
                        shard.name,
                        if up == 1 { "" } else { "s" },
                        shard.replicas.len()
                    ),
                ));
                continue;
            }
            let target = place_replicas_excluding(&self.map, shard.id, 1, &holding)
                .ok()
                .and_then(|n| n.first().copied());
            let task = match (leaving, target) {
                (Some(lost), _) if shard.replicas.len() > wanted => {
                    Self::new_task(TaskKind::RemoveReplica, shard.id, None, Some(lost), now_ms)
                }
                (Some(lost), Some(to)) => {
                    let kind = if state_of(&self.map, lost.node) == NodeState::Draining {
                        TaskKind::Move
                    } else {
                        TaskKind::Repair
                    };
                    Self::new_task(kind, shard.id, Some(to), Some(lost), now_ms)
                }
                (Some(lost), None) => {
                    stuck.push((
                        shard.id,
                        format!(
                            "shard \"{}\" must replace its replica on node {} but every other live node holds one already",
                            shard.name, lost.node
                        ),
                    ));
                    continue;
                }
                (None, _) if shard.replicas.len() > wanted => {
                    let remove = self.most_loaded(&shard.replicas);
                    Self::new_task(TaskKind::RemoveReplica, shard.id, None, remove, now_ms)
                }
                (None, Some(to)) if shard.replicas.len() < wanted => {
                    Self::new_task(TaskKind::AddReplica, shard.id, Some(to), None, now_ms)
                }
                (None, None) if shard.replicas.len() < wanted => {
                    stuck.push((
                        shard.id,
                        format!(
                            "shard \"{}\" should have {wanted} replicas but has {} and no other live node can hold one",
                            shard.name,
                            shard.replicas.len()
                        ),
                    ));
                    continue;
                }
                (None, _) => continue,
            };
            tasks.push(task);
        }
        // A move in flight means "not balanced yet", though there is no next move until it ends.
        let moving = self
            .tasks
            .values()
            .any(|t| t.state == TaskState::Running && t.kind == TaskKind::Rebalance);
        let balanced = match self.rebalancing_move(now_ms) {
            _ if moving => false,
            Some(task) if self.balancing && tasks.is_empty() => {
                tasks.push(task);
                false
            }
            Some(_) => false,
            None => true,
        };
        Plan { tasks, stuck, balanced }
    }

    /// How many replicas each live node holds.
    fn loads(&self) -> std::collections::BTreeMap<NodeId, usize> {
        let mut loads: std::collections::BTreeMap<NodeId, usize> = self
            .map
            .nodes
            .values()
            .filter(|n| n.state == NodeState::Alive)
            .map(|n| (n.id, 0))
            .collect();
        for r in self.map.shards.values().flat_map(|s| &s.replicas) {
            if let Some(l) = loads.get_mut(&r.node) {
                *l += 1;
            }
        }
        loads
    }

    /// Replica moves still needed until no live node holds more than one replica more than
    /// another: as many as the emptiest nodes lack below the average, or the fullest hold
    /// above it, whichever is more.
    pub fn moves_to_balance(&self) -> usize {
        let loads = self.loads();
        if loads.is_empty() {
            return 0;
        }
        let total: usize = loads.values().sum();
        let (floor, ceil) = (total / loads.len(), total.div_ceil(loads.len()));
        let lacking: usize = loads.values().map(|l| floor.saturating_sub(*l)).sum();
        let excess: usize = loads.values().map(|l| l.saturating_sub(ceil)).sum();
        lacking.max(excess)
    }

    /// The next move towards balance (`Rebalance`): a replica from the fullest live node to
    /// the emptiest, of a shard the emptiest does not hold and no task is changing; `None` when
    /// the nodes are balanced (or, for now, no shard can move). One move at a time.
    fn rebalancing_move(&self, now_ms: u64) -> Option<TaskInfo> {
        if self
            .tasks
            .values()
            .any(|t| t.state == TaskState::Running && t.kind == TaskKind::Rebalance)
        {
            return None;
        }
        let loads = self.loads();
        let (&emptiest, &low) = loads.iter().min_by_key(|(id, l)| (**l, std::cmp::Reverse(**id)))?;
        let (&fullest, &high) = loads.iter().max_by_key(|(id, l)| (**l, **id))?;
        if high <= low + 1 {
            return None;
        }
        let shard = self.map.shards.values().find(|s| {
            s.replicas.iter().any(|r| r.node == fullest)
                && !s.replicas.iter().any(|r| r.node == emptiest)
                && self.running_task(s.id).is_none()
        })?;
        let from = shard.replicas.iter().find(|r| r.node == fullest).cloned();
        Some(Self::new_task(
            TaskKind::Rebalance,
            shard.id,
            Some(emptiest),
            from,
            now_ms,
        ))
    }

    /// Of a shard's replicas, the one on the node that holds the most replicas overall (the
    /// newest on a tie): the one to remove when the shard has too many.
    fn most_loaded(&self, replicas: &[ReplicaInfo]) -> Option<ReplicaInfo> {
        let load = |node: NodeId| {
            self.map
                .shards
                .values()
                .flat_map(|s| &s.replicas)
                .filter(|r| r.node == node)
                .count()
        };
        replicas.iter().max_by_key(|r| (load(r.node), r.id)).cloned()
    }

    /// Draining nodes that hold no replica any more and are the target of no task: they can
    /// leave the map.
    pub fn drained_nodes(&self) -> Vec<NodeId> {
        self.map
            .nodes
            .values()
            .filter(|n| n.state == NodeState::Draining)
            .filter(|n| {
                !self
                    .map
                    .shards
                    .values()
                    .any(|s| s.replicas.iter().any(|r| r.node == n.id))
                    && !self
                        .tasks
                        .values()
                        .any(|t| t.state == TaskState::Running && t.add.as_ref().is_some_and(|a| a.node == n.id))
            })
            .map(|n| n.id)
            .collect()
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
    place_replicas_excluding(map, shard, count, &[])
}

/// `place_replicas` over the live nodes not in `exclude` (those that already hold the shard).
pub fn place_replicas_excluding(
    map: &ClusterMap,
    shard: ShardId,
    count: u32,
    exclude: &[NodeId],
) -> Result<Vec<NodeId>, ExecError> {
    let alive: Vec<NodeId> = map
        .nodes
        .values()
        .filter(|n| n.state == NodeState::Alive && !exclude.contains(&n.id))
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

/// Replica records for a new shard placed on `nodes`, with ids from `first` on.
pub fn new_replicas(first: ReplicaId, nodes: &[NodeId]) -> Vec<ReplicaInfo> {
    nodes
        .iter()
        .zip(first..)
        .map(|(n, id)| ReplicaInfo { id, node: *n })
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

    fn allocate(st: &mut CatalogState, kind: IdKind, count: u64) -> u64 {
        st.apply(Command::AllocateIds { kind, count }).unwrap().unwrap()
    }

    /// Records shard `id` of table 1 with new replicas on `nodes`.
    fn add_shard(st: &mut CatalogState, id: ShardId, nodes: &[NodeId]) {
        let replicas = new_replicas(allocate(st, IdKind::Replica, nodes.len() as u64), nodes);
        st.map.shards.insert(
            id,
            Shard {
                id,
                table: 1,
                name: format!("s{id}"),
                bounds: ShardBounds::All,
                replicas,
                epoch: 1,
            },
        );
    }

    fn place(st: &mut CatalogState, replicas: u32) -> Vec<NodeId> {
        let id = allocate(st, IdKind::Shard, 1);
        let nodes = place_replicas(&st.map, id, replicas).unwrap();
        add_shard(st, id, &nodes);
        nodes
    }

    #[test]
    fn the_node_target_is_recorded_and_restarts_from_a_changed_flag() {
        let mut st = CatalogState::default();
        assert_eq!(st.node_target(3), 3, "the flag until something moves it");
        let adjust = |st: &mut CatalogState, from_flag, delta| {
            st.apply(Command::AdjustNodeTarget { from_flag, delta }).unwrap();
        };
        adjust(&mut st, 3, 2);
        adjust(&mut st, 3, -1);
        assert_eq!(st.node_target(3), 4, "added two, removed one");
        let restored: CatalogState = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
        assert_eq!(restored.node_target(3), 4, "kept in snapshots");
        assert_eq!(st.node_target(5), 5, "a changed --target-nodes starts the count again");
        adjust(&mut st, 5, 1);
        assert_eq!(st.node_target(5), 6);
        for _ in 0..10 {
            adjust(&mut st, 5, -1);
        }
        assert_eq!(st.node_target(5), 1, "a kept cluster keeps one node");
        adjust(&mut st, 0, 1);
        assert_eq!(st.node_target(0), 0, "no target stays no target");
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

    /// A table of one shard with replicas on nodes 1, 2 and 3 of a four-node cluster.
    fn one_shard_on_three_of_four() -> CatalogState {
        let mut st = cluster(4);
        st.map.tables.insert(
            1,
            Table {
                id: 1,
                name: "t".into(),
                columns: Vec::new(),
                primary_key: Vec::new(),
                partitioning: None,
                replicas: 3,
            },
        );
        let id = allocate(&mut st, IdKind::Shard, 1);
        add_shard(&mut st, id, &[1, 2, 3]);
        st
    }

    fn set_state(st: &mut CatalogState, node: NodeId, state: NodeState) {
        st.map.nodes.get_mut(&node).unwrap().state = state;
    }

    #[test]
    fn a_dead_nodes_replica_is_replaced_on_a_live_node_once() {
        let mut st = one_shard_on_three_of_four();
        assert!(st.plan_tasks(0).tasks.is_empty(), "nothing to do while all is well");
        set_state(&mut st, 2, NodeState::Dead);
        let Plan { tasks, stuck, .. } = st.plan_tasks(0);
        assert!(stuck.is_empty(), "{stuck:?}");
        let [task] = tasks.as_slice() else { panic!("{tasks:?}") };
        assert_eq!(task.kind, TaskKind::Repair);
        assert_eq!(task.remove.as_ref().map(|r| r.node), Some(2));
        assert_eq!(task.add.as_ref().map(|a| a.node), Some(4));
        let id = st.apply(Command::StartTask { task: task.clone() }).unwrap().unwrap();
        assert!(
            st.tasks[&id].add.as_ref().unwrap().id > 3,
            "a new replica id, never a reused one"
        );
        assert!(st.plan_tasks(0).tasks.is_empty(), "one task per shard at a time");
        let version = st.map.version;
        st.apply(Command::FinishTask {
            task: id,
            error: None,
            now_ms: 1,
        })
        .unwrap();
        let shard = st.map.shards.values().next().unwrap();
        let mut nodes: Vec<NodeId> = shard.replicas.iter().map(|r| r.node).collect();
        nodes.sort();
        assert_eq!(nodes, vec![1, 3, 4]);
        assert_eq!(shard.epoch, 2);
        assert!(st.map.version > version);
        assert_eq!(st.tasks[&id].state, TaskState::Done);
        assert!(st.plan_tasks(0).tasks.is_empty(), "repaired");
    }

    #[test]
    fn a_shard_without_a_majority_or_without_room_is_reported_not_changed() {
        let mut st = one_shard_on_three_of_four();
        set_state(&mut st, 1, NodeState::Dead);
        set_state(&mut st, 2, NodeState::Dead);
        let Plan { tasks, stuck, .. } = st.plan_tasks(0);
        assert!(tasks.is_empty(), "{tasks:?}");
        assert!(stuck[0].1.contains("without a majority"), "{stuck:?}");

        let mut st = one_shard_on_three_of_four();
        set_state(&mut st, 2, NodeState::Dead);
        set_state(&mut st, 4, NodeState::Dead);
        let Plan { tasks, stuck, .. } = st.plan_tasks(0);
        assert!(tasks.is_empty(), "{tasks:?}");
        assert!(stuck[0].1.contains("every other live node holds one"), "{stuck:?}");
    }

    #[test]
    fn draining_moves_and_replication_factor_changes_add_or_remove() {
        let mut st = one_shard_on_three_of_four();
        set_state(&mut st, 3, NodeState::Draining);
        let Plan { tasks, .. } = st.plan_tasks(0);
        assert_eq!(tasks[0].kind, TaskKind::Move);
        assert_eq!(tasks[0].remove.as_ref().map(|r| r.node), Some(3));
        assert_eq!(tasks[0].add.as_ref().map(|a| a.node), Some(4));
        assert!(st.drained_nodes().is_empty(), "node 3 still holds a replica");

        let mut st = one_shard_on_three_of_four();
        st.apply(Command::SetTableReplicas { table: 1, replicas: 4 }).unwrap();
        let Plan { tasks, .. } = st.plan_tasks(0);
        assert_eq!(tasks[0].kind, TaskKind::AddReplica);
        assert_eq!(tasks[0].add.as_ref().map(|a| a.node), Some(4));
        assert!(tasks[0].remove.is_none());

        st.apply(Command::SetTableReplicas { table: 1, replicas: 1 }).unwrap();
        let Plan { tasks, .. } = st.plan_tasks(0);
        assert_eq!(tasks[0].kind, TaskKind::RemoveReplica);
        assert!(tasks[0].add.is_none());
        assert!(tasks[0].remove.is_some());
    }

    #[test]
    fn rebalancing_moves_a_new_nodes_share_one_replica_at_a_time() {
        // Six shards on nodes 1 to 3 (every one on all three); node 4 is new.
        let mut st = cluster(4);
        for _ in 0..6 {
            let id = allocate(&mut st, IdKind::Shard, 1);
            add_shard(&mut st, id, &[1, 2, 3]);
        }
        assert_eq!(
            st.moves_to_balance(),
            4,
            "18 replicas over 4 nodes: node 4's share is 4"
        );
        let plan = st.plan_tasks(0);
        assert!(
            plan.tasks.is_empty() && !plan.balanced,
            "unbalanced, but not asked to move"
        );
        st.apply(Command::SetBalancing { on: true }).unwrap();
        let mut moved = 0;
        loop {
            let plan = st.plan_tasks(0);
            if plan.balanced {
                break;
            }
            let [task] = plan.tasks.as_slice() else {
                panic!("one move at a time: {plan:?}")
            };
            assert_eq!(task.kind, TaskKind::Rebalance);
            assert_eq!(task.add.as_ref().map(|a| a.node), Some(4));
            let id = st.apply(Command::StartTask { task: task.clone() }).unwrap().unwrap();
            let waiting = st.plan_tasks(0);
            assert!(waiting.tasks.is_empty(), "the next move waits for this one");
            assert!(!waiting.balanced, "a move in flight is not balance yet");
            st.apply(Command::FinishTask {
                task: id,
                error: None,
                now_ms: 1,
            })
            .unwrap();
            moved += 1;
            assert!(moved <= 4, "more moves than node 4's share");
        }
        assert_eq!(moved, 4);
        assert_eq!(st.loads().values().copied().collect::<Vec<_>>(), vec![5, 5, 4, 4]);
        assert_eq!(st.moves_to_balance(), 0);
    }

    #[test]
    fn a_split_gets_its_ids_in_log_order_and_its_end_narrows_the_shard() {
        let mut st = cluster(3);
        st.map.tables.insert(
            1,
            Table {
                id: 1,
                name: "t".into(),
                columns: vec![ColumnDef {
                    name: "k".into(),
                    ty: tessera_types::DataType::Int8,
                    not_null: true,
                    default: None,
                }],
                primary_key: vec![0],
                partitioning: Some(Partitioning {
                    method: PartitionMethod::Range,
                    column: 0,
                }),
                replicas: 3,
            },
        );
        add_shard(&mut st, 1, &[1, 2, 3]);
        st.next_shard = 1;
        let source = st.map.shards.get_mut(&1).unwrap();
        source.bounds = ShardBounds::Range {
            from: Some(tessera_types::Value::Int8(4096)),
            to: Some(tessera_types::Value::Int8(8192)),
        };
        source.epoch = 4;
        let split_task = |st: &CatalogState| {
            let mut task = CatalogState::new_task(TaskKind::Split, 1, None, None, 0);
            task.split = Some(tessera_types::schema::SplitPlan {
                at: tessera_types::Value::Int8(6144),
                shard: Shard {
                    id: 0,
                    table: 1,
                    name: "s1_6144".into(),
                    bounds: ShardBounds::Range {
                        from: Some(tessera_types::Value::Int8(6144)),
                        to: Some(tessera_types::Value::Int8(8192)),
                    },
                    replicas: st.map.shards[&1]
                        .replicas
                        .iter()
                        .map(|r| ReplicaInfo { id: 0, node: r.node })
                        .collect(),
                    epoch: 1,
                },
                fence_epoch: 0,
                fenced: false,
            });
            task
        };
        let version = st.map.version;
        let id = st.apply(Command::StartTask { task: split_task(&st) }).unwrap().unwrap();
        let plan = st.tasks[&id].split.clone().unwrap();
        assert_eq!(plan.fence_epoch, 5, "fenced one epoch past the shard's");
        assert!(plan.shard.id > 0 && !st.map.shards.contains_key(&plan.shard.id));
        let ids: Vec<ReplicaId> = plan.shard.replicas.iter().map(|r| r.id).collect();
        let old: Vec<ReplicaId> = st.map.shards[&1].replicas.iter().map(|r| r.id).collect();
        assert!(
            ids.iter().all(|i| *i > 0 && !old.contains(i)),
            "fresh replica ids: {ids:?}"
        );
        assert_eq!(st.map.version, version, "the map changes only at the end");
        st.apply(Command::SplitFenced { task: id }).unwrap();
        assert!(st.tasks[&id].split.as_ref().unwrap().fenced);
        st.apply(Command::FinishTask {
            task: id,
            error: None,
            now_ms: 1,
        })
        .unwrap();
        let kept = &st.map.shards[&1];
        assert_eq!(
            kept.bounds,
            ShardBounds::Range {
                from: Some(tessera_types::Value::Int8(4096)),
                to: Some(tessera_types::Value::Int8(6144)),
            }
        );
        assert_eq!(kept.epoch, 5, "routers must meet the fence's epoch");
        assert_eq!(st.map.shards[&plan.shard.id].name, "s1_6144");
        assert!(st.map.version > version);

        // A split that fails before its fence leaves the bounds, but not an older epoch.
        let again = st.apply(Command::StartTask { task: split_task(&st) });
        assert!(again.is_err(), "the name is taken now");
        let mut other = split_task(&st);
        if let Some(p) = other.split.as_mut() {
            p.shard.name = "s1_7000".into();
        }
        let id = st.apply(Command::StartTask { task: other }).unwrap().unwrap();
        let before = st.map.shards[&1].bounds.clone();
        st.apply(Command::FinishTask {
            task: id,
            error: Some("no primary".into()),
            now_ms: 2,
        })
        .unwrap();
        assert_eq!(st.map.shards[&1].bounds, before);
        assert_eq!(st.map.shards[&1].epoch, 6);
        assert_eq!(st.map.shards.len(), 2, "no shard is added by a failed split");
    }

    #[test]
    fn a_failed_task_leaves_the_placement_alone() {
        let mut st = one_shard_on_three_of_four();
        set_state(&mut st, 2, NodeState::Dead);
        let task = st.plan_tasks(0).tasks.remove(0);
        let id = st.apply(Command::StartTask { task }).unwrap().unwrap();
        let before = st.map.shards.clone();
        st.apply(Command::FinishTask {
            task: id,
            error: Some("node 4 did not answer".into()),
            now_ms: 1,
        })
        .unwrap();
        assert_eq!(st.map.shards, before);
        assert_eq!(st.tasks[&id].state, TaskState::Failed);
        assert_eq!(st.tasks[&id].step, "node 4 did not answer");
        let retry = st.plan_tasks(0).tasks;
        assert_eq!(retry.len(), 1, "a failed repair is planned again");
        let again = st
            .apply(Command::StartTask { task: retry[0].clone() })
            .unwrap()
            .unwrap();
        assert_ne!(
            st.tasks[&again].add.as_ref().unwrap().id,
            st.tasks[&id].add.as_ref().unwrap().id,
            "the new attempt's replica has a new id"
        );
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
