//! `tessera dev`: a whole cluster in one process, the first thing a new user runs.
//!
//! It starts a catalog (data in `<data_dir>/catalog`), `nodes` shard nodes (node i's data in
//! `<data_dir>/node-<i>`, i from 1) and a router on `listen`; the catalog and nodes listen on
//! free loopback ports. Everything durable is in the data directory, so a second start with the
//! same directory finds every acknowledged row: each node re-registers under the id it
//! persisted, with its new address. It prints one line to stdout when clients can connect and
//! stops, router first, on Ctrl-C or SIGTERM.
//!
//! The sub-configs are built through the same path as a standalone process's configuration
//! (`config::build`), so their defaults and validation stay the library crates'.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use futures::future::join_all;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tessera_catalog::{CatalogConfig, CatalogHandle};
use tessera_router::{RouterConfig, RouterHandle};
use tessera_shard_node::{NodeConfig, NodeHandle};
use toml::{Table, Value};
use tracing::info;

use crate::config::{self, Fields, Validate};
use crate::run::StartError;
use crate::signal::Stop;

/// Where the catalog and the nodes listen: loopback, on a port the system picks.
const INTERNAL_LISTEN: &str = "127.0.0.1:0";

/// Most nodes one process runs.
const MAX_NODES: u32 = 64;

/// The configuration of `tessera dev`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevConfig {
    /// Address to accept PostgreSQL clients on (host:port).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Directory for all data: the catalog's in `catalog/`, node i's in `node-<i>/`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Number of shard nodes to run.
    #[serde(default = "default_nodes")]
    pub nodes: u32,
    /// Replicas per shard when a table does not say; by default 3, or the node count when
    /// there are fewer nodes.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Address to serve the course's HTTP API on (host:port).
    #[serde(default = "default_http")]
    pub http: String,
    /// Offer TLS to clients, with a self-signed certificate made in `<data_dir>/tls`.
    #[serde(default)]
    pub tls: bool,
    /// How clients prove who they are (the router's `auth`): by default anyone gets in.
    #[serde(default = "default_auth")]
    pub auth: String,
    /// The password file of the superuser `tessera` (the catalog's `pwfile`).
    #[serde(default)]
    pub pwfile: Option<PathBuf>,
}

fn default_auth() -> String {
    "trust".into()
}

fn default_http() -> String {
    "127.0.0.1:8080".into()
}

fn default_listen() -> String {
    "127.0.0.1:5433".into()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./tessera-data")
}

fn default_nodes() -> u32 {
    3
}

impl DevConfig {
    /// Replicas per shard: as configured, else 3 (or every node, when there are fewer).
    pub fn replicas(&self) -> u32 {
        self.replicas.unwrap_or(self.nodes.min(3))
    }

    /// Checks the values, naming the field at fault. The checks of `listen` and `replicas` are
    /// the router's and the catalog's own.
    pub fn validate(&self) -> Result<(), String> {
        if self.data_dir.as_os_str().is_empty() {
            return Err("data_dir: must not be empty".into());
        }
        if self.data_dir.to_str().is_none() {
            return Err(format!("data_dir: {:?} is not valid UTF-8", self.data_dir));
        }
        if self.nodes == 0 {
            return Err("nodes: must be at least 1".into());
        }
        if self.nodes > MAX_NODES {
            return Err(format!(
                "nodes: {} is too many for one process (at most {MAX_NODES})",
                self.nodes
            ));
        }
        self.router_config(INTERNAL_LISTEN)?;
        self.catalog_config()?;
        if self.replicas() > self.nodes {
            return Err(format!(
                "replicas: {} is more than nodes ({}); each replica of a shard needs a node of its own",
                self.replicas(),
                self.nodes
            ));
        }
        self.node_config(1, INTERNAL_LISTEN)?;
        Ok(())
    }

    fn catalog_config(&self) -> Result<CatalogConfig, String> {
        let mut settings = vec![
            ("listen", INTERNAL_LISTEN.into()),
            ("data_dir", path_value(&self.data_dir.join("catalog"))),
            ("replicas", i64::from(self.replicas()).into()),
            // `tessera_add_node()` and the HTTP API's `/add` start `tessera node` processes.
            ("provisioner", "process".into()),
        ];
        if let Some(pwfile) = &self.pwfile {
            settings.push(("pwfile", path_value(pwfile)));
        }
        sub_config(settings)
    }

    fn node_config(&self, i: u32, catalog: &str) -> Result<NodeConfig, String> {
        sub_config([
            ("listen", INTERNAL_LISTEN.into()),
            ("catalog", Value::Array(vec![catalog.into()])),
            ("data_dir", path_value(&self.data_dir.join(format!("node-{i}")))),
        ])
    }

