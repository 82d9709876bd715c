//! A shard node: the process that hosts replicas. It registers with the catalog, heartbeats,
//! follows the cluster map (for peer addresses), creates and drops replicas when the catalog
//! asks, and reopens its replicas from its data directory after a restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openraft::storage::RaftLogStorage;
use serde::{Deserialize, Serialize};
use tessera_types::fragment::ShardRef;
use tessera_types::rpc::{call_any, Request, Response, RpcError, RpcPool, TxnId};
use tessera_types::schema::{NodeId, ReplicaId, ShardId};
use tessera_wal::{GroupLog, SyncMode, Wal};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::NodeConfig;
use crate::raft::{raft_config, Peers, Raft, ReplicaNode, ShardNetwork, ShardRaft};
use crate::replica::Replica;
use crate::store::{StateMachine, Store};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReplicaEntry {
    shard: ShardId,
    replica: ReplicaId,
    epoch: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct NodeFile {
    node_id: Option<NodeId>,
}

pub struct Node {
    pub id: NodeId,
    pub addr: String,
    pub config: NodeConfig,
    pub wal: Wal<ShardRaft>,
    pub peers: Arc<Peers>,
    replicas: RwLock<HashMap<ShardId, Arc<Replica>>>,
    /// Serializes replica creation and deletion (and the manifest file).
    admin: tokio::sync::Mutex<()>,
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Whether every replica in the node's manifest belongs to a shard whose other replicas, on
/// nodes the catalog's map shows alive, are a majority of its group: then the peers hold all
/// it held.
async fn peers_hold_everything(config: &NodeConfig, pool: &RpcPool, dir: &Path) -> Result<(), String> {
    let entries: Vec<ReplicaEntry> = std::fs::read(dir.join("replicas.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let request = Request::GetMap {
        newer_than: 0,
        wait_ms: 0,
    };
    let map = match call_any(pool, &config.catalog, request).await {
        Ok(Response::Map(map)) => map,
        Ok(other) => return Err(format!("the catalog answered {other:?}")),
        Err(e) => return Err(format!("the catalog cannot be asked where the replicas are ({e})")),
    };
    for entry in entries {
        let Some(shard) = map.shards.get(&entry.shard) else {
            continue;
        };
        if !shard.replicas.iter().any(|r| r.id == entry.replica) {
            continue;
        }
        let others = shard
            .replicas
            .iter()
            .filter(|r| r.id != entry.replica)
            .filter(|r| map.nodes.get(&r.node).is_some_and(|n| n.state.is_up()))
            .count();
        if others * 2 <= shard.replicas.len() {
            return Err(format!(
                "shard \"{}\" has {} replica(s) and only {others} other on running nodes: without this node's, they are not a majority",
                shard.name,
                shard.replicas.len()
            ));
        }
    }
    Ok(())
}

/// Moves a node's data (log, replicas, manifest, identity) into `corrupt-<ms since 1970>` in
/// its data directory, kept for inspection; returns where.
fn quarantine(dir: &Path) -> std::io::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let aside = dir.join(format!("corrupt-{stamp}"));
    std::fs::create_dir_all(&aside)?;
    for name in ["wal", "replicas", "replicas.json", "node.json"] {
        let from = dir.join(name);
        if from.exists() {
            std::fs::rename(&from, aside.join(name))?;
        }
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(aside)
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error(transparent)]
    Wal(#[from] tessera_wal::WalError),
    #[error("cannot register with the catalog at {addrs}: {source}")]
    Register { addrs: String, source: RpcError },
    #[error("cannot open replica of shard {shard}: {message}")]
    Replica { shard: ShardId, message: String },
}

/// Makes a replica that led its group before it stopped start again as a candidate.
///
/// openraft 0.9 resumes leading at start when the saved vote is a committed vote for this
/// replica, with the commit index it saved last. That index is not flushed on its own, so after
/// a crash it can lag behind writes this replica acknowledged, and a linearizable read at it
/// would miss them. A vote reported uncommitted makes the replica win a new election instead,
/// whose first entry commits everything before it. It still counts as a vote for itself in its
/// term, so it grants no other candidate a vote in that term.
async fn resume_as_candidate(log: &mut GroupLog<ShardRaft>) -> Result<(), openraft::StorageError<ReplicaId>> {
    if let Some(vote) = log.read_vote().await? {
        if vote.committed {
            log.save_vote(&openraft::Vote {
                committed: false,
                ..vote
            })
            .await?;
        }
    }
    Ok(())
}

/// How often followers check on silent primaries (`Node::watch_primaries`).
const PRIMARY_WATCH: Duration = Duration::from_millis(50);
/// A primary silent this long (two heartbeats and more) is checked on.
const SILENT_PRIMARY: Duration = Duration::from_millis(250);
/// How long a connection attempt to a primary's node may take before it counts as answered.
const PROBE_TIMEOUT: Duration = Duration::from_millis(100);

/// How often a node looks for prepared transactions left undecided.
const RESOLVE_EVERY: Duration = Duration::from_secs(1);

/// How long a transaction stays prepared on a primary before the primary settles it with its
/// coordinator: far longer than a router takes from its prepares to its decision.
const RESOLVE_AFTER: Duration = Duration::from_secs(5);

/// How long a coordinator's replica is given to answer a `Decide`.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether nothing listens at `addr` any more: the connection is refused (not merely slow).
async fn refuses_connections(addr: &str) -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

impl Node {
    /// Registers with the catalog and reopens the replicas in the data directory.
    pub async fn open(config: NodeConfig, addr: String, pool: Arc<RpcPool>) -> Result<Arc<Node>, NodeError> {
        let dir = config.data_dir.clone();
        let io = |source| NodeError::DataDir {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(dir.join("replicas")).map_err(io)?;
        let node_file = dir.join("node.json");
        let sync = if config.unsafe_skip_fsync {
            SyncMode::Unsafe
        } else {
            SyncMode::Durable
        };
        // The log is read before the node says who it is: a log corrupt in the middle (not a
        // torn tail, which is cut off) cannot be trusted for any replica, so everything is
        // set aside and the node starts again empty, under a new id. Its old replicas are then
        // dead to the catalog, which re-creates them from their peers.
        let wal = match Wal::open(&dir.join("wal"), sync) {
            Ok(wal) => wal,
            Err(e @ tessera_wal::WalError::Corrupt { .. }) => {
                if let Err(why) = peers_hold_everything(&config, &pool, &dir).await {
                    tracing::error!(error = %e, "the write-ahead log is corrupt and {why}: not starting, so that nothing is lost; restore the data directory or remove it to start this node empty");
                    return Err(e.into());
                }
                let aside = quarantine(&dir).map_err(io)?;
                tracing::error!(
                    error = %e,
                    moved_to = %aside.display(),
                    "the write-ahead log is corrupt: this node's data is set aside and the node starts empty under a new id, so that its replicas are re-created from their peers"
                );
                std::fs::create_dir_all(dir.join("replicas")).map_err(io)?;
                Wal::open(&dir.join("wal"), sync)?
            }
            Err(e) => return Err(e.into()),
        };
        let known: NodeFile = std::fs::read(&node_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let id = match call_any(
            &pool,
            &config.catalog,
            Request::RegisterNode {
                node: known.node_id,
                addr: addr.clone(),
            },
        )
        .await
        {
            Ok(Response::NodeRegistered { node }) => node,
            Ok(other) => {
                return Err(NodeError::Register {
                    addrs: config.catalog.join(","),
                    source: RpcError::Internal(format!("unexpected reply {other:?}")),
                })
            }
            Err(source) => {
                return Err(NodeError::Register {
                    addrs: config.catalog.join(","),
                    source,
                })
            }
        };
        if known.node_id != Some(id) {
            let bytes = serde_json::to_vec(&NodeFile { node_id: Some(id) }).unwrap_or_default();
            write_atomically(&node_file, &bytes).map_err(io)?;
        }
        let peers = Arc::new(Peers {
            pool,
            addrs: RwLock::new(HashMap::new()),
            shards: RwLock::new(HashMap::new()),
        });
        let node = Arc::new(Node {
            id,
            addr,
            config,
            wal,
            peers,
            replicas: RwLock::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
        });
        for entry in node.read_manifest() {
            node.open_replica(entry.shard, entry.replica, entry.epoch).await?;
        }
        info!(node = id, addr = %node.addr, replicas = node.replica_count(), "shard node ready");
        Ok(node)
    }

    fn manifest_path(&self) -> PathBuf {
        self.config.data_dir.join("replicas.json")
    }

    fn read_manifest(&self) -> Vec<ReplicaEntry> {
        std::fs::read(self.manifest_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_manifest(&self) -> std::io::Result<()> {
        let mut entries: Vec<ReplicaEntry> = self
            .replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|r| ReplicaEntry {
                shard: r.shard,
                replica: r.id,
                epoch: r.epoch.load(std::sync::atomic::Ordering::Relaxed),
            })
            .collect();
        entries.sort_by_key(|e| e.shard);
        write_atomically(
            &self.manifest_path(),
            &serde_json::to_vec_pretty(&entries).unwrap_or_default(),
        )
    }

    fn store_path(&self, shard: ShardId, replica: ReplicaId) -> PathBuf {
        self.config
            .data_dir
            .join("replicas")
            .join(format!("shard-{shard}-replica-{replica}.redb"))
    }

    async fn open_replica(&self, shard: ShardId, replica: ReplicaId, epoch: u64) -> Result<Arc<Replica>, NodeError> {
        let err = |message: String| NodeError::Replica { shard, message };
        let store = Store::open(&self.store_path(shard, replica)).map_err(|e| err(e.to_string()))?;
        let sm = StateMachine::new(store.clone(), replica);
        let network = ShardNetwork {
            shard,
            peers: self.peers.clone(),
        };
        let mut log = self.wal.group(shard);
        resume_as_candidate(&mut log).await.map_err(|e| err(e.to_string()))?;
        let raft = Raft::new(replica, raft_config(self.config.snapshot_after), network, log, sm)
            .await
            .map_err(|e| err(e.to_string()))?;
        let r = Arc::new(Replica::new(
            shard,
            replica,
            raft,
            store,
            self.peers.clone(),
            epoch,
            self.config.unsafe_ack_before_commit,
        ));
        self.replicas
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(shard, r.clone());
        Ok(r)
    }

    pub fn replica(&self, shard: ShardId) -> Option<Arc<Replica>> {
        self.replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&shard)
            .cloned()
    }

    /// Every replica this node hosts.
    pub fn all_replicas(&self) -> Vec<Arc<Replica>> {
        self.replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn replica_count(&self) -> usize {
        self.replicas.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Creates a replica as a member of a group (idempotent). The lowest-numbered member
    /// initializes the group; a single-member group is ready (its own primary) on return.
    pub async fn create_replica(
        &self,
        shard: ShardId,
        replica: ReplicaId,
        members: Vec<(ReplicaId, NodeId)>,
        epoch: u64,
    ) -> Result<(), RpcError> {
        let guard = self.admin.lock().await;
        if let Some(existing) = self.replica(shard) {
            if existing.id == replica {
                return Ok(());
            }
            if existing.id > replica {
                return Err(RpcError::Internal(format!(
                    "node {} already holds replica {} of shard {shard}, newer than {replica}",
                    self.id, existing.id
                )));
            }
            // The catalog places a new replica only on a node its map shows without one of the
            // shard: this older one was taken out of the group (its deletion may be pending).
            info!(
                node = self.id,
                shard,
                old = existing.id,
                new = replica,
                "replacing a replica the catalog no longer places here"
            );
            drop(guard);
            self.drop_replica(shard, existing.id).await?;
            return Box::pin(self.create_replica(shard, replica, members, epoch)).await;
        }
        // A replica created anew must not inherit log state from an earlier one of the shard.
        if self.wal.groups().contains(&shard) {
            self.wal.drop_group(shard).await.map_err(RpcError::internal)?;
        }
        let r = self
            .open_replica(shard, replica, epoch)
            .await
            .map_err(RpcError::internal)?;
        let first = members.iter().map(|(id, _)| *id).min();
        if first == Some(replica) && !r.raft.is_initialized().await.map_err(RpcError::internal)? {
            let nodes: BTreeMap<ReplicaId, ReplicaNode> = members
                .iter()
                .map(|(id, node)| (*id, ReplicaNode { node: *node }))
                .collect();
            r.raft.initialize(nodes).await.map_err(RpcError::internal)?;
        }
        if members.len() == 1 {
            // Ready once it leads with a committed vote: then writes are accepted at once.
            r.raft
                .wait(Some(Duration::from_secs(10)))
                .current_leader(replica, "new single-replica group elects itself")
                .await
                .map_err(RpcError::internal)?;
        }
        self.write_manifest().map_err(RpcError::internal)?;
        info!(node = self.id, shard, replica, "replica created");
        Ok(())
    }

    /// Deletes a replica and its data (idempotent).
    pub async fn drop_replica(&self, shard: ShardId, replica: ReplicaId) -> Result<(), RpcError> {
        let _guard = self.admin.lock().await;
        let Some(r) = self.replica(shard) else { return Ok(()) };
        if r.id != replica {
            return Ok(());
        }
        self.replicas.write().unwrap_or_else(|p| p.into_inner()).remove(&shard);
        if let Err(e) = r.raft.shutdown().await {
            warn!(shard, replica, error = %e, "raft shutdown failed");
        }
        self.write_manifest().map_err(RpcError::internal)?;
        self.wal.drop_group(shard).await.map_err(RpcError::internal)?;
        let path = r.store.path.clone();
        drop(r);
        // The store file is closed once the last reference (an in-flight scan) goes away.
        if let Err(e) = std::fs::remove_file(&path) {
            warn!(path = %path.display(), error = %e, "cannot delete a dropped replica's store");
        }
        info!(node = self.id, shard, replica, "replica dropped");
        Ok(())
    }

    /// The replication state of every replica here.
    pub async fn status(&self) -> Vec<tessera_types::rpc::ReplicaStatus> {
        let replicas = self.all_replicas();
        let mut out = Vec::with_capacity(replicas.len());
        for r in replicas {
            let m = r.raft.metrics().borrow().clone();
            // A Raft core busy for long (a slow disk) leaves the commit index unknown rather
            // than holding up the whole report.
            let commit_index = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                r.raft.with_raft_state(|st| st.committed.map(|c| c.index)),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
            let role = match m.state {
                openraft::ServerState::Leader => "leader",
                openraft::ServerState::Follower => "follower",
                openraft::ServerState::Candidate => "candidate",
                openraft::ServerState::Learner => "learner",
                openraft::ServerState::Shutdown => "stopped",
            };
            out.push(tessera_types::rpc::ReplicaStatus {
                shard: r.shard,
                replica: r.id,
                role: role.to_string(),
                term: m.current_term,
                last_log_index: m.last_log_index,
                commit_index,
                applied_index: m.last_applied.map(|l| l.index),
                leader: m.current_leader,
                reads: r.reads_served(),
            });
        }
        out.sort_by_key(|s| s.shard);
        out
    }

    /// The node's Prometheus page: each replica's role, term (raised by every election), log,
    /// commit and applied indexes, reads and writes served, and on a primary how far each
    /// follower is behind; the write-ahead log's writes, bytes and flushes.
    pub async fn metrics(&self) -> String {
        use tessera_types::metrics::Exposition;
        let status = self.status().await;
        let replicas = self.all_replicas();
        let labels = |s: &tessera_types::rpc::ReplicaStatus| vec![s.shard.to_string(), s.replica.to_string()];
        let gauge = |f: &dyn Fn(&tessera_types::rpc::ReplicaStatus) -> Option<u64>| -> Vec<(Vec<String>, f64)> {
            status
                .iter()
                .filter_map(|s| f(s).map(|v| (labels(s), v as f64)))
                .collect()
        };
        let mut page = Exposition::default();
        let per_replica = ["shard", "replica"];
        page.samples(
            "gauge",
            "tessera_replica_leader",
            "1 if the replica is its shard's primary, else 0.",
            &per_replica,
            &gauge(&|s| Some(u64::from(s.role == "leader"))),
        );
        page.samples(
            "gauge",
            "tessera_replica_term",
            "The replica's Raft term; every election raises it.",
            &per_replica,
            &gauge(&|s| Some(s.term)),
        );
        page.samples(
            "gauge",
            "tessera_replica_last_log_index",
            "Index of the replica's last log entry.",
            &per_replica,
            &gauge(&|s| s.last_log_index),
        );
        page.samples(
            "gauge",
            "tessera_replica_commit_index",
            "Index of the last entry the replica knows committed.",
            &per_replica,
            &gauge(&|s| s.commit_index),
        );
        page.samples(
            "gauge",
            "tessera_replica_applied_index",
            "Index of the last entry applied to the replica's store.",
            &per_replica,
            &gauge(&|s| s.applied_index),
        );
        page.samples(
            "counter",
            "tessera_replica_reads_total",
            "Scans the replica has served since the node started.",
            &per_replica,
            &gauge(&|s| Some(s.reads)),
        );
        let writes: Vec<(Vec<String>, f64)> = replicas
            .iter()
            .map(|r| (vec![r.shard.to_string(), r.id.to_string()], r.writes_served() as f64))
            .collect();
        page.samples(
            "counter",
            "tessera_replica_writes_total",
            "Write statements the replica has executed as its shard's primary since the node started.",
            &per_replica,
            &writes,
        );
        let mut lag = Vec::new();
        for r in &replicas {
            let m = r.raft.metrics().borrow().clone();
            let (Some(last), Some(replication)) = (m.last_log_index, m.replication.as_ref()) else {
                continue;
            };
            for (follower, matched) in replication {
                if *follower == r.id {
                    continue;
                }
                let behind = last.saturating_sub(matched.map_or(0, |l| l.index));
                lag.push((vec![r.shard.to_string(), follower.to_string()], behind as f64));
            }
        }
        page.samples(
            "gauge",
            "tessera_replication_lag_entries",
            "On a primary: log entries each follower has yet to acknowledge.",
            &["shard", "follower"],
            &lag,
        );
        let wal = self.wal.stats();
        page.single(
            "counter",
            "tessera_wal_writes_total",
            "Records appended to the write-ahead log.",
            wal.writes as f64,
        );
        page.single(
            "counter",
            "tessera_wal_bytes_total",
            "Bytes appended to the write-ahead log.",
            wal.bytes as f64,
        );
        page.single(
            "counter",
            "tessera_wal_fsyncs_total",
            "Flushes of the write-ahead log to disk.",
            wal.fsyncs as f64,
        );
        page.single(
            "gauge",
            "tessera_node_replicas",
            "Replicas this node hosts.",
            replicas.len() as f64,
        );
        page.finish()
    }

    /// A checksum of every replica's rows.
    pub async fn checksums(&self) -> Result<Vec<tessera_types::rpc::ReplicaChecksum>, RpcError> {
        let replicas = self.all_replicas();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(replicas.len());
            for r in replicas {
                let (applied_index, rows, checksum) = r.store.checksum().map_err(RpcError::internal)?;
                out.push(tessera_types::rpc::ReplicaChecksum {
                    shard: r.shard,
                    replica: r.id,
                    applied_index,
                    rows,
                    checksum,
                });
            }
            out.sort_by_key(|c| c.shard);
            Ok(out)
        })
        .await
        .map_err(RpcError::internal)?
    }

    /// Stops every replica's Raft group and the log writer.
    pub async fn shutdown(&self) {
        let replicas = self.all_replicas();
        for r in replicas {
            let _ = r.raft.shutdown().await;
        }
        self.wal.shutdown();
    }

    pub fn connection_closed(&self, conn: tessera_types::rpc::ConnId) {
        for r in self.replicas.read().unwrap_or_else(|p| p.into_inner()).values() {
            r.txns.drop_connection(conn);
        }
    }

    /// Heartbeats to the catalog and follows the cluster map until `stop` fires.
    pub async fn run_background(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let hb = {
            let node = self.clone();
            let mut stop = stop.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(node.config.heartbeat_ms));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.changed() => return,
                    }
                    let req = Request::Heartbeat { node: node.id };
                    // A stop does not wait for an unreachable catalog's retries.
                    let sent = tokio::select! {
                        r = call_any(&node.peers.pool, &node.config.catalog, req) => r,
                        _ = stop.changed() => return,
                    };
                    if let Err(e) = sent {
                        warn!(node = node.id, error = %e, "heartbeat to the catalog failed");
                    }
                }
            }
        };
        let primaries = self.clone().watch_primaries(stop.clone());
        let prepared = self.clone().resolve_prepared(stop.clone());
        let watch_map = async {
            let mut version = 0;
            loop {
                let req = Request::GetMap {
                    newer_than: version,
                    wait_ms: 10_000,
                };
                let reply = tokio::select! {
                    r = call_any(&self.peers.pool, &self.config.catalog, req) => r,
                    _ = stop.changed() => return,
                };
                match reply {
                    Ok(Response::Map(map)) => {
                        version = map.version;
                        let addrs = map.nodes.values().map(|n| (n.id, n.addr.clone())).collect();
                        *self.peers.addrs.write().unwrap_or_else(|p| p.into_inner()) = addrs;
                        let shards = map
                            .shards
                            .values()
                            .map(|s| (s.id, s.replicas.iter().map(|r| r.node).collect()))
                            .collect();
                        *self.peers.shards.write().unwrap_or_else(|p| p.into_inner()) = shards;
                    }
                    Ok(_) | Err(_) => {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = stop.changed() => return,
                        }
                    }
                }
            }
        };
        tokio::join!(hb, watch_map, primaries, prepared);
    }

    /// Sends the heartbeats of every group this node leads at the same moment, every
    /// `HEARTBEAT_MS` (openraft's per-group timers are off, see `raft_config`): the messages
    /// of all groups bound for one node then go out together, in one write on the connection
    /// the two nodes share, and come back the same way, instead of one packet per group at
    /// its own time. It runs as a task of its own (see `start`), so that nothing else a node
    /// does in the background can hold up every group's heartbeats, and it stops only after
    /// the replicas did, so that a node shutting down does not leave its groups silent.
    pub async fn beat_groups(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(crate::raft::HEARTBEAT_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            for r in self.all_replicas() {
                if r.raft.metrics().borrow().state == openraft::ServerState::Leader {
                    // Fails only once the group has stopped, which its replica reports.
                    let _ = r.raft.trigger().heartbeat().await;
                }
            }
        }
    }

    /// Settles the multi-shard transactions whose router stopped before deciding them (it
    /// died, or lost its connections): a primary holding a transaction prepared for longer
    /// than `RESOLVE_AFTER` asks its coordinator shard to decide it, as an abort unless a
    /// commit was recorded there already, then applies or drops its own prepared writes.
    async fn resolve_prepared(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(RESOLVE_EVERY);
        // When each prepared transaction was first seen here, by shard.
        let mut seen: HashMap<(ShardId, TxnId), Instant> = HashMap::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let mut present = HashSet::new();
            for r in self.all_replicas().into_iter().filter(|r| r.is_leader()) {
                let prepared = match r.store.prepared() {
                    Ok(p) => p,
                    Err(e) => {
                        warn!(shard = r.shard, error = %e, "cannot read the prepared transactions");
                        continue;
                    }
                };
                for (txn, coordinator) in prepared {
                    present.insert((r.shard, txn));
                    if seen.entry((r.shard, txn)).or_insert_with(Instant::now).elapsed() < RESOLVE_AFTER {
                        continue;
                    }
                    let settled = async {
                        let committed = if coordinator == r.shard {
                            r.decide(txn, false).await?
                        } else {
                            let committed = self.ask_coordinator(coordinator, txn).await?;
                            r.finish(txn, committed).await?;
                            committed
                        };
                        Ok::<_, RpcError>(committed)
                    };
                    let settled = tokio::select! {
                        s = tokio::time::timeout(RESOLVE_TIMEOUT * 2, settled) => {
                            s.unwrap_or(Err(RpcError::Timeout((RESOLVE_TIMEOUT * 2).as_millis() as u64)))
                        }
                        _ = stop.changed() => return,
                    };
                    match settled {
                        Ok(committed) => info!(
                            shard = r.shard,
                            txn, coordinator, committed, "settled a multi-shard transaction its router left prepared"
                        ),
                        Err(e) => {
                            warn!(shard = r.shard, txn, coordinator, error = %e, "cannot settle a prepared transaction yet")
                        }
                    }
                }
            }
            seen.retain(|k, _| present.contains(k));
        }
    }

    /// Has the coordinator shard of a prepared transaction decide it (as an abort, unless it
    /// recorded a commit), through whichever of its replicas is the primary.
    async fn ask_coordinator(&self, coordinator: ShardId, txn: TxnId) -> Result<bool, RpcError> {
        let mut last = RpcError::UnknownShard { shard: coordinator };
        for node in self.peers.shard_nodes(coordinator) {
            if node == self.id {
                if let Some(local) = self.replica(coordinator) {
                    match local.decide(txn, false).await {
                        Ok(committed) => return Ok(committed),
                        Err(e) => last = e,
                    }
                }
                continue;
            }
            let Some(addr) = self.peers.addr(node) else {
                continue;
            };
            let request = Request::Decide {
                // A decision does not depend on placement: no epoch to check.
                shard: ShardRef {
                    shard: coordinator,
                    epoch: u64::MAX,
                },
                txn,
                commit: false,
            };
            let asked = async {
                let mut replies = self.peers.pool.client(&addr).stream(request).await?;
                while let Some(reply) = replies.next().await {
                    match reply? {
                        Response::Started => continue,
                        Response::Decided { committed } => return Ok(committed),
                        other => return Err(RpcError::Internal(format!("unexpected reply {other:?}"))),
                    }
                }
                Err(RpcError::Unavailable {
                    addr: addr.clone(),
                    reason: "no reply".into(),
                })
            };
            match tokio::time::timeout(RESOLVE_TIMEOUT, asked).await {
                Ok(Ok(committed)) => return Ok(committed),
                Ok(Err(e)) => last = e,
                Err(_) => last = RpcError::Timeout(RESOLVE_TIMEOUT.as_millis() as u64),
            }
        }
        Err(last)
    }

    /// Shortens failovers after a crash: when a shard's primary has been silent for a few
    /// heartbeats and its node refuses connections (the process is gone, as after kill -9),
    /// this follower stands for election as soon as the followers' leases on that primary have
    /// run out (600 ms), instead of after the lease plus its election timeout, which is when
    /// openraft would stand (1.05–1.2 s). Each replica waits a different extra delay, so that
    /// the followers of a shard do not all stand at once. The voters still refuse votes within
    /// their lease, so the primary's read lease (`replica::LEADER_LEASE`) stays sound. A
    /// primary that is paused or cut off still accepts or times out connections; openraft's
    /// own timer handles it. Cheap when nothing is wrong: one atomic read per replica a tick.
    async fn watch_primaries(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(PRIMARY_WATCH);
        // The term in which each shard last stood for election this way.
        let mut stood: HashMap<ShardId, u64> = HashMap::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let replicas: Vec<Arc<Replica>> = self
                .replicas
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned()
                .collect();
            stood.retain(|shard, _| replicas.iter().any(|r| r.shard == *shard));
            let mut gone: HashMap<NodeId, bool> = HashMap::new();
            for r in replicas {
                let Some((node, term, silent)) = r.silent_primary(SILENT_PRIMARY) else {
                    continue;
                };
                if node == self.id || stood.get(&r.shard) == Some(&term) {
                    continue;
                }
                let lease_over = Duration::from_millis(crate::raft::ELECTION_TIMEOUT_MAX_MS + 30 + (r.id * 37) % 120);
                if silent < lease_over {
                    continue;
                }
                let refused = match gone.get(&node) {
                    Some(refused) => *refused,
                    None => {
                        let refused = match self.peers.addr(node) {
                            Some(addr) => refuses_connections(&addr).await,
                            None => false,
                        };
                        gone.insert(node, refused);
                        refused
                    }
                };
                if refused {
                    stood.insert(r.shard, term);
                    info!(
                        shard = r.shard,
                        primary_node = node,
                        term,
                        silent_ms = silent.as_millis() as u64,
                        "the primary's node refuses connections: standing for election"
                    );
                    if let Err(e) = r.raft.trigger().elect().await {
                        warn!(shard = r.shard, error = %e, "cannot stand for election");
                    }
                }
            }
        }
    }
}
