//! The catalog (`tessera catalog`): the source of truth for cluster metadata: nodes and their
//! liveness, tables and their columns and partitioning, shards with their bounds and the
//! placement of their replicas. Routers and nodes follow it through the cluster map it serves.
//!
//! - `state.rs`: the state and the commands that change it (a pure state machine), with the
//!   validation of DDL and the placement of replicas on the node ring.
//! - `raft.rs`: the catalog's own Raft group (1, 3 or more members), whose log carries those
//!   commands and whose state machine is that state.
//! - `service.rs`: the process: persistence, the map long-poll, node registration and failure
//!   detection, and DDL execution (creating replicas on nodes before recording a shard).
//! - `provision.rs`: starting nodes itself (child processes or containers) and keeping
//!   `--target-nodes` of them alive.
//! - `tasks.rs`: the control loop: re-replication of shards that lost a replica with a dead
//!   node, replica moves, and the cleanup of replicas no shard owns.

pub mod config;
pub mod provision;
pub mod raft;
pub mod rekey;
pub mod service;
pub mod split;
pub mod state;
pub mod tasks;

use std::sync::Arc;

pub use config::CatalogConfig;
pub use service::{Catalog, CatalogError};
use tessera_types::rpc::serve;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running catalog.
pub struct CatalogHandle {
    pub catalog: Arc<Catalog>,
    pub addr: String,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl CatalogHandle {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Err(e) = self.catalog.raft.shutdown().await {
            tracing::warn!(error = %e, "the catalog's Raft group did not stop cleanly");
        }
    }
}

/// Starts the catalog: loads its state, binds its port and serves.
pub async fn start(config: CatalogConfig) -> Result<CatalogHandle, CatalogError> {
    let listen_err = |source| CatalogError::Listen {
        addr: config.listen.clone(),
        source,
    };
    let listener = TcpListener::bind(&config.listen).await.map_err(listen_err)?;
    let addr = listener.local_addr().map_err(listen_err)?.to_string();
    let provisioner = provision::Provisioner::new(&config, &addr).map_err(CatalogError::Provisioner)?;
    let catalog = Catalog::open(config, Arc::new(tessera_types::rpc::RpcPool::new()), provisioner).await?;
    let (stop, stop_rx) = watch::channel(false);
    let service = Arc::new(service::CatalogService {
        catalog: catalog.clone(),
    });
    let server = tokio::spawn(serve(listener, service, stop_rx.clone()));
    let detector = tokio::spawn(catalog.clone().run_failure_detector(stop_rx.clone()));
    let control = tokio::spawn(catalog.clone().run_control_loop(stop_rx.clone()));
    let provisioning = tokio::spawn(catalog.clone().run_provisioner(stop_rx.clone()));
    let roles = tokio::spawn(catalog.clone().log_leadership(stop_rx));
    Ok(CatalogHandle {
        catalog,
        addr,
        stop,
        tasks: vec![server, detector, control, provisioning, roles],
    })
}
