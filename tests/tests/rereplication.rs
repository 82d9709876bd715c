//! Re-replication: a node that dies is replaced without anyone acting, on a real cluster of
//! four nodes with every shard on three of them, while six writers insert and increment.
//!
//! The node hosting a shard's primary is killed with SIGKILL. Once the catalog declares it
//! dead (`--dead-after`), every shard that had a replica on it gets a new replica on a live
//! node: created empty, caught up as a Raft learner (here from a snapshot, as nodes take one
//! every 50 entries), promoted, the dead member removed. The test checks that
//!
//! - every shard returns to three replicas, none on the dead node, with no human action, and
//!   `tessera.tasks` shows one finished repair per replica the node held;
//! - every acknowledged write is present exactly once and the counters count exactly the
//!   acknowledged increments (give or take those whose outcome was unknown);
//! - the replicas of every shard, the new ones included, converge to identical checksums;
//! - when the dead node comes back, the replicas it held under their old identities are
//!   deleted, never served again;
//! - at least one new replica caught up from a snapshot.
//!
//! A second test drives the same machinery through the admin functions, while two writers
//! keep writing: `tessera_move_replica`, `tessera_set_replicas` up and down, and
//! `tessera_remove_node`, each followed through `tessera.tasks`, with their errors for bad
//! arguments; no acknowledged write is lost and every shard's replicas agree afterwards. A
//! third adds a node to a cluster and `tessera_add_node` moves exactly its share of replicas
//! to it, one move at a time, leaving the nodes balanced.

use std::time::{Duration, Instant};

use tessera_tests::replication::{self, wait_for_primary, wait_for_replicas_to_agree};
use tessera_tests::writes::{int, tally, write_problems, EventsWriters, WriterLog};
use tessera_tests::{
    describe_error, execute, query_error, retry_until, simple_rows, sqlstate, Cluster, ClusterOptions,
};

const WRITERS: i64 = 6;
/// Shards of `events_ddl(4, ..)`: four of `events`, two of `counters`.
const SHARDS: usize = 6;
const REPLICAS: usize = 3;
/// How long a silent node has before the catalog declares it dead.
const DEAD_AFTER_MS: u64 = 1_500;
/// How long re-replication may take on this machine.
const REPAIR: Duration = Duration::from_secs(90);
const RECOVERY: Duration = Duration::from_secs(45);

fn fail(message: &str) -> ! {
    panic!("{message}")
}

