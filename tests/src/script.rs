//! Running a client program that checks a driver (a Python script in `tests/python/`, a Java
//! program in `tests/java/`) against a fresh cluster: the machinery the `tests/tests/driver_*.rs`
//! tests for drivers in other languages share.
//!
//! The program gets the router's address as `TESSERA_ROUTER_ADDR=host:port`, makes its own
//! checks and exits non-zero when one fails. [`run_checked`] runs it with stdin closed, its
//! stdout and stderr interleaved in one temporary file and a timeout, and panics, showing all
//! it printed, when it fails or hangs; [`run_python_script`] does the whole of a Python driver
//! test. The Python is `$TESSERA_PYTHON`, the virtualenv that scripts/test.sh makes with the
//! drivers installed; without it the test fails and says how to get it, it never skips.
//!
//! This module does not know what the programs check, nor how to find a JDK (that is
//! `tests/tests/driver_jdbc.rs`, its only user).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::cluster::Cluster;

/// How long a client program may run against a cluster: a few hundred statements, so this only
/// catches a hung server or client.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// What to do when the Python environment is missing.
pub const PYTHON_SETUP_HINT: &str = "run scripts/test.sh, which creates the virtualenv target/python-venv \
     with the Python drivers the tests use (psycopg 3, psycopg2, asyncpg, SQLAlchemy 2) and exports \
     TESSERA_PYTHON=target/python-venv/bin/python; to run one test alone afterwards, export \
     TESSERA_PYTHON=$PWD/target/python-venv/bin/python";

/// The path of the client program `tests/<dir>/<name>` of this crate; panics when it is missing.
pub fn client_program(dir: &str, name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(name);
    assert!(path.is_file(), "the client program {} is missing", path.display());
    path
}

/// The Python interpreter `$TESSERA_PYTHON`, checked to import every module of `modules`.
pub async fn python_with(modules: &[&str]) -> PathBuf {
    let wanted = modules.join(", ");
    let python = match std::env::var_os("TESSERA_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!("TESSERA_PYTHON is not set, so there is no Python with {wanted} to run: {PYTHON_SETUP_HINT}"),
    };
    // `python -c CODE A B` sees sys.argv == ["-c", "A", "B"].
    let check = Command::new(&python)
        .arg("-c")
        .arg("import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)")
        .args(modules)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run TESSERA_PYTHON={}: {e}; {PYTHON_SETUP_HINT}",
                python.display()
            )
        });
    assert!(
        check.status.success(),
        "TESSERA_PYTHON={} cannot import {wanted} ({}):\n{}\n{PYTHON_SETUP_HINT}",
        python.display(),
        check.status,
        String::from_utf8_lossy(&check.stderr)
    );
    python
}

/// A whole Python driver test: finds the Python that imports `modules`, starts a three-node
/// cluster and runs `tests/python/<script>` against it; panics unless the script passes.
pub async fn run_python_script(script: &str, modules: &[&str]) {
    let python = python_with(modules).await;
    let script = client_program("python", script);
    let cluster = Cluster::start(3).await;
    let mut command = Command::new(&python);
    command.arg("-u").arg(&script).env("PYTHONIOENCODING", "utf-8");
    run_against(&cluster, command, &script.display().to_string()).await;
}

/// Runs `command` against `cluster`, with the router's address in `TESSERA_ROUTER_ADDR`, for
/// at most [`SCRIPT_TIMEOUT`]; panics unless it exits successfully. `what` names the program in
/// the messages.
pub async fn run_against(cluster: &Cluster, mut command: Command, what: &str) {
    command.env("TESSERA_ROUTER_ADDR", cluster.router_addr().to_string());
    let what = format!("{what} (against the cluster at {})", cluster.router_addr());
    run_checked(command, &what, SCRIPT_TIMEOUT).await;
}

/// Runs `command` to completion with stdin closed, killing it after `timeout`; panics, with
/// everything it printed, unless it exits successfully in time. `what` names the program in
/// the messages.
pub async fn run_checked(mut command: Command, what: &str, timeout: Duration) {
    // The program's stdout and stderr both go to one file, in order, so that what it printed
    // before a failure or a hang can be shown.
    let log = tempfile::NamedTempFile::new().expect("cannot create a temp file for the program's output");
    let stdout = log
        .as_file()
        .try_clone()
        .expect("cannot share the program's output file");
    let stderr = log
        .as_file()
        .try_clone()
        .expect("cannot share the program's output file");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let status = tokio::time::timeout(timeout, child.wait()).await;
    let printed = || match std::fs::read(log.path()) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("(cannot read the output: {e})"),
    };
    match status {
        Ok(Ok(status)) => assert!(status.success(), "{what} failed ({status}); its output:\n{}", printed()),
        Ok(Err(e)) => panic!("waiting for {what} failed: {e}"),
        Err(_) => {
            let _ = child.kill().await;
            panic!(
                "{what} did not finish within {timeout:?} and was killed (a statement probably hung); \
                 its output:\n{}",
                printed()
            );
        }
    }
}
