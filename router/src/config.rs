//! The router's configuration, validated when the process starts.

use serde::Deserialize;
use tessera_types::rpc::check_addr;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Address to accept PostgreSQL clients on (host:port).
    pub listen: String,
    /// Addresses of the catalog's members.
    pub catalog: Vec<String>,
    /// Most client connections served at once; more are refused with SQLSTATE 53300.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Address to serve the course's HTTP API on (host:port); not served when `None`.
    #[serde(default)]
    pub http: Option<String>,
    /// Address to serve Prometheus metrics on (`GET /metrics`); not served when `None`.
    #[serde(default)]
    pub metrics: Option<String>,
    /// PEM file of the certificate chain offered to clients that ask for TLS (with `tls_key`).
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM file of the certificate's private key.
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
    /// How clients prove who they are.
    #[serde(default)]
    pub auth: crate::frontend::auth::AuthMethod,
    /// Test-only: where multi-shard commits stop, as if the router died there.
    #[serde(default)]
    pub test_abandon_commit: Option<AbandonCommit>,
}

/// A step after which a test router abandons a multi-shard commit (`Executor::commit_shards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbandonCommit {
    /// Every shard prepared; nothing decided.
    AfterPrepare,
    /// The coordinator recorded the commit; the other shards were not told.
    AfterDecide,
}

fn default_max_connections() -> usize {
    1_000
}

impl RouterConfig {
    /// Checks the values, naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        check_addr("listen", &self.listen)?;
        if self.catalog.is_empty() {
            return Err("catalog: at least one catalog address is required".into());
        }
        for a in &self.catalog {
            check_addr("catalog", a)?;
        }
        if let Some(http) = &self.http {
            check_addr("http", http)?;
        }
        if let Some(a) = &self.metrics {
            check_addr("metrics", a)?;
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err("tls_key: needed with tls_cert (the certificate's private key)".into()),
            (None, Some(_)) => return Err("tls_cert: needed with tls_key (the certificate to offer)".into()),
            _ => {}
        }
        if self.max_connections == 0 {
            return Err("max_connections: must be positive".into());
        }
        Ok(())
    }
}
