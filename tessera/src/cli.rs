//! The command line: the `tessera` subcommands and their flags, each flag also readable from a
//! `TESSERA_*` environment variable (clap reads those, and tells where each value came from).
//!
//! The `*Args` structs here are also the schema of the config file: their field names are the
//! keys, the same names as the library config structs they fill (`CatalogConfig`, `NodeConfig`,
//! `RouterConfig`, and `DevConfig` in `dev.rs`). Every field is optional here, because a value
//! may come from the file or a default instead; `config.rs` layers the sources and the library
//! structs' `validate()` judges the result. This module does not run anything.

use std::num::{IntErrorKind, ParseIntError};
use std::path::PathBuf;
use std::str::FromStr;

use clap::{ArgAction, Args, Parser, Subcommand};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

/// Tessera: a distributed SQL database that speaks the PostgreSQL wire protocol.
///
/// Start with `tessera dev`, which runs a whole cluster in one process. Every flag can also be
/// given as a TESSERA_* environment variable or as a key in a TOML file passed with --config;
/// flags win over the environment, which wins over the file, which wins over the defaults.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// TOML file with settings; its keys are the long flag names with `_` for `-` (e.g.
    /// `data_dir = "/var/lib/tessera"`)
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole cluster in one process: a catalog, shard nodes and a router
    ///
    /// Data lives under --data-dir (the catalog in `catalog/`, node i in `node-<i>/`); start it
    /// again with the same directory and every acknowledged row is still there. Any user and
    /// database name are accepted. Ctrl-C stops it cleanly.
    Dev(DevArgs),
    /// Run the catalog: the source of truth for tables, shards, placement and nodes
    Catalog(CatalogArgs),
    /// Run a shard node: it registers with the catalog and hosts shard replicas
    Node(NodeArgs),
    /// Run a router: PostgreSQL clients connect here; it learns the cluster from the catalog
    Router(RouterArgs),
    /// Measure: throughput and latency of inserts, point and range reads against embedded
    /// clusters and a local PostgreSQL, side by side
    Bench(crate::bench::BenchArgs),
    /// Exit 0 if a Tessera process accepts TCP connections at --addr (by default the
    /// TESSERA_LISTEN address), 1 if not: a container's healthcheck
    Health(crate::health::HealthArgs),
}

/// Flags of `tessera dev`; the keys of its config file.
#[derive(Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevArgs {
    /// Address to accept PostgreSQL clients on [default: 127.0.0.1:5433]
    #[arg(long, env = "TESSERA_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Directory for all data (catalog and nodes) [default: ./tessera-data]
    #[arg(long, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Number of shard nodes to run [default: 3]
    #[arg(long, env = "TESSERA_NODES", value_name = "N", value_parser = number::<u32>)]
    pub nodes: Option<u32>,

    /// Replicas per shard when a table does not say [default: the node count, at most 3]
    #[arg(long, env = "TESSERA_REPLICAS", value_name = "N", value_parser = number::<u32>)]
    pub replicas: Option<u32>,

    /// Address to serve the course's HTTP API on [default: 127.0.0.1:8080]
    #[arg(long, env = "TESSERA_HTTP", value_name = "HOST:PORT")]
    pub http: Option<String>,

    /// Offer TLS to clients, with a self-signed certificate for localhost made in
    /// <data-dir>/tls on first use (sslmode=verify-full with sslrootcert=<data-dir>/tls/cert.pem)
    #[arg(long, env = "TESSERA_TLS", action = ArgAction::SetTrue)]
    pub tls: bool,

    /// How clients prove who they are: trust (anyone, under any name), scram-sha-256 or md5
    /// (a role's password; give --pwfile for the first role) [default: trust]
    #[arg(long, env = "TESSERA_AUTH", value_name = "METHOD")]
    pub auth: Option<String>,

    /// File whose first line is the password of the superuser role `tessera`, created while
    /// the cluster has no role [default: none]
    #[arg(long, env = "TESSERA_PWFILE", value_name = "FILE")]
    pub pwfile: Option<PathBuf>,
}

