//! Provisioners: the catalog starting shard nodes itself, as the course's load balancer
//! started its servers.
//!
//! - `process` spawns `tessera node` child processes of this catalog, each with its data in
//!   `<data_dir>/nodes/node-<n>` and its log beside it in `node-<n>.log` (the default of
//!   `tessera dev`). They stop when the catalog's process ends; the member that leads next
//!   starts the ones in its own directory again.
//! - `docker` creates node containers through the Docker Engine API (bollard), from the
//!   catalog's own image and on its own network unless told otherwise, labelled so that any
//!   catalog member finds them.
//! - `none` leaves starting nodes to an operator, a service manager or Kubernetes.
//!
//! With `--target-nodes N` the leader keeps N live nodes: it starts a node for each one
//! missing, and deletes a node it started once that node is dead and holds no replica any
//! more (its replicas were re-created elsewhere) or has left the map (drained). A new node is
//! given its share of replicas by rebalancing, as `tessera_add_node` does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, HostConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use serde::Deserialize;
use tessera_types::schema::{NodeState, TaskState};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::CatalogConfig;
use crate::service::Catalog;
use crate::state::Command;

/// How often the leader compares the live nodes with the target.
const TICK: Duration = Duration::from_secs(1);
/// How long a started node may take to register before it is deleted and started afresh.
pub(crate) const START_PATIENCE: Duration = Duration::from_secs(60);
/// The port a node container listens on, inside its own network namespace.
const CONTAINER_PORT: u16 = 7100;
/// The label that marks the node containers of one cluster; its value is their name prefix.
const LABEL: &str = "tessera.provisioner";
/// Settings of the catalog's environment that its nodes share (the rest of `TESSERA_*` is the
/// catalog's own: its address, data directory, id).
const SHARED_ENV: [&str; 4] = [
    "TESSERA_HEARTBEAT_MS",
    "TESSERA_SNAPSHOT_AFTER",
    "TESSERA_LOG",
    "RUST_LOG",
];

/// Which provisioner a catalog uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvisionerKind {
    #[default]
    None,
    Process,
    Docker,
}

/// Starts and deletes shard nodes.
pub enum Provisioner {
    Process(ProcessNodes),
    Docker(DockerNodes),
}

/// A node a provisioner started, as it sees it now.
#[derive(Debug, Clone)]
pub struct Managed {
    /// The address the node registers under.
    pub addr: String,
    /// How long ago it was started.
    pub age: Duration,
}

