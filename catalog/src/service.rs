//! The catalog process: keeps the state (persisted after every change), serves the cluster
//! map to routers and nodes (long poll), registers nodes and tracks their heartbeats, and runs
//! DDL: validate, place the new shard's replicas on nodes, create them there, then record it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use tessera_types::rpc::{BoxFuture, ConnId, DdlRequest, Request, Responder, Response, RpcError, RpcPool, Service};
use tessera_types::schema::{ClusterMap, NodeId, NodeState, Shard, ShardBounds, Table};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::CatalogConfig;
use crate::state::{new_replicas, place_replicas, validate_partition, validate_table, CatalogState, Command};

pub struct Catalog {
    config: CatalogConfig,
    state: Mutex<CatalogState>,
    map_tx: watch::Sender<Arc<ClusterMap>>,
    /// DDL statements run one at a time (and the cleanup of orphaned replicas with them).
    pub(crate) ddl: tokio::sync::Mutex<()>,
    pub(crate) pool: Arc<RpcPool>,
    /// When each node was last heard from.
    seen: Mutex<HashMap<NodeId, Instant>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog state file {path}: {message}")]
    State { path: PathBuf, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Catalog {
    /// Loads the state from the data directory (or starts empty).
    pub fn open(config: CatalogConfig) -> Result<Arc<Catalog>, CatalogError> {
        let path = config.data_dir.join("catalog.json");
        let state_err = |message: String| CatalogError::State {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(|e| state_err(e.to_string()))?;
        let state: CatalogState = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| state_err(format!("unreadable: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CatalogState::default(),
            Err(e) => return Err(state_err(e.to_string())),
        };
        let now = Instant::now();
        let seen = state.map.nodes.keys().map(|n| (*n, now)).collect();
        let (map_tx, _) = watch::channel(Arc::new(state.map.clone()));
        info!(
            version = state.map.version,
            tables = state.map.tables.len(),
            nodes = state.map.nodes.len(),
            "catalog loaded"
        );
        Ok(Arc::new(Catalog {
            config,
            state: Mutex::new(state),
            map_tx,
            ddl: tokio::sync::Mutex::new(()),
            pool: Arc::new(RpcPool::new()),
            seen: Mutex::new(seen),
        }))
    }

    pub fn map(&self) -> Arc<ClusterMap> {
        self.map_tx.borrow().clone()
    }

    /// The catalog's Prometheus page: the cluster map's version, its nodes by state, tables,
    /// shards and replicas.
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
        page.finish()
    }

    fn persist(&self, state: &CatalogState) -> Result<(), RpcError> {
        let path = self.config.data_dir.join("catalog.json");
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(state).map_err(RpcError::internal)?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.config.data_dir)?.sync_all()
        };
        write().map_err(|e| RpcError::Internal(format!("cannot save the catalog to {}: {e}", path.display())))
    }

    /// Applies commands atomically: all are persisted before any takes effect.
    pub(crate) fn commit(&self, cmds: Vec<Command>) -> Result<Vec<Option<NodeId>>, RpcError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = state.clone();
        let mut results = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            results.push(next.apply(cmd)?);
        }
        self.persist(&next)?;
        *state = next;
        self.map_tx.send_replace(Arc::new(state.map.clone()));
        Ok(results)
    }

    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut CatalogState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    async fn get_map(&self, newer_than: u64, wait_ms: u64) -> Arc<ClusterMap> {
        let mut rx = self.map_tx.subscribe();
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
    async fn create_replicas(&self, shard: &Shard) -> Result<(), RpcError> {
        let map = self.map();
        let members: Vec<_> = shard.replicas.iter().map(|r| (r.id, r.node)).collect();
        let calls = shard.replicas.iter().map(|r| {
            let addr = map.node_addr(r.node).unwrap_or_default().to_string();
            let req = Request::CreateReplica {
                shard: shard.id,
                replica: r.id,
                members: members.clone(),
                epoch: shard.epoch,
            };
            let client = self.pool.client(&addr);
            async move { client.call_timeout(req, Duration::from_secs(30)).await }
        });
        let results = join_all(calls).await;
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

    fn new_shard(&self, table: &Table, name: String, bounds: ShardBounds) -> Result<Shard, RpcError> {
        self.with_state(|st| {
            let id = st.allocate_shard();
            let nodes = place_replicas(&st.map, id, table.replicas)?;
            let replicas = new_replicas(st, &nodes);
            Ok(Shard {
                id,
                table: table.id,
                name,
                bounds,
                replicas,
                epoch: 1,
            })
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
                let table = self.with_state(|st| -> Result<Table, RpcError> {
                    validate_table(st, &name, &columns, &primary_key, partitioning.as_ref())?;
                    Ok(Table {
                        id: st.allocate_table(),
                        name: name.clone(),
                        columns,
                        primary_key,
                        partitioning,
                        replicas,
                    })
                })?;
                let shard = match table.partitioning {
                    Some(_) => None,
                    None => {
                        let shard = self.new_shard(&table, table.name.clone(), ShardBounds::All)?;
                        self.create_replicas(&shard).await?;
                        Some(shard)
                    }
                };
                let created = shard.clone();
                if let Err(e) = self.commit(vec![Command::CreateTable { table, shard }]) {
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
                let shard = self.new_shard(table, name.clone(), bounds)?;
                self.create_replicas(&shard).await?;
                if let Err(e) = self.commit(vec![Command::AddShard { shard: shard.clone() }]) {
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
                    self.commit(cmds)?;
                }
                for s in &doomed {
                    self.drop_replicas(s).await;
                }
                let notice = if notices.is_empty() {
                    None
                } else {
                    Some(notices.join("\n"))
                };
                Ok(Response::DdlDone {
                    version: self.map().version,
                    notice,
                })
            }
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

    /// Marks nodes dead when silent for `dead_after_ms`, and alive again when they return.
    pub async fn run_failure_detector(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis((self.config.dead_after_ms / 4).max(50)));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
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
                if let Err(e) = self.commit(cmds) {
                    warn!(error = %e, "cannot record node states");
                }
            }
        }
    }

    async fn handle_request(&self, request: Request) -> Result<Response, RpcError> {
        match request {
            Request::RegisterNode { node, addr } => {
                let id = self.commit(vec![Command::RegisterNode {
                    node,
                    addr: addr.clone(),
                    now_ms: now_ms(),
                }])?;
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
            let result = self.catalog.handle_request(request).await;
            reply.finish(result);
        })
    }
}
