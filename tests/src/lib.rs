//! The end-to-end test harness: it starts the real `tessera` binary as separate processes
//! (a catalog, shard nodes and a router, or `tessera dev`), a real PostgreSQL to compare
//! against, and drives both with real clients (tokio-postgres and psql; the driver tests also
//! run client libraries in Python and Java).
//!
//! The tests themselves live in `tests/tests/*.rs`; the differential SQL scripts they replay
//! live in `tests/sql/*.sql`, and the driver checks written in Python and Java in
//! `tests/python/` and `tests/java/`. Run everything with `scripts/test.sh`, or one test with
//! `cargo test -p tessera-tests --test transactions` after `cargo build --release`.
//!
//! What lives where:
//! - [`binaries`]: finding the `tessera` binary and PostgreSQL's programs (`TESSERA_BIN`,
//!   `PG_BIN_DIR`).
//! - [`process`]: one child process with its log file, signals and diagnostics.
//! - [`cluster`]: [`Cluster`], a catalog, N nodes and a router on free local ports.
//! - [`dev`]: [`DevServer`], the one-process `tessera dev` command.
//! - [`compose`]: [`compose::ComposeCluster`], the cluster of `docker/docker-compose.yml` in
//!   containers, and the container faults (kill, stop, network disconnect).
//! - [`postgres`]: [`Postgres`], a throwaway PostgreSQL server for differential tests.
//! - [`client`]: connecting with tokio-postgres, retrying while a cluster recovers.
//! - [`replication`]: which node leads each shard, and whether replicas agree (checksums).
//! - [`linearizability`]: a WGL linearizability checker for histories of a register.
//! - [`fixtures`]: the course's `studt` table and its four shards, shared by many tests.
//! - [`http`]: a minimal HTTP/1.1 client for the course's JSON API.
//! - [`psql`]: running the `psql` program.
//! - [`differential`]: replaying a SQL script on Tessera and PostgreSQL and comparing every
//!   statement's outcome.
//! - [`writes`]: concurrent writers for the fault tests and what their answers mean.
//! - [`script`]: running a client program in another language (`tests/python/*.py`,
//!   `tests/java/*.java`) against a fresh cluster, for the driver tests.
//! - [`wire`]: protocol messages as bytes, for tests that send exactly what they choose.
//!
//! Every process the harness starts is killed when its owner is dropped, and when a test
//! fails the harness prints each process's log path and last lines and keeps the temporary
//! directory so the logs can be read.

pub mod binaries;
pub mod client;
pub mod cluster;
pub mod compose;
pub mod dev;
pub mod differential;
pub mod fixtures;
pub mod http;
pub mod linearizability;
pub mod net;
pub mod postgres;
pub mod process;
pub mod psql;
pub mod replication;
pub mod script;
pub mod wire;
pub mod writes;

pub use client::{
    connect, describe_error, execute, query_count, query_error, query_rows, retry_until, simple_rows, sqlstate,
    TextRows,
};
pub use cluster::{Cluster, ClusterOptions};
pub use dev::DevServer;
pub use differential::{run_script_both, run_script_file};
pub use postgres::Postgres;
pub use psql::{psql, psql_file};
