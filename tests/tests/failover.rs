//! Failover: DESIGN.md's invariants under the faults a replicated database must survive, on
//! real three-node clusters (every shard on all three nodes), with real clients:
//!
//! - kill -9 of a shard's primary and SIGSTOP of another node while eight writers insert and
//!   increment: every acknowledged write survives exactly once, counters count exactly the
//!   acknowledged increments (give or take the ones whose outcome was unknown), and every
//!   shard's replicas converge to identical checksums (invariants 1, 2 and 4);
//! - SIGKILL of every node at once: no acknowledged row is lost (invariants 1 and 4);
//! - a primary whose followers are frozen cannot acknowledge, and what it had not acknowledged
//!   is never half-kept after it dies (invariants 1 and 2);
//! - a single register driven by concurrent reads, writes and compare-and-sets keeps a
//!   linearizable history across a kill of its primary, and across a freeze (SIGSTOP) of its
//!   primary, which is deposed without knowing it (invariants 2 and 3);
//! - reads at the default consistency, spread over followers, see the last acknowledged write
//!   (invariant 3).
//!
//! Negative controls prove that the checks can fail: nodes started with
//! `--unsafe-skip-fsync` (log records acknowledged while still in memory) or
//! `--unsafe-ack-before-commit` (writes acknowledged before a majority holds them) go through
//! the same scenarios and the same verification, which must find acknowledged rows missing.
//!
//! The tests of this file run one at a time (see [`one_at_a_time`]): each runs a cluster of five
//! processes whose Raft timers a second cluster on the same two cores would disturb.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_tests::linearizability::{self, Answer, Call, History, Operation};
use tessera_tests::replication::{self, wait_for_primary, wait_for_replicas_to_agree};
use tessera_tests::writes::{
    int, longest_stall, tally, write, write_problems, Connection, EventsWriters, Outcome, STATEMENT_WAIT,
};
use tessera_tests::{connect, describe_error, execute, retry_until, simple_rows, Cluster, ClusterOptions};
use tokio::task::JoinHandle;

/// How long a cluster may take to serve again after a fault (elections, restarts).
const RECOVERY: Duration = Duration::from_secs(45);
/// How long the replicas of every shard may take to reach the same applied index.
const CONVERGENCE: Duration = Duration::from_secs(30);
/// Longer than the shard groups' election timeout (700–1400 ms) with room to spare.
const PAST_ELECTION_TIMEOUT: Duration = Duration::from_millis(2_500);

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serializes the tests of this file: the guard is held for the whole test.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// Three nodes, every shard replicated on all three, fsync on, plus `node_flags`.
fn three_nodes(node_flags: &[&str]) -> ClusterOptions {
    let mut options = ClusterOptions::new(3);
    options.replicas = 3;
    options.node_flags = node_flags.iter().map(|f| f.to_string()).collect();
    options
}

/// Fails the test with `message`. The cluster, dropped while the test panics, prints every
/// process's state and last log lines and keeps its directory for inspection.
fn fail(message: &str) -> ! {
    panic!("{message}")
}

/// Reads `sql` through a new connection, retried on errors while the cluster recovers.
async fn read_rows(cluster: &Cluster, sql: &str) -> Vec<Vec<Option<String>>> {
    let result = retry_until(&format!("`{sql}`"), RECOVERY, || async {
        let client = connect(cluster.router_addr()).await.map_err(|e| describe_error(&e))?;
        simple_rows(&client, sql).await
    })
    .await;
    result.unwrap_or_else(|e| fail(&e))
}

// ---------------------------------------------------------------------------------------------
// 1. kill -9 of a primary and SIGSTOP of another node under eight writers
// ---------------------------------------------------------------------------------------------

