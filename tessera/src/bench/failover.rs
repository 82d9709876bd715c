//! `tessera bench course --config a4`: the course's A1 cluster with a node killed half-way
//! through the writes. The catalog, the 6 nodes and the router run as child processes of this
//! one (this same binary), so the kill is a real SIGKILL. Writers retry a failed write until it
//! is acknowledged (a duplicate key on a retry means an earlier attempt was applied), and the
//! benchmark reports the longest stall between acknowledgements after the kill, then checks
//! that every row is there with what was written.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::process::{Child, Command};

use super::course::{create_table, progress, workload, Conn, CourseArgs, Op, Shape};
use super::{connect, BenchError};

/// How long the cluster may take to serve with every node registered.
const STARTUP: Duration = Duration::from_secs(60);
/// Pause before retrying a failed write.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// A write still failing after this long fails the benchmark.
const WRITE_PATIENCE: Duration = Duration::from_secs(30);

/// The child processes; killed when dropped.
struct Processes {
    children: Vec<(String, Child)>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.start_kill();
        }
    }
}

/// `n` distinct free loopback addresses: the ports are all held until all are chosen, so no
/// two children are given the same one.
fn free_addrs(n: usize) -> Result<Vec<String>, BenchError> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| BenchError::Setup(format!("cannot find a free port: {e}")))?;
    held.iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect::<Result<_, _>>()
        .map_err(|e| BenchError::Setup(format!("cannot find a free port: {e}")))
}

fn spawn(name: &str, args: &[String], log_dir: &Path) -> Result<(String, Child), BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::Setup(format!("cannot find this program: {e}")))?;
    let log = std::fs::File::create(log_dir.join(format!("{name}.log")))
        .map_err(|e| BenchError::Setup(format!("cannot create a log file: {e}")))?;
    let child = Command::new(exe)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BenchError::Setup(format!("cannot start {name}: {e}")))?;
    Ok((name.to_string(), child))
}

