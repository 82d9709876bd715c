//! `tessera bench`: a benchmark that prints numbers. It starts an embedded cluster (per
//! replication factor asked for) and a local PostgreSQL (the reference, `synchronous_commit` on)
//! on this machine, runs the same workloads against each with N concurrent clients over the
//! extended protocol, and prints throughput, p50 and p99 latency and the ratio to PostgreSQL.
//!
//! Workloads: `insert` (single-row INSERTs of new keys into a hash-partitioned table),
//! `point` (SELECT of one row by primary key), `range` (SELECT of 100 consecutive keys of a
//! range-partitioned table) and `copy` (one COPY FROM STDIN of `--copy-rows` three-column rows
//! into a table of four range shards; PostgreSQL: the same table unpartitioned). Nothing here
//! asserts a speed: the figures are for people to read.
//!
//! `tessera bench course` (`course.rs`) reproduces the course's own analysis instead.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod balance;
mod course;
mod failover;
mod plot;

pub use course::Config as CourseConfig;

use clap::{Args, Subcommand};
use serde::Serialize;
use tokio_postgres::{Client, NoTls};

use crate::dev::{Cluster, DevConfig};
use crate::run::StartError;

/// Flags of `tessera bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Concurrent clients, one run per value
    #[arg(long, value_delimiter = ',', default_values_t = vec![16, 64])]
    pub clients: Vec<usize>,
    /// Seconds each run lasts
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Replicas per shard, one cluster per value
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 3])]
    pub replicas: Vec<u32>,
    /// Shard nodes in each cluster
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Workloads to run: insert, point, range
    #[arg(long, value_delimiter = ',', default_values_t = vec!["insert".to_string(), "point".to_string(), "range".to_string()])]
    pub workloads: Vec<String>,
    /// Rows loaded for the read workloads
    #[arg(long, default_value_t = 100_000)]
    pub rows: i64,
    /// Rows the `copy` workload loads (in one COPY, whatever --clients says)
    #[arg(long, default_value_t = 1_000_000)]
    pub copy_rows: i64,
    /// Directory with PostgreSQL's initdb and postgres (default: $PG_BIN_DIR, then
    /// /usr/lib/postgresql/*/bin)
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
    /// Skip the PostgreSQL reference runs
    #[arg(long)]
    pub no_postgres: bool,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
}

/// Other benchmarks than the default one.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// The course's analysis: 10,000 writes then 10,000 reads on the cluster of configuration
    /// A1, A2 or A3 (`--config a1|a2|a3`), through SQL or the HTTP API, next to the published
    /// figures
    Course(course::CourseArgs),
    /// The course's load-balancing check: reads served per node for 3 to 6 nodes, and the
    /// share of keys that move when a node is added or removed
    Balance(balance::BalanceArgs),
}

#[derive(Debug, Clone, Serialize)]
struct Measurement {
    workload: String,
    clients: usize,
    system: String,
    ops: u64,
    seconds: f64,
    ops_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// Disk flushes of the write-ahead logs of all nodes per operation (Tessera only): below
    /// the number of replicas when group commit shares flushes between writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    fsyncs_per_op: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Setup(String),
}

