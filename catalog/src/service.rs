//! The catalog process: keeps the state (persisted after every change), serves the cluster
//! map to routers and nodes (long poll), registers nodes and tracks their heartbeats, and runs
//! DDL: validate, place the new shard's replicas on nodes, create them there, then record it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use tessera_types::auth::RolePassword;
use tessera_types::rpc::{BoxFuture, ConnId, DdlRequest, Request, Responder, Response, RpcError, RpcPool, Service};
use tessera_types::schema::{ClusterMap, NodeId, NodeState, Role, Shard, ShardBounds, Table};
use tessera_types::ExecError;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::CatalogConfig;
use crate::provision::{Provisioner, Provisioning};
use crate::raft::{raft_config, CatalogNetwork, CatalogRaft, Member, MemberId, Raft, Shared, StateMachine};
use crate::state::{new_replicas, place_replicas, validate_partition, validate_table, CatalogState, Command, IdKind};

pub struct Catalog {
    pub(crate) config: CatalogConfig,
    /// The catalog's Raft group; its state machine is `shared`.
    pub raft: Raft,
    shared: Arc<Shared>,
    /// DDL statements run one at a time (and the cleanup of orphaned replicas with them).
    pub(crate) ddl: tokio::sync::Mutex<()>,
    pub(crate) pool: Arc<RpcPool>,
    /// When each node was last heard from (on the leader, since it took the lead).
    seen: Mutex<HashMap<NodeId, Instant>>,
    /// Starting nodes itself, and the number of live nodes to keep (provision.rs).
    pub(crate) provisioning: Provisioning,
    /// The password of the superuser `tessera` made while there is no role (`--pwfile`).
    superuser_password: Option<RolePassword>,
}

/// The role `--pwfile` creates.
pub const BOOTSTRAP_SUPERUSER: &str = "tessera";

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog state file {path}: {message}")]
    State { path: PathBuf, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error(transparent)]
    Wal(#[from] tessera_wal::WalError),
    #[error("cannot start the catalog's Raft group: {0}")]
    Raft(String),
    #[error("{0}")]
    Provisioner(String),
    #[error("pwfile {0}")]
    Password(String),
}

