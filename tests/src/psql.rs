//! Running the `psql` program against a server, as a person would:
//! `psql -X -w -h HOST -p PORT -U tessera -d tessera -v ON_ERROR_STOP=1 -c SQL` (or `-f FILE`).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::binaries::psql_bin;
use crate::client::{DATABASE, USER};

/// The longest a psql run may take before it is killed and the test fails.
const PSQL_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `sql` with `psql -c` against `addr` and returns its exit status and output.
pub async fn psql(addr: SocketAddr, sql: &str) -> Output {
    run_psql(addr, ["-c".into(), sql.into()]).await
}

/// Runs the script `file` with `psql -f` against `addr` and returns its exit status and output.
pub async fn psql_file(addr: SocketAddr, file: &Path) -> Output {
    run_psql(addr, ["-f".into(), file.as_os_str().to_owned()]).await
}

async fn run_psql(addr: SocketAddr, input: [OsString; 2]) -> Output {
    let port = addr.port().to_string();
    let host = addr.ip().to_string();
    let connection = ["-h", &host, "-p", &port, "-U", USER, "-d", DATABASE].map(OsString::from);
    run_psql_with(&addr.to_string(), connection, input).await
}

/// Runs `sql` with `psql -c`, connecting with the libpq connection string `conninfo` (as
/// `host=localhost port=5433 sslmode=verify-full sslrootcert=cert.pem`); the user and database
/// are the tests' unless it names them.
pub async fn psql_conninfo(conninfo: &str, sql: &str) -> Output {
    let conninfo = format!("user={USER} dbname={DATABASE} {conninfo}");
    run_psql_with(
        &conninfo,
        ["-d".into(), conninfo.clone().into()],
        ["-c".into(), sql.into()],
    )
    .await
}

async fn run_psql_with<const N: usize>(target: &str, connection: [OsString; N], input: [OsString; 2]) -> Output {
    let mut command = tokio::process::Command::new(psql_bin());
    command
        // -X: no ~/.psqlrc; -w: never prompt for a password.
        .args(["-X", "-w", "-v", "ON_ERROR_STOP=1"])
        .args(connection)
        .args(input)
        .env("PGCONNECT_TIMEOUT", "10")
        // Settings from the environment that would change what psql sends or prints.
        .env_remove("PGOPTIONS")
        .env_remove("PGSERVICE")
        .env_remove("PGSSLMODE")
        .env_remove("PGTZ")
        .env_remove("PGDATESTYLE")
        .env_remove("PGCLIENTENCODING")
        .env_remove("PSQLRC")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(PSQL_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("cannot run psql: {e}"),
        Err(_) => panic!("psql against {target} did not finish within {PSQL_TIMEOUT:?}"),
    }
}
