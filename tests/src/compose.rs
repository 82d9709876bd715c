//! [`ComposeCluster`]: the cluster of `docker/docker-compose.yml` (three catalog members, five nodes, two
//! routers, each in its own container) brought up under a project name of its own, with its
//! routers published on free 127.0.0.1 ports, and the container faults the compose fault test
//! applies: `docker kill`, `docker stop` / `docker start`, `docker network disconnect` /
//! `connect`.
//!
//! The image is `TESSERA_IMAGE` when set (scripts/test.sh builds it and sets it), otherwise
//! `docker/build-image.sh` builds `tessera:latest` from the binary under test. Compose is
//! `docker compose` when the engine's CLI has it, otherwise `docker-compose`. Without a
//! reachable Docker engine, [`docker_engine`] says why and the test skips itself loudly.
//!
//! Dropping the cluster runs `down -v` (containers, network and volumes go), also when the
//! test fails; if it is failing, every container's last log lines are printed first.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::binaries::tessera_bin;
use crate::client::{connect, describe_error, simple_rows};
use crate::net::free_local_addr;

/// The services of the compose file, in start order.
pub const SERVICES: [&str; 10] = [
    "catalog-1",
    "catalog-2",
    "catalog-3",
    "node-1",
    "node-2",
    "node-3",
    "node-4",
    "node-5",
    "router-1",
    "router-2",
];
/// The shard nodes among [`SERVICES`].
pub const NODES: [&str; 5] = ["node-1", "node-2", "node-3", "node-4", "node-5"];
/// The port every node listens on inside its container (the compose file's TESSERA_LISTEN).
const NODE_PORT: u16 = 7100;

/// How long the containers may take to start and report healthy (the image checks every 5 s).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// The label of the node containers a catalog's docker provisioner makes.
const PROVISIONER_LABEL: &str = "tessera.provisioner";

/// The group of the Docker engine's socket, for the compose file's DOCKER_GID ("0" when it
/// is not a local socket).
fn docker_socket_group() -> String {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/var/run/docker.sock").map_or_else(|_| "0".to_string(), |m| m.gid().to_string())
}

/// How many log lines of each container a failing test prints.
const LOG_TAIL_LINES: &str = "40";

/// The repository's root.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `Err` with the reason when no Docker engine answers (`docker info`), `Ok` otherwise.
pub fn docker_engine() -> Result<(), String> {
    let output = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `docker`: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no output");
    Err(format!("`docker info` failed: {}", reason.trim()))
}

/// The Compose command line: `docker compose` if the plugin is there, else `docker-compose`.
/// Panics, saying what to install, if neither is.
fn compose_program() -> Vec<String> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("docker", &["compose", "version"]) {
        vec!["docker".into(), "compose".into()]
    } else if works("docker-compose", &["version"]) {
        vec!["docker-compose".into()]
    } else {
        panic!(
            "a Docker engine is reachable but neither `docker compose` nor `docker-compose` runs: \
             install the Compose plugin or docker-compose (scripts/test.sh installs docker-compose)"
        );
    }
}

/// The image to run: `TESSERA_IMAGE` as it is, or `tessera:latest` built now by
/// `docker/build-image.sh` from the binary under test.
pub fn image() -> String {
    if let Ok(image) = std::env::var("TESSERA_IMAGE") {
        let output = run_sync(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &image]));
        if let Err(e) = output {
            panic!("TESSERA_IMAGE is {image}, which the Docker engine does not have ({e}); build it with docker/build-image.sh");
        }
        return image;
    }
    let bin = tessera_bin();
    let started = Instant::now();
    let script = repo_root().join("docker").join("build-image.sh");
    let result = run_sync(
        Command::new(&script)
            .env("TESSERA_BIN", &bin)
            .args(["--tag", "tessera:latest"]),
    );
    match result {
        Ok(out) => eprintln!(
            "compose: built the image in {:.1} s: {}",
            started.elapsed().as_secs_f64(),
            out.trim()
        ),
        Err(e) => panic!("{} failed: {e}", script.display()),
    }
    "tessera:latest".into()
}

/// Runs a command to completion; `Ok(stdout)` if it succeeded, else the command and its stderr.
fn run_sync(command: &mut Command) -> Result<String, String> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    outcome(&shown, output)
}

fn outcome(shown: &str, output: Output) -> Result<String, String> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{shown} exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The compose cluster of one test.
pub struct ComposeCluster {
    compose: Vec<String>,
    project: String,
    file: PathBuf,
    /// What the compose file reads from the environment.
    env: Vec<(String, String)>,
    /// Router service name → its published address.
    routers: BTreeMap<String, SocketAddr>,
    /// Service name → container id.
    containers: BTreeMap<String, String>,
    /// The project's network, as the engine names it.
    network: String,
    /// router-1's published HTTP API.
    http: SocketAddr,
}