/// Starts a catalog, the shape's nodes and a router serving SQL and HTTP; returns them with
/// the router's two addresses and each node's address.
async fn start(shape: &Shape, dir: &Path) -> Result<(Processes, String, String, Vec<String>), BenchError> {
    let data = |name: &str| -> String { dir.join(name).to_string_lossy().into_owned() };
    let mut addrs = free_addrs(shape.nodes as usize + 3)?;
    let (catalog, sql, http) = (addrs.remove(0), addrs.remove(0), addrs.remove(0));
    let mut processes = Processes { children: Vec::new() };
    processes.children.push(spawn(
        "catalog",
        &[
            "catalog".into(),
            "--listen".into(),
            catalog.clone(),
            "--data-dir".into(),
            data("catalog"),
            "--replicas".into(),
            shape.replicas.to_string(),
        ],
        dir,
    )?);
    let mut nodes = Vec::new();
    for (i, addr) in (1..=shape.nodes).zip(addrs) {
        processes.children.push(spawn(
            &format!("node-{i}"),
            &[
                "node".into(),
                "--listen".into(),
                addr.clone(),
                "--catalog".into(),
                catalog.clone(),
                "--data-dir".into(),
                data(&format!("node-{i}")),
            ],
            dir,
        )?);
        nodes.push(addr);
    }
    processes.children.push(spawn(
        "router",
        &[
            "router".into(),
            "--listen".into(),
            sql.clone(),
            "--catalog".into(),
            catalog,
            "--http".into(),
            http.clone(),
            // The benchmark's clients connect under any name.
            "--auth".into(),
            "trust".into(),
        ],
        dir,
    )?);
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(client) = connect(&sql).await {
            let alive = client
                .query_one("SELECT count(*) FROM tessera.nodes WHERE state = 'alive'", &[])
                .await
                .map(|r| r.get::<_, i64>(0));
            if alive.is_ok_and(|n| n == i64::from(shape.nodes)) {
                return Ok((processes, sql, http, nodes));
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "the cluster did not come up within {STARTUP:?}; logs in {}",
                dir.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The address of the node leading the most shards.
async fn busiest_primary(sql: &str) -> Result<String, BenchError> {
    let client = connect(sql).await?;
    let rows = client
        .query("SELECT address FROM tessera.replicas WHERE role = 'leader'", &[])
        .await?;
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        *count.entry(r.get(0)).or_default() += 1;
    }
    count
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(a, _)| a)
        .ok_or_else(|| BenchError::Setup("no shard has a primary".into()))
}

/// What the writers saw.
struct Writes {
    seconds: f64,
    acknowledged_at: Vec<Instant>,
    retries: usize,
    killed_at: Option<Instant>,
    killed: String,
}

/// Runs the writes, killing the busiest primary's node once half are acknowledged.
async fn write_through_a_kill(
    args: &CourseArgs,
    sql: &str,
    http: &str,
    nodes: &[String],
    processes: &mut Processes,
    ops: Vec<Op>,
) -> Result<Writes, BenchError> {
    let total = ops.len();
    let ops = Arc::new(ops);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let retries = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients.max(1) {
        let mut conn = Conn::open(args.via, sql, http).await?;
        let (ops, next, done, acknowledged, retries) = (
            ops.clone(),
            next.clone(),
            done.clone(),
            acknowledged.clone(),
            retries.clone(),
        );
        let (via, sql, http) = (args.via, sql.to_string(), http.to_string());
        tasks.push(tokio::spawn(async move {
            while let Some(op) = ops.get(next.fetch_add(1, Ordering::Relaxed)) {
                let began = Instant::now();
                let mut retried = false;
                loop {
                    match conn.run(op).await {
                        Ok(()) => break,
                        // A retry found the row: an earlier attempt was applied.
                        Err(e) if retried && e.contains("23505") => break,
                        Err(e) if began.elapsed() > WRITE_PATIENCE => {
                            return Err(format!("a write failed for {WRITE_PATIENCE:?}: {e}"));
                        }
                        Err(_) => {
                            retried = true;
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(RETRY_PAUSE).await;
                            if let Ok(fresh) = Conn::open(via, &sql, &http).await {
                                conn = fresh;
                            }
                        }
                    }
                }
                acknowledged
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Instant::now());
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    // Half-way, unless the writers all stopped first (their errors are collected below).
    while done.load(Ordering::Relaxed) < total / 2 && !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let victim = busiest_primary(sql).await?;
    let index = nodes
        .iter()
        .position(|a| *a == victim)
        .ok_or_else(|| BenchError::Setup(format!("no node of this benchmark listens on {victim}")))?;
    let (name, child) = &mut processes.children[1 + index];
    progress(
        args,
        &format!("killing {name} ({victim}), the primary of the most shards"),
    );
    child
        .start_kill()
        .map_err(|e| BenchError::Setup(format!("cannot kill {name}: {e}")))?;
    let killed_at = Some(Instant::now());
    let killed = name.clone();
    for t in tasks {
        t.await
            .map_err(|e| BenchError::Setup(format!("a writer failed: {e}")))?
            .map_err(BenchError::Setup)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut acknowledged_at = std::mem::take(&mut *acknowledged.lock().unwrap_or_else(|p| p.into_inner()));
    acknowledged_at.sort_unstable();
    Ok(Writes {
        seconds,
        acknowledged_at,
        retries: retries.load(Ordering::Relaxed),
        killed_at,
        killed,
    })
}

/// The longest time without an acknowledgement from the kill on.
fn longest_stall(writes: &Writes) -> Duration {
    let Some(killed_at) = writes.killed_at else {
        return Duration::ZERO;
    };
    let mut last = killed_at;
    let mut longest = Duration::ZERO;
    for &at in writes.acknowledged_at.iter().filter(|at| **at > killed_at) {
        longest = longest.max(at - last);
        last = at;
    }
    longest
}

/// Every written row, read back: those missing or different.
async fn verify(sql: &str, ops: &[Op]) -> Result<(usize, usize), BenchError> {
    let client = connect(sql).await?;
    let rows = client
        .query("SELECT stud_id, stud_name, stud_marks FROM studt", &[])
        .await?;
    let found: BTreeMap<i64, (String, i64)> = rows
        .iter()
        .map(|r| {
            (
                i64::from(r.get::<_, i32>(0)),
                (r.get::<_, String>(1), i64::from(r.get::<_, i32>(2))),
            )
        })
        .collect();
    let wrong = ops
        .iter()
        .filter(|op| match op {
            Op::Write { id, name, marks } => found.get(id) != Some(&(name.clone(), *marks)),
            _ => false,
        })
        .count();
    Ok((found.len(), wrong))
}

/// Runs A4 in a scratch directory, deleted afterwards unless the run fails (it then holds the
/// processes' logs), and also when the benchmark is interrupted.
pub async fn run(args: &CourseArgs, shape: Shape) -> Result<(), BenchError> {
    let scratch = super::scratch_dir()?;
    match run_in(args, shape, scratch.path()).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let kept = scratch.keep();
            Err(BenchError::Setup(format!("{e}; logs in {}", kept.display())))
        }
    }
}

async fn run_in(args: &CourseArgs, shape: Shape, scratch: &Path) -> Result<(), BenchError> {
    progress(
        args,
        &format!(
            "a4: {} shards, {} nodes (processes), {} replicas; starting the cluster in {}",
            shape.shards,
            shape.nodes,
            shape.replicas,
            scratch.display()
        ),
    );
    let (mut processes, sql, http, nodes) = start(&shape, scratch).await?;
    create_table(args, &shape, &sql, &http).await?;
    let (ops, _) = workload(args, &shape)?;
    progress(
        args,
        &format!(
            "{} writes from {} clients via {}, a node killed half-way",
            ops.len(),
            args.clients,
            args.via.name()
        ),
    );
    let writes = write_through_a_kill(args, &sql, &http, &nodes, &mut processes, ops.clone()).await?;
    let (present, wrong) = verify(&sql, &ops).await?;
    drop(processes);
    let stall = longest_stall(&writes);
    report(args, &writes, stall, ops.len(), present, wrong);
    if wrong > 0 || present != ops.len() {
        return Err(BenchError::Setup(format!(
            "{wrong} of {} written rows are missing or different ({present} rows present)",
            ops.len()
        )));
    }
    Ok(())
}

fn report(args: &CourseArgs, writes: &Writes, stall: Duration, rows: usize, present: usize, wrong: usize) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = json!({
            "config": "a4",
            "via": args.via.name(),
            "clients": args.clients,
            "killed": writes.killed,
            "writes": {"rows": rows, "seconds": writes.seconds, "retries": writes.retries},
            "stall_seconds": stall.as_secs_f64(),
            "rows_present": present,
            "rows_wrong": wrong,
        });
        let _ = writeln!(out, "{doc}");
        return;
    }
    let _ = writeln!(
        out,
        "a4 (a1 with {} killed half-way) via {}, {} clients",
        writes.killed,
        args.via.name(),
        args.clients
    );
    let _ = writeln!(
        out,
        "writes: {rows} in {:.3} s, {} retried; longest stall after the kill: {:.3} s",
        writes.seconds,
        writes.retries,
        stall.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "rows present afterwards: {present} of {rows}, {wrong} missing or different"
    );
}