/// The placement `tessera.shards` shows: per shard, its name and its nodes' ids.
async fn placement(cluster: &Cluster) -> Result<Vec<(String, Vec<i64>)>, String> {
    let list = cluster
        .rows("SELECT shard_name, nodes FROM tessera.shards ORDER BY shard_id")
        .await?;
    list.iter()
        .map(|r| {
            let name = r[0].clone().unwrap_or_default();
            let nodes = r[1]
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| n.parse::<i64>().map_err(|e| format!("node id {n:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((name, nodes))
        })
        .collect()
}

/// How long a writer waits after a failed write.
const AFTER_FAILURE: Duration = Duration::from_millis(20);

/// `writers` events writers on four shards of `events` (and two of `counters`), through the
/// cluster's router.
async fn start_writers(cluster: &Cluster, client: &tokio_postgres::Client, writers: i64) -> EventsWriters {
    EventsWriters::start(client, vec![cluster.router_addr()], 4, writers, AFTER_FAILURE).await
}

/// Stops the writers and checks what they did: every acknowledged write present exactly once,
/// every counter right (give or take the increments of unknown outcome), and the replicas of
/// each of the `shards` shards (`replicas` of them, if given) holding the same rows.
async fn stop_and_check(
    cluster: &Cluster,
    client: &tokio_postgres::Client,
    writers: EventsWriters,
    label: &str,
    shards: usize,
    replicas: Option<usize>,
) -> Vec<WriterLog> {
    let logs = writers.stop().await;
    let tally = tally(&logs, label);
    let events = cluster
        .rows("SELECT k, writer, v FROM events")
        .await
        .unwrap_or_else(|e| fail(&e));
    let counters = cluster
        .rows("SELECT w, n FROM counters")
        .await
        .unwrap_or_else(|e| fail(&e));
    let problems = write_problems(&logs, &tally, &events, &counters);
    if !problems.is_empty() {
        let shown: Vec<String> = problems.iter().take(30).map(|p| format!("  {p}")).collect();
        fail(&format!(
            "{label}: {} problems (first 30):\n{}",
            problems.len(),
            shown.join("\n")
        ));
    }
    let agreed = wait_for_replicas_to_agree(client, RECOVERY)
        .await
        .unwrap_or_else(|e| fail(&e));
    assert_eq!(agreed.len(), shards, "every shard's replicas agree: {agreed:?}");
    if let Some(replicas) = replicas {
        assert!(agreed.values().all(|a| a.replicas == replicas), "{agreed:?}");
    }
    logs
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_nodes_replicas_are_recreated_on_live_nodes() {
    let mut options = ClusterOptions::new(4);
    options.replicas = REPLICAS;
    options.dead_after_ms = Some(DEAD_AFTER_MS);
    options.node_flags = vec!["--snapshot-after".into(), "50".into()];
    let mut cluster = Cluster::start_with(options).await;
    let client = cluster.client().await;
    let writers = start_writers(&cluster, &client, WRITERS).await;
    // Long enough for every shard's log to pass a few snapshots, so a new replica cannot
    // catch up from the log alone.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let victim = wait_for_primary(&cluster, &client, "events_p0", RECOVERY)
        .await
        .unwrap_or_else(|e| fail(&e));
    let victim_addr = cluster.node_addr(victim).to_string();
    let before = replication::replicas(&client).await.unwrap_or_else(|e| fail(&e));
    let victim_id = before
        .iter()
        .find(|r| r.address == victim_addr)
        .map(|r| r.node_id)
        .unwrap_or_else(|| fail(&format!("node-{victim} ({victim_addr}) holds no replica")));
    let lost: Vec<&str> = before
        .iter()
        .filter(|r| r.node_id == victim_id)
        .map(|r| r.shard_name.as_str())
        .collect();
    eprintln!(
        "rereplication: killing node-{victim} (node id {victim_id}), which holds replicas of {}",
        lost.join(", ")
    );
    let killed_at = Instant::now();
    cluster.kill_node(victim);

    // Every shard back to three replicas, none on the dead node.
    let repaired = retry_until("re-replication of the dead node's replicas", REPAIR, || async {
        let shards = placement(&cluster).await?;
        if shards.len() != SHARDS {
            return Err(format!("{} shards listed, not {SHARDS}", shards.len()));
        }
        let pending: Vec<String> = shards
            .iter()
            .filter(|(_, nodes)| nodes.len() != REPLICAS || nodes.contains(&victim_id))
            .map(|(name, nodes)| format!("{name} on nodes {nodes:?}"))
            .collect();
        if pending.is_empty() {
            Ok(shards)
        } else {
            Err(format!("not repaired yet: {}", pending.join("; ")))
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e));
    let repair_time = killed_at.elapsed();
    eprintln!(
        "rereplication: {} replicas re-created {} ms after the kill (the node is declared dead after {DEAD_AFTER_MS} ms)",
        lost.len(),
        repair_time.as_millis()
    );
    for (name, nodes) in &repaired {
        let mut distinct = nodes.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            REPLICAS,
            "{name}'s replicas are not on distinct nodes: {nodes:?}"
        );
    }

    // The tasks that did it: one finished repair per lost replica.
    let tasks = cluster
        .rows("SELECT kind, state, shard_name, remove_node, add_node, step FROM tessera.tasks ORDER BY task_id")
        .await
        .unwrap_or_else(|e| fail(&e));
    let repairs: Vec<&Vec<Option<String>>> = tasks.iter().filter(|t| t[0].as_deref() == Some("repair")).collect();
    let shown = format!("{tasks:?}");
    assert_eq!(repairs.len(), lost.len(), "one repair per lost replica: {shown}");
    for t in &repairs {
        assert_eq!(t[1].as_deref(), Some("done"), "{shown}");
        assert_eq!(
            int(&t[3]),
            victim_id,
            "a repair removes the dead node's replica: {shown}"
        );
        assert_ne!(int(&t[4]), victim_id, "a repair adds a replica elsewhere: {shown}");
        assert_eq!(t[5].as_deref(), Some("done"), "{shown}");
    }

    // Writes go on for a while over the new placement, then the dead node comes back: what
    // it held under the old identities is deleted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart_node(victim).await;
    retry_until("the returning node's replicas to be deleted", RECOVERY, || async {
        let held = cluster
            .rows("SELECT shard_id, replica_id, node_id FROM tessera.checksums")
            .await?;
        let left: Vec<String> = held
            .iter()
            .filter(|r| int(&r[2]) == victim_id)
            .map(|r| format!("replica {} of shard {}", int(&r[1]), int(&r[0])))
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("node {victim_id} still holds {}", left.join(", ")))
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e));
    let nodes = cluster
        .rows("SELECT node_id, state, replicas FROM tessera.nodes")
        .await
        .unwrap_or_else(|e| fail(&e));
    let back = nodes
        .iter()
        .find(|n| int(&n[0]) == victim_id)
        .unwrap_or_else(|| fail(&format!("node {victim_id} is gone from tessera.nodes: {nodes:?}")));
    assert_eq!(
        back[2].as_deref(),
        Some("0"),
        "the replaced node holds no shard: {nodes:?}"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let logs = stop_and_check(&cluster, &client, writers, "rereplication", SHARDS, Some(REPLICAS)).await;
    let after_kill = logs
        .iter()
        .flat_map(|l| l.acknowledged_at.iter())
        .filter(|(t, _)| *t > killed_at + repair_time)
        .count();
    assert!(after_kill > 0, "no write was acknowledged after the repair");

    // The new replicas were far behind: at least one caught up from a snapshot.
    let snapshots = cluster
        .log_paths()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .filter(|log| log.contains("installing a snapshot from the primary"))
        .count();
    assert!(
        snapshots > 0,
        "no node installed a snapshot: the new replicas caught up from the log only"
    );
    cluster.stop().await;
}

/// Waits until every task in `tessera.tasks` is done; fails on a failed one.
async fn wait_for_tasks(cluster: &Cluster) {
    retry_until("every task to finish", REPAIR, || async {
        let tasks = cluster
            .rows("SELECT task_id, kind, state, step FROM tessera.tasks")
            .await?;
        if let Some(failed) = tasks.iter().find(|t| t[2].as_deref() == Some("failed")) {
            fail(&format!("a task failed: {failed:?}"));
        }
        match tasks.iter().find(|t| t[2].as_deref() != Some("done")) {
            Some(t) => Err(format!("task {t:?} is not done")),
            None => Ok(()),
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e));
}

/// Waits until `check` accepts the placement `tessera.shards` shows.
async fn wait_for_placement(cluster: &Cluster, what: &str, check: impl Fn(&[(String, Vec<i64>)]) -> bool) {
    retry_until(what, REPAIR, || async {
        let shards = placement(cluster).await?;
        if check(&shards) {
            Ok(())
        } else {
            Err(format!("placement: {shards:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e));
}

async fn one_value(client: &tokio_postgres::Client, sql: &str) -> i64 {
    let rows = simple_rows(client, sql)
        .await
        .unwrap_or_else(|e| fail(&format!("`{sql}`: {e}")));
    int(&rows[0][0])
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_functions_move_replicas_change_the_replication_factor_and_drain_a_node() {
    const ADMIN_WRITERS: i64 = 2;
    let mut options = ClusterOptions::new(4);
    options.replicas = REPLICAS;
    let mut cluster = Cluster::start_with(options).await;
    let client = cluster.client().await;
    let writers = EventsWriters::start(&client, vec![cluster.router_addr()], 2, ADMIN_WRITERS, AFTER_FAILURE).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Bad arguments are refused with PostgreSQL's error codes, and change nothing.
    for (sql, code) in [
        ("SELECT tessera_move_replica('no_such_shard', 1, 2)", "42P01"),
        ("SELECT tessera_move_replica('events_p0', 1)", "42883"),
        ("SELECT tessera_move_replica(1, 2, 3)", "42883"),
        ("SELECT tessera_move_replica('events_p0', 99, 1)", "22023"),
        ("SELECT tessera_set_replicas('events', 0)", "22023"),
        ("SELECT tessera_set_replicas('events', 5)", "53000"),
        ("SELECT tessera_set_replicas('no_such_table', 2)", "42P01"),
        ("SELECT tessera_remove_node(99)", "22023"),
        ("SELECT tessera_remove_node(0)", "22023"),
    ] {
        let e = query_error(&client, sql).await;
        assert_eq!(sqlstate(&e), Some(code), "`{sql}`: {}", describe_error(&e));
    }
    // A replication factor the 4 nodes cannot give is refused at CREATE TABLE, partitioned
    // or not, and nothing is made; one they can is kept.
    for sql in [
        "CREATE TABLE r5 (k INT PRIMARY KEY) WITH (replicas = 5)",
        "CREATE TABLE p5 (k INT PRIMARY KEY) PARTITION BY HASH (k) WITH (replicas = 5)",
    ] {
        let e = query_error(&client, sql).await;
        assert_eq!(sqlstate(&e), Some("53000"), "`{sql}`: {}", describe_error(&e));
        assert!(
            describe_error(&e).contains("needs 5 replicas"),
            "{}",
            describe_error(&e)
        );
    }
    execute(&client, "CREATE TABLE r2 (k INT PRIMARY KEY) WITH (replicas = 2)").await;
    let made = cluster
        .rows("SELECT table_name, replicas FROM tessera.shards WHERE table_name LIKE '%5' OR table_name = 'r2'")
        .await
        .unwrap_or_else(|e| fail(&e));
    assert_eq!(made, vec![vec![Some("r2".to_string()), Some("2".to_string())]]);
    execute(&client, "DROP TABLE r2").await;
    for table in ["r5", "p5"] {
        let e = query_error(&client, &format!("SELECT * FROM {table}")).await;
        assert_eq!(sqlstate(&e), Some("42P01"), "{table} was made: {}", describe_error(&e));
    }

    let shards = placement(&cluster).await.unwrap_or_else(|e| fail(&e));
    let (_, p0_nodes) = shards
        .iter()
        .find(|(name, _)| name == "events_p0")
        .cloned()
        .unwrap_or_else(|| fail(&format!("no events_p0 in {shards:?}")));
    let from = p0_nodes[0];
    let to = (1..=4)
        .find(|n| !p0_nodes.contains(n))
        .unwrap_or_else(|| fail("no free node"));
    let holder = p0_nodes[1];
    let e = query_error(
        &client,
        &format!("SELECT tessera_move_replica('events_p0', {from}, {holder})"),
    )
    .await;
    assert_eq!(sqlstate(&e), Some("22023"), "{}", describe_error(&e));
    assert!(describe_error(&e).contains("already holds"), "{}", describe_error(&e));

    // A move.
    let task = one_value(
        &client,
        &format!("SELECT tessera_move_replica('events_p0', {from}, {to})"),
    )
    .await;
    assert!(task > 0, "the move's task id: {task}");
    wait_for_tasks(&cluster).await;
    wait_for_placement(&cluster, "the move", |shards| {
        shards
            .iter()
            .any(|(name, nodes)| name == "events_p0" && nodes.contains(&to) && !nodes.contains(&from))
    })
    .await;
    let kind = cluster
        .rows(&format!("SELECT kind, state FROM tessera.tasks WHERE task_id = {task}"))
        .await
        .unwrap_or_else(|e| fail(&e));
    assert_eq!(kind, vec![vec![Some("move".to_string()), Some("done".to_string())]]);

    // The replication factor up to 4 (one more replica per shard of events), then down to 2.
    for (replicas, changes) in [(4, 2), (2, 4)] {
        let made = one_value(&client, &format!("SELECT tessera_set_replicas('events', {replicas})")).await;
        assert_eq!(
            made, changes,
            "replica changes to reach {replicas} on each of the 2 shards"
        );
        wait_for_placement(&cluster, &format!("{replicas} replicas per events shard"), |shards| {
            shards
                .iter()
                .filter(|(name, _)| name.starts_with("events_"))
                .all(|(_, nodes)| nodes.len() == replicas)
        })
        .await;
        wait_for_tasks(&cluster).await;
    }

    // Drain a node: its replicas move away, then it leaves the cluster.
    let shards = placement(&cluster).await.unwrap_or_else(|e| fail(&e));
    let leaving = shards
        .iter()
        .find(|(name, _)| name == "counters_low")
        .map(|(_, nodes)| nodes[0])
        .unwrap_or_else(|| fail(&format!("no counters_low in {shards:?}")));
    let held = shards.iter().filter(|(_, nodes)| nodes.contains(&leaving)).count() as i64;
    let moving = one_value(&client, &format!("SELECT tessera_remove_node({leaving})")).await;
    assert_eq!(moving, held, "every replica of node {leaving} moves: {shards:?}");
    retry_until("the drained node to leave", REPAIR, || async {
        let nodes = cluster.rows("SELECT node_id, state FROM tessera.nodes").await?;
        match nodes.iter().find(|n| int(&n[0]) == leaving) {
            Some(n) => Err(format!("node {leaving} is still listed: {n:?}")),
            None => Ok(()),
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e));
    wait_for_placement(&cluster, "nothing left on the drained node", |shards| {
        shards.iter().all(|(_, nodes)| !nodes.contains(&leaving))
            && shards
                .iter()
                .filter(|(name, _)| name.starts_with("counters_"))
                .all(|(_, nodes)| nodes.len() == REPLICAS)
    })
    .await;
    wait_for_tasks(&cluster).await;

    // Two shards of events with 2 replicas each now, two of counters with 3.
    stop_and_check(&cluster, &client, writers, "admin", 4, None).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_node_gets_its_share_of_replicas_one_move_at_a_time() {
    const BALANCE_WRITERS: i64 = 2;
    let mut options = ClusterOptions::new(3);
    options.replicas = REPLICAS;
    let mut cluster = Cluster::start_with(options).await;
    let client = cluster.client().await;
    let writers = start_writers(&cluster, &client, BALANCE_WRITERS).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        one_value(&client, "SELECT tessera_rebalance()").await,
        0,
        "3 nodes holding all: balanced"
    );

    // A fourth node: 18 replicas over 4 nodes, so its share is 4 (of 4.5).
    let new = cluster.add_node().await;
    let addr = cluster.node_addr(new).to_string();
    let moves = one_value(&client, &format!("SELECT tessera_add_node('{addr}')")).await;
    assert_eq!(moves, 4, "the new node's share of 18 replicas over 4 nodes");
    let new_id = cluster
        .rows(&format!("SELECT node_id FROM tessera.nodes WHERE address = '{addr}'"))
        .await
        .unwrap_or_else(|e| fail(&e));
    let new_id = int(&new_id[0][0]);
    wait_for_placement(&cluster, "the new node's share", |shards| {
        shards
            .iter()
            .flat_map(|(_, nodes)| nodes)
            .filter(|n| **n == new_id)
            .count()
            == 4
    })
    .await;
    wait_for_tasks(&cluster).await;
    let shards = placement(&cluster).await.unwrap_or_else(|e| fail(&e));
    let mut loads = std::collections::BTreeMap::new();
    for (name, nodes) in &shards {
        let mut distinct = nodes.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), REPLICAS, "{name} on {nodes:?}");
        for n in nodes {
            *loads.entry(*n).or_insert(0) += 1;
        }
    }
    let (low, high) = (loads.values().min().copied(), loads.values().max().copied());
    assert!(high.zip(low).is_some_and(|(h, l)| h - l <= 1), "unbalanced: {loads:?}");
    let tasks = cluster
        .rows("SELECT kind, state FROM tessera.tasks WHERE kind = 'rebalance'")
        .await
        .unwrap_or_else(|e| fail(&e));
    assert_eq!(tasks.len(), 4, "one move per replica moved: {tasks:?}");
    eprintln!(
        "rebalance: {} replicas moved to the new node, its ideal share being 18/4 = 4.5 (whole replicas: 4); loads {loads:?}",
        tasks.len()
    );
    assert_eq!(
        one_value(&client, "SELECT tessera_rebalance()").await,
        0,
        "balanced now"
    );

    stop_and_check(&cluster, &client, writers, "rebalance", SHARDS, Some(REPLICAS)).await;
    cluster.stop().await;
}