/// Flags of `tessera catalog`; the keys of its config file.
#[derive(Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogArgs {
    /// Address to listen on for nodes and routers (required)
    #[arg(long, env = "TESSERA_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Directory for the catalog's state (required)
    #[arg(long, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Replicas per shard when a table does not say [default: 3]
    #[arg(long, env = "TESSERA_REPLICAS", value_name = "N", value_parser = number::<u32>)]
    pub replicas: Option<u32>,

    /// Declare a node dead after this many milliseconds without a heartbeat [default: 10000]
    #[arg(
        long,
        visible_alias = "dead-after",
        env = "TESSERA_DEAD_AFTER_MS",
        value_name = "MS",
        value_parser = number::<u64>
    )]
    pub dead_after_ms: Option<u64>,

    /// Address to serve Prometheus metrics on, at /metrics [default: not served]
    #[arg(long, env = "TESSERA_METRICS", value_name = "HOST:PORT")]
    pub metrics: Option<String>,

    /// This member's id, its place (from 1) in --peers [default: 1]
    #[arg(long, env = "TESSERA_ID", value_name = "N", value_parser = number::<u64>)]
    pub id: Option<u64>,

    /// Every catalog member's address, this one's included, comma-separated in id order
    /// [default: this member alone]
    #[arg(
        long,
        env = "TESSERA_PEERS",
        value_name = "HOST:PORT,...",
        value_delimiter = ',',
        value_parser = trimmed
    )]
    #[serde(deserialize_with = "one_or_many")]
    pub peers: Option<Vec<String>>,

    /// How the catalog starts nodes itself: none, process (`tessera node` child processes) or
    /// docker (containers, through the Docker API) [default: none]
    #[arg(long, env = "TESSERA_PROVISIONER", value_name = "KIND")]
    pub provisioner: Option<String>,

    /// Keep this many live nodes, starting a new one through the provisioner for each one
    /// missing or dead [default: 0, keep none]
    #[arg(long, env = "TESSERA_TARGET_NODES", value_name = "N", value_parser = number::<u32>)]
    pub target_nodes: Option<u32>,

    /// Image of the node containers the docker provisioner creates [default: the catalog's own]
    #[arg(long, env = "TESSERA_DOCKER_IMAGE", value_name = "IMAGE")]
    pub docker_image: Option<String>,

    /// Network of the node containers the docker provisioner creates [default: the catalog's
    /// own]
    #[arg(long, env = "TESSERA_DOCKER_NETWORK", value_name = "NETWORK")]
    pub docker_network: Option<String>,

    /// File whose first line is the password of the superuser role `tessera`, which the
    /// catalog creates while it has no role (as initdb's --pwfile) [default: none]
    #[arg(long, env = "TESSERA_PWFILE", value_name = "FILE")]
    pub pwfile: Option<PathBuf>,
}

/// Flags of `tessera node`; the keys of its config file.
#[derive(Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeArgs {
    /// Address to listen on for routers, other nodes and the catalog (required)
    #[arg(long, env = "TESSERA_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Address the other processes use to reach this node [default: the --listen address]
    #[arg(long, env = "TESSERA_ADVERTISE", value_name = "HOST:PORT")]
    pub advertise: Option<String>,

    /// Addresses of the catalog's members, comma-separated (required)
    #[arg(
        long,
        env = "TESSERA_CATALOG",
        value_name = "HOST:PORT,...",
        value_delimiter = ',',
        value_parser = trimmed
    )]
    #[serde(deserialize_with = "one_or_many")]
    pub catalog: Option<Vec<String>>,

    /// Directory for the node's write-ahead log and replicas (required)
    #[arg(long, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Milliseconds between heartbeats to the catalog [default: 1000]
    #[arg(long, env = "TESSERA_HEARTBEAT_MS", value_name = "MS", value_parser = number::<u64>)]
    pub heartbeat_ms: Option<u64>,

    /// Address to serve Prometheus metrics on, at /metrics [default: not served]
    #[arg(long, env = "TESSERA_METRICS", value_name = "HOST:PORT")]
    pub metrics: Option<String>,

    /// Log entries a replica applies between two snapshots; the log behind a snapshot is
    /// purged, and a replica that far behind is sent the snapshot [default: 5000]
    #[arg(long, env = "TESSERA_SNAPSHOT_AFTER", value_name = "ENTRIES", value_parser = number::<u64>)]
    pub snapshot_after: Option<u64>,

    /// Stop when the process with this id is no longer this node's parent (set by the
    /// catalog's process provisioner for the nodes it starts)
    #[arg(long, hide = true, env = "TESSERA_PARENT_PID", value_name = "PID", value_parser = number::<u32>, hide_env = true)]
    pub parent_pid: Option<u32>,

    /// Test-only: acknowledge writes before they are on disk. Loses data on a crash.
    #[arg(
        long,
        hide = true,
        env = "TESSERA_UNSAFE_SKIP_FSYNC",
        action = ArgAction::SetTrue,
        hide_env = true
    )]
    pub unsafe_skip_fsync: bool,

    /// Test-only: acknowledge writes before a majority has them. Loses data on a failover.
    #[arg(
        long,
        hide = true,
        env = "TESSERA_UNSAFE_ACK_BEFORE_COMMIT",
        action = ArgAction::SetTrue,
        hide_env = true
    )]
    pub unsafe_ack_before_commit: bool,
}

