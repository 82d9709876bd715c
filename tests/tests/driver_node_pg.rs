//! node-pg, the PostgreSQL client of Node.js (Debian's node-pg, pure JavaScript), against a
//! Tessera cluster: a value of every supported type round-trips as a parameter (text format,
//! binary for bytea) by unnamed and named prepared statements; a parameter of every type in
//! WHERE; a transaction across two shards that commits and one that rolls back; errors with
//! their SQLSTATE (23505, 25P02 until ROLLBACK, 42601) on a connection that stays usable; and a
//! pool running queries concurrently.
//!
//! The checks live in `tests/node/pg_test.js`. This test starts a cluster and runs it with
//! `node`, the router's address in `TESSERA_ROUTER_ADDR` and the modules' directory
//! `$TESSERA_NODE_PATH` as NODE_PATH, and fails, printing its output, when it does (see
//! [`tessera_tests::script`]). scripts/test.sh unpacks node-pg and the packages it needs from
//! Debian under the target directory, installs Node when it is missing, and exports
//! TESSERA_NODE_PATH. Without them the test fails and says so; it never skips.

use std::path::PathBuf;
use std::process::Stdio;

use tessera_tests::script::{client_program, run_against};
use tessera_tests::Cluster;
use tokio::process::Command;

/// What to do when Node or node-pg is missing.
const SETUP_HINT: &str = "run scripts/test.sh, which installs Node (Debian's nodejs) when it is missing, \
     unpacks Debian's node-pg into target/node-pg and exports TESSERA_NODE_PATH; to run this test alone \
     afterwards, export TESSERA_NODE_PATH=$PWD/target/node-pg/usr/share/nodejs";

/// `$TESSERA_NODE_PATH`, checked to hold the `pg` module.
fn node_path() -> PathBuf {
    let dir = match std::env::var_os("TESSERA_NODE_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!("TESSERA_NODE_PATH is not set, so there is no node-pg to test: {SETUP_HINT}"),
    };
    assert!(
        dir.join("pg").join("package.json").is_file(),
        "TESSERA_NODE_PATH={} holds no pg module: {SETUP_HINT}",
        dir.display()
    );
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn node_pg_parameters_transactions_errors_and_pool() {
    let modules = node_path();
    let version = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run node: {e}; {SETUP_HINT}"));
    assert!(
        version.status.success(),
        "node --version failed: {version:?}; {SETUP_HINT}"
    );
    let script = client_program("node", "pg_test.js");
    let cluster = Cluster::start(3).await;
    let mut run = Command::new("node");
    run.arg(&script).env("NODE_PATH", &modules).env("TZ", "UTC");
    run_against(&cluster, run, &format!("node {}", script.display())).await;
}
