//! psycopg 3 (Python) against a Tessera cluster (issue 2: "tokio-postgres, sqlx and psycopg 3
//! work, prepared statements included").
//!
//! The checks live in `tests/python/psycopg_test.py`, which asserts in Python and exits non-zero
//! on the first failure; this test starts a cluster, runs the script with the router's address in
//! `TESSERA_ROUTER_ADDR` and fails, printing the script's output, when the script does. The
//! Python is `$TESSERA_PYTHON`: the virtualenv `target/python-venv` that scripts/test.sh creates
//! with `psycopg[binary]` installed. Without it the test fails and says so; it never skips.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tessera_tests::Cluster;
use tokio::process::Command;

/// How long the whole script may take: it runs a few hundred statements, so this only catches
/// a hung server or client.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// What to do when the Python environment is missing.
const SETUP_HINT: &str = "run scripts/test.sh, which creates the virtualenv target/python-venv with \
     psycopg 3 (`pip install 'psycopg[binary]'`) and exports TESSERA_PYTHON=target/python-venv/bin/python; \
     to run this test alone afterwards, export TESSERA_PYTHON=$PWD/target/python-venv/bin/python";

/// The Python interpreter with psycopg 3: `$TESSERA_PYTHON`, checked to import psycopg.
async fn python_with_psycopg() -> PathBuf {
    let python = match std::env::var_os("TESSERA_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!("TESSERA_PYTHON is not set, so there is no Python with psycopg 3 to run: {SETUP_HINT}"),
    };
    let check = Command::new(&python)
        .args(["-c", "import psycopg; print(psycopg.__version__)"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run TESSERA_PYTHON={}: {e}; {SETUP_HINT}", python.display()));
    assert!(
        check.status.success(),
        "TESSERA_PYTHON={} cannot import psycopg ({}):\n{}\n{SETUP_HINT}",
        python.display(),
        check.status,
        String::from_utf8_lossy(&check.stderr)
    );
    python
}

#[tokio::test(flavor = "multi_thread")]
async fn psycopg_prepared_binary_transactions_and_errors() {
    let python = python_with_psycopg().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join("psycopg_test.py");
    assert!(script.is_file(), "the script {} is missing", script.display());

    let cluster = Cluster::start(3).await;
    // The script's stdout and stderr both go to one file, in order, so that what it printed
    // before a failure or a hang can be shown.
    let log = tempfile::NamedTempFile::new().expect("cannot create a temp file for the script's output");
    let stdout = log
        .as_file()
        .try_clone()
        .expect("cannot share the script's output file");
    let stderr = log
        .as_file()
        .try_clone()
        .expect("cannot share the script's output file");
    let mut child = Command::new(&python)
        .arg("-u")
        .arg(&script)
        .env("TESSERA_ROUTER_ADDR", cluster.router_addr().to_string())
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), script.display()));
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await;
    let printed = || std::fs::read_to_string(log.path()).unwrap_or_else(|e| format!("(cannot read the output: {e})"));
    match status {
        Ok(Ok(status)) => assert!(
            status.success(),
            "{} failed ({status}) against the cluster at {}; its output:\n{}",
            script.display(),
            cluster.router_addr(),
            printed()
        ),
        Ok(Err(e)) => panic!("waiting for {} failed: {e}", script.display()),
        Err(_) => {
            let _ = child.kill().await;
            panic!(
                "{} did not finish within {SCRIPT_TIMEOUT:?} and was killed (a statement probably hung); \
                 its output:\n{}",
                script.display(),
                printed()
            );
        }
    }
}
