//! The shard node's configuration, validated when the process starts.

use std::path::PathBuf;

use serde::Deserialize;
use tessera_types::rpc::check_addr;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Address to listen on for routers, other nodes and the catalog (host:port).
    pub listen: String,
    /// Address other processes use to reach this node; defaults to `listen`. Needed when
    /// listening on 0.0.0.0.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Addresses of the catalog's members.
    pub catalog: Vec<String>,
    /// Where the node keeps its write-ahead log and replica stores.
    pub data_dir: PathBuf,
    /// Milliseconds between heartbeats to the catalog.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// Test-only: acknowledge writes without waiting for the disk. Never set in production;
    /// it exists so the durability tests can show they catch its absence.
    #[serde(default)]
    pub unsafe_skip_fsync: bool,
    /// Test-only: acknowledge a write once its primary has proposed it, before a majority of
    /// replicas hold it. Never set in production; it exists so the failover tests can show they
    /// catch its absence.
    #[serde(default)]
    pub unsafe_ack_before_commit: bool,
    /// Address to serve Prometheus metrics on (`GET /metrics`); not served when `None`.
    #[serde(default)]
    pub metrics: Option<String>,
    /// Log entries a replica applies between two snapshots. The log behind a snapshot is
    /// purged (all but the last `min(500, snapshot_after)` entries), and a replica further
    /// behind than that catches up from the snapshot.
    #[serde(default = "default_snapshot_after")]
    pub snapshot_after: u64,
    /// The process that started this node (the catalog's process provisioner): the node stops
    /// when that process has ended. `tessera node` watches it; the library does not.
    #[serde(default)]
    pub parent_pid: Option<u32>,
}

fn default_heartbeat_ms() -> u64 {
    1_000
}

fn default_snapshot_after() -> u64 {
    5_000
}

impl NodeConfig {
    /// Checks the values, naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        check_addr("listen", &self.listen)?;
        if let Some(a) = &self.metrics {
            check_addr("metrics", a)?;
        }
        if let Some(a) = &self.advertise {
            check_addr("advertise", a)?;
        }
        if self.catalog.is_empty() {
            return Err("catalog: at least one catalog address is required".into());
        }
        for a in &self.catalog {
            check_addr("catalog", a)?;
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err("data_dir: must not be empty".into());
        }
        if self.heartbeat_ms == 0 {
            return Err("heartbeat_ms: must be positive".into());
        }
        if self.snapshot_after < 10 {
            return Err(format!(
                "snapshot_after: {} is too small (at least 10 log entries)",
                self.snapshot_after
            ));
        }
        Ok(())
    }
}
