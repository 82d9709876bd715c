//! `tessera bench balance`: the course's load-balancing check. For each node count asked for
//! (3 to 6 by default) it starts an embedded cluster, makes a one-shard table replicated on
//! every node, sends `--requests` point reads from concurrent clients, and counts how many each
//! replica served (`tessera.replicas.reads`): the router spreads reads over a shard's replicas
//! through the shard's consistent-hash ring (`types/src/ring.rs`). It also computes, on that
//! same ring, what share of keys move to another server when a server is added or removed,
//! next to the ideal share (1/(n+1) on adding, 1/n on removing).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tessera_types::ring::Ring;

use super::{connect, BenchError};
use crate::dev::Cluster;

/// Rows of the table the reads go to.
const ROWS: i64 = 1_000;
/// Keys used to measure how many move between rings.
const MOVE_KEYS: u64 = 10_000;

/// Flags of `tessera bench balance`.
#[derive(Debug, Clone, Args)]
pub struct BalanceArgs {
    /// Node counts, one cluster per value
    #[arg(long, value_delimiter = ',', default_values_t = vec![3, 4, 5, 6])]
    pub nodes: Vec<u32>,
    /// Point reads sent to each cluster
    #[arg(long, default_value_t = 10_000)]
    pub requests: usize,
    /// Concurrent clients
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Print one JSON object instead of tables
    #[arg(long)]
    pub json: bool,
    /// Write the plot (PNG) of reads per node into DIR
    #[arg(long, value_name = "DIR")]
    pub plot: Option<std::path::PathBuf>,
}

/// Reads served per node of one cluster.
struct Served {
    nodes: u32,
    /// Node id → reads served.
    reads: BTreeMap<i64, i64>,
}

/// Share of keys that move between the rings of two server sets.
fn moved_share(from: &Ring, to: &Ring) -> f64 {
    let moved = (0..MOVE_KEYS)
        .filter(|k| {
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            from.server_for(key) != to.server_for(key)
        })
        .count();
    moved as f64 / MOVE_KEYS as f64
}

/// Starts an `n`-node cluster, reads, and counts reads per node.
async fn serve(args: &BalanceArgs, n: u32) -> Result<Served, BenchError> {
    let (_scratch, config) = super::scratch_cluster(n, n)?;
    super::say(args.json, &format!("balance: {n} nodes, {} point reads", args.requests));
    let cluster = Cluster::start(&config).await?;
    let addr = cluster.router.addr.clone();
    let outcome = async {
        let client = connect(&addr).await?;
        let values: Vec<String> = (0..ROWS).map(|k| format!("({k}, 'row {k}')")).collect();
        client
            .batch_execute(&format!(
                "CREATE TABLE balance (k INT PRIMARY KEY, v TEXT) WITH (replicas = {n});
                 INSERT INTO balance VALUES {}",
                values.join(", ")
            ))
            .await?;
        let before = reads_per_node(&client).await?;
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for c in 0..args.clients.max(1) {
            let client = connect(&addr).await?;
            let next = next.clone();
            let total = args.requests;
            tasks.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(c as u64);
                let point = client.prepare("SELECT v FROM balance WHERE k = $1").await?;
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let k = rng.gen_range(0..ROWS) as i32;
                    client.query_opt(&point, &[&k]).await?;
                }
                Ok::<_, tokio_postgres::Error>(())
            }));
        }
        for t in tasks {
            t.await
                .map_err(|e| BenchError::Setup(format!("a client task failed: {e}")))??;
        }
        let after = reads_per_node(&client).await?;
        let reads = after
            .into_iter()
            .map(|(node, r)| (node, r - before.get(&node).copied().unwrap_or(0)))
            .collect();
        Ok::<_, BenchError>(reads)
    }
    .await;
    cluster.shutdown().await;
    Ok(Served {
        nodes: n,
        reads: outcome?,
    })
}

async fn reads_per_node(client: &tokio_postgres::Client) -> Result<BTreeMap<i64, i64>, BenchError> {
    let rows = client
        .query(
            "SELECT node_id, reads FROM tessera.replicas WHERE shard_name = 'balance'",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, Option<i64>>(1).unwrap_or(0)))
        .collect())
}

/// Runs the check for every node count and prints (and plots) the figures.
pub async fn run(args: BalanceArgs) -> Result<(), BenchError> {
    let mut served = Vec::new();
    for &n in &args.nodes {
        served.push(serve(&args, n).await?);
    }
    let moves: Vec<(u32, f64, f64)> = args
        .nodes
        .iter()
        .map(|&n| {
            let ring = Ring::new(1..=u64::from(n));
            let added = moved_share(&ring, &Ring::new(1..=u64::from(n) + 1));
            let removed = if n > 1 {
                moved_share(&ring, &Ring::new(1..u64::from(n)))
            } else {
                0.0
            };
            (n, added, removed)
        })
        .collect();
    report(&args, &served, &moves);
    if let Some(dir) = &args.plot {
        std::fs::create_dir_all(dir).map_err(|e| BenchError::Setup(format!("cannot create {}: {e}", dir.display())))?;
        let most = served.iter().map(|s| s.reads.len()).max().unwrap_or(0);
        let bars = super::plot::Bars {
            title: format!("{} point reads: reads served per node", args.requests),
            y_desc: "reads".into(),
            categories: served.iter().map(|s| format!("{} nodes", s.nodes)).collect(),
            series: (0..most)
                .map(|i| {
                    let values = served
                        .iter()
                        .map(|s| s.reads.values().nth(i).copied().unwrap_or(0) as f64)
                        .collect();
                    (format!("node {}", i + 1), values)
                })
                .collect(),
            log: false,
        };
        let path = dir.join("balance-reads.png");
        super::plot::bar_chart(&path, &bars).map_err(BenchError::Setup)?;
        super::say(args.json, &format!("balance: wrote {}", path.display()));
    }
    Ok(())
}

fn report(args: &BalanceArgs, served: &[Served], moves: &[(u32, f64, f64)]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = json!({
            "requests": args.requests,
            "reads_per_node": served.iter().map(|s| json!({
                "nodes": s.nodes,
                "reads": s.reads.values().collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "moved_share": moves.iter().map(|(n, added, removed)| json!({
                "nodes": n,
                "on_add": added,
                "ideal_on_add": 1.0 / (f64::from(*n) + 1.0),
                "on_remove": removed,
                "ideal_on_remove": 1.0 / f64::from(*n),
            })).collect::<Vec<_>>(),
        });
        let _ = writeln!(out, "{doc}");
        return;
    }
    let _ = writeln!(out, "reads served per node ({} point reads per cluster)", args.requests);
    for s in served {
        let total: i64 = s.reads.values().sum();
        let shares: Vec<String> = s
            .reads
            .values()
            .map(|r| format!("{r} ({:.0}%)", 100.0 * *r as f64 / total.max(1) as f64))
            .collect();
        let _ = writeln!(out, "  {} nodes: {}", s.nodes, shares.join(", "));
    }
    let _ = writeln!(out, "keys that move to another server (of {MOVE_KEYS})");
    let _ = writeln!(
        out,
        "  {:<6} {:>10} {:>10} {:>11} {:>10}",
        "nodes", "add one", "ideal", "remove one", "ideal"
    );
    for (n, added, removed) in moves {
        let _ = writeln!(
            out,
            "  {:<6} {:>9.1}% {:>9.1}% {:>10.1}% {:>9.1}%",
            n,
            100.0 * added,
            100.0 / (f64::from(*n) + 1.0),
            100.0 * removed,
            100.0 / f64::from(*n)
        );
    }
}