impl Provisioner {
    /// The provisioner the configuration asks for, if any. `catalog_addr` is where this member
    /// listens, for the nodes of a catalog of one member.
    pub fn new(config: &CatalogConfig, catalog_addr: &str) -> Result<Option<Provisioner>, String> {
        let catalog = |loopback: bool| -> String {
            if !config.peers.is_empty() {
                return config.peers.join(",");
            }
            match catalog_addr.parse::<std::net::SocketAddr>() {
                Ok(a) if a.ip().is_unspecified() && loopback => format!("127.0.0.1:{}", a.port()),
                Ok(a) if a.ip().is_unspecified() => format!("{}:{}", hostname(), a.port()),
                _ => catalog_addr.to_string(),
            }
        };
        Ok(match config.provisioner {
            ProvisionerKind::None => None,
            ProvisionerKind::Process => Some(Provisioner::Process(ProcessNodes::new(
                &config.data_dir.join("nodes"),
                catalog(true),
            )?)),
            ProvisionerKind::Docker => Some(Provisioner::Docker(DockerNodes::new(config, catalog(false)))),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Provisioner::Process(_) => "process",
            Provisioner::Docker(_) => "docker",
        }
    }

    /// Starts a node; returns the address it will register under.
    pub async fn start(&self) -> Result<String, String> {
        match self {
            Provisioner::Process(p) => p.start(None),
            Provisioner::Docker(d) => d.start().await,
        }
    }

    /// The nodes it started that still exist, running or not.
    pub async fn managed(&self) -> Result<Vec<Managed>, String> {
        match self {
            Provisioner::Process(p) => Ok(p.managed()),
            Provisioner::Docker(d) => d.managed().await,
        }
    }

    /// Stops a node it started and deletes it with its data.
    pub async fn remove(&self, addr: &str) -> Result<(), String> {
        match self {
            Provisioner::Process(p) => p.remove(addr).await,
            Provisioner::Docker(d) => d.remove(addr).await,
        }
    }

    /// Starts again the nodes of an earlier run that are not running (when this member begins
    /// to lead); returns their addresses. Node containers outlive the catalog, so for `docker`
    /// there are none.
    pub fn resume(&self) -> Result<Vec<String>, String> {
        match self {
            Provisioner::Process(p) => p.resume(),
            Provisioner::Docker(_) => Ok(Vec::new()),
        }
    }
}

/// The catalog's side of provisioning: the provisioner, the number of live nodes to keep, and
/// the nodes started that have not registered yet.
pub struct Provisioning {
    pub provisioner: Option<Provisioner>,
    /// `--target-nodes`: the live nodes to keep (0 keeps none) until an admin function moves
    /// the target recorded in the catalog's state (`CatalogState::node_target`).
    pub target_flag: u32,
    pending: Mutex<Vec<Pending>>,
}

struct Pending {
    addr: String,
    since: Instant,
    /// When it was started, in milliseconds since the UNIX epoch (as the map's heartbeats).
    since_ms: u64,
}

impl Pending {
    fn new(addr: String) -> Pending {
        Pending {
            addr,
            since: Instant::now(),
            since_ms: crate::service::now_ms(),
        }
    }
}

impl Provisioning {
    pub fn new(provisioner: Option<Provisioner>, target: u32) -> Provisioning {
        Provisioning {
            provisioner,
            target_flag: target,
            pending: Mutex::new(Vec::new()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `count` nodes, recorded as pending until they register.
    pub(crate) async fn start(&self, count: u32) -> Result<Vec<String>, String> {
        let Some(p) = &self.provisioner else {
            return Err("no provisioner".into());
        };
        let mut started = Vec::new();
        for _ in 0..count {
            let addr = p.start().await?;
            info!(provisioner = p.name(), %addr, "node started");
            self.pending().push(Pending::new(addr.clone()));
            started.push(addr);
        }
        Ok(started)
    }
}

impl Catalog {
    /// Runs the provisioner until `stop` fires, acting while this member leads the catalog.
    pub async fn run_provisioner(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let Some(p) = &self.provisioning.provisioner else {
            return;
        };
        let mut tick = tokio::time::interval(TICK);
        let mut resumed_in = None;
        let mut leading_since = Instant::now();
        let mut last_error = None;
        // Addresses of started nodes this member has seen in the map.
        let mut seen = HashSet::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let term = {
                let m = self.raft.metrics().borrow().clone();
                (m.state == openraft::ServerState::Leader).then_some(m.current_term)
            };
            let Some(term) = term else {
                resumed_in = None;
                continue;
            };
            if resumed_in != Some(term) {
                resumed_in = Some(term);
                leading_since = Instant::now();
                match p.resume() {
                    Ok(addrs) => {
                        for addr in addrs {
                            info!(provisioner = p.name(), %addr, "node of an earlier run started again");
                            self.provisioning.pending().push(Pending::new(addr));
                        }
                    }
                    Err(e) => error!(provisioner = p.name(), error = %e, "cannot start the nodes of an earlier run"),
                }
            }
            // Nodes started alongside the catalog (or that heartbeated to the previous leader)
            // get a full dead-after to register before the target counts them missing.
            if leading_since.elapsed() < Duration::from_millis(self.config.dead_after_ms) {
                continue;
            }
            match self.provision_step(p, &mut seen).await {
                Ok(()) => last_error = None,
                Err(e) => {
                    // Said once, not every second, until it changes or provisioning works.
                    if last_error.as_ref() != Some(&e) {
                        error!(provisioner = p.name(), error = %e, "cannot provision nodes; retrying");
                        last_error = Some(e);
                    }
                }
            }
        }
    }

    /// One round: forget the started nodes that registered (and rebalance towards them), delete
    /// the ones that never did, delete the nodes this provisioner started that are dead and
    /// empty or have left the map, and start the nodes the target is missing.
    async fn provision_step(&self, p: &Provisioner, seen: &mut HashSet<String>) -> Result<(), String> {
        let map = self.map();
        // A started node is no longer waited for once it has registered at its address since
        // it was started (not an old node that had the address), even if it died since: as a
        // dead node of this provisioner it is then deleted below.
        let registered = |s: &Pending| {
            map.nodes
                .values()
                .any(|n| n.addr == s.addr && n.last_heartbeat_ms >= s.since_ms)
        };
        let (registered, expired, waiting) = {
            let mut pending = self.provisioning.pending();
            let before = pending.len();
            let mut expired = Vec::new();
            pending.retain(|s| {
                if registered(s) {
                    return false;
                }
                if s.since.elapsed() > START_PATIENCE {
                    expired.push(s.addr.clone());
                    return false;
                }
                true
            });
            let waiting: Vec<String> = pending.iter().map(|s| s.addr.clone()).collect();
            (before - pending.len() - expired.len(), expired, waiting)
        };
        if registered > 0 {
            self.commit(vec![Command::SetBalancing { on: true }])
                .await
                .map_err(|e| format!("cannot start rebalancing towards the new nodes: {e}"))?;
        }
        for addr in expired {
            warn!(provisioner = p.name(), %addr, patience = ?START_PATIENCE, "a started node did not register in time; deleting it");
            p.remove(&addr).await?;
        }
        for m in p.managed().await? {
            if waiting.contains(&m.addr) {
                continue;
            }
            let node = map.nodes.values().filter(|n| n.addr == m.addr).max_by_key(|n| n.id);
            if node.is_some() {
                seen.insert(m.addr.clone());
            }
            match node {
                // Gone from the map after it was in it (drained), or never in it: one that
                // another leader started may still be on its way, so give it time.
                None if seen.contains(&m.addr) || m.age > START_PATIENCE => {
                    seen.remove(&m.addr);
                    info!(provisioner = p.name(), addr = %m.addr, "deleting a node that left the cluster");
                    p.remove(&m.addr).await?;
                }
                Some(n) if n.state == NodeState::Dead && self.with_state(|st| holds_nothing(st, n.id)) => {
                    info!(provisioner = p.name(), node = n.id, addr = %m.addr, "deleting a dead node whose replicas are on other nodes");
                    p.remove(&m.addr).await?;
                    self.commit(vec![Command::RemoveNode { node: n.id }])
                        .await
                        .map_err(|e| format!("cannot remove node {} from the map: {e}", n.id))?;
                }
                _ => {}
            }
        }
        let target = self.with_state(|st| st.node_target(self.provisioning.target_flag)) as usize;
        let live = map.nodes.values().filter(|n| n.state == NodeState::Alive).count();
        let missing = target.saturating_sub(live + waiting.len());
        if missing > 0 {
            info!(
                provisioner = p.name(),
                live, target, "starting {missing} node(s) to reach the target"
            );
            self.provisioning.start(missing as u32).await?;
        }
        Ok(())
    }
}

/// Whether a node holds no replica and is the target of no running task.
fn holds_nothing(st: &crate::state::CatalogState, node: u64) -> bool {
    !st.map
        .shards
        .values()
        .any(|s| s.replicas.iter().any(|r| r.node == node))
        && !st
            .tasks
            .values()
            .any(|t| t.state == TaskState::Running && t.add.as_ref().is_some_and(|a| a.node == node))
}

/// This host's name (a container's is its id, or what `hostname:` says).
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "localhost".into())
}

/// The `process` provisioner: `tessera node` child processes.
pub struct ProcessNodes {
    /// The `tessera` binary (this process's own).
    exe: PathBuf,
    /// Where each node's data directory is made.
    root: PathBuf,
    /// The catalog's members, as `--catalog` takes them.
    catalog: String,
    children: Mutex<BTreeMap<String, Child>>,
}

struct Child {
    dir: PathBuf,
    process: tokio::process::Child,
    started: Instant,
    /// Whether its exit was seen (and logged).
    exited: bool,
}

impl ProcessNodes {
    fn new(root: &Path, catalog: String) -> Result<ProcessNodes, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the tessera binary to start nodes with: {e}"))?;
        std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        Ok(ProcessNodes {
            exe,
            root: root.to_path_buf(),
            catalog,
            children: Mutex::new(BTreeMap::new()),
        })
    }

