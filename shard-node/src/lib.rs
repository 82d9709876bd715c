//! The shard node (`tessera node`): hosts shard replicas and executes, next to the data, the
//! fragments routers send.
//!
//! Where things are:
//! - `node.rs`: the process: registration with the catalog, heartbeats, the replica registry
//!   and its manifest, replica creation and deletion.
//! - `service.rs`: the RPC front that dispatches requests to replicas.
//! - `replica.rs`: one replica: reads (scan), writes (autocommit or in a transaction), commit.
//! - `membership.rs`: a group's membership changes (a new replica joins as a learner, catches
//!   up, and the voters change), asked for by the catalog's tasks.
//! - `raft.rs`: the Raft group of a shard (openraft): entry type, timing, network.
//! - `store.rs`: the replica's rows in redb and the state machine that applies the log.
//! - `txn.rs`: open transactions' uncommitted writes and the merged view reads see.
//! - `exec.rs`: scan execution (filter, projection, DISTINCT, top-N, partial aggregates).
//! - `write.rs`: INSERT/UPDATE/DELETE turned into row writes, with constraint checks.
//!
//! The write-ahead log all replicas share is the `tessera-wal` crate.

pub mod config;
pub mod exec;
pub mod membership;
pub mod node;
pub mod proposer;
pub mod raft;
pub mod replica;
pub mod service;
pub mod store;
pub mod txn;
pub mod write;

use std::sync::Arc;

pub use config::NodeConfig;
pub use node::{Node, NodeError};
use tessera_types::rpc::{serve, RpcPool};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running node.
pub struct NodeHandle {
    pub node: Arc<Node>,
    pub addr: String,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// `Node::beat_groups`, stopped last.
    beats: (watch::Sender<bool>, tokio::task::JoinHandle<()>),
}

impl NodeHandle {
    /// Stops serving and shuts the replicas down.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.node.shutdown().await;
        let _ = self.beats.0.send(true);
        let _ = self.beats.1.await;
    }
}

/// Starts a node: binds its port, registers, reopens its replicas and serves.
pub async fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
    let listen_err = |source| NodeError::Listen {
        addr: config.listen.clone(),
        source,
    };
    let listener = TcpListener::bind(&config.listen).await.map_err(listen_err)?;
    let local = listener.local_addr().map_err(listen_err)?;
    let addr = match &config.advertise {
        Some(a) => a.clone(),
        None => local.to_string(),
    };
    let pool = Arc::new(RpcPool::new());
    let (stop, stop_rx) = watch::channel(false);
    let node = Node::open(config, addr.clone(), pool).await?;
    let service = Arc::new(service::NodeService { node: node.clone() });
    let server = tokio::spawn(serve(listener, service, stop_rx.clone()));
    let background = tokio::spawn(node.clone().run_background(stop_rx));
    let (beats_stop, beats_rx) = watch::channel(false);
    let beats = tokio::spawn(node.clone().beat_groups(beats_rx));
    Ok(NodeHandle {
        node,
        addr,
        stop,
        tasks: vec![server, background],
        beats: (beats_stop, beats),
    })
}