/// The password in a `--pwfile`: its first line.
fn read_password(path: &std::path::Path) -> Result<RolePassword, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|e| CatalogError::Password(format!("{}: {e}", path.display())))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(CatalogError::Password(format!(
            "{}: the first line, the superuser's password, is empty",
            path.display()
        )));
    }
    Ok(RolePassword::new(BOOTSTRAP_SUPERUSER, password))
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Catalog {
    /// Loads the state and the log from the data directory (or starts empty) and joins the
    /// catalog's Raft group. On first start, member 1 forms the group of every member of
    /// `peers`; the others wait to hear from it.
    pub async fn open(
        config: CatalogConfig,
        pool: Arc<RpcPool>,
        provisioner: Option<Provisioner>,
    ) -> Result<Arc<Catalog>, CatalogError> {
        let state_err = |message: String| CatalogError::State {
            path: config.data_dir.join("catalog.json"),
            message,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(|e| state_err(e.to_string()))?;
        let shared = Shared::load(&config.data_dir).map_err(state_err)?;
        let wal = tessera_wal::Wal::<CatalogRaft>::open(&config.data_dir.join("wal"), tessera_wal::SyncMode::Durable)?;
        let network = CatalogNetwork { pool: pool.clone() };
        let machine = StateMachine { shared: shared.clone() };
        let raft_err = |e: &dyn std::fmt::Display| CatalogError::Raft(e.to_string());
        let raft = Raft::new(config.id, raft_config(), network, wal.group(0), machine)
            .await
            .map_err(|e| raft_err(&e))?;
        if config.id == 1 && !raft.is_initialized().await.map_err(|e| raft_err(&e))? {
            let members: BTreeMap<MemberId, Member> = config
                .members()
                .into_iter()
                .map(|(id, addr)| (id, Member { addr }))
                .collect();
            raft.initialize(members).await.map_err(|e| raft_err(&e))?;
        }
        {
            let applied = shared.lock();
            info!(
                member = config.id,
                members = config.members().len(),
                version = applied.state.map.version,
                tables = applied.state.map.tables.len(),
                nodes = applied.state.map.nodes.len(),
                "catalog loaded"
            );
        }
        let provisioning = Provisioning::new(provisioner, config.target_nodes);
        let superuser_password = match &config.pwfile {
            None => None,
            Some(path) => Some(read_password(path)?),
        };
        Ok(Arc::new(Catalog {
            config,
            provisioning,
            superuser_password,
            raft,
            shared,
            ddl: tokio::sync::Mutex::new(()),
            pool,
            seen: Mutex::new(HashMap::new()),
        }))
    }

    /// Creates the superuser `tessera` with the `--pwfile` password while no role exists (as
    /// on the first start), so that a cluster whose routers ask for passwords can be entered.
    pub(crate) async fn bootstrap_superuser(&self) {
        let Some(password) = &self.superuser_password else {
            return;
        };
        if !self.map().roles.is_empty() {
            return;
        }
        let role = Role {
            name: BOOTSTRAP_SUPERUSER.into(),
            superuser: true,
            login: true,
            password: password.clone(),
        };
        match self.commit(vec![Command::CreateRoles { roles: vec![role] }]).await {
            Ok(_) => info!(
                role = BOOTSTRAP_SUPERUSER,
                "superuser created with the --pwfile password"
            ),
            Err(e) => warn!(error = %e, "cannot create the superuser of --pwfile"),
        }
    }

    pub fn map(&self) -> Arc<ClusterMap> {
        self.shared.map_tx.borrow().clone()
    }

    /// Whether this member leads the catalog's group.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == openraft::ServerState::Leader
    }

    /// Refuses a request this member cannot serve because it does not lead, naming the leader.
    fn ensure_leader(&self) -> Result<(), RpcError> {
        if self.is_leader() {
            return Ok(());
        }
        let m = self.raft.metrics().borrow().clone();
        let leader = m
            .current_leader
            .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
        Err(RpcError::NotCatalogLeader { leader })
    }

    /// The catalog's Prometheus page: the cluster map's version, its nodes by state, tables,
    /// shards and replicas, and this member's place in the catalog's group.
    pub fn metrics(&self) -> String {
        use tessera_types::metrics::Exposition;
        let map = self.map();
        let mut page = Exposition::default();
        page.single(
            "gauge",
            "tessera_catalog_map_version",
            "Version of the cluster map.",
            map.version as f64,
        );
        page.nodes_by_state("tessera_catalog_nodes", "Nodes registered, by state.", &map);
        page.single("gauge", "tessera_catalog_tables", "Tables.", map.tables.len() as f64);
        page.single("gauge", "tessera_catalog_shards", "Shards.", map.shards.len() as f64);
        let replicas: usize = map.shards.values().map(|s| s.replicas.len()).sum();
        page.single(
            "gauge",
            "tessera_catalog_replicas",
            "Shard replicas placed on nodes.",
            replicas as f64,
        );
        let m = self.raft.metrics().borrow().clone();
        page.single(
            "gauge",
            "tessera_catalog_leader",
            "1 if this member leads the catalog's group, else 0.",
            f64::from(u8::from(m.state == openraft::ServerState::Leader)),
        );
        page.single(
            "gauge",
            "tessera_catalog_term",
            "This member's Raft term; every election raises it.",
            m.current_term as f64,
        );
        let (running, by_kind) = self.with_state(|st| {
            let mut by_kind: BTreeMap<(&'static str, &'static str), usize> = BTreeMap::new();
            for t in st.tasks.values() {
                *by_kind.entry((t.kind.name(), t.state.name())).or_default() += 1;
            }
            (st.running_tasks().len(), by_kind)
        });
        page.single(
            "gauge",
            "tessera_catalog_tasks_running",
            "Replica changes in progress.",
            running as f64,
        );
        let samples: Vec<(Vec<String>, f64)> = by_kind
            .into_iter()
            .map(|((kind, state), n)| (vec![kind.to_string(), state.to_string()], n as f64))
            .collect();
        page.samples(
            "gauge",
            "tessera_catalog_tasks",
            "Replica changes the catalog keeps (running and the last finished), by kind and state.",
            &["kind", "state"],
            &samples,
        );
        page.finish()
    }

    /// Applies commands atomically through the catalog's log: all take effect, on a majority
    /// of members' disks, or none does. Returns each command's result.
    pub(crate) async fn commit(&self, cmds: Vec<Command>) -> Result<Vec<Option<u64>>, RpcError> {
        match self.raft.client_write(cmds).await {
            Ok(reply) => reply.data.map_err(RpcError::Exec),
            Err(openraft::error::RaftError::APIError(openraft::error::ClientWriteError::ForwardToLeader(f))) => {
                Err(RpcError::NotCatalogLeader {
                    leader: f.leader_node.map(|n| n.addr),
                })
            }
            Err(e) => Err(RpcError::Internal(format!("the catalog's log refused a change: {e}"))),
        }
    }

    /// Takes `count` new ids of a kind through the log; returns the first.
    async fn allocate(&self, kind: IdKind, count: u64) -> Result<u64, RpcError> {
        self.commit(vec![Command::AllocateIds { kind, count }])
            .await?
            .into_iter()
            .flatten()
            .next()
            .ok_or_else(|| RpcError::internal("no id was allocated"))
    }

    /// Reads the applied state.
    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&CatalogState) -> T) -> T {
        f(&self.shared.lock().state)
    }

    async fn get_map(&self, newer_than: u64, wait_ms: u64) -> Arc<ClusterMap> {
        let mut rx = self.shared.map_tx.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms.min(60_000));
        loop {
            let current = rx.borrow_and_update().clone();
            if current.version > newer_than {
                return current;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return current,
            }
        }
    }

    /// Creates a shard's replicas on their nodes; on failure removes those that were made.
    /// The lowest-numbered replica, which initializes the group and stands for election at
    /// once, is created after the others, so that its first vote requests find them.
    pub(crate) async fn create_replicas(&self, shard: &Shard) -> Result<(), RpcError> {
        let map = self.map();
        let members: Vec<_> = shard.replicas.iter().map(|r| (r.id, r.node)).collect();
        let first = members.iter().map(|(id, _)| *id).min();
        let create = |r: &tessera_types::schema::ReplicaInfo| {
            let addr = map.node_addr(r.node).unwrap_or_default().to_string();
            let req = Request::CreateReplica {
                shard: shard.id,
                replica: r.id,
                members: members.clone(),
                epoch: shard.epoch,
            };
            let client = self.pool.client(&addr);
            async move { client.call_timeout(req, Duration::from_secs(30)).await }
        };
        let (initializer, others): (Vec<_>, Vec<_>) = shard.replicas.iter().partition(|r| Some(r.id) == first);
        let mut results = join_all(others.into_iter().map(create)).await;
        if results.iter().all(|r| r.is_ok()) {
            results.extend(join_all(initializer.into_iter().map(create)).await);
        }
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            let e = e.clone();
            self.drop_replicas(shard).await;
            return Err(RpcError::Internal(format!(
                "cannot create the replicas of shard \"{}\": {e}",
                shard.name
            )));
        }
        Ok(())
    }

    async fn drop_replicas(&self, shard: &Shard) {
        let map = self.map();
        for r in &shard.replicas {
            let Some(addr) = map.node_addr(r.node) else { continue };
            let req = Request::DropReplica {
                shard: shard.id,
                replica: r.id,
            };
            if let Err(e) = self.pool.client(addr).call_timeout(req, Duration::from_secs(10)).await {
                warn!(shard = shard.id, replica = r.id, node = r.node, error = %e, "could not drop a replica; its node will hold orphaned data");
            }
        }
    }

    async fn new_shard(&self, table: &Table, name: String, bounds: ShardBounds) -> Result<Shard, RpcError> {
        let id = self.allocate(IdKind::Shard, 1).await?;
        let nodes = self.with_state(|st| place_replicas(&st.map, id, table.replicas))?;
        let first = self.allocate(IdKind::Replica, nodes.len() as u64).await?;
        Ok(Shard {
            id,
            table: table.id,
            name,
            bounds,
            replicas: new_replicas(first, &nodes),
            epoch: 1,
        })
    }

    /// The answer to `CREATE ... IF NOT EXISTS` of a relation that exists.
    fn exists_skip(&self, if_not_exists: bool, name: &str) -> Option<Response> {
        (if_not_exists && self.with_state(|st| st.relation_exists(name))).then(|| Response::DdlDone {
            version: self.map().version,
            notice: Some(format!("relation \"{name}\" already exists, skipping")),
        })
    }

    async fn ddl(&self, req: DdlRequest) -> Result<Response, RpcError> {
        let _one_at_a_time = self.ddl.lock().await;
        match req {
            DdlRequest::CreateTable {
                name,
                columns,
                primary_key,
                partitioning,
                replicas,
                if_not_exists,
            } => {
                if let Some(skip) = self.exists_skip(if_not_exists, &name) {
                    return Ok(skip);
                }
                let replicas = replicas.unwrap_or(self.config.replicas);
                self.with_state(|st| validate_table(st, &name, &columns, &primary_key, partitioning.as_ref()))?;
                // A partitioned table's shards come later, but a replication factor no live
                // nodes can give them is refused now, not at its first partition.
                self.with_state(|st| place_replicas(&st.map, 0, replicas).map(|_| ()))?;
                let table = Table {
                    id: self.allocate(IdKind::Table, 1).await?,
                    name: name.clone(),
                    columns,
                    primary_key,
                    partitioning,
                    replicas,
                };
                let shard = match table.partitioning {
                    Some(_) => None,
                    None => {
                        let shard = self.new_shard(&table, table.name.clone(), ShardBounds::All).await?;
                        self.create_replicas(&shard).await?;
                        Some(shard)
                    }
                };
                let created = shard.clone();
                if let Err(e) = self.commit(vec![Command::CreateTable { table, shard }]).await {
                    if let Some(s) = created {
                        self.drop_replicas(&s).await;
                    }
                    return Err(e);
                }
                info!(table = %name, "table created");
                Ok(Response::DdlDone {
                    version: self.map().version,
                    notice: None,
                })
            }
            DdlRequest::CreatePartition {
                name,
                parent,
                bounds,
                if_not_exists,
            } => {
                if let Some(skip) = self.exists_skip(if_not_exists, &name) {
                    return Ok(skip);
                }
                let map = self.map();
                let Some(table) = map.table_by_name(&parent) else {
                    return Err(tessera_types::ExecError::other(
                        "42P01",
                        format!("relation \"{parent}\" does not exist"),
                    )
                    .into());
                };
                self.with_state(|st| validate_partition(st, table, &name, &bounds))?;
                let shard = self.new_shard(table, name.clone(), bounds).await?;
                self.create_replicas(&shard).await?;
                if let Err(e) = self.commit(vec![Command::AddShard { shard: shard.clone() }]).await {
                    self.drop_replicas(&shard).await;
                    return Err(e);
                }
                info!(partition = %name, parent = %parent, shard = shard.id, "partition created");
                Ok(Response::DdlDone {
                    version: self.map().version,
                    notice: None,
                })
            }
            DdlRequest::DropTable { names, if_exists } => {
                let map = self.map();
                let mut cmds = Vec::new();
                let mut doomed: Vec<Shard> = Vec::new();
                let mut notices = Vec::new();
                for name in &names {
                    if let Some(t) = map.table_by_name(name) {
                        cmds.push(Command::DropTable { table: t.id });
                        doomed.extend(map.shards_of(t.id).into_iter().cloned());
                    } else if let Some(s) = map.shard_by_name(name) {
                        cmds.push(Command::DropShard { shard: s.id });
                        doomed.push(s.clone());
                    } else if if_exists {
                        notices.push(format!("table \"{name}\" does not exist, skipping"));
                    } else {
                        return Err(tessera_types::ExecError::other(
                            "42P01",
                            format!("table \"{name}\" does not exist"),
                        )
                        .into());
                    }
                }
                if !cmds.is_empty() {
                    self.commit(cmds).await?;
                }
                for s in &doomed {
                    self.drop_replicas(s).await;
                }
                Ok(self.ddl_done(notices))
            }
            DdlRequest::AddPrimaryKey { table, columns } => self.add_primary_key(&table, columns).await,
            DdlRequest::CreateRoles { roles, if_not_exists } => {
                let map = self.map();
                let (existing, new): (Vec<Role>, Vec<Role>) =
                    roles.into_iter().partition(|r| map.roles.contains_key(&r.name));
                if let Some(r) = existing.first().filter(|_| !if_not_exists) {
                    return Err(ExecError::other("42710", format!("role \"{}\" already exists", r.name)).into());
                }
                if !new.is_empty() {
                    info!(roles = ?new.iter().map(|r| &r.name).collect::<Vec<_>>(), "roles created");
                    self.commit(vec![Command::CreateRoles { roles: new }]).await?;
                }
                Ok(self.ddl_done(
                    existing
                        .iter()
                        .map(|r| format!("role \"{}\" already exists, skipping", r.name))
                        .collect(),
                ))
            }
            DdlRequest::AlterRole { name, change } => {
                let mut notices = Vec::new();
                let renamed = change.rename.as_ref().is_some_and(|new| *new != name);
                if renamed && self.map().roles.get(&name).is_some_and(|r| r.password.md5.is_some()) {
                    notices.push("MD5 password cleared because of role rename".to_string());
                }
                self.commit(vec![Command::AlterRole { name, change }]).await?;
                Ok(self.ddl_done(notices))
            }
            DdlRequest::DropRoles { names, if_exists } => {
                let map = self.map();
                let (known, unknown): (Vec<String>, Vec<String>) =
                    names.into_iter().partition(|n| map.roles.contains_key(n));
                if let Some(n) = unknown.first().filter(|_| !if_exists) {
                    return Err(ExecError::other("42704", format!("role \"{n}\" does not exist")).into());
                }
                if !known.is_empty() {
                    info!(roles = ?known, "roles dropped");
                    self.commit(vec![Command::DropRoles { names: known }]).await?;
                }
                Ok(self.ddl_done(
                    unknown
                        .iter()
                        .map(|n| format!("role \"{n}\" does not exist, skipping"))
                        .collect(),
                ))
            }
        }
    }

    /// The answer to a schema change, with its notices.
    pub(crate) fn ddl_done(&self, notices: Vec<String>) -> Response {
        Response::DdlDone {
            version: self.map().version,
            notice: (!notices.is_empty()).then(|| notices.join("\n")),
        }
    }

    fn heartbeat(&self, node: NodeId) -> Result<Response, RpcError> {
        if !self.map().nodes.contains_key(&node) {
            return Err(RpcError::Internal(format!("node {node} is not registered")));
        }
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, Instant::now());
        Ok(Response::Ok)
    }

    /// On the leader: whether it leads in the same term as at the last call. A member that
    /// has just taken the lead gives every node a full `dead_after_ms` from now, since the
    /// heartbeats went to the previous leader.
    pub(crate) fn leading(&self, led: &mut Option<u64>) -> bool {
        let m = self.raft.metrics().borrow().clone();
        if m.state != openraft::ServerState::Leader {
            *led = None;
            return false;
        }
        if *led != Some(m.current_term) {
            *led = Some(m.current_term);
            let now = Instant::now();
            let nodes: Vec<NodeId> = self.map().nodes.keys().copied().collect();
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            for n in nodes {
                seen.insert(n, now);
            }
        }
        true
    }

    /// Logs every change of this member's role in the catalog's group, until `stop` fires.
    pub async fn log_leadership(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut metrics = self.raft.metrics();
        let mut last = None;
        loop {
            let (state, term, leader) = {
                let m = metrics.borrow_and_update();
                (m.state, m.current_term, m.current_leader)
            };
            if last != Some((state, term)) {
                last = Some((state, term));
                if state == openraft::ServerState::Leader {
                    info!(member = self.config.id, term, "this member leads the catalog");
                } else {
                    info!(member = self.config.id, term, ?state, ?leader, "catalog role changed");
                }
            }
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                _ = stop.changed() => return,
            }
        }
    }

    /// On the leader: marks nodes dead when silent for `dead_after_ms`, and alive again when
    /// they return.
    pub async fn run_failure_detector(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis((self.config.dead_after_ms / 4).max(50)));
        let mut led = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if !self.leading(&mut led) {
                continue;
            }
            let dead_after = Duration::from_millis(self.config.dead_after_ms);
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut cmds = Vec::new();
            for n in self.map().nodes.values() {
                let silent = seen.get(&n.id).is_none_or(|t| t.elapsed() > dead_after);
                match (n.state, silent) {
                    (NodeState::Alive | NodeState::Draining, true) => {
                        warn!(node = n.id, addr = %n.addr, "node missed its heartbeats; declared dead");
                        cmds.push(Command::SetNodeState {
                            node: n.id,
                            state: NodeState::Dead,
                        });
                    }
                    (NodeState::Dead, false) => {
                        info!(node = n.id, "node is back");
                        cmds.push(Command::SetNodeState {
                            node: n.id,
                            state: NodeState::Alive,
                        });
                    }
                    _ => {}
                }
            }
            if !cmds.is_empty() {
                if let Err(e) = self.commit(cmds).await {
                    warn!(error = %e, "cannot record node states");
                }
            }
        }
    }

    async fn handle_request(&self, request: Request) -> Result<Response, RpcError> {
        if let Request::CatalogRaft { kind, payload } = request {
            return tessera_types::rpc::raft::handle(&self.raft, kind, &payload)
                .await
                .map(Response::Raft);
        }
        // Everything else is served by the leader, which holds the latest state.
        self.ensure_leader()?;
        match request {
            Request::RegisterNode { node, addr } => {
                let id = self
                    .commit(vec![Command::RegisterNode {
                        node,
                        addr: addr.clone(),
                        now_ms: now_ms(),
                    }])
                    .await?;
                let id = id
                    .into_iter()
                    .flatten()
                    .next()
                    .ok_or_else(|| RpcError::internal("registration failed"))?;
                self.seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, Instant::now());
                info!(node = id, %addr, "node registered");
                Ok(Response::NodeRegistered { node: id })
            }
            Request::Heartbeat { node } => self.heartbeat(node),
            Request::GetMap { newer_than, wait_ms } => Ok(Response::Map(self.get_map(newer_than, wait_ms).await)),
            Request::Ddl(ddl) => self.ddl(ddl).await,
            Request::Admin(admin) => self.admin(admin).await,
            Request::Tasks => Ok(Response::Tasks(
                self.with_state(|st| st.tasks.values().cloned().collect()),
            )),
            _ => Err(RpcError::Internal("the catalog does not serve this request".into())),
        }
    }
}

/// The catalog's RPC front.
pub struct CatalogService {
    pub catalog: Arc<Catalog>,
}

impl Service for CatalogService {
    fn handle(self: Arc<Self>, _conn: ConnId, request: Request, reply: Responder) -> BoxFuture {
        Box::pin(async move {
            let result = if matches!(request, Request::Ddl(_)) {
                // A schema change runs to its end even if its caller goes away: a half-done
                // ALTER TABLE would leave shards fenced.
                let catalog = self.catalog.clone();
                tokio::spawn(async move { catalog.handle_request(request).await })
                    .await
                    .unwrap_or_else(|e| Err(RpcError::internal(e)))
            } else {
                self.catalog.handle_request(request).await
            };
            reply.finish(result);
        })
    }
}
