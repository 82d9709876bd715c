//! [`Cluster`]: a real Tessera cluster of separate processes (a catalog of one or more members, N shard nodes and a
//! router) on free 127.0.0.1 ports, each with its own data directory and log file inside one
//! temporary directory.
//!
//! Startup waits until the router answers PostgreSQL clients and every node has registered,
//! so a test can issue DDL at once. Processes can be killed (SIGKILL, one node or all at once),
//! frozen (SIGSTOP) and resumed (SIGCONT), restarted on the same port and data directory, or
//! stopped politely (SIGTERM). Dropping the cluster kills whatever still runs; if the test is
//! failing at that moment, every process's log path and last lines are printed and the
//! temporary directory is kept for inspection.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::binaries::tessera_bin;
use crate::client::{connect, describe_error, sqlstate, QUERY_TIMEOUT};
use crate::net::{free_local_addr, wait_for_tcp};
use crate::process::{ManagedProcess, Signal, StopReport};

/// How long a process may take to listen, and the router to answer a client.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait after startup for the nodes to register when the router cannot list the
/// nodes (`tessera.nodes` not answered): a bit over one heartbeat interval.
const REGISTRATION_GRACE: Duration = Duration::from_millis(1_500);

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of shard nodes.
    pub nodes: usize,
    /// Replicas per shard (the catalog's `--replicas`).
    pub replicas: usize,
    /// Start nodes with `--unsafe-skip-fsync`: faster, but acknowledged log records wait in
    /// memory for up to a second, so a crash (of the machine, or of the process) loses them.
    pub skip_fsync: bool,
    /// The catalog's `--dead-after` in milliseconds; the binary's default when `None`.
    pub dead_after_ms: Option<u64>,
    /// More flags for every node, e.g. the hidden negative-control switches
    /// `--unsafe-ack-before-commit` and `--unsafe-skip-fsync`.
    pub node_flags: Vec<String>,
    /// More flags for the router, e.g. `--max-connections 3`.
    pub router_flags: Vec<String>,
    /// Members of the catalog's Raft group (1 or 3).
    pub catalogs: usize,
    /// More flags for every catalog member, e.g. `--provisioner process --target-nodes 3`.
    pub catalog_flags: Vec<String>,
}

impl ClusterOptions {
    /// `nodes` nodes, each shard replicated on up to three of them, writes fsynced.
    pub fn new(nodes: usize) -> Self {
        ClusterOptions {
            nodes,
            replicas: nodes.clamp(1, 3),
            skip_fsync: false,
            dead_after_ms: None,
            node_flags: Vec::new(),
            router_flags: Vec::new(),
            catalogs: 1,
            catalog_flags: Vec::new(),
        }
    }
}

/// Where each process of a cluster serves `GET /metrics`.
#[derive(Debug, Clone)]
pub struct MetricsAddrs {
    pub catalog: SocketAddr,
    /// By node index.
    pub nodes: Vec<SocketAddr>,
    pub router: SocketAddr,
}

/// A running Tessera cluster of separate processes.
pub struct Cluster {
    options: ClusterOptions,
    catalog_addrs: Vec<SocketAddr>,
    node_addrs: Vec<SocketAddr>,
    router_addr: SocketAddr,
    http_addr: SocketAddr,
    metrics: MetricsAddrs,
    catalogs: Vec<ManagedProcess>,
    nodes: Vec<ManagedProcess>,
    /// Which nodes the harness has stopped with SIGSTOP and not resumed.
    paused: Vec<bool>,
    router: ManagedProcess,
    /// Every catalog member's address, as the processes are given it.
    catalog_list: String,
    // Declared last: dropped after `Drop::drop` has killed the processes that write into it.
    dir: TempDir,
}

impl Cluster {
    /// Starts a catalog, `nodes` nodes and a router with [`ClusterOptions::new`], and waits
    /// until the cluster serves clients. Panics (printing the logs) if it does not.
    pub async fn start(nodes: usize) -> Cluster {
        Cluster::start_with(ClusterOptions::new(nodes)).await
    }