/// Runs the benchmark and prints the results.
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    match args.command {
        Some(BenchCommand::Course(course)) => return course::run(course).await,
        Some(BenchCommand::Balance(balance)) => return balance::run(balance).await,
        None => {}
    }
    let scratch = scratch_dir()?;
    let mut results: Vec<Measurement> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    if !args.no_postgres {
        match Postgres::start(args.pg_bin_dir.as_deref(), scratch.path()).await {
            Ok(pg) => {
                progress(&args, "PostgreSQL: loading");
                let client = connect(&pg.addr).await?;
                setup_postgres(&client, args.rows).await?;
                results.extend(run_workloads(&args, &pg.addr, "postgres", None).await?);
                drop(pg);
            }
            Err(e) => notes.push(format!("PostgreSQL reference skipped: {e}")),
        }
    }

    for &replicas in &args.replicas {
        let (_cluster_dir, config) = scratch_cluster(args.nodes, replicas)?;
        progress(
            &args,
            &format!("Tessera, {replicas} replica(s) per shard: starting and loading"),
        );
        let cluster = Cluster::start(&config).await?;
        let addr = cluster.router.addr.clone();
        let client = connect(&addr).await?;
        setup_tessera(&client, args.rows, args.copy_rows).await?;
        let system = format!("tessera r={replicas}");
        let fsyncs = || cluster.wal_stats().fsyncs;
        results.extend(run_workloads(&args, &addr, &system, Some(&fsyncs)).await?);
        drop(client);
        cluster.shutdown().await;
    }
    report(&args, &results, &notes);
    Ok(())
}

fn progress(args: &BenchArgs, what: &str) {
    say(args.json, what);
}

/// One line of progress on stderr, kept out of the way of `--json` output. The benchmark is
/// a program people watch, not a server: its figures go to stdout, its progress here.
fn say(json: bool, what: &str) {
    if !json {
        eprintln!("bench: {what}");
    }
}

/// A scratch directory and an embedded cluster's configuration inside it: `nodes` nodes,
/// `replicas` replicas per shard, free ports, the HTTP API served.
fn scratch_cluster(nodes: u32, replicas: u32) -> Result<(tempfile::TempDir, DevConfig), BenchError> {
    let scratch = scratch_dir()?;
    let config = DevConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: scratch.path().join("tessera"),
        nodes,
        replicas: Some(replicas),
        http: "127.0.0.1:0".into(),
        tls: false,
        auth: "trust".into(),
        pwfile: None,
    };
    config.validate().map_err(BenchError::Setup)?;
    Ok((scratch, config))
}

fn scratch_dir() -> Result<tempfile::TempDir, BenchError> {
    tempfile::tempdir().map_err(|e| BenchError::Setup(format!("cannot make a scratch directory: {e}")))
}

