//! `tessera bench course`: the course's analysis, run on Tessera. It starts the embedded
//! cluster of one of the course's configurations (A1: 4 shards of 4096 ids on 6 nodes with 3
//! replicas; A2: 7 replicas on 7 nodes; A3: 6 shards on 10 nodes with 8 replicas), every write
//! fsynced on a majority of replicas, creates `studt` through the chosen interface, writes
//! 10,000 random rows one per request, then makes 10,000 reads (half random `stud_id` ranges as
//! the course's clients sent, half point reads), from `--clients` concurrent clients through
//! SQL (prepared statements) or the course's HTTP API (keep-alive connections). It prints
//! times, rates and p50/p99 latencies next to the published figures of the course's
//! implementations, and checks afterwards that every acknowledged row is there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{connect, BenchError};
use crate::dev::Cluster;

/// Width of each shard's id range, as in the course.
const SHARD_SIZE: i64 = 4096;
/// The widest range a range read asks for.
const MAX_RANGE: i64 = 512;

/// Flags of `tessera bench course`.
#[derive(Debug, Clone, Args)]
pub struct CourseArgs {
    /// The course's configuration, given with the global `--config a1|a2|a3|all|a4`: a1 (4
    /// shards, 6 nodes, 3 replicas), a2 (4 shards, 7 nodes, 7 replicas), a3 (6 shards, 10
    /// nodes, 8 replicas), all three one after the other, or a4 (a1 with a node killed
    /// half-way through the writes) [default: a1]
    #[arg(skip)]
    pub config: Config,
    /// Through what the clients talk: sql (the PostgreSQL protocol) or http (the course's API)
    #[arg(long, value_enum, default_value_t = Via::Sql)]
    pub via: Via,
    /// Concurrent clients
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Rows written, one per request
    #[arg(long, default_value_t = 10_000)]
    pub writes: usize,
    /// Reads made after the writes
    #[arg(long, default_value_t = 10_000)]
    pub reads: usize,
    /// Seed of the random rows and reads
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object (per configuration) instead of a table
    #[arg(long)]
    pub json: bool,
    /// Write the plots (PNG) of the write and read times next to the published ones into DIR
    #[arg(long, value_name = "DIR")]
    pub plot: Option<std::path::PathBuf>,
    /// Also run the same writes and reads against a local PostgreSQL (one server, the same
    /// partitioned `studt`, `synchronous_commit` on), to show what this machine allows
    /// (with --via sql)
    #[arg(long)]
    pub postgres: bool,
    /// Directory with PostgreSQL's initdb and postgres, for --postgres (default: $PG_BIN_DIR,
    /// then /usr/lib/postgresql/*/bin)
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Config {
    #[default]
    A1,
    A2,
    A3,
    /// A1, A2 and A3 one after the other.
    All,
    /// A1 with a node killed (SIGKILL) half-way through the writes; its nodes run as
    /// separate processes.
    A4,
}

/// A configuration's cluster and what the course's implementations published for it.
pub(super) struct Shape {
    pub(super) name: &'static str,
    pub(super) shards: i64,
    pub(super) nodes: u32,
    pub(super) replicas: u32,
    pub(super) published_write_seconds: f64,
    pub(super) published_read_seconds: f64,
}

impl Config {
    /// The shapes to run: one, or all three.
    fn shapes(self) -> Vec<Shape> {
        match self {
            Config::All => [Config::A1, Config::A2, Config::A3].map(Config::shape).into(),
            one => vec![one.shape()],
        }
    }