const WRITERS: i64 = 8;

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_a_primary_kill() {
    let _serial = one_at_a_time().await;
    let mut cluster = Cluster::start_with(three_nodes(&[])).await;
    let client = cluster.client().await;
    let writers = EventsWriters::start(
        &client,
        vec![cluster.router_addr()],
        4,
        WRITERS,
        Duration::from_millis(20),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // kill -9 the primary of one shard; keep writing; bring it back.
    let victim = wait_for_primary(&cluster, &client, "events_p0", RECOVERY)
        .await
        .unwrap_or_else(|e| fail(&e));
    let killed_at = Instant::now();
    cluster.kill_node(victim);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart_node(victim).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Freeze another node past the election timeout (a primary, if one leads anything), then
    // let it run again: it must notice it was deposed rather than acknowledge anything.
    let replicas = replication::replicas(&client).await.unwrap_or_else(|e| fail(&e));
    let frozen = replicas
        .iter()
        .filter(|r| r.role == "leader")
        .filter_map(|r| cluster.node_index(&r.address))
        .find(|&i| i != victim)
        .unwrap_or((victim + 1) % 3);
    let paused_at = Instant::now();
    cluster.pause_node(frozen);
    tokio::time::sleep(PAST_ELECTION_TIMEOUT).await;
    cluster.resume_node(frozen);
    let resumed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs = writers.stop().await;
    let stopped_at = Instant::now();
    cluster.heal_nodes().await;

    // The stalls, printed and not asserted (the machine is shared and noisy).
    let mut acknowledged_at: Vec<Instant> = logs
        .iter()
        .flat_map(|l| l.acknowledged_at.iter().map(|(t, _)| *t))
        .collect();
    acknowledged_at.sort();
    let after_kill = longest_stall(&acknowledged_at, killed_at, paused_at);
    let around_pause = longest_stall(&acknowledged_at, paused_at, stopped_at);
    eprintln!(
        "failover: longest write stall after kill -9 of the primary: {} ms",
        after_kill.as_millis()
    );
    eprintln!(
        "failover: longest write stall around the {} ms SIGSTOP of node-{frozen}: {} ms (resumed {} ms before the end)",
        PAST_ELECTION_TIMEOUT.as_millis(),
        around_pause.as_millis(),
        (stopped_at - resumed_at).as_millis()
    );

    let tally = tally(&logs, "failover");
    assert!(
        tally.acknowledged.len() > 50,
        "only {} inserts were acknowledged: the writers hardly ran",
        tally.acknowledged.len()
    );
    let after_kill_acks = acknowledged_at.iter().filter(|t| **t > killed_at).count();
    if after_kill_acks == 0 {
        fail("no write was acknowledged after the kill");
    }

    let events = read_rows(&cluster, "SELECT k, writer, v FROM events").await;
    let counters = read_rows(&cluster, "SELECT w, n FROM counters").await;
    let problems = write_problems(&logs, &tally, &events, &counters);
    if !problems.is_empty() {
        let shown: Vec<&String> = problems.iter().take(30).collect();
        fail(&format!(
            "{} problems after the faults (first 30):\n{}",
            problems.len(),
            shown.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
        ));
    }

    // The replicas of every shard converge to the same rows.
    let agreed = wait_for_replicas_to_agree(&client, CONVERGENCE)
        .await
        .unwrap_or_else(|e| fail(&e));
    let summary: Vec<String> = agreed
        .values()
        .map(|a| {
            format!(
                "{}: {} replicas at {:?}, {} rows",
                a.shard_name, a.replicas, a.applied_index, a.row_count
            )
        })
        .collect();
    eprintln!("failover: replicas agree: {}", summary.join("; "));
    let rows_in = |prefix: &str| -> i64 {
        agreed
            .values()
            .filter(|a| a.shard_name.starts_with(prefix))
            .map(|a| a.row_count)
            .sum()
    };
    if agreed.len() != 6
        || agreed.values().any(|a| a.replicas != 3)
        || rows_in("events_") != events.len() as i64
        || rows_in("counters_") != WRITERS
    {
        fail(&format!(
            "expected 6 shards of 3 agreeing replicas holding the {} rows of events and the {WRITERS} \
                 counters, found: {summary:?}",
            events.len()
        ));
    }
    cluster.check_processes().unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------------------------
// 2. and 3. Acknowledged rows after crashes: one verification for the tests and their controls
// ---------------------------------------------------------------------------------------------

/// Rows (k, v) acknowledged by the cluster.
type Acknowledged = BTreeMap<i64, i64>;

/// The acknowledged rows of `table` (columns `k`, `v`) that a read, once the cluster serves
/// again, does not return exactly once with their value. This one check decides the
/// durability tests and their negative controls alike.
async fn lost_acknowledged_rows(cluster: &Cluster, table: &str, acknowledged: &Acknowledged) -> Vec<i64> {
    let rows = read_rows(cluster, &format!("SELECT k, v FROM {table}")).await;
    let mut present: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for row in &rows {
        present.entry(int(&row[0])).or_default().push(int(&row[1]));
    }
    let lost: Vec<i64> = acknowledged
        .iter()
        .filter(|(k, v)| present.get(k).map(Vec::as_slice) != Some(&[**v]))
        .map(|(k, _)| *k)
        .collect();
    eprintln!(
        "failover: {table}: {} rows acknowledged, {} read, {} acknowledged rows lost{}",
        acknowledged.len(),
        rows.len(),
        lost.len(),
        if lost.is_empty() {
            String::new()
        } else {
            format!(" (first: {:?})", &lost[..lost.len().min(10)])
        }
    );
    lost
}

const ITEMS_DDL: [&str; 4] = [
    "CREATE TABLE items (k BIGINT PRIMARY KEY, v BIGINT NOT NULL) PARTITION BY HASH (k)",
    "CREATE TABLE items_p0 PARTITION OF items FOR VALUES WITH (MODULUS 3, REMAINDER 0)",
    "CREATE TABLE items_p1 PARTITION OF items FOR VALUES WITH (MODULUS 3, REMAINDER 1)",
    "CREATE TABLE items_p2 PARTITION OF items FOR VALUES WITH (MODULUS 3, REMAINDER 2)",
];

/// Writer `w` inserts `items` rows of its own until `stop`, recording each acknowledged row in
/// `acknowledged` the moment its answer arrives.
async fn items_writer(addr: SocketAddr, w: i64, stop: Arc<AtomicBool>, acknowledged: Arc<Mutex<Acknowledged>>) {
    let mut connection = Connection::new(vec![addr]);
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some((client, _)) = connection.get().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        seq += 1;
        let (k, v) = (w * 1_000_000 + seq, seq * 7);
        match write(client, &format!("INSERT INTO items VALUES ({k}, {v})")).await.0 {
            Outcome::Acknowledged => {
                acknowledged.lock().unwrap_or_else(|p| p.into_inner()).insert(k, v);
            }
            Outcome::Unknown(_) => connection.discard(),
            Outcome::Failed(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Starts a cluster with `node_flags`, writes from four clients, SIGKILLs every node at once
/// while they write, restarts the nodes, and returns the acknowledged rows that were lost.
async fn kill_every_node_while_writing(node_flags: &[&str]) -> (Cluster, Vec<i64>) {
    let mut cluster = Cluster::start_with(three_nodes(node_flags)).await;
    let client = cluster.client().await;
    for ddl in ITEMS_DDL {
        execute(&client, ddl).await;
    }
    drop(client);
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Acknowledged::new()));
    let writers: Vec<JoinHandle<()>> = (0..4)
        .map(|w| {
            tokio::spawn(items_writer(
                cluster.router_addr(),
                w,
                stop.clone(),
                acknowledged.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    // No pause between the acknowledgements and the crash: acknowledged means on disk.
    cluster.kill_all_nodes();
    stop.store(true, Ordering::Relaxed);
    for writer in &writers {
        // Their statements would only fail after the router's retry budget.
        writer.abort();
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap_or_else(|p| p.into_inner()));
    if acknowledged.len() < 20 {
        fail(&format!(
            "only {} rows were acknowledged before the crash: the writers hardly ran",
            acknowledged.len()
        ));
    }
    for i in 0..cluster.node_count() {
        cluster.restart_node(i).await;
    }
    let lost = lost_acknowledged_rows(&cluster, "items", &acknowledged).await;
    (cluster, lost)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_cluster_loses_no_acknowledged_write() {
    let _serial = one_at_a_time().await;
    // Kept until the end: dropped during a failure, it prints the processes' logs.
    let (_cluster, lost) = kill_every_node_while_writing(&[]).await;
    if !lost.is_empty() {
        fail(&format!(
            "{} acknowledged rows were lost when every node was killed (first 20: {:?})",
            lost.len(),
            &lost[..lost.len().min(20)]
        ));
    }
}

/// The negative control of `a_killed_cluster_loses_no_acknowledged_write`: nodes that hold
/// acknowledged log records in memory lose some when they all die, and the same check says so.
#[tokio::test(flavor = "multi_thread")]
async fn skipping_fsync_is_caught() {
    let _serial = one_at_a_time().await;
    // Kept until the end: dropped during a failure, it prints the processes' logs.
    let (_cluster, lost) = kill_every_node_while_writing(&["--unsafe-skip-fsync"]).await;
    if lost.is_empty() {
        fail(
            "nodes running with --unsafe-skip-fsync were killed while writing, yet the check found \
             no acknowledged row missing: the check cannot tell a durable cluster from one that is not",
        );
    }
}

const LEDGER_DDL: [&str; 2] = [
    "CREATE TABLE ledger (k BIGINT PRIMARY KEY, v BIGINT NOT NULL) PARTITION BY RANGE (k)",
    "CREATE TABLE ledger_all PARTITION OF ledger FOR VALUES FROM (MINVALUE) TO (MAXVALUE)",
];

/// What the stalled-majority scenario saw.
struct StalledMajority {
    cluster: Cluster,
    /// The writes sent while both followers were frozen that had answered 3 s later.
    answered_while_frozen: Vec<i64>,
    /// Acknowledged rows that the verification found missing.
    lost: Vec<i64>,
}

/// With `node_flags`: freezes both followers of the ledger's only shard, sends writes to it,
/// kills its primary, resumes the followers (which elect a new primary among themselves) and
/// restarts the old primary; then verifies the acknowledged rows.
async fn freeze_followers_and_kill_the_primary(node_flags: &[&str]) -> StalledMajority {
    let mut cluster = Cluster::start_with(three_nodes(node_flags)).await;
    let client = cluster.client().await;
    for ddl in LEDGER_DDL {
        execute(&client, ddl).await;
    }
    let mut acknowledged = Acknowledged::new();
    for k in 0..20 {
        execute(&client, &format!("INSERT INTO ledger VALUES ({k}, {})", k * 7)).await;
        acknowledged.insert(k, k * 7);
    }
    let primary = wait_for_primary(&cluster, &client, "ledger_all", RECOVERY)
        .await
        .unwrap_or_else(|e| fail(&e));
    let followers: Vec<usize> = (0..cluster.node_count()).filter(|&i| i != primary).collect();

    // One connection per write, opened before the freeze.
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(cluster.client().await);
    }
    for &f in &followers {
        cluster.pause_node(f);
    }
    let writes: Vec<(i64, JoinHandle<(Outcome, u64)>)> = clients
        .into_iter()
        .zip(100..)
        .map(|(client, k)| {
            let sql = format!("INSERT INTO ledger VALUES ({k}, {})", k * 7);
            (k, tokio::spawn(async move { write(&client, &sql).await }))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answered_while_frozen: Vec<i64> = writes
        .iter()
        .filter(|(_, task)| task.is_finished())
        .map(|(k, _)| *k)
        .collect();

    cluster.kill_node(primary);
    for &f in &followers {
        cluster.resume_node(f);
    }
    wait_for_primary(&cluster, &client, "ledger_all", RECOVERY)
        .await
        .unwrap_or_else(|e| fail(&e));
    cluster.restart_node(primary).await;

    // Every write answers eventually; what was acknowledged must be there.
    let mut outcomes = Vec::new();
    for (k, task) in writes {
        let (outcome, _) = tokio::time::timeout(RECOVERY, task)
            .await
            .unwrap_or_else(|_| fail(&format!("the insert of {k} never answered")))
            .expect("a write task panicked");
        if outcome == Outcome::Acknowledged {
            acknowledged.insert(k, k * 7);
        }
        outcomes.push(format!("{k}: {outcome:?}"));
    }
    eprintln!(
        "failover: writes sent while the followers of node-{primary} were frozen: {}",
        outcomes.join(", ")
    );
    let lost = lost_acknowledged_rows(&cluster, "ledger", &acknowledged).await;
    StalledMajority {
        cluster,
        answered_while_frozen,
        lost,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_majority_blocks_acknowledgement() {
    let _serial = one_at_a_time().await;
    let run = freeze_followers_and_kill_the_primary(&[]).await;
    if !run.answered_while_frozen.is_empty() {
        fail(&format!(
            "the primary answered writes {:?} while both its followers were frozen: it cannot \
                 have had a majority",
            run.answered_while_frozen
        ));
    }
    if !run.lost.is_empty() {
        fail(&format!("acknowledged rows {:?} were lost in the failover", run.lost));
    }
    let client = run.cluster.client().await;
    wait_for_replicas_to_agree(&client, CONVERGENCE)
        .await
        .unwrap_or_else(|e| fail(&e));
}

/// The negative control of `a_stalled_majority_blocks_acknowledgement`: a primary that answers
/// before a majority holds the write loses acknowledged rows in the same scenario, and the same
/// check says so.
#[tokio::test(flavor = "multi_thread")]
async fn acknowledging_before_commit_is_caught() {
    let _serial = one_at_a_time().await;
    let run = freeze_followers_and_kill_the_primary(&["--unsafe-ack-before-commit"]).await;
    if run.lost.is_empty() {
        fail(&format!(
            "nodes running with --unsafe-ack-before-commit acknowledged {:?} while the followers \
                 were frozen, yet after the failover the check found no acknowledged row missing",
            run.answered_while_frozen
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// 4. A linearizable register across a kill of its primary
// ---------------------------------------------------------------------------------------------

const REGISTER_DDL: [&str; 3] = [
    "CREATE TABLE reg (k INT PRIMARY KEY, v BIGINT NOT NULL) PARTITION BY RANGE (k)",
    "CREATE TABLE reg_all PARTITION OF reg FOR VALUES FROM (MINVALUE) TO (MAXVALUE)",
    "INSERT INTO reg VALUES (1, 0)",
];
const REGISTER_CLIENTS: usize = 5;
const REGISTER_OPS: usize = 320;

/// A small deterministic random number generator (xorshift64*), enough to mix operations.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Client `c` of the register workload: reads, unique writes and compare-and-sets from the last
/// value it saw, until `done` operations were made by all clients together.
async fn register_client(addr: SocketAddr, c: usize, done: Arc<AtomicUsize>) -> (Vec<Operation>, Vec<String>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (c as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
    let mut operations = Vec::new();
    let mut anomalies = Vec::new();
    let mut connection = Connection::new(vec![addr]);
    let mut last_seen: i64 = 0;
    let mut next_value = (c as i64 + 1) * 1_000_000;
    while done.load(Ordering::Relaxed) < REGISTER_OPS {
        let Some((client, _)) = connection.get().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let call = match rng.below(10) {
            0..=3 => Call::Read,
            4..=6 => {
                next_value += 1;
                Call::Write(next_value)
            }
            _ => {
                next_value += 1;
                Call::CompareAndSet {
                    expected: last_seen,
                    new: next_value,
                }
            }
        };
        let invoked = Instant::now();
        let answer = match call {
            Call::Read => {
                let result =
                    tokio::time::timeout(STATEMENT_WAIT, client.query("SELECT v FROM reg WHERE k = 1", &[])).await;
                match result {
                    Ok(Ok(rows)) if rows.len() <= 1 => {
                        let value: Option<i64> = rows.first().map(|r| r.get(0));
                        Some(Answer::Saw(value))
                    }
                    Ok(Ok(rows)) => {
                        anomalies.push(format!("a read of k = 1 returned {} rows", rows.len()));
                        None
                    }
                    // A read that failed did nothing: leave it out of the history.
                    Ok(Err(_)) => None,
                    Err(_) => {
                        connection.discard();
                        None
                    }
                }
            }
            Call::Write(value) => {
                let sql = "UPDATE reg SET v = $1 WHERE k = 1";
                let result = tokio::time::timeout(STATEMENT_WAIT, client.execute(sql, &[&value])).await;
                match result {
                    Ok(Ok(1)) => Some(Answer::Written),
                    Ok(Ok(n)) => {
                        anomalies.push(format!("write({value}) reported {n} rows"));
                        Some(Answer::Unknown)
                    }
                    Ok(Err(_)) => Some(Answer::Unknown),
                    Err(_) => {
                        connection.discard();
                        Some(Answer::Unknown)
                    }
                }
            }
            Call::CompareAndSet { expected, new } => {
                let sql = "UPDATE reg SET v = $1 WHERE k = 1 AND v = $2";
                let result = tokio::time::timeout(STATEMENT_WAIT, client.execute(sql, &[&new, &expected])).await;
                match result {
                    Ok(Ok(0)) => Some(Answer::Swapped(false)),
                    Ok(Ok(1)) => Some(Answer::Swapped(true)),
                    Ok(Ok(n)) => {
                        anomalies.push(format!("cas({expected} -> {new}) reported {n} rows"));
                        Some(Answer::Unknown)
                    }
                    Ok(Err(_)) => Some(Answer::Unknown),
                    Err(_) => {
                        connection.discard();
                        Some(Answer::Unknown)
                    }
                }
            }
        };
        let Some(answer) = answer else {
            continue;
        };
        let completed = (answer != Answer::Unknown).then(Instant::now);
        match (call, answer) {
            (_, Answer::Saw(Some(v))) => last_seen = v,
            (Call::Write(v), Answer::Written) | (Call::CompareAndSet { new: v, .. }, Answer::Swapped(true)) => {
                last_seen = v
            }
            _ => {}
        }
        operations.push(Operation {
            client: c,
            call,
            invoked,
            completed,
            answer,
        });
        done.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(rng.below(15))).await;
    }
    (operations, anomalies)
}

/// The fault the register workload goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegisterFault {
    /// kill -9 of the register's primary (restarted once the workload is over).
    KillPrimary,
    /// SIGSTOP of the register's primary past the election timeout, then SIGCONT: a deposed
    /// primary that does not know it yet, with requests waiting in its sockets.
    FreezePrimary,
}

/// Runs the register workload on a new cluster, applying `fault` to the register's primary once
/// a third of the operations are done, and checks that the history is linearizable.
async fn register_workload_through(fault: RegisterFault) {
    let mut cluster = Cluster::start_with(three_nodes(&[])).await;
    let client = cluster.client().await;
    for ddl in REGISTER_DDL {
        execute(&client, ddl).await;
    }

    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<JoinHandle<(Vec<Operation>, Vec<String>)>> = (0..REGISTER_CLIENTS)
        .map(|c| tokio::spawn(register_client(cluster.router_addr(), c, done.clone())))
        .collect();
    let deadline = Instant::now() + RECOVERY;
    while done.load(Ordering::Relaxed) < REGISTER_OPS / 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let victim = wait_for_primary(&cluster, &client, "reg_all", RECOVERY)
        .await
        .unwrap_or_else(|e| fail(&e));
    let ops_before_fault = done.load(Ordering::Relaxed);
    match fault {
        RegisterFault::KillPrimary => cluster.kill_node(victim),
        RegisterFault::FreezePrimary => {
            cluster.pause_node(victim);
            tokio::time::sleep(PAST_ELECTION_TIMEOUT).await;
            cluster.resume_node(victim);
        }
    }
    let during_fault = match fault {
        RegisterFault::KillPrimary => String::new(),
        RegisterFault::FreezePrimary => format!(
            ", {} operations completed while it was frozen",
            done.load(Ordering::Relaxed) - ops_before_fault
        ),
    };

    let mut history = History::new(Some(0));
    let mut anomalies = Vec::new();
    for task in clients {
        let (operations, found) = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .unwrap_or_else(|_| fail("the register clients did not finish within 120 s"))
            .expect("a register client panicked");
        history.operations.extend(operations);
        anomalies.extend(found);
    }
    cluster.heal_nodes().await;

    let unknown = history
        .operations
        .iter()
        .filter(|op| op.answer == Answer::Unknown)
        .count();
    eprintln!(
        "failover: register history of {} operations ({unknown} with unknown outcome); {fault:?} on node-{victim} \
         after {ops_before_fault} operations{during_fault}",
        history.operations.len()
    );
    if !anomalies.is_empty() {
        fail(&format!("answers that contradict the statements: {anomalies:?}"));
    }
    let started = Instant::now();
    let verdict = linearizability::check(&history);
    eprintln!("failover: linearizability check took {:?}", started.elapsed());
    if let Err(violation) = verdict {
        fail(&format!("the register's history is {violation}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn register_workload_is_linearizable_under_failover() {
    let _serial = one_at_a_time().await;
    register_workload_through(RegisterFault::KillPrimary).await;
}

/// A frozen primary is deposed without knowing it; when it runs again it must not answer
/// reads or writes as if it still led.
#[tokio::test(flavor = "multi_thread")]
async fn register_workload_is_linearizable_across_a_frozen_primary() {
    let _serial = one_at_a_time().await;
    register_workload_through(RegisterFault::FreezePrimary).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Reads served by followers see the last acknowledged write
// ---------------------------------------------------------------------------------------------

const KV_DDL: [&str; 4] = [
    "CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL) PARTITION BY HASH (k)",
    "CREATE TABLE kv_p0 PARTITION OF kv FOR VALUES WITH (MODULUS 3, REMAINDER 0)",
    "CREATE TABLE kv_p1 PARTITION OF kv FOR VALUES WITH (MODULUS 3, REMAINDER 1)",
    "CREATE TABLE kv_p2 PARTITION OF kv FOR VALUES WITH (MODULUS 3, REMAINDER 2)",
];
const KV_KEYS: i64 = 6;
const KV_ITERATIONS: i64 = 400;

#[tokio::test(flavor = "multi_thread")]
async fn follower_reads_see_acknowledged_writes_by_default() {
    let _serial = one_at_a_time().await;
    let cluster = Cluster::start_with(three_nodes(&[])).await;
    let writer = cluster.client().await;
    for ddl in KV_DDL {
        execute(&writer, ddl).await;
    }
    let rows: Vec<String> = (0..KV_KEYS).map(|k| format!("({k}, 0)")).collect();
    execute(&writer, &format!("INSERT INTO kv VALUES {}", rows.join(", "))).await;
    // Readers on their own sessions at the default consistency: the router spreads their reads
    // over each shard's replicas.
    let readers = [cluster.client().await, cluster.client().await];
    let shown = simple_rows(&readers[0], "SHOW tessera.read_consistency")
        .await
        .unwrap_or_else(|e| fail(&e));
    assert_eq!(
        shown,
        vec![vec![Some("linearizable".to_string())]],
        "the default read consistency"
    );

    let mut model: BTreeMap<i64, i64> = (0..KV_KEYS).map(|k| (k, 0)).collect();
    let mut stale = Vec::new();
    for i in 1..=KV_ITERATIONS {
        let k = i % KV_KEYS;
        let (outcome, count) = write(&writer, &format!("UPDATE kv SET v = {i} WHERE k = {k}")).await;
        if outcome != Outcome::Acknowledged || count != 1 {
            fail(&format!(
                "`UPDATE kv SET v = {i} WHERE k = {k}`: {outcome:?}, {count} rows"
            ));
        }
        model.insert(k, i);
        let reader = &readers[(i % 2) as usize];
        let seen = simple_rows(reader, &format!("SELECT v FROM kv WHERE k = {k}"))
            .await
            .unwrap_or_else(|e| fail(&e));
        if seen != vec![vec![Some(i.to_string())]] {
            stale.push(format!(
                "iteration {i}: k = {k} read {seen:?} after v = {i} was acknowledged"
            ));
        }
        if i % 20 == 0 {
            // A scan of every shard sees every last write too.
            let all = simple_rows(reader, "SELECT k, v FROM kv")
                .await
                .unwrap_or_else(|e| fail(&e));
            let all: BTreeMap<i64, i64> = all.iter().map(|r| (int(&r[0]), int(&r[1]))).collect();
            if all != model {
                stale.push(format!(
                    "iteration {i}: a scan read {all:?}, the acknowledged state is {model:?}"
                ));
            }
        }
    }
    if !stale.is_empty() {
        fail(&format!(
            "{} reads at the default consistency missed an acknowledged write (first 20):\n{}",
            stale.len(),
            stale.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
        ));
    }
}
