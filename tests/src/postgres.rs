//! [`Postgres`]: a throwaway PostgreSQL server, the reference the differential tests compare
//! Tessera against.
//!
//! `initdb` makes a cluster in a temporary directory (user `tessera`, C locale, UTF-8, trust
//! authentication) and `postgres` runs as a child process of the test (not daemonized by
//! `pg_ctl`, so that dropping the [`Postgres`] stops it) on a free 127.0.0.1 port, with
//! `fsync=off` and `TimeZone=UTC`. A database named `tessera` is created so that clients use
//! the same user and database name against both systems.
//!
//! PostgreSQL refuses to run as root; when the tests run as root (as in CI containers), both
//! programs run through `setpriv` as the `postgres` user (or `nobody`), owning the directory.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio_postgres::Client;

use crate::binaries::pg_bin_dir;
use crate::client::{connect_to, describe_error, DATABASE};
use crate::net::free_local_addr;
use crate::process::{indent, killed_with_parent, setpriv_path, ManagedProcess, Signal};

/// How long initdb and the server's startup may take.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server, stopped and deleted when dropped.
pub struct Postgres {
    addr: SocketAddr,
    server: ManagedProcess,
    // Declared last: dropped after the server has stopped writing into it.
    dir: TempDir,
}

impl Postgres {
    /// Creates a database cluster, starts the server and waits until it accepts clients.
    /// Panics if PostgreSQL is not installed (telling to run scripts/test.sh) or does not start.
    pub async fn start() -> Postgres {
        let bin_dir = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("tessera-postgres-")
            .tempdir()
            .expect("cannot create a temp dir");
        let run_as = unprivileged_user_if_root();
        if let Some(user) = &run_as {
            std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid))
                .unwrap_or_else(|e| panic!("cannot give {} to user {}: {e}", dir.path().display(), user.name));
        }
        let data = dir.path().join("data");
        init_database_cluster(&bin_dir, &data, run_as.as_ref()).await;

        let addr = free_local_addr();
        let mut server_args: Vec<OsString> = vec!["-D".into(), data.into_os_string()];
        server_args.extend([
            "-p".into(),
            addr.port().to_string().into(),
            "-k".into(),
            dir.path().into(),
        ]);
        for setting in [
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "TimeZone=UTC",
            "lc_messages=C",
        ] {
            server_args.extend(["-c".into(), setting.into()]);
        }
        let (program, server_args) = as_user(run_as.as_ref(), bin_dir.join("postgres"), server_args, true);
        let server = ManagedProcess::new("postgres", program, server_args, dir.path().join("postgres.log"));
        let mut postgres = Postgres { addr, server, dir };
        if let Err(e) = postgres.server.start() {
            panic!("{e}");
        }
        if let Err(e) = postgres.wait_until_ready().await {
            panic!("PostgreSQL did not start: {e}");
        }
        let admin = postgres.client_for("postgres").await;
        if let Err(e) = admin.simple_query(&format!("CREATE DATABASE {DATABASE}")).await {
            panic!("cannot create database {DATABASE}: {}", describe_error(&e));
        }
        postgres
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        self.server.log_path()
    }

    /// A new client connection, as user `tessera` to database `tessera`.
    pub async fn client(&self) -> Client {
        self.client_for(DATABASE).await
    }

    /// A new client connection, as user `tessera` to database `dbname`.
    pub async fn client_for(&self, dbname: &str) -> Client {
        match connect_to(self.addr, dbname).await {
            Ok(client) => client,
            Err(e) => panic!(
                "cannot connect to PostgreSQL at {} ({dbname}): {}",
                self.addr,
                describe_error(&e)
            ),
        }
    }

    /// Creates database `name` (owned by user `tessera`).
    pub async fn create_database(&self, name: &str) {
        let admin = self.client_for("postgres").await;
        if let Err(e) = admin.simple_query(&format!("CREATE DATABASE \"{name}\"")).await {
            panic!("cannot create database {name}: {}", describe_error(&e));
        }
    }

    /// The server's state, log path and last log lines.
    pub fn diagnostics(&self) -> String {
        self.server.log_excerpt()
    }

    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let error = match connect_to(self.addr, "postgres").await {
                Ok(_) => return Ok(()),
                Err(e) => describe_error(&e),
            };
            self.server.check_alive()?;
            if Instant::now() >= deadline {
                return Err(format!("no connection within {STARTUP_TIMEOUT:?}; last error: {error}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "PostgreSQL reference server in {}:\n{}",
                self.dir.path().display(),
                self.diagnostics()
            );
            self.dir.disable_cleanup(true);
        }
        // SIGQUIT is PostgreSQL's immediate shutdown: the postmaster takes its backends along.
        self.server.stop_blocking(Signal::Quit, Duration::from_secs(5));
    }
}

/// A user without root privileges to run PostgreSQL as.
struct UnprivilegedUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// `Some(user)` when this process runs as root (PostgreSQL refuses to), else `None`.
fn unprivileged_user_if_root() -> Option<UnprivilegedUser> {
    let euid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    if euid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = ["postgres", "nobody"].iter().find_map(|wanted| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [name, _, uid, gid, ..] if name == wanted => Some(UnprivilegedUser {
                    name: name.to_string(),
                    uid: uid.parse().ok()?,
                    gid: gid.parse().ok()?,
                }),
                _ => None,
            }
        })
    });
    Some(user.expect("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as"))
}

/// The program and arguments that run `program args` as `user` (as this process's user when
/// `None`), killed with the test if `tied_to_test` (see [`killed_with_parent`]).
fn as_user(
    user: Option<&UnprivilegedUser>,
    program: PathBuf,
    args: Vec<OsString>,
    tied_to_test: bool,
) -> (PathBuf, Vec<OsString>) {
    let Some(user) = user else {
        return if tied_to_test {
            killed_with_parent(program, args)
        } else {
            (program, args)
        };
    };
    let mut wrapped: Vec<OsString> = vec![
        format!("--reuid={}", user.uid).into(),
        format!("--regid={}", user.gid).into(),
        "--clear-groups".into(),
    ];
    if tied_to_test {
        wrapped.extend(["--pdeathsig".into(), "KILL".into()]);
    }
    wrapped.extend(["--".into(), program.into_os_string()]);
    wrapped.extend(args);
    (setpriv_path().unwrap_or_else(|| PathBuf::from("setpriv")), wrapped)
}

/// Runs initdb for `data`; panics with its output if it fails.
async fn init_database_cluster(bin_dir: &Path, data: &Path, user: Option<&UnprivilegedUser>) {
    let initdb_args: Vec<OsString> = vec![
        "-D".into(),
        data.as_os_str().to_owned(),
        "-U".into(),
        "tessera".into(),
        "--locale=C".into(),
        "--encoding=UTF8".into(),
        "-A".into(),
        "trust".into(),
        "--no-sync".into(),
    ];
    let (program, initdb_args) = as_user(user, bin_dir.join("initdb"), initdb_args, false);
    let command_line = format!(
        "{} {}",
        program.display(),
        initdb_args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let run = tokio::process::Command::new(&program)
        .args(&initdb_args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(STARTUP_TIMEOUT, run).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("cannot run `{command_line}`: {e}"),
        Err(_) => panic!("`{command_line}` did not finish within {STARTUP_TIMEOUT:?}"),
    };
    assert!(
        output.status.success(),
        "`{command_line}` failed ({}):\n{}\n{}",
        output.status,
        indent(&String::from_utf8_lossy(&output.stdout), "    | "),
        indent(&String::from_utf8_lossy(&output.stderr), "    | ")
    );
}