    fn shape(self) -> Shape {
        match self {
            Config::A1 => Shape {
                name: "a1",
                shards: 4,
                nodes: 6,
                replicas: 3,
                published_write_seconds: 18.27,
                published_read_seconds: 7.06,
            },
            Config::A2 => Shape {
                name: "a2",
                shards: 4,
                nodes: 7,
                replicas: 7,
                published_write_seconds: 35.67,
                published_read_seconds: 6.83,
            },
            Config::A3 | Config::All | Config::A4 => Shape {
                name: "a3",
                shards: 6,
                nodes: 10,
                replicas: 8,
                published_write_seconds: 32.18,
                published_read_seconds: 6.67,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    Sql,
    Http,
}

impl Via {
    pub(super) fn name(self) -> &'static str {
        match self {
            Via::Sql => "sql",
            Via::Http => "http",
        }
    }
}

/// One request of the workload.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Write { id: i64, name: String, marks: i64 },
    Point(i64),
    Range(i64, i64),
}

/// Times and outcomes of one phase.
struct Phase {
    count: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
    errors: usize,
    first_error: Option<String>,
}

impl Phase {
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }

    fn json(&self, count_name: &str) -> serde_json::Value {
        let mut v = json!({
            "seconds": self.seconds,
            "per_second": self.count as f64 / self.seconds.max(1e-9),
            "p50_ms": self.percentile_ms(0.5),
            "p99_ms": self.percentile_ms(0.99),
            "errors": self.errors,
        });
        v[count_name] = self.count.into();
        v
    }
}

/// A client connection of either kind.
pub(super) enum Conn {
    Sql {
        client: tokio_postgres::Client,
        insert: tokio_postgres::Statement,
        point: tokio_postgres::Statement,
        range: tokio_postgres::Statement,
    },
    Http(HttpConn),
}

impl Conn {
    pub(super) async fn open(via: Via, sql_addr: &str, http_addr: &str) -> Result<Conn, BenchError> {
        Ok(match via {
            Via::Sql => {
                let client = connect(sql_addr).await?;
                let insert = client.prepare("INSERT INTO studt VALUES ($1, $2, $3)").await?;
                let point = client.prepare("SELECT * FROM studt WHERE stud_id = $1").await?;
                let range = client
                    .prepare("SELECT * FROM studt WHERE stud_id BETWEEN $1 AND $2 ORDER BY stud_id")
                    .await?;
                Conn::Sql {
                    client,
                    insert,
                    point,
                    range,
                }
            }
            Via::Http => Conn::Http(HttpConn::open(http_addr).await?),
        })
    }

    pub(super) async fn run(&mut self, op: &Op) -> Result<(), String> {
        match self {
            Conn::Sql {
                client,
                insert,
                point,
                range,
            } => {
                let result = match op {
                    Op::Write { id, name, marks } => {
                        client.execute(insert, &[&(*id as i32), name, &(*marks as i32)]).await
                    }
                    Op::Point(id) => client.execute(point, &[&(*id as i32)]).await,
                    Op::Range(low, high) => client.execute(range, &[&(*low as i32), &(*high as i32)]).await,
                };
                // The SQLSTATE goes with the message, so callers can tell a duplicate key.
                result.map(|_| ()).map_err(|e| match e.code() {
                    Some(code) => format!("{e} (SQLSTATE {})", code.code()),
                    None => e.to_string(),
                })
            }
            Conn::Http(http) => {
                let (path, body) = match op {
                    Op::Write { id, name, marks } => (
                        "/write",
                        json!({"data": [{"Stud_id": id, "Stud_name": name, "Stud_marks": marks}]}),
                    ),
                    Op::Point(id) => ("/read", json!({"Stud_id": {"low": id, "high": id}})),
                    Op::Range(low, high) => ("/read", json!({"Stud_id": {"low": low, "high": high}})),
                };
                let (status, reply) = http.call("POST", path, &body.to_string()).await?;
                if status == 200 {
                    Ok(())
                } else {
                    Err(format!("HTTP {status}: {reply}"))
                }
            }
        }
    }
}

/// A keep-alive HTTP/1.1 connection to the course's API.
pub(super) struct HttpConn {
    stream: BufReader<TcpStream>,
    host: String,
}

impl HttpConn {
    async fn open(addr: &str) -> Result<HttpConn, BenchError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::Setup(format!("cannot connect to the HTTP API at {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(HttpConn {
            stream: BufReader::new(stream),
            host: addr.to_string(),
        })
    }