    fn children(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Child>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The numbers of the node directories under the root.
    fn numbered_dirs(&self) -> Result<Vec<u32>, String> {
        let entries = std::fs::read_dir(&self.root).map_err(|e| format!("cannot read {}: {e}", self.root.display()))?;
        Ok(entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("node-")?.parse().ok())
            .collect())
    }

    /// Starts a node on directory `node-<n>` (a new one when `n` is `None`).
    fn start(&self, n: Option<u32>) -> Result<String, String> {
        let n = match n {
            Some(n) => n,
            None => self.numbered_dirs()?.into_iter().max().unwrap_or(0) + 1,
        };
        let dir = self.root.join(format!("node-{n}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let log_path = self.root.join(format!("node-{n}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port for a node: {e}"))?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = tokio::process::Command::new(&self.exe);
        command
            .arg("node")
            .arg("--listen")
            .arg(&addr)
            .arg("--catalog")
            .arg(&self.catalog)
            .arg("--data-dir")
            .arg(&dir)
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log_err);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("TESSERA_") && !SHARED_ENV.contains(&key.as_ref()) {
                command.env_remove(key.as_ref());
            }
        }
        let process = command
            .spawn()
            .map_err(|e| format!("cannot start {} node: {e}", self.exe.display()))?;
        self.children().insert(
            addr.clone(),
            Child {
                dir,
                process,
                started: Instant::now(),
                exited: false,
            },
        );
        Ok(addr)
    }