/// Flags of `tessera router`; the keys of its config file.
#[derive(Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterArgs {
    /// Address to accept PostgreSQL clients on (required)
    #[arg(long, env = "TESSERA_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Addresses of the catalog's members, comma-separated (required)
    #[arg(
        long,
        env = "TESSERA_CATALOG",
        value_name = "HOST:PORT,...",
        value_delimiter = ',',
        value_parser = trimmed
    )]
    #[serde(deserialize_with = "one_or_many")]
    pub catalog: Option<Vec<String>>,

    /// Most client connections served at once; more are refused [default: 1000]
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS", value_name = "N", value_parser = number::<usize>)]
    pub max_connections: Option<usize>,

    /// Address to serve the course's HTTP API on [default: not served]
    #[arg(long, env = "TESSERA_HTTP", value_name = "HOST:PORT")]
    pub http: Option<String>,

    /// Address to serve Prometheus metrics on, at /metrics [default: not served]
    #[arg(long, env = "TESSERA_METRICS", value_name = "HOST:PORT")]
    pub metrics: Option<String>,

    /// PEM file of the certificate chain for clients that ask for TLS (with --tls-key)
    /// [default: no TLS]
    #[arg(long, env = "TESSERA_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file of the certificate's private key (with --tls-cert)
    #[arg(long, env = "TESSERA_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// How clients prove who they are: scram-sha-256 (a role's password), md5 (the same, for
    /// old clients), or trust (anyone, under any name: for development only)
    /// [default: scram-sha-256]
    #[arg(long, env = "TESSERA_AUTH", value_name = "METHOD")]
    pub auth: Option<String>,

    /// Test-only: leave multi-shard commits unfinished, as a router dying there would:
    /// `after-prepare` (nothing decided) or `after-decide` (committed, phase two not sent).
    #[arg(
        long,
        hide = true,
        env = "TESSERA_TEST_ABANDON_COMMIT",
        value_name = "STEP",
        hide_env = true
    )]
    pub test_abandon_commit: Option<String>,
}

/// Parses a non-negative whole number that also fits a TOML integer, with a message a person
/// can act on (clap prefixes it with the value and the flag).
fn number<T>(text: &str) -> Result<T, String>
where
    T: FromStr<Err = ParseIntError> + Copy + TryInto<i64>,
{
    let too_large = || format!("\"{text}\" is too large");
    match text.trim().parse::<T>() {
        Ok(n) if n.try_into().is_ok() => Ok(n),
        Ok(_) => Err(too_large()),
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => Err(too_large()),
        Err(_) => Err(format!("\"{text}\" is not a whole number")),
    }
}

/// Trims the spaces around one element of a comma-separated list (`a:1, b:2`).
fn trimmed(text: &str) -> Result<String, String> {
    Ok(text.trim().to_string())
}

/// Accepts a list of addresses in the config file either as a TOML array or as one string,
/// which may itself be comma-separated.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let value =
        OneOrMany::deserialize(d).map_err(|_| D::Error::custom("expected a \"host:port\" string or a list of them"))?;
    Ok(Some(match value {
        OneOrMany::One(s) => s.split(',').map(|a| a.trim().to_string()).collect(),
        OneOrMany::Many(v) => v,
    }))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// docs/configuration.md lists every setting: its file key, flag and variable.
    #[test]
    fn every_setting_is_documented() {
        let doc = include_str!("../../docs/configuration.md");
        let command = Cli::command();
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            for arg in sub.get_arguments() {
                let key = arg.get_id().as_str();
                if matches!(key, "help" | "version") {
                    continue;
                }
                let mut names = vec![format!("`{key}`")];
                names.extend(arg.get_long().map(|l| format!("`--{l}`")));
                names.extend(arg.get_env().map(|e| format!("`{}`", e.to_string_lossy())));
                for name in names {
                    assert!(
                        doc.contains(&name),
                        "docs/configuration.md does not mention {name} of `tessera {}`",
                        sub.get_name()
                    );
                }
            }
        }
    }
}