    /// Sends one request and reads its reply (status and body, by Content-Length).
    async fn call(&mut self, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        let io = |e: std::io::Error| format!("HTTP connection: {e}");
        self.stream.get_mut().write_all(request.as_bytes()).await.map_err(io)?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await.map_err(io)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("HTTP: no status in {line:?}"))?;
        let mut length = 0;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await.map_err(io)? == 0 {
                return Err("HTTP: the connection closed inside a reply".into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(|_| format!("HTTP: bad {header:?}"))?;
                }
            }
        }
        let mut reply = vec![0; length];
        self.stream.read_exact(&mut reply).await.map_err(io)?;
        Ok((status, String::from_utf8_lossy(&reply).into_owned()))
    }
}

/// Runs `ops` from `clients` connections, each taking the next op as it finishes one.
async fn run_phase(args: &CourseArgs, sql: &str, http: &str, ops: Vec<Op>) -> Result<Phase, BenchError> {
    let ops = Arc::new(ops);
    let next = Arc::new(AtomicUsize::new(0));
    let mut conns = Vec::new();
    for _ in 0..args.clients.max(1) {
        conns.push(Conn::open(args.via, sql, http).await?);
    }
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let ops = ops.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(op) = ops.get(i) else { break };
                    let began = Instant::now();
                    match conn.run(op).await {
                        Ok(()) => latencies.push(began.elapsed().as_micros() as u64),
                        Err(e) => errors.push(e),
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut phase = Phase {
        count: ops.len(),
        seconds: 0.0,
        latencies_us: Vec::new(),
        errors: 0,
        first_error: None,
    };
    for t in tasks {
        let (latencies, errors) = t
            .await
            .map_err(|e| BenchError::Setup(format!("a client task failed: {e}")))?;
        phase.latencies_us.extend(latencies);
        phase.errors += errors.len();
        if phase.first_error.is_none() {
            phase.first_error = errors.into_iter().next();
        }
    }
    phase.seconds = start.elapsed().as_secs_f64();
    phase.latencies_us.sort_unstable();
    Ok(phase)
}

/// The course's /init payload for a shape: shards of 4096, `replicas` servers per shard.
fn init_payload(shape: &Shape) -> serde_json::Value {
    let shards: Vec<serde_json::Value> = (0..shape.shards)
        .map(|i| json!({"Stud_id_low": i * SHARD_SIZE, "Shard_id": format!("sh{}", i + 1), "Shard_size": SHARD_SIZE}))
        .collect();
    let mut servers = serde_json::Map::new();
    for s in 0..shape.shards {
        for r in 0..i64::from(shape.replicas) {
            let server = format!("Server{}", (s + r) % i64::from(shape.nodes));
            let held = servers.entry(server).or_insert_with(|| json!([]));
            if let Some(list) = held.as_array_mut() {
                list.push(json!(format!("sh{}", s + 1)));
            }
        }
    }
    json!({
        "N": shape.nodes,
        "schema": {"columns": ["Stud_id", "Stud_name", "Stud_marks"], "dtypes": ["Number", "String", "Number"]},
        "shards": shards,
        "servers": servers,
    })
}

/// Creates `studt` through the chosen interface.
pub(super) async fn create_table(args: &CourseArgs, shape: &Shape, sql: &str, http: &str) -> Result<(), BenchError> {
    match args.via {
        Via::Sql => create_table_sql(shape, sql, &format!(" WITH (replicas = {})", shape.replicas)).await,
        Via::Http => {
            let mut conn = HttpConn::open(http).await?;
            let (status, reply) = conn
                .call("POST", "/init", &init_payload(shape).to_string())
                .await
                .map_err(BenchError::Setup)?;
            if status != 200 {
                return Err(BenchError::Setup(format!("POST /init: HTTP {status}: {reply}")));
            }
            Ok(())
        }
    }
}

/// Creates `studt` and its range partitions over SQL; `with` ends the CREATE TABLE (the
/// replication factor on Tessera, nothing on PostgreSQL).
async fn create_table_sql(shape: &Shape, sql: &str, with: &str) -> Result<(), BenchError> {
    let client = connect(sql).await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) \
             PARTITION BY RANGE (stud_id){with}"
        ))
        .await?;
    for i in 0..shape.shards {
        client
            .batch_execute(&format!(
                "CREATE TABLE sh{} PARTITION OF studt FOR VALUES FROM ({}) TO ({})",
                i + 1,
                i * SHARD_SIZE,
                (i + 1) * SHARD_SIZE
            ))
            .await?;
    }
    Ok(())
}

