//! The catalog's configuration, validated when the process starts.

use std::path::PathBuf;

use serde::Deserialize;

use crate::provision::ProvisionerKind;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// Address to listen on (host:port).
    pub listen: String,
    /// Where the catalog keeps its state.
    pub data_dir: PathBuf,
    /// Replicas per shard when a table does not say.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// A node silent for this many milliseconds is declared dead.
    #[serde(default = "default_dead_after_ms")]
    pub dead_after_ms: u64,
    /// Address to serve Prometheus metrics on (`GET /metrics`); not served when `None`.
    #[serde(default)]
    pub metrics: Option<String>,
    /// This member's id: its place (from 1) in `peers`.
    #[serde(default = "default_id")]
    pub id: u64,
    /// Every member's address (this one's included), in id order; empty for a catalog of one
    /// member. The others reach this member at its address here.
    #[serde(default)]
    pub peers: Vec<String>,
    /// How the catalog starts nodes itself: `none`, `process` or `docker` (provision.rs).
    #[serde(default)]
    pub provisioner: ProvisionerKind,
    /// Live nodes the leader keeps, starting a node for each one missing; 0 keeps none.
    #[serde(default)]
    pub target_nodes: u32,
    /// The `docker` provisioner's image for node containers; by default the catalog's own.
    #[serde(default)]
    pub docker_image: Option<String>,
    /// The `docker` provisioner's network for node containers; by default the catalog's own.
    #[serde(default)]
    pub docker_network: Option<String>,
    /// A file whose first line is the password of the superuser role `tessera`, created while
    /// the catalog has no role.
    #[serde(default)]
    pub pwfile: Option<std::path::PathBuf>,
}

/// Most nodes `target_nodes` may ask for.
const MAX_TARGET_NODES: u32 = 256;

fn default_id() -> u64 {
    1
}

fn default_replicas() -> u32 {
    3
}

fn default_dead_after_ms() -> u64 {
    10_000
}

impl CatalogConfig {
    /// Every member's id and address: `peers`, or this member alone at its listen address.
    pub fn members(&self) -> Vec<(u64, String)> {
        if self.peers.is_empty() {
            return vec![(1, self.listen.clone())];
        }
        (1..).zip(self.peers.iter().cloned()).collect()
    }

    /// Checks the values, naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        tessera_types::rpc::check_addr("listen", &self.listen)?;
        if let Some(a) = &self.metrics {
            tessera_types::rpc::check_addr("metrics", a)?;
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err("data_dir: must not be empty".into());
        }
        if !(1..=9).contains(&self.replicas) {
            return Err(format!("replicas: {} is out of range (1 to 9)", self.replicas));
        }
        for p in &self.peers {
            tessera_types::rpc::check_addr("peers", p)?;
        }
        if self.peers.is_empty() && self.id != 1 {
            return Err(format!(
                "id: {} needs peers (the addresses of every member, in id order); a catalog of one member has id 1",
                self.id
            ));
        }
        if !self.peers.is_empty() && !(1..=self.peers.len() as u64).contains(&self.id) {
            return Err(format!(
                "id: {} is not a member's place in peers (1 to {})",
                self.id,
                self.peers.len()
            ));
        }
        if self.target_nodes > 0 && self.provisioner == ProvisionerKind::None {
            return Err(format!(
                "target_nodes: keeping {} nodes needs a provisioner to start them (provisioner = \"process\" or \"docker\")",
                self.target_nodes
            ));
        }
        if self.target_nodes > MAX_TARGET_NODES {
            return Err(format!(
                "target_nodes: {} is too many (at most {MAX_TARGET_NODES})",
                self.target_nodes
            ));
        }
        for (field, value) in [
            ("docker_image", &self.docker_image),
            ("docker_network", &self.docker_network),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("{field}: must not be empty"));
            }
        }
        if self.dead_after_ms < 100 {
            return Err(format!(
                "dead_after_ms: {} is too short (at least 100)",
                self.dead_after_ms
            ));
        }
        Ok(())
    }
}