    fn router_config(&self, catalog: &str) -> Result<RouterConfig, String> {
        let mut settings = vec![
            ("listen", self.listen.as_str().into()),
            ("catalog", Value::Array(vec![catalog.into()])),
            ("http", self.http.as_str().into()),
            ("auth", self.auth.as_str().into()),
        ];
        if self.tls {
            let (cert, key) = self.tls_files();
            settings.push(("tls_cert", path_value(&cert)));
            settings.push(("tls_key", path_value(&key)));
        }
        sub_config(settings)
    }

    /// Where `--tls` keeps its certificate and key.
    fn tls_files(&self) -> (PathBuf, PathBuf) {
        let dir = self.data_dir.join("tls");
        (dir.join("cert.pem"), dir.join("key.pem"))
    }
}

/// A library config from the given settings and the library's defaults, validated.
fn sub_config<C>(settings: impl IntoIterator<Item = (&'static str, Value)>) -> Result<C, String>
where
    C: DeserializeOwned + Validate,
{
    let table: Table = settings.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    config::build(vec![table], &Fields::default()).map_err(|e| e.0)
}

/// A path as a TOML string (`validate` has made sure it is UTF-8).
fn path_value(path: &std::path::Path) -> Value {
    Value::String(path.to_string_lossy().into_owned())
}

/// Runs the cluster until a stop signal, then stops it.
pub async fn run(config: DevConfig, mut stop: Stop) -> Result<(), StartError> {
    let Some(cluster) = stop.until(Cluster::start(&config)).await.transpose()? else {
        return Ok(());
    };
    let cert = config.tls.then(|| config.tls_files().0);
    announce(
        &cluster.router.addr,
        cluster.router.http_addr.as_deref(),
        cert.as_deref(),
    );
    stop.wait().await;
    cluster.shutdown().await;
    info!("stopped");
    Ok(())
}

/// The running parts.
pub(crate) struct Cluster {
    catalog: CatalogHandle,
    nodes: Vec<NodeHandle>,
    pub(crate) router: RouterHandle,
}

impl Cluster {
    /// The write-ahead log counters of all nodes, summed.
    pub(crate) fn wal_stats(&self) -> tessera_wal::WalStats {
        self.nodes.iter().fold(tessera_wal::WalStats::default(), |acc, n| {
            let s = n.node.wal.stats();
            tessera_wal::WalStats {
                bytes: acc.bytes + s.bytes,
                fsyncs: acc.fsyncs + s.fsyncs,
                writes: acc.writes + s.writes,
            }
        })
    }

    /// Starts the catalog, then the nodes one by one (so that on a fresh data directory node i
    /// registers i-th and gets id i), then the router. On failure, stops what was started.
    pub(crate) async fn start(config: &DevConfig) -> Result<Cluster, StartError> {
        ensure_free(&config.listen)?;
        let data_dir = &config.data_dir;
        std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        info!(data_dir = %data_dir.display(), nodes = config.nodes, "starting an embedded cluster");
        if config.tls {
            make_certificate(config)?;
        }

        let catalog = tessera_catalog::start(config.catalog_config().map_err(StartError::Config)?).await?;
        info!(addr = %catalog.addr, "catalog started");
        let mut nodes = Vec::new();
        for i in 1..=config.nodes {
            let started = match config.node_config(i, &catalog.addr) {
                Ok(node_config) => tessera_shard_node::start(node_config).await.map_err(StartError::from),
                Err(e) => Err(StartError::Config(e)),
            };
            match started {
                Ok(node) => {
                    info!(node = node.node.id, addr = %node.addr, dir = %format!("node-{i}"), "node started");
                    nodes.push(node);
                }
                Err(e) => {
                    stop_parts(None, nodes, catalog).await;
                    return Err(e);
                }
            }
        }
        let router = match config.router_config(&catalog.addr) {
            Ok(router_config) => tessera_router::start(router_config).await.map_err(StartError::from),
            Err(e) => Err(StartError::Config(e)),
        };
        match router {
            Ok(router) => {
                info!(addr = %router.addr, "router started");
                Ok(Cluster { catalog, nodes, router })
            }
            Err(e) => {
                stop_parts(None, nodes, catalog).await;
                Err(e)
            }
        }
    }

    pub(crate) async fn shutdown(self) {
        stop_parts(Some(self.router), self.nodes, self.catalog).await;
    }
}

/// Makes the self-signed certificate of `--tls` (for localhost, 127.0.0.1 and ::1) unless the
/// data directory has one.
fn make_certificate(config: &DevConfig) -> Result<(), StartError> {
    let (cert, key) = config.tls_files();
    if cert.exists() && key.exists() {
        return Ok(());
    }
    let failed =
        |e: &dyn std::fmt::Display| StartError::Config(format!("tls: cannot make a self-signed certificate: {e}"));
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| failed(&e))?;
    let dir = cert.parent().unwrap_or(&config.data_dir);
    std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    // The key is readable by its owner only from the moment it exists.
    let write = |path: &std::path::Path, text: String, mode: u32| {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|source| StartError::DataDir {
                path: path.to_path_buf(),
                source,
            })
    };
    write(&key, made.signing_key.serialize_pem(), 0o600)?;
    write(&cert, made.cert.pem(), 0o644)?;
    info!(cert = %cert.display(), "made a self-signed TLS certificate");
    Ok(())
}

