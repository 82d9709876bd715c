//! The catalog's configuration, validated when the process starts.

use std::path::PathBuf;

use serde::Deserialize;

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
}

fn default_replicas() -> u32 {
    3
}

fn default_dead_after_ms() -> u64 {
    10_000
}

impl CatalogConfig {
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
        if self.dead_after_ms < 100 {
            return Err(format!(
                "dead_after_ms: {} is too short (at least 100)",
                self.dead_after_ms
            ));
        }
        Ok(())
    }
}