    fn managed(&self) -> Vec<Managed> {
        let mut children = self.children();
        for (addr, child) in children.iter_mut() {
            if child.exited {
                continue;
            }
            if let Ok(Some(status)) = child.process.try_wait() {
                warn!(%addr, %status, "a node process started by this catalog exited");
                child.exited = true;
            }
        }
        children
            .iter()
            .map(|(addr, c)| Managed {
                addr: addr.clone(),
                age: c.started.elapsed(),
            })
            .collect()
    }

    async fn remove(&self, addr: &str) -> Result<(), String> {
        let child = self.children().remove(addr);
        let Some(mut child) = child else {
            return Ok(());
        };
        let _ = child.process.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), child.process.wait()).await;
        let log = child.dir.with_extension("log");
        std::fs::remove_dir_all(&child.dir).map_err(|e| format!("cannot delete {}: {e}", child.dir.display()))?;
        let _ = std::fs::remove_file(log);
        Ok(())
    }

    fn resume(&self) -> Result<Vec<String>, String> {
        let running: Vec<PathBuf> = self.children().values().map(|c| c.dir.clone()).collect();
        let mut started = Vec::new();
        for n in self.numbered_dirs()? {
            if !running.contains(&self.root.join(format!("node-{n}"))) {
                started.push(self.start(Some(n))?);
            }
        }
        Ok(started)
    }
}

/// The `docker` provisioner: node containers made through the Docker Engine API. It connects
/// when first needed, and again after a failure, so that a catalog that cannot use the engine
/// yet still serves (and says why it cannot start nodes).
pub struct DockerNodes {
    image: Option<String>,
    network: Option<String>,
    /// The catalog's members, as `TESSERA_CATALOG` takes them.
    catalog: String,
    engine: tokio::sync::OnceCell<Engine>,
}

struct Engine {
    docker: Docker,
    image: String,
    network: String,
    /// Names of the containers: `<prefix>-<n>`; also the value of their `LABEL`.
    prefix: String,
    /// The compose project the catalog's container belongs to, if any: its node containers
    /// join it (so that `docker compose down --remove-orphans` deletes them).
    project: Option<String>,
}

impl DockerNodes {
    fn new(config: &CatalogConfig, catalog: String) -> DockerNodes {
        DockerNodes {
            image: config.docker_image.clone(),
            network: config.docker_network.clone(),
            catalog,
            engine: tokio::sync::OnceCell::new(),
        }
    }

    async fn engine(&self) -> Result<&Engine, String> {
        self.engine.get_or_try_init(|| self.connect()).await
    }