async fn connect(addr: &str) -> Result<Client, BenchError> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| BenchError::Setup(format!("bad address {addr}")))?;
    let conn_str = format!("host={host} port={port} user=tessera dbname=tessera");
    let (client, connection) = tokio_postgres::connect(&conn_str, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn load(client: &Client, table: &str, rows: i64) -> Result<(), BenchError> {
    let mut k = 0;
    while k < rows {
        let end = (k + 1000).min(rows);
        let values: Vec<String> = (k..end).map(|i| format!("({i}, 'value {i}', {})", i % 100)).collect();
        client
            .batch_execute(&format!("INSERT INTO {table} VALUES {}", values.join(", ")))
            .await?;
        k = end;
    }
    Ok(())
}

/// Four range partitions of `table` (`table0`..`table3`) sharing keys 0..rows evenly.
async fn range_shards(client: &Client, table: &str, rows: i64) -> Result<(), BenchError> {
    let quarter = rows / 4 + 1;
    for i in 0..4 {
        let from = if i == 0 {
            "MINVALUE".to_string()
        } else {
            (i * quarter).to_string()
        };
        let to = if i == 3 {
            "MAXVALUE".to_string()
        } else {
            ((i + 1) * quarter).to_string()
        };
        client
            .batch_execute(&format!(
                "CREATE TABLE {table}{i} PARTITION OF {table} FOR VALUES FROM ({from}) TO ({to})"
            ))
            .await?;
    }
    Ok(())
}

async fn setup_tessera(client: &Client, rows: i64, copy_rows: i64) -> Result<(), BenchError> {
    client
        .batch_execute(
            "CREATE TABLE bench_w (k BIGINT PRIMARY KEY, v TEXT, n INT) PARTITION BY HASH (k);
             CREATE TABLE bench_w0 PARTITION OF bench_w FOR VALUES WITH (MODULUS 4, REMAINDER 0);
             CREATE TABLE bench_w1 PARTITION OF bench_w FOR VALUES WITH (MODULUS 4, REMAINDER 1);
             CREATE TABLE bench_w2 PARTITION OF bench_w FOR VALUES WITH (MODULUS 4, REMAINDER 2);
             CREATE TABLE bench_w3 PARTITION OF bench_w FOR VALUES WITH (MODULUS 4, REMAINDER 3);
             CREATE TABLE bench_r (k BIGINT PRIMARY KEY, v TEXT, n INT) PARTITION BY RANGE (k);
             CREATE TABLE bench_c (k INT PRIMARY KEY, v TEXT, n INT) PARTITION BY RANGE (k);",
        )
        .await?;
    range_shards(client, "bench_c", copy_rows).await?;
    range_shards(client, "bench_r", rows).await?;
    load(client, "bench_r", rows).await
}

async fn setup_postgres(client: &Client, rows: i64) -> Result<(), BenchError> {
    client
        .batch_execute(
            "CREATE TABLE bench_w (k BIGINT PRIMARY KEY, v TEXT, n INT);
             CREATE TABLE bench_r (k BIGINT PRIMARY KEY, v TEXT, n INT);
             CREATE TABLE bench_c (k INT PRIMARY KEY, v TEXT, n INT);",
        )
        .await?;
    load(client, "bench_r", rows).await?;
    client.batch_execute("VACUUM ANALYZE bench_r").await?;
    Ok(())
}

/// Runs every workload at every client count; `fsyncs` counts the disk flushes made so far.
async fn run_workloads(
    args: &BenchArgs,
    addr: &str,
    system: &str,
    fsyncs: Option<&dyn Fn() -> u64>,
) -> Result<Vec<Measurement>, BenchError> {
    let mut out = Vec::new();
    for workload in &args.workloads {
        settle_disk().await;
        if workload == "copy" {
            progress(args, &format!("{system}: copy of {} rows", args.copy_rows));
            let before = fsyncs.map(|f| f());
            let mut m = run_copy(args, addr, system).await?;
            if let (Some(f), Some(before)) = (fsyncs, before) {
                m.fsyncs_per_op = Some((f() - before) as f64 / m.ops.max(1) as f64);
            }
            out.push(m);
            continue;
        }
        for &clients in &args.clients {
            progress(
                args,
                &format!("{system}: {workload}, {clients} clients, {} s", args.seconds),
            );
            let before = fsyncs.map(|f| f());
            let mut m = run_one(args, addr, system, workload, clients).await?;
            if let (Some(f), Some(before)) = (fsyncs, before) {
                m.fsyncs_per_op = Some((f() - before) as f64 / m.ops.max(1) as f64);
            }
            out.push(m);
        }
    }
    Ok(out)
}

/// Writes out the dirty pages the machine holds (`sync`) before a measurement, so that one
/// system's leftover writeback (PostgreSQL's files after it stopped, the rows just loaded) is
/// not charged to the next one's fsyncs.
async fn settle_disk() {
    let synced = tokio::task::spawn_blocking(|| std::process::Command::new("sync").status()).await;
    if !matches!(synced, Ok(Ok(status)) if status.success()) {
        say(
            false,
            "could not run sync before a measurement; figures may include earlier writeback",
        );
    }
}

/// One COPY FROM STDIN of `copy_rows` rows (`k, 'student k', k % 100`), generated as it is
/// sent, into `bench_c`; the rate is rows per second.
async fn run_copy(args: &BenchArgs, addr: &str, system: &str) -> Result<Measurement, BenchError> {
    use futures::SinkExt;
    let client = connect(addr).await?;
    let start = Instant::now();
    let sink = client.copy_in("COPY bench_c FROM STDIN").await?;
    futures::pin_mut!(sink);
    let mut k = 0;
    while k < args.copy_rows {
        let end = (k + 10_000).min(args.copy_rows);
        let mut chunk = String::with_capacity(32 * 10_000);
        for i in k..end {
            chunk.push_str(&format!("{i}\tstudent {i}\t{}\n", i % 100));
        }
        sink.send(bytes::Bytes::from(chunk)).await?;
        k = end;
    }
    let rows = sink.finish().await?;
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    if rows != args.copy_rows as u64 {
        return Err(BenchError::Setup(format!(
            "{system}: COPY reported {rows} rows, {} were sent",
            args.copy_rows
        )));
    }
    Ok(Measurement {
        workload: "copy".into(),
        clients: 1,
        system: system.to_string(),
        ops: rows,
        seconds,
        ops_per_second: rows as f64 / seconds,
        p50_ms: seconds * 1000.0,
        p99_ms: seconds * 1000.0,
        errors: 0,
        fsyncs_per_op: None,
    })
}

/// Runs one workload with `clients` connections for the configured time.
async fn run_one(
    args: &BenchArgs,
    addr: &str,
    system: &str,
    workload: &str,
    clients: usize,
) -> Result<Measurement, BenchError> {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let rows = args.rows;
    // New keys for inserts never collide across runs or clients.
    static RUN: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
    let run_base = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 40;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = connect(addr).await?;
        let workload = workload.to_string();
        let base = run_base + ((c as i64) << 24);
        tasks.push(tokio::spawn(async move {
            client_loop(client, &workload, base, rows, deadline).await
        }));
    }
    let start = Instant::now();
    let mut latencies: Vec<u32> = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok(Ok((lat, errs))) => {
                latencies.extend(lat);
                errors += errs;
            }
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(BenchError::Setup(format!("a client task failed: {e}"))),
        }
    }
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(latencies[i]) / 1000.0
    };
    Ok(Measurement {
        workload: workload.to_string(),
        clients,
        system: system.to_string(),
        ops: latencies.len() as u64,
        seconds,
        ops_per_second: latencies.len() as f64 / seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
        fsyncs_per_op: None,
    })
}