/// The random rows and reads: distinct ids over the shards' whole range.
pub(super) fn workload(args: &CourseArgs, shape: &Shape) -> Result<(Vec<Op>, Vec<Op>), BenchError> {
    let space = shape.shards * SHARD_SIZE;
    if args.writes as i64 > space {
        return Err(BenchError::Setup(format!(
            "--writes {} is more than the {space} ids the shards hold",
            args.writes
        )));
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut ids: Vec<i64> = (0..space).collect();
    ids.shuffle(&mut rng);
    ids.truncate(args.writes);
    let writes = ids
        .iter()
        .map(|&id| Op::Write {
            id,
            name: (0..8).map(|_| rng.gen_range(b'A'..=b'Z') as char).collect(),
            marks: rng.gen_range(0..100),
        })
        .collect();
    let reads = (0..args.reads)
        .map(|i| {
            if i % 2 == 0 && !ids.is_empty() {
                Op::Point(ids[rng.gen_range(0..ids.len())])
            } else {
                let low = rng.gen_range(0..space);
                Op::Range(low, (low + rng.gen_range(0..MAX_RANGE)).min(space - 1))
            }
        })
        .collect();
    Ok((writes, reads))
}

pub(super) fn progress(args: &CourseArgs, what: &str) {
    super::say(args.json, &format!("course: {what}"));
}

/// What one configuration's run measured.
struct Run {
    shape: Shape,
    tessera: Measured,
    /// The same writes and reads on one local PostgreSQL server (`--postgres`).
    postgres: Option<Measured>,
}

/// The writes and reads of one system, and the rows it held afterwards.
struct Measured {
    written: Phase,
    read: Phase,
    present: i64,
}

impl Measured {
    fn acknowledged(&self) -> usize {
        self.written.count - self.written.errors
    }

    /// Every acknowledged write must be there.
    fn check(&self, system: &str) -> Result<(), BenchError> {
        if self.present == self.acknowledged() as i64 {
            return Ok(());
        }
        Err(BenchError::Setup(format!(
            "{system} acknowledged {} writes but its studt holds {} rows",
            self.acknowledged(),
            self.present
        )))
    }
}

/// Runs the course's analysis for the configuration(s) asked for, prints the figures and draws
/// the plots.
pub async fn run(args: CourseArgs) -> Result<(), BenchError> {
    if args.postgres && (args.via != Via::Sql || args.config == Config::A4) {
        return Err(BenchError::Setup(
            "--postgres runs the writes and reads over SQL against one PostgreSQL server: use it with --via sql \
             and --config a1, a2, a3 or all"
                .into(),
        ));
    }
    if args.config == Config::A4 {
        return super::failover::run(&args, Config::A1.shape()).await;
    }
    let mut runs = Vec::new();
    for shape in args.config.shapes() {
        let run = run_one(&args, shape).await?;
        report(&args, &run);
        run.tessera.check("Tessera")?;
        if let Some(pg) = &run.postgres {
            pg.check("PostgreSQL")?;
        }
        runs.push(run);
    }
    if let Some(dir) = &args.plot {
        plot(&args, dir, &runs)?;
    }
    Ok(())
}

/// Starts the configuration's cluster, runs the writes and the reads, counts the rows.
async fn run_one(args: &CourseArgs, shape: Shape) -> Result<Run, BenchError> {
    let (writes, reads) = workload(args, &shape)?;
    let same = args.postgres.then(|| (writes.clone(), reads.clone()));
    let (_scratch, config) = super::scratch_cluster(shape.nodes, shape.replicas)?;
    progress(
        args,
        &format!(
            "{}: {} shards, {} nodes, {} replicas; starting the cluster",
            shape.name, shape.shards, shape.nodes, shape.replicas
        ),
    );
    let cluster = Cluster::start(&config).await?;
    let sql = cluster.router.addr.clone();
    let http = cluster
        .router
        .http_addr
        .clone()
        .ok_or_else(|| BenchError::Setup("the router serves no HTTP API".into()))?;
    let outcome = async {
        create_table(args, &shape, &sql, &http).await?;
        super::settle_disk().await;
        progress(
            args,
            &format!(
                "{} writes from {} clients via {}",
                writes.len(),
                args.clients,
                args.via.name()
            ),
        );
        let written = run_phase(args, &sql, &http, writes).await?;
        progress(args, &format!("{} reads", reads.len()));
        let read = run_phase(args, &sql, &http, reads).await?;
        let client = connect(&sql).await?;
        let present: i64 = client.query_one("SELECT count(*) FROM studt", &[]).await?.get(0);
        Ok::<_, BenchError>((written, read, present))
    }
    .await;
    cluster.shutdown().await;
    let (written, read, present) = outcome?;
    let postgres = match same {
        Some((writes, reads)) => Some(run_postgres(args, &shape, writes, reads).await?),
        None => None,
    };
    Ok(Run {
        shape,
        tessera: Measured { written, read, present },
        postgres,
    })
}

/// Runs the same writes and reads against a private PostgreSQL started for them: the same
/// partitioned `studt`, on one server, without replicas.
async fn run_postgres(
    args: &CourseArgs,
    shape: &Shape,
    writes: Vec<Op>,
    reads: Vec<Op>,
) -> Result<Measured, BenchError> {
    progress(
        args,
        &format!(
            "{}: the same {} writes and {} reads on PostgreSQL",
            shape.name,
            writes.len(),
            reads.len()
        ),
    );
    let scratch = super::scratch_dir()?;
    let pg = super::Postgres::start(args.pg_bin_dir.as_deref(), scratch.path())
        .await
        .map_err(|e| BenchError::Setup(format!("PostgreSQL: {e}")))?;
    create_table_sql(shape, &pg.addr, "").await?;
    super::settle_disk().await;
    let written = run_phase(args, &pg.addr, "", writes).await?;
    let read = run_phase(args, &pg.addr, "", reads).await?;
    let client = connect(&pg.addr).await?;
    let present: i64 = client.query_one("SELECT count(*) FROM studt", &[]).await?.get(0);
    Ok(Measured { written, read, present })
}

/// `course-writes.png` and `course-reads.png` in `dir`: seconds per configuration, Tessera's
/// next to the published figures.
fn plot(args: &CourseArgs, dir: &std::path::Path, runs: &[Run]) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    let categories: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} ({} nodes, {} replicas)",
                r.shape.name.to_uppercase(),
                r.shape.nodes,
                r.shape.replicas
            )
        })
        .collect();
    // PostgreSQL's bars only when every configuration has its figure.
    let postgres: Option<Vec<&Measured>> = runs.iter().map(|r| r.postgres.as_ref()).collect();
    for (file, what, tessera, published, pg) in [
        (
            "course-writes.png",
            "writes",
            runs.iter().map(|r| r.tessera.written.seconds).collect::<Vec<_>>(),
            runs.iter().map(|r| r.shape.published_write_seconds).collect::<Vec<_>>(),
            postgres
                .as_ref()
                .map(|p| p.iter().map(|b| b.written.seconds).collect::<Vec<_>>()),
        ),
        (
            "course-reads.png",
            "reads",
            runs.iter().map(|r| r.tessera.read.seconds).collect(),
            runs.iter().map(|r| r.shape.published_read_seconds).collect(),
            postgres.as_ref().map(|p| p.iter().map(|b| b.read.seconds).collect()),
        ),
    ] {
        let mut series = vec![
            ("Tessera".to_string(), tessera),
            ("published course implementation".to_string(), published),
        ];
        if let Some(pg) = pg {
            series.push(("PostgreSQL, one server".to_string(), pg));
        }
        let bars = super::plot::Bars {
            title: format!(
                "10,000 {what}: seconds (log scale), {} clients via {}",
                args.clients,
                args.via.name()
            ),
            y_desc: "seconds".into(),
            categories: categories.clone(),
            series,
            log: true,
        };
        let path = dir.join(file);
        super::plot::bar_chart(&path, &bars).map_err(BenchError::Setup)?;
        progress(args, &format!("wrote {}", path.display()));
    }
    Ok(())
}

