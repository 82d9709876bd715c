//! The router's view of the cluster: an immutable snapshot of the catalog's cluster map,
//! swapped atomically (arc-swap) whenever the catalog's version changes, plus which replica of
//! each shard is currently its primary. Queries take one snapshot and plan against it; a node
//! that says a snapshot is stale makes the router refresh and retry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tessera_types::fragment::TableLayout;
use tessera_types::rpc::{call_any, Request, Response, RpcError, RpcPool};
use tessera_types::schema::{ClusterMap, NodeId, Shard, ShardId, Table};
use tokio::sync::watch;
use tracing::warn;

pub struct Routing {
    map: ArcSwap<ClusterMap>,
    pub pool: Arc<RpcPool>,
    catalog: Vec<String>,
    /// The node believed to host each shard's primary.
    leaders: Mutex<HashMap<ShardId, NodeId>>,
}

impl Routing {
    pub fn new(catalog: Vec<String>) -> Arc<Routing> {
        Arc::new(Routing {
            map: ArcSwap::from_pointee(ClusterMap::default()),
            pool: Arc::new(RpcPool::new()),
            catalog,
            leaders: Mutex::new(HashMap::new()),
        })
    }

    pub fn current(&self) -> Arc<ClusterMap> {
        self.map.load_full()
    }

    fn install(&self, map: Arc<ClusterMap>) {
        let current = self.map.load();
        if map.version > current.version {
            self.map.store(map);
        }
    }

    /// Sends a request to the catalog (whichever of its addresses answers).
    pub async fn call_catalog(&self, request: Request) -> Result<Response, RpcError> {
        call_any(&self.pool, &self.catalog, request).await
    }

    /// Fetches the map now (after a stale-epoch reply, or to see a DDL's result).
    pub async fn refresh(&self) -> Result<Arc<ClusterMap>, RpcError> {
        match call_any(
            &self.pool,
            &self.catalog,
            Request::GetMap {
                newer_than: 0,
                wait_ms: 0,
            },
        )
        .await?
        {
            Response::Map(map) => {
                self.install(map);
                Ok(self.current())
            }
            other => Err(RpcError::Internal(format!("unexpected catalog reply {other:?}"))),
        }
    }

    /// Waits until the local map is at least at `version`.
    pub async fn wait_for_version(&self, version: u64) -> Result<Arc<ClusterMap>, RpcError> {
        for _ in 0..100 {
            let map = self.current();
            if map.version >= version {
                return Ok(map);
            }
            self.refresh().await?;
        }
        Err(RpcError::Internal(format!(
            "the catalog never showed map version {version}"
        )))
    }

    /// Follows the catalog's map until `stop` fires (long poll).
    pub async fn follow(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let version = self.current().version;
            let req = Request::GetMap {
                newer_than: version,
                wait_ms: 10_000,
            };
            let reply = tokio::select! {
                r = call_any(&self.pool, &self.catalog, req) => r,
                _ = stop.changed() => return,
            };
            match reply {
                Ok(Response::Map(map)) => self.install(map),
                Ok(_) | Err(_) => {
                    if let Err(e) = &reply {
                        warn!(error = %e, "cannot reach the catalog; retrying");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    /// The node to send a shard's requests to: its known primary, else its first replica;
    /// `skip` rotates to the next replica (after a failure).
    pub fn target_node(&self, shard: &Shard, skip: usize) -> Option<NodeId> {
        if skip == 0 {
            if let Some(n) = self.leaders.lock().unwrap_or_else(|p| p.into_inner()).get(&shard.id) {
                if shard.replicas.iter().any(|r| r.node == *n) {
                    return Some(*n);
                }
            }
        }
        if shard.replicas.is_empty() {
            return None;
        }
        Some(shard.replicas[skip % shard.replicas.len()].node)
    }

    /// The node to read a shard from: the replica the shard's consistent-hash ring gives `key`
    /// (so reads spread over replicas), `skip` rotating past replicas that failed.
    pub fn read_node(&self, shard: &Shard, key: u64, skip: usize) -> Option<NodeId> {
        let n = shard.replicas.len();
        if n == 0 {
            return None;
        }
        let ring = tessera_types::ring::Ring::new(shard.replicas.iter().map(|r| r.id));
        let chosen = ring.server_for(key)?;
        let start = shard.replicas.iter().position(|r| r.id == chosen).unwrap_or(0);
        Some(shard.replicas[(start + skip) % n].node)
    }

    pub fn set_leader(&self, shard: ShardId, node: NodeId) {
        self.leaders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(shard, node);
    }
}

/// What a shard needs to know about its table to execute a fragment.
pub fn layout(table: &Table, shard: &Shard) -> Arc<TableLayout> {
    TableLayout::of(table, shard)
}