impl ComposeCluster {
    /// Brings the cluster up with `image` and waits until every container is healthy and the
    /// routers know all five nodes. Panics (printing the logs, then taking it down) if not.
    pub async fn up(image: &str) -> ComposeCluster {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let project = format!("tessera-test-{}-{nanos}", std::process::id());
        let router_1 = free_local_addr();
        let router_2 = free_local_addr();
        let http = free_local_addr();
        let mut cluster = ComposeCluster {
            compose: compose_program(),
            project,
            file: repo_root().join("docker").join("docker-compose.yml"),
            env: vec![
                ("TESSERA_IMAGE".into(), image.into()),
                ("TESSERA_PG_PORT".into(), router_1.port().to_string()),
                ("TESSERA_PG_PORT_2".into(), router_2.port().to_string()),
                ("TESSERA_HTTP_PORT".into(), http.port().to_string()),
                // The catalog members may use the engine's socket (their docker provisioner).
                ("DOCKER_GID".into(), docker_socket_group()),
            ],
            http,
            routers: BTreeMap::from([("router-1".into(), router_1), ("router-2".into(), router_2)]),
            containers: BTreeMap::new(),
            network: String::new(),
        };
        let started = Instant::now();
        if let Err(e) = cluster.start().await {
            panic!("the compose cluster did not start: {e}");
        }
        eprintln!(
            "compose: project {} up and healthy in {:.1} s (routers on {router_1} and {router_2})",
            cluster.project,
            started.elapsed().as_secs_f64()
        );
        cluster
    }

    async fn start(&mut self) -> Result<(), String> {
        self.compose(&["up", "-d", "--no-build"]).await?;
        for service in SERVICES {
            let id = self.compose(&["ps", "-q", service]).await?.trim().to_string();
            if id.is_empty() {
                return Err(format!("`ps -q {service}` names no container"));
            }
            self.containers.insert(service.to_string(), id);
        }
        let networks = self
            .docker(&[
                "inspect",
                "--format",
                "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
                self.container("catalog-1"),
            ])
            .await?;
        self.network = match networks.split_whitespace().collect::<Vec<_>>().as_slice() {
            [one] => one.to_string(),
            other => {
                return Err(format!(
                    "the catalog's container is on networks {other:?}, expected one"
                ))
            }
        };
        self.wait_healthy(&SERVICES, STARTUP_TIMEOUT).await?;
        self.wait_for_nodes(self.router_addr("router-1"), STARTUP_TIMEOUT).await
    }

    /// The published PostgreSQL address of router service `router` (`router-1`, `router-2`).
    pub fn router_addr(&self, router: &str) -> SocketAddr {
        self.routers[router]
    }

    /// router-1's published address of the course's HTTP API.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The project name (`docker compose -p`).
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The container id of `service`.
    pub fn container(&self, service: &str) -> &str {
        self.containers
            .get(service)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no service {service} in the compose file"))
    }