fn report(args: &CourseArgs, run: &Run) {
    use std::io::Write;
    let (shape, written, read, present) = (&run.shape, &run.tessera.written, &run.tessera.read, run.tessera.present);
    let acknowledged = run.tessera.acknowledged();
    let speedup = |published: f64, phase: &Phase| published / phase.seconds.max(1e-9);
    let write_speedup = speedup(shape.published_write_seconds, written);
    let read_speedup = speedup(shape.published_read_seconds, read);
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut doc = json!({
            "config": shape.name,
            "via": args.via.name(),
            "clients": args.clients,
            "shards": shape.shards,
            "nodes": shape.nodes,
            "replicas": shape.replicas,
            "writes": written.json("rows"),
            "reads": read.json("count"),
            "rows_present": present,
            "published": {"writes_seconds": shape.published_write_seconds, "reads_seconds": shape.published_read_seconds},
            "speedup": {"writes": write_speedup, "reads": read_speedup},
        });
        if let Some(pg) = &run.postgres {
            doc["postgres"] = json!({
                "writes": pg.written.json("rows"),
                "reads": pg.read.json("count"),
                "rows_present": pg.present,
                "speedup": {
                    "writes": speedup(shape.published_write_seconds, &pg.written),
                    "reads": speedup(shape.published_read_seconds, &pg.read),
                },
            });
        }
        let _ = writeln!(out, "{doc}");
        return;
    }
    let _ = writeln!(
        out,
        "{} ({} shards, {} nodes, {} replicas) via {}, {} clients",
        shape.name,
        shape.shards,
        shape.nodes,
        shape.replicas,
        args.via.name(),
        args.clients
    );
    let _ = writeln!(
        out,
        "{:<16} {:>7} {:>9} {:>10} {:>9} {:>9} {:>7} {:>11} {:>8}",
        "phase", "count", "seconds", "per second", "p50 ms", "p99 ms", "errors", "published s", "speedup"
    );
    let mut rows = vec![
        ("writes", written, shape.published_write_seconds),
        ("reads", read, shape.published_read_seconds),
    ];
    if let Some(pg) = &run.postgres {
        rows.push(("postgres writes", &pg.written, shape.published_write_seconds));
        rows.push(("postgres reads", &pg.read, shape.published_read_seconds));
    }
    for (name, phase, published) in rows {
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>9.3} {:>10.0} {:>9.2} {:>9.2} {:>7} {:>11.2} {:>7.1}x",
            name,
            phase.count,
            phase.seconds,
            phase.count as f64 / phase.seconds.max(1e-9),
            phase.percentile_ms(0.5),
            phase.percentile_ms(0.99),
            phase.errors,
            published,
            speedup(published, phase)
        );
        if let Some(e) = &phase.first_error {
            let _ = writeln!(out, "  first {name} error: {e}");
        }
    }
    let _ = writeln!(
        out,
        "rows present afterwards: {present} of {acknowledged} acknowledged writes"
    );
    if let Some(pg) = &run.postgres {
        let _ = writeln!(
            out,
            "Tessera took {:.2}x PostgreSQL's time for the writes and {:.2}x for the reads",
            written.seconds / pg.written.seconds.max(1e-9),
            read.seconds / pg.read.seconds.max(1e-9)
        );
    }
}