    /// Starts a cluster built as `options` says and waits until it serves clients.
    pub async fn start_with(options: ClusterOptions) -> Cluster {
        assert!(
            options.nodes >= 1 || !options.catalog_flags.is_empty(),
            "a cluster needs at least one node, or a catalog that starts them"
        );
        let bin = tessera_bin();
        let dir = tempfile::Builder::new()
            .prefix("tessera-cluster-")
            .tempdir()
            .expect("cannot create a temp dir");
        assert!(options.catalogs >= 1, "a cluster needs at least one catalog member");
        let catalog_addrs: Vec<SocketAddr> = (0..options.catalogs).map(|_| free_local_addr()).collect();
        let catalog_list = catalog_addrs
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let router_addr = free_local_addr();
        let http_addr = free_local_addr();
        let node_addrs: Vec<SocketAddr> = (0..options.nodes).map(|_| free_local_addr()).collect();
        let metrics = MetricsAddrs {
            catalog: free_local_addr(),
            nodes: (0..options.nodes).map(|_| free_local_addr()).collect(),
            router: free_local_addr(),
        };

        let catalogs = catalog_addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let name = if options.catalogs == 1 {
                    "catalog".to_string()
                } else {
                    format!("catalog-{}", i + 1)
                };
                let mut catalog_args = args(&["catalog", "--listen", &addr.to_string()]);
                catalog_args.extend(path_arg("--data-dir", &dir.path().join(&name)));
                catalog_args.extend(args(&["--replicas", &options.replicas.to_string()]));
                if i == 0 {
                    catalog_args.extend(args(&["--metrics", &metrics.catalog.to_string()]));
                }
                if options.catalogs > 1 {
                    catalog_args.extend(args(&["--id", &(i + 1).to_string(), "--peers", &catalog_list]));
                }
                if let Some(ms) = options.dead_after_ms {
                    catalog_args.extend(args(&["--dead-after", &ms.to_string()]));
                }
                catalog_args.extend(options.catalog_flags.iter().map(OsString::from));
                let log = dir.path().join(format!("{name}.log"));
                ManagedProcess::tied_to_test(name, &bin, catalog_args, log)
            })
            .collect();

        let nodes = node_addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| node_process(&options, dir.path(), &catalog_list, i, *addr, metrics.nodes[i]))
            .collect();

        let mut router_args = args(&[
            "router",
            "--listen",
            &router_addr.to_string(),
            "--catalog",
            &catalog_list,
            "--http",
            &http_addr.to_string(),
            "--metrics",
            &metrics.router.to_string(),
        ]);
        router_args.extend(options.router_flags.iter().map(OsString::from));
        // Tests connect under any name unless they test logins themselves.
        if !options.router_flags.iter().any(|f| f == "--auth") {
            router_args.extend(args(&["--auth", "trust"]));
        }
        let router = ManagedProcess::tied_to_test("router", &bin, router_args, dir.path().join("router.log"));

        let paused = vec![false; options.nodes];
        let mut cluster = Cluster {
            options,
            catalog_addrs,
            node_addrs,
            router_addr,
            http_addr,
            metrics,
            catalogs,
            nodes,
            paused,
            router,
            catalog_list,
            dir,
        };
        if let Err(e) = cluster.start_processes().await {
            panic!("the Tessera cluster did not start: {e}");
        }
        cluster
    }

    /// Where clients connect.
    pub fn router_addr(&self) -> SocketAddr {
        self.router_addr
    }

    /// The router's process id, while it runs.
    pub fn router_pid(&self) -> Option<u32> {
        self.router.pid()
    }

    /// Where the router serves the course's HTTP API.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where each process serves its Prometheus metrics.
    pub fn metrics_addrs(&self) -> &MetricsAddrs {
        &self.metrics
    }

    /// Where the catalog listens (its first member).
    pub fn catalog_addr(&self) -> SocketAddr {
        self.catalog_addrs[0]
    }

    /// The number of catalog members.
    pub fn catalog_count(&self) -> usize {
        self.catalogs.len()
    }

    /// Kills catalog member `i` (from 0) with SIGKILL and reaps it.
    pub fn kill_catalog(&mut self, i: usize) {
        self.catalogs[i].kill();
    }

    /// Starts catalog member `i` again, on the same port and data directory, and waits until
    /// it listens. Panics if it does not come up.
    pub async fn restart_catalog(&mut self, i: usize) {
        if let Err(e) = start_and_wait(&mut self.catalogs[i], self.catalog_addrs[i]).await {
            panic!("catalog member {} did not restart: {e}", i + 1);
        }
    }

    /// Starts one more node (like the others, on a new port and data directory) and waits
    /// until it listens; returns its index. It registers with the catalog by itself.
    pub async fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        let (addr, metrics) = (free_local_addr(), free_local_addr());
        let mut node = node_process(&self.options, self.dir.path(), &self.catalog_list, i, addr, metrics);
        if let Err(e) = start_and_wait(&mut node, addr).await {
            panic!("node-{i} did not start: {e}");
        }
        self.nodes.push(node);
        self.node_addrs.push(addr);
        self.metrics.nodes.push(metrics);
        self.paused.push(false);
        i
    }

    /// Where node `i` listens.
    pub fn node_addr(&self, i: usize) -> SocketAddr {
        self.node_addrs[i]
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The temporary directory holding every data directory and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log file of every process.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.processes().map(|p| p.log_path().to_path_buf()).collect()
    }

    /// A new client connection to the router, as user `tessera` to database `tessera`.
    /// Panics with the error if the router does not accept it.
    pub async fn client(&self) -> Client {
        match connect(self.router_addr).await {
            Ok(client) => client,
            Err(e) => panic!(
                "cannot connect to the router at {}: {}",
                self.router_addr,
                describe_error(&e)
            ),
        }
    }

    /// The rows of `sql` (simple protocol, as text) through a new connection to the router,
    /// or why not: for waits that retry while the cluster changes.
    pub async fn rows(&self, sql: &str) -> Result<crate::client::TextRows, String> {
        let client = connect(self.router_addr).await.map_err(|e| describe_error(&e))?;
        crate::client::simple_rows(&client, sql).await
    }

    /// The index of the node that listens on `addr` (as `tessera.replicas` and `tessera.nodes`
    /// show it), if it is one of this cluster's nodes.
    pub fn node_index(&self, addr: &str) -> Option<usize> {
        self.node_addrs.iter().position(|a| a.to_string() == addr)
    }

    /// Whether node `i` runs (paused or not).
    pub fn node_is_running(&mut self, i: usize) -> bool {
        self.nodes[i].is_running()
    }

    /// Kills node `i` with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill();
        self.paused[i] = false;
    }

    /// Kills every node with SIGKILL at once, as a power cut would: the signals are all sent
    /// before any node is reaped.
    pub fn kill_all_nodes(&mut self) {
        for node in &self.nodes {
            // A node that is not running has nothing to kill.
            let _ = node.signal(Signal::Kill);
        }
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
    }

    /// Freezes node `i` with SIGSTOP: it stops answering but keeps its sockets open, like a
    /// node stuck in a long pause. Panics if it is not running.
    pub fn pause_node(&mut self, i: usize) {
        if let Err(e) = self.nodes[i].signal(Signal::Stop) {
            panic!("pause_node({i}): {e}");
        }
        self.paused[i] = true;
    }

    /// Lets node `i` run again after [`pause_node`](Self::pause_node) (SIGCONT).
    pub fn resume_node(&mut self, i: usize) {
        if let Err(e) = self.nodes[i].signal(Signal::Continue) {
            panic!("resume_node({i}): {e}");
        }
        self.paused[i] = false;
    }

    /// Whether node `i` is paused by [`pause_node`](Self::pause_node).
    pub fn node_is_paused(&self, i: usize) -> bool {
        self.paused[i]
    }

    /// Resumes every paused node and restarts every node that is not running, so that the
    /// cluster has all its nodes again.
    pub async fn heal_nodes(&mut self) {
        for i in 0..self.nodes.len() {
            if self.paused[i] {
                self.resume_node(i);
            }
            if !self.nodes[i].is_running() {
                self.restart_node(i).await;
            }
        }
    }

    /// Starts node `i` again, on the same port and data directory, and waits until it
    /// listens. Panics if it is still running or does not come up.
    pub async fn restart_node(&mut self, i: usize) {
        assert!(
            !self.nodes[i].is_running(),
            "restart_node({i}): node-{i} is still running; kill or stop it first"
        );
        if let Err(e) = self.try_restart_node(i).await {
            panic!("node-{i} did not restart: {e}");
        }
    }

    /// Starts node `i` again, on the same port and data directory, and waits until it
    /// listens; the error says why it did not (it exited, with its last log lines).
    pub async fn try_restart_node(&mut self, i: usize) -> Result<(), String> {
        start_and_wait(&mut self.nodes[i], self.node_addrs[i]).await
    }

    /// Stops every process politely (SIGTERM; SIGKILL after a timeout): the router first,
    /// then the nodes, then the catalog. Returns how each one ended.
    pub async fn stop(&mut self) -> Vec<StopReport> {
        // A frozen node would only act on SIGTERM once resumed.
        for i in 0..self.nodes.len() {
            if self.paused[i] {
                let _ = self.nodes[i].signal(Signal::Continue);
                self.paused[i] = false;
            }
        }
        let mut reports = vec![self.router.stop_with(Signal::Terminate, STOP_TIMEOUT).await];
        for node in &mut self.nodes {
            reports.push(node.stop_with(Signal::Terminate, STOP_TIMEOUT).await);
        }
        for catalog in &mut self.catalogs {
            reports.push(catalog.stop_with(Signal::Terminate, STOP_TIMEOUT).await);
        }
        for report in reports.iter().filter(|r| r.forced) {
            eprintln!(
                "harness: {} ignored SIGTERM for {STOP_TIMEOUT:?} and was killed",
                report.name
            );
        }
        reports
    }

    /// Stops whatever still runs, then starts every process again with the same ports and
    /// data directories and waits until the cluster serves clients.
    pub async fn restart_all(&mut self) {
        self.stop().await;
        if let Err(e) = self.start_processes().await {
            panic!("the Tessera cluster did not restart: {e}");
        }
    }

    /// `Ok` if every process the harness did not stop is running; otherwise which died and
    /// their logs.
    pub fn check_processes(&mut self) -> Result<(), String> {
        let failures: Vec<String> = self.processes_mut().filter_map(|p| p.check_alive().err()).collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("\n"))
        }
    }

    /// Every process's state, log path and last log lines.
    pub fn diagnostics(&self) -> String {
        let excerpts: Vec<String> = self.processes().map(ManagedProcess::log_excerpt).collect();
        let paused: Vec<String> = (0..self.nodes.len())
            .filter(|&i| self.paused[i])
            .map(|i| format!("node-{i}"))
            .collect();
        let paused = if paused.is_empty() {
            String::new()
        } else {
            format!(" (paused with SIGSTOP: {})", paused.join(", "))
        };
        format!(
            "Tessera cluster in {}{paused}:\n{}",
            self.dir.path().display(),
            excerpts.join("\n")
        )
    }

    fn processes(&self) -> impl Iterator<Item = &ManagedProcess> {
        self.catalogs
            .iter()
            .chain(&self.nodes)
            .chain(std::iter::once(&self.router))
    }

    fn processes_mut(&mut self) -> impl Iterator<Item = &mut ManagedProcess> {
        self.catalogs
            .iter_mut()
            .chain(&mut self.nodes)
            .chain(std::iter::once(&mut self.router))
    }

    /// Starts the catalog, the nodes and the router, each once the previous ones listen, then
    /// waits until the router serves clients and knows every node.
    async fn start_processes(&mut self) -> Result<(), String> {
        for catalog in &mut self.catalogs {
            catalog.start()?;
        }
        for (catalog, addr) in self.catalogs.iter_mut().zip(&self.catalog_addrs) {
            wait_for_tcp(*addr, STARTUP_TIMEOUT, || catalog.check_alive()).await?;
        }
        for node in &mut self.nodes {
            node.start()?;
        }
        for (node, addr) in self.nodes.iter_mut().zip(&self.node_addrs) {
            wait_for_tcp(*addr, STARTUP_TIMEOUT, || node.check_alive()).await?;
        }
        self.router.start()?;
        let client = self.wait_for_router().await?;
        self.wait_for_registered_nodes(&client).await
    }

    /// Retries connecting to the router until it completes a PostgreSQL handshake and answers
    /// a query.
    async fn wait_for_router(&mut self) -> Result<Client, String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let error = match connect(self.router_addr).await {
                Ok(client) => match tokio::time::timeout(QUERY_TIMEOUT, client.simple_query("SELECT 1")).await {
                    Ok(Ok(_)) => return Ok(client),
                    Ok(Err(e)) => describe_error(&e),
                    Err(_) => format!("`SELECT 1` got no answer within {QUERY_TIMEOUT:?}"),
                },
                Err(e) => describe_error(&e),
            };
            self.check_processes()?;
            if Instant::now() >= deadline {
                return Err(format!(
                    "the router at {} did not answer `SELECT 1` within {STARTUP_TIMEOUT:?}; last error: {error}",
                    self.router_addr
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `tessera.nodes` lists every node, so that DDL can place replicas on all of
    /// them. While the router does not serve `tessera.nodes` yet, waits a little over one
    /// heartbeat instead.
    async fn wait_for_registered_nodes(&mut self, client: &Client) -> Result<(), String> {
        let wanted = self.options.nodes as u64;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let query = client.simple_query("SELECT count(*) FROM tessera.nodes");
            let last = match tokio::time::timeout(QUERY_TIMEOUT, query).await {
                Ok(Ok(messages)) => match first_value(&messages).and_then(|v| v.parse::<u64>().ok()) {
                    Some(n) if n >= wanted => return Ok(()),
                    other => {
                        format!("tessera.nodes lists {other:?} nodes, waiting for {wanted}")
                    }
                },
                Ok(Err(e)) if matches!(sqlstate(&e), Some("42P01" | "3F000" | "0A000" | "42601")) => {
                    tokio::time::sleep(REGISTRATION_GRACE).await;
                    return self.check_processes();
                }
                Ok(Err(e)) => describe_error(&e),
                Err(_) => format!("`SELECT count(*) FROM tessera.nodes` got no answer within {QUERY_TIMEOUT:?}"),
            };
            self.check_processes()?;
            if Instant::now() >= deadline {
                return Err(format!("not every node registered within {STARTUP_TIMEOUT:?}: {last}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
            self.dir.disable_cleanup(true);
            eprintln!("harness: kept {} for inspection", self.dir.path().display());
        }
        self.router.kill();
        for node in &mut self.nodes {
            node.kill();
        }
        for catalog in &mut self.catalogs {
            catalog.kill();
        }
    }
}

/// Node `i` of a cluster built as `options` says, in `dir`, not started yet.
fn node_process(
    options: &ClusterOptions,
    dir: &Path,
    catalog_list: &str,
    i: usize,
    addr: SocketAddr,
    metrics: SocketAddr,
) -> ManagedProcess {
    let mut node_args = args(&["node", "--listen", &addr.to_string(), "--catalog", catalog_list]);
    node_args.extend(path_arg("--data-dir", &dir.join(format!("node-{i}"))));
    node_args.extend(args(&["--metrics", &metrics.to_string()]));
    if options.skip_fsync {
        node_args.push("--unsafe-skip-fsync".into());
    }
    node_args.extend(options.node_flags.iter().map(OsString::from));
    ManagedProcess::tied_to_test(
        format!("node-{i}"),
        tessera_bin(),
        node_args,
        dir.join(format!("node-{i}.log")),
    )
}

/// Starts `process` and waits until it listens on `addr`.
async fn start_and_wait(process: &mut ManagedProcess, addr: SocketAddr) -> Result<(), String> {
    process.start()?;
    wait_for_tcp(addr, STARTUP_TIMEOUT, || process.check_alive()).await
}

/// The first column of the first row of a simple query's result.
fn first_value(messages: &[SimpleQueryMessage]) -> Option<&str> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0),
        _ => None,
    })
}

fn args(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

fn path_arg(flag: &str, path: &Path) -> [OsString; 2] {
    [OsString::from(flag), path.as_os_str().to_owned()]
}