    /// Connects to the engine (`DOCKER_HOST`, else its local socket). The image and network are
    /// the configured ones, else those of the container this catalog runs in.
    async fn connect(&self) -> Result<Engine, String> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| format!("cannot reach the Docker engine: {e}"))?
            .negotiate_version()
            .await
            .map_err(|e| {
                format!("cannot reach the Docker engine ({e}); the catalog needs its socket (/var/run/docker.sock) mounted and usable by its user, or DOCKER_HOST")
            })?;
        let own = docker.inspect_container(&hostname(), None).await.ok();
        let own_config = own.as_ref().and_then(|c| c.config.as_ref());
        let own_image = own_config.and_then(|c| c.image.clone());
        let project = own_config.and_then(|c| c.labels.as_ref()?.get(COMPOSE_PROJECT).cloned());
        let own_network = own
            .as_ref()
            .and_then(|c| c.network_settings.as_ref()?.networks.as_ref()?.keys().min().cloned());
        let outside = "the catalog does not run in a container, so give one with";
        let image = self
            .image
            .clone()
            .or(own_image)
            .ok_or_else(|| format!("no image for the node containers: {outside} --docker-image"))?;
        let network = self
            .network
            .clone()
            .or(own_network)
            .ok_or_else(|| format!("no network for the node containers: {outside} --docker-network"))?;
        let prefix = format!("{}-node-auto", project.as_deref().unwrap_or("tessera"));
        info!(%image, %network, %prefix, "docker provisioner connected to the Docker engine");
        Ok(Engine {
            docker,
            image,
            network,
            prefix,
            project,
        })
    }

    async fn start(&self) -> Result<String, String> {
        let engine = self.engine().await?;
        engine.start(&self.catalog).await
    }

    async fn managed(&self) -> Result<Vec<Managed>, String> {
        self.engine().await?.managed().await
    }

    async fn remove(&self, addr: &str) -> Result<(), String> {
        self.engine().await?.remove(addr).await
    }
}

/// Compose's labels, given to node containers that join the catalog's project.
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_SERVICE: &str = "com.docker.compose.service";
const COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";

impl Engine {
    async fn containers(&self) -> Result<Vec<bollard::models::ContainerSummary>, String> {
        let filters = HashMap::from([("label", vec![format!("{LABEL}={}", self.prefix)])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|e| format!("cannot list the node containers: {e}"))
    }

    fn name_of(&self, c: &bollard::models::ContainerSummary) -> Option<String> {
        c.names
            .as_ref()?
            .iter()
            .map(|n| n.trim_start_matches('/'))
            .find(|n| n.starts_with(&self.prefix))
            .map(String::from)
    }

    async fn start(&self, catalog: &str) -> Result<String, String> {
        let numbered = format!("{}-", self.prefix);
        let next = self
            .containers()
            .await?
            .iter()
            .filter_map(|c| self.name_of(c)?.strip_prefix(&numbered)?.parse::<u32>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let name = format!("{numbered}{next}");
        let addr = format!("{name}:{CONTAINER_PORT}");
        let mut env = vec![
            format!("TESSERA_LISTEN=0.0.0.0:{CONTAINER_PORT}"),
            format!("TESSERA_ADVERTISE={addr}"),
            format!("TESSERA_CATALOG={catalog}"),
        ];
        env.extend(
            SHARED_ENV
                .iter()
                .filter_map(|k| Some(format!("{k}={}", std::env::var(k).ok()?))),
        );
        let mut labels = HashMap::from([(LABEL.to_string(), self.prefix.clone())]);
        if let Some(project) = &self.project {
            labels.insert(COMPOSE_PROJECT.into(), project.clone());
            labels.insert(COMPOSE_SERVICE.into(), format!("node-auto-{next}"));
            labels.insert(COMPOSE_ONEOFF.into(), "False".into());
        }
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(vec!["node".into()]),
            env: Some(env),
            hostname: Some(name.clone()),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some(self.network.clone()),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| format!("cannot create container {name} from {}: {e}", self.image))?;
        self.docker
            .start_container(&name, None)
            .await
            .map_err(|e| format!("cannot start container {name}: {e}"))?;
        Ok(addr)
    }

    async fn managed(&self) -> Result<Vec<Managed>, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Ok(self
            .containers()
            .await?
            .iter()
            .filter(|c| c.state != Some(ContainerSummaryStateEnum::REMOVING))
            .filter_map(|c| {
                let created = c.created.unwrap_or(now);
                Some(Managed {
                    addr: format!("{}:{CONTAINER_PORT}", self.name_of(c)?),
                    age: Duration::from_secs(now.saturating_sub(created).max(0) as u64),
                })
            })
            .collect())
    }

    async fn remove(&self, addr: &str) -> Result<(), String> {
        let name = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(format!("cannot delete container {name}: {e}")),
        }
    }
}