/// One client: the workload's statement, prepared once, as fast as it can until the deadline.
/// Returns each operation's latency in microseconds and the number of failed operations.
async fn client_loop(
    client: Client,
    workload: &str,
    base: i64,
    rows: i64,
    deadline: Instant,
) -> Result<(Vec<u32>, u64), BenchError> {
    let sql = match workload {
        "insert" => "INSERT INTO bench_w VALUES ($1, $2, $3)",
        "point" => "SELECT k, v, n FROM bench_r WHERE k = $1",
        "range" => "SELECT k, v, n FROM bench_r WHERE k >= $1 AND k < $2",
        other => {
            return Err(BenchError::Setup(format!(
                "unknown workload {other} (use insert, point, range, copy)"
            )))
        }
    };
    let stmt = client.prepare(sql).await?;
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut i: i64 = 0;
    let mut rng_state: u64 = (base as u64) ^ 0x9E37_79B9_7F4A_7C15;
    let mut next_random = move || {
        rng_state = tessera_types::ring::splitmix64(rng_state);
        rng_state
    };
    while Instant::now() < deadline {
        let t = Instant::now();
        let ok = match workload {
            "insert" => {
                let k = base + i;
                let v = format!("value {k}");
                client.execute(&stmt, &[&k, &v, &((k % 100) as i32)]).await.is_ok()
            }
            "point" => {
                let k = (next_random() % rows.max(1) as u64) as i64;
                client.query(&stmt, &[&k]).await.is_ok()
            }
            _ => {
                let k = (next_random() % (rows - 100).max(1) as u64) as i64;
                client.query(&stmt, &[&k, &(k + 100)]).await.is_ok()
            }
        };
        if ok {
            latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        } else {
            errors += 1;
        }
        i += 1;
    }
    Ok((latencies, errors))
}