    /// The node service that `address` (as `tessera.replicas` shows it, `node-3:7100`) is.
    pub fn node_of(&self, address: &str) -> Option<&'static str> {
        NODES.into_iter().find(|n| address == format!("{n}:{NODE_PORT}"))
    }

    /// `docker kill`: SIGKILL, no chance to clean up. The restart policy leaves a container
    /// killed by hand down.
    pub async fn kill(&self, service: &str) -> Result<(), String> {
        self.docker(&["kill", self.container(service)]).await.map(drop)
    }

    /// `docker stop`: SIGTERM, then SIGKILL after the compose file's grace period. Returns
    /// the container's exit code (0 for a clean stop).
    pub async fn stop(&self, service: &str) -> Result<i64, String> {
        self.docker(&["stop", self.container(service)]).await?;
        let code = self
            .docker(&["inspect", "--format", "{{.State.ExitCode}}", self.container(service)])
            .await?;
        code.trim()
            .parse()
            .map_err(|e| format!("exit code {code:?} of {service}: {e}"))
    }

    /// `docker start` of a container that was killed or stopped.
    pub async fn start_service(&self, service: &str) -> Result<(), String> {
        self.docker(&["start", self.container(service)]).await.map(drop)
    }

    /// `docker network disconnect`: the container keeps running, cut off from every other.
    pub async fn disconnect(&self, service: &str) -> Result<(), String> {
        self.docker(&["network", "disconnect", &self.network, self.container(service)])
            .await
            .map(drop)
    }

    /// `docker network connect`, with the service name as its DNS alias again.
    pub async fn reconnect(&self, service: &str) -> Result<(), String> {
        self.docker(&[
            "network",
            "connect",
            "--alias",
            service,
            &self.network,
            self.container(service),
        ])
        .await
        .map(drop)
    }

    /// The node containers the catalog's docker provisioner made for this project: each one's
    /// name and state (`running`, `exited`...).
    pub async fn provisioned(&self) -> Result<Vec<(String, String)>, String> {
        let filter = format!("label={PROVISIONER_LABEL}={}-node-auto", self.project);
        let table = self
            .docker(&["ps", "--all", "--filter", &filter, "--format", "{{.Names}} {{.State}}"])
            .await?;
        Ok(table
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(name, state)| (name.to_string(), state.trim().to_string()))
            .collect())
    }

    /// The user ids of the processes running in `service`'s container (`docker top`).
    pub async fn process_uids(&self, service: &str) -> Result<Vec<String>, String> {
        // docker top passes its options to ps, and needs a PID column among them.
        let table = self.docker(&["top", self.container(service), "-eo", "pid,uid"]).await?;
        Ok(table
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
            .collect())
    }

    /// Waits until Docker reports each of `services` healthy (the image's `tessera health`).
    pub async fn wait_healthy(&self, services: &[&str], timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut unhealthy = Vec::new();
            for service in services {
                let status = self
                    .docker(&[
                        "inspect",
                        "--format",
                        "{{.State.Status}}/{{.State.Health.Status}}",
                        self.container(service),
                    ])
                    .await?;
                let status = status.trim();
                if status != "running/healthy" {
                    unhealthy.push(format!("{service}: {status}"));
                }
            }
            if unhealthy.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not healthy within {timeout:?}: {}", unhealthy.join(", ")));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until the router at `addr` lists all five nodes alive.
    pub async fn wait_for_nodes(&self, addr: SocketAddr, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let sql = "SELECT count(*) FROM tessera.nodes WHERE state = 'alive'";
        loop {
            let last = match connect(addr).await {
                Ok(client) => match query_count_checked(&client, sql).await {
                    Ok(n) if n == NODES.len() as i64 => return Ok(()),
                    Ok(n) => format!("{n} nodes alive"),
                    Err(e) => e,
                },
                Err(e) => describe_error(&e),
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "the router at {addr} did not list {} alive nodes within {timeout:?}; last: {last}",
                    NODES.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The last log lines of every container.
    pub fn logs(&self) -> String {
        let mut command = self.compose_command(&["logs", "--no-color", "--tail", LOG_TAIL_LINES]);
        match run_sync(&mut command) {
            Ok(logs) => logs,
            Err(e) => format!("(no logs: {e})"),
        }
    }

    async fn docker(&self, args: &[&str]) -> Result<String, String> {
        let mut command = tokio::process::Command::new("docker");
        command.args(args).stdin(Stdio::null()).kill_on_drop(true);
        let shown = format!("docker {}", args.join(" "));
        let output = command.output().await.map_err(|e| format!("cannot run {shown}: {e}"))?;
        outcome(&shown, output)
    }

    async fn compose(&self, args: &[&str]) -> Result<String, String> {
        let command = self.compose_command(args);
        let shown = format!("{command:?}");
        let output = tokio::process::Command::from(command)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("cannot run {shown}: {e}"))?;
        outcome(&shown, output)
    }

    fn compose_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.compose[0]);
        command
            .args(&self.compose[1..])
            .arg("--file")
            .arg(&self.file)
            .args(["--project-name", &self.project])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }
}

impl Drop for ComposeCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("compose: project {} logs:\n{}", self.project, self.logs());
            let filter = format!("label={PROVISIONER_LABEL}={}-node-auto", self.project);
            let mut ps = Command::new("docker");
            ps.args(["ps", "--all", "--quiet", "--filter", &filter])
                .stdin(Stdio::null());
            for id in run_sync(&mut ps).unwrap_or_default().split_whitespace() {
                // The node logs to stderr, which `docker logs` passes on as such.
                let logs = Command::new("docker")
                    .args(["logs", "--tail", LOG_TAIL_LINES, id])
                    .stdin(Stdio::null())
                    .output()
                    .map_or_else(|e| e.to_string(), |o| String::from_utf8_lossy(&o.stderr).into_owned());
                eprintln!("compose: provisioned node {id}:\n{logs}");
            }
        }
        // The node containers the catalog started, with their (anonymous) data volumes, which
        // `down` would leave behind.
        let filter = format!("label={PROVISIONER_LABEL}={}-node-auto", self.project);
        let mut ps = Command::new("docker");
        ps.args(["ps", "--all", "--quiet", "--filter", &filter]);
        let started: Vec<String> = run_sync(&mut ps)
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        if !started.is_empty() {
            let mut rm = Command::new("docker");
            rm.args(["rm", "--force", "--volumes"]).args(&started);
            if let Err(e) = run_sync(&mut rm) {
                eprintln!("compose: could not delete the provisioned node containers {started:?}: {e}");
            }
        }
        let mut down = self.compose_command(&["down", "--volumes", "--remove-orphans", "--timeout", "5"]);
        if let Err(e) = run_sync(&mut down) {
            eprintln!(
                "compose: could not take project {} down: {e}\n\
                 remove it by hand: docker compose -p {} -f docker/docker-compose.yml down -v",
                self.project, self.project
            );
        }
    }
}

/// The single number `sql` returns, or why not (`query_count` without the panic, for waits).
async fn query_count_checked(client: &tokio_postgres::Client, sql: &str) -> Result<i64, String> {
    let rows = simple_rows(client, sql).await?;
    match rows.as_slice() {
        [row] if row.len() == 1 => row[0]
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("`{sql}` returned {rows:?}")),
        _ => Err(format!("`{sql}` returned {rows:?}")),
    }
}
