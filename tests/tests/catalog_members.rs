//! The catalog as a Raft group of three members (`tessera catalog --id N --peers ...`), on a
//! real cluster whose routers and nodes are given all three addresses:
//!
//! - killing the catalog's leader (SIGKILL) leaves the cluster fully working: DDL, writes,
//!   reads, and node failure detection, now on the new leader;
//! - the killed member, restarted, catches up: once another member is killed, it and the last
//!   one form the majority, and they know every table created while it was away.

use std::time::Duration;

use tessera_tests::{connect, describe_error, retry_until, simple_rows, Cluster, ClusterOptions};

const RECOVERY: Duration = Duration::from_secs(30);

fn fail(message: &str) -> ! {
    panic!("{message}")
}

/// Runs `sql` through a new connection, retried while the catalog elects a leader.
async fn run(cluster: &Cluster, sql: &str) -> Vec<Vec<Option<String>>> {
    retry_until(&format!("`{sql}`"), RECOVERY, || async {
        let client = connect(cluster.router_addr()).await.map_err(|e| describe_error(&e))?;
        simple_rows(&client, sql).await
    })
    .await
    .unwrap_or_else(|e| fail(&e))
}

/// The member (from 0) that took the lead last, from the members' logs: the highest term of
/// a "leads the catalog" line; waits for one while the members elect a leader.
async fn leader(cluster: &Cluster) -> usize {
    let result = retry_until("a catalog member to lead", RECOVERY, || async {
        last_leader(cluster).ok_or("no catalog member says it leads")
    })
    .await;
    result.unwrap_or_else(|e| fail(&e))
}

fn last_leader(cluster: &Cluster) -> Option<usize> {
    let mut best: Option<(u64, usize)> = None;
    for (i, path) in cluster.log_paths().iter().take(cluster.catalog_count()).enumerate() {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("this member leads the catalog")) {
            let term = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("term="))
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0);
            if best.is_none_or(|(t, _)| term >= t) {
                best = Some((term, i));
            }
        }
    }
    best.map(|(_, i)| i)
}

fn count(rows: &[Vec<Option<String>>]) -> i64 {
    rows[0][0].as_deref().unwrap_or("").parse().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_member_catalog_survives_the_loss_of_any_member() {
    let mut options = ClusterOptions::new(3);
    options.catalogs = 3;
    options.dead_after_ms = Some(2_000);
    let mut cluster = Cluster::start_with(options).await;
    assert_eq!(cluster.catalog_count(), 3);
    run(
        &cluster,
        "CREATE TABLE t1 (k INT PRIMARY KEY, v TEXT) PARTITION BY RANGE (k)",
    )
    .await;
    run(
        &cluster,
        "CREATE TABLE t1_a PARTITION OF t1 FOR VALUES FROM (0) TO (100)",
    )
    .await;
    run(
        &cluster,
        "CREATE TABLE t1_b PARTITION OF t1 FOR VALUES FROM (100) TO (200)",
    )
    .await;
    run(
        &cluster,
        "INSERT INTO t1 VALUES (1, 'one'), (2, 'two'), (150, 'a hundred and fifty')",
    )
    .await;

    // The leader dies: the others elect one, and the cluster goes on.
    let first = leader(&cluster).await;
    eprintln!("catalog: killing member {} (the leader)", first + 1);
    cluster.kill_catalog(first);
    run(&cluster, "CREATE TABLE IF NOT EXISTS t2 (k INT PRIMARY KEY, v TEXT)").await;
    run(&cluster, "INSERT INTO t2 VALUES (1, 'after the kill')").await;
    assert_eq!(count(&run(&cluster, "SELECT count(*) FROM t1").await), 3);
    assert_eq!(count(&run(&cluster, "SELECT count(*) FROM t2").await), 1);
    let second = leader(&cluster).await;
    assert_ne!(second, first, "a new leader took over");

    // The new leader detects a dead node.
    cluster.kill_node(2);
    let node_addr = cluster.node_addr(2).to_string();
    retry_until("the new leader to declare the node dead", RECOVERY, || async {
        let rows = run(&cluster, "SELECT address, state FROM tessera.nodes").await;
        match rows.iter().find(|r| r[0].as_deref() == Some(node_addr.as_str())) {
            Some(r) if r[1].as_deref() == Some("dead") => Ok(()),
            other => Err(format!("node {node_addr}: {other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e));
    cluster.restart_node(2).await;

    // The first member comes back and catches up; then another one dies, leaving it in the
    // majority, which must know everything done while it was away.
    cluster.restart_catalog(first).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    eprintln!(
        "catalog: member {} restarted; killing member {} (the leader)",
        first + 1,
        second + 1
    );
    cluster.kill_catalog(second);
    let tables = run(
        &cluster,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .await;
    let names: Vec<&str> = tables.iter().filter_map(|r| r[0].as_deref()).collect();
    assert!(names.contains(&"t2"), "the restarted member lost t2: {names:?}");
    run(&cluster, "CREATE TABLE IF NOT EXISTS t3 (k INT PRIMARY KEY)").await;
    run(&cluster, "INSERT INTO t3 VALUES (7)").await;
    assert_eq!(count(&run(&cluster, "SELECT count(*) FROM t3").await), 1);
    assert_eq!(count(&run(&cluster, "SELECT count(*) FROM t2").await), 1);
    run(&cluster, "DROP TABLE t1").await;
    let dropped = connect(cluster.router_addr()).await.expect("connect");
    let e = simple_rows(&dropped, "SELECT * FROM t1").await.unwrap_err();
    assert!(e.contains("42P01"), "t1 is gone: {e}");
    cluster.stop().await;
}