fn report(args: &BenchArgs, results: &[Measurement], notes: &[String]) {
    let reference = |m: &Measurement| {
        results
            .iter()
            .find(|r| r.system == "postgres" && r.workload == m.workload && r.clients == m.clients)
            .map(|r| m.ops_per_second / r.ops_per_second.max(1e-9))
    };
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    if args.json {
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|m| {
                let mut v = serde_json::to_value(m).unwrap_or_default();
                if let (Some(r), Some(obj)) = (reference(m), v.as_object_mut()) {
                    obj.insert("vs_postgres".into(), serde_json::json!(r));
                }
                v
            })
            .collect();
        let doc = serde_json::json!({ "results": rows, "notes": notes, "seconds_per_run": args.seconds });
        let _ = writeln!(out, "{doc}");
        return;
    }
    let _ = writeln!(
        out,
        "{:<8} {:>7}  {:<14} {:>10} {:>9} {:>9} {:>7}  {:>13} {:>10}",
        "workload", "clients", "system", "ops/s", "p50 ms", "p99 ms", "errors", "vs PostgreSQL", "fsyncs/op"
    );
    for m in results {
        let ratio = match reference(m) {
            Some(r) if m.system != "postgres" => format!("{r:.2}x"),
            _ => "-".to_string(),
        };
        let fsyncs = m.fsyncs_per_op.map_or_else(|| "-".to_string(), |f| format!("{f:.2}"));
        let _ = writeln!(
            out,
            "{:<8} {:>7}  {:<14} {:>10.0} {:>9.2} {:>9.2} {:>7}  {:>13} {:>10}",
            m.workload, m.clients, m.system, m.ops_per_second, m.p50_ms, m.p99_ms, m.errors, ratio, fsyncs
        );
    }
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }
}

/// A private PostgreSQL server for the reference runs: initdb in a scratch directory, started
/// as a child process (as the `postgres` user when running as root), stopped on drop.
struct Postgres {
    addr: String,
    child: std::process::Child,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pg_bin_dir(asked: Option<&Path>) -> Option<PathBuf> {
    let ok = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(d) = asked {
        return ok(d).then(|| d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("PG_BIN_DIR").map(PathBuf::from) {
        if ok(&d) {
            return Some(d);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| ok(d))
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_command(program: &Path, as_postgres: bool) -> std::process::Command {
    if as_postgres {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(program);
        c
    } else {
        std::process::Command::new(program)
    }
}

impl Postgres {
    /// Starts one in `scratch`, from `bin_dir` or the first PostgreSQL found (`pg_bin_dir`).
    async fn start(bin_dir: Option<&Path>, scratch: &Path) -> Result<Postgres, String> {
        let bin = pg_bin_dir(bin_dir)
            .ok_or("no PostgreSQL server found (install Debian's postgresql or pass --pg-bin-dir)")?;
        let root = is_root();
        let dir = scratch.join("postgres");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        if root {
            let chown = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(scratch)
                .status();
            if !chown.map(|s| s.success()).unwrap_or(false) {
                return Err("cannot hand the scratch directory to the postgres user".into());
            }
        }
        let data = dir.join("data");
        let init = pg_command(&bin.join("initdb"), root)
            .arg("-D")
            .arg(&data)
            .args(["-U", "tessera", "--locale=C", "--encoding=UTF8", "-A", "trust"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !init.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&init.stderr)));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let log = std::fs::File::create(dir.join("postgres.log")).map_err(|e| e.to_string())?;
        let child = pg_command(&bin.join("postgres"), root)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c"])
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args([
                "-c",
                "synchronous_commit=on",
                "-c",
                "fsync=on",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=256MB",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        let pg = Postgres {
            addr: format!("127.0.0.1:{port}"),
            child,
        };
        let conn_str = format!("host=127.0.0.1 port={port} user=tessera dbname=postgres");
        for _ in 0..100 {
            if let Ok((client, connection)) = tokio_postgres::connect(&conn_str, NoTls).await {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
                    .batch_execute("CREATE DATABASE tessera")
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(pg);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("PostgreSQL did not start".into())
    }
}