/// Stops the router first (no new statements), then the nodes, then the catalog.
async fn stop_parts(router: Option<RouterHandle>, nodes: Vec<NodeHandle>, catalog: CatalogHandle) {
    if let Some(router) = router {
        router.shutdown().await;
        info!("router stopped");
    }
    join_all(nodes.into_iter().map(NodeHandle::shutdown)).await;
    info!("nodes stopped");
    catalog.shutdown().await;
    info!("catalog stopped");
}

/// Fails early, before any data is opened, when the client port is taken: most often by
/// another `tessera dev`, which must not share the data directory.
fn ensure_free(listen: &str) -> Result<(), StartError> {
    match std::net::TcpListener::bind(listen) {
        Ok(probe) => {
            drop(probe);
            Ok(())
        }
        Err(source) => Err(StartError::Listen {
            addr: listen.to_string(),
            source,
        }),
    }
}

/// Prints the one line that says how to connect (then the HTTP API's address, and with TLS how
/// to check the certificate).
fn announce(router_addr: &str, http_addr: Option<&str>, cert: Option<&std::path::Path>) {
    // Not `println!`: that panics when stdout is closed, and this line is not worth dying for.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Tessera is ready: {}", psql_command(router_addr));
    if let Some(cert) = cert {
        let _ = writeln!(
            out,
            "TLS: add sslmode=verify-full sslrootcert={} host=localhost to check the certificate",
            cert.display()
        );
    }
    if let Some(http) = http_addr {
        let _ = writeln!(out, "The course's HTTP API: http://{http}");
    }
    let _ = out.flush();
}

/// The psql command line that connects to a router listening on `addr`.
fn psql_command(addr: &str) -> String {
    match addr.parse::<SocketAddr>() {
        Ok(sa) => {
            let host = match sa.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            format!("psql -h {host} -p {} -U tessera", sa.port())
        }
        Err(_) => match addr.rsplit_once(':') {
            Some((host, port)) => format!("psql -h {host} -p {port} -U tessera"),
            None => format!("psql -h {addr} -U tessera"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(listen: &str, nodes: u32, replicas: u32) -> DevConfig {
        DevConfig {
            listen: listen.into(),
            data_dir: "d".into(),
            nodes,
            replicas: Some(replicas),
            http: "127.0.0.1:0".into(),
            tls: false,
            auth: "trust".into(),
            pwfile: None,
        }
    }

    #[test]
    fn sub_configs_take_library_defaults_and_dev_paths() {
        let c = dev("127.0.0.1:5433", 3, 2);
        let catalog = c.catalog_config().expect("catalog config");
        assert_eq!(catalog.data_dir, PathBuf::from("d").join("catalog"));
        assert_eq!(catalog.replicas, 2);
        let node = c.node_config(2, "127.0.0.1:7000").expect("node config");
        assert_eq!(node.data_dir, PathBuf::from("d").join("node-2"));
        assert_eq!(node.catalog, vec!["127.0.0.1:7000".to_string()]);
        assert_eq!(node.listen, INTERNAL_LISTEN);
        assert!(!node.unsafe_skip_fsync);
        let router = c.router_config("127.0.0.1:7000").expect("router config");
        assert_eq!(router.listen, "127.0.0.1:5433");
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(dev("127.0.0.1:5433", 3, 1).validate(), Ok(()));
        assert_eq!(
            dev("abc", 3, 1).validate(),
            Err("listen: \"abc\" is not a host:port address".to_string())
        );
        assert_eq!(
            dev("127.0.0.1:5433", 0, 1).validate(),
            Err("nodes: must be at least 1".to_string())
        );
        let too_many = dev("127.0.0.1:5433", 2, 3)
            .validate()
            .expect_err("3 replicas on 2 nodes");
        assert!(too_many.starts_with("replicas: 3 is more than nodes (2)"), "{too_many}");
        let zero = dev("127.0.0.1:5433", 2, 0).validate().expect_err("zero replicas");
        assert!(zero.starts_with("replicas: "), "{zero}");
    }

    #[test]
    fn psql_command_uses_the_actual_address() {
        assert_eq!(psql_command("127.0.0.1:5433"), "psql -h 127.0.0.1 -p 5433 -U tessera");
        assert_eq!(psql_command("0.0.0.0:6000"), "psql -h 127.0.0.1 -p 6000 -U tessera");
        assert_eq!(psql_command("[::]:5433"), "psql -h ::1 -p 5433 -U tessera");
    }
}
