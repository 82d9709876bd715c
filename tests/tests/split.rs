//! Online shard splits: `tessera_split_shard` cuts a range shard in two while writers and
//! readers keep going, on a real cluster of three nodes with every shard on all three.
//!
//! Eight events writers insert rows and increment their counters (two range shards of
//! `counters`); two more writers insert `studt` rows into both halves of shard `sh2`; a
//! reader reads back acknowledged `studt` rows by key. Meanwhile `sh2` is split at 6144 and
//! `counters_high` at 6. The test checks that
//!
//! - both splits answer, `tessera.shards` shows the narrowed bounds and the new shards, and
//!   `tessera.tasks` shows the split tasks done;
//! - every acknowledged write is present exactly once (and the counters count exactly the
//!   acknowledged increments, give or take those of unknown outcome), each `studt` row in the
//!   shard its key belongs to now;
//! - no acknowledged row was ever missing from a read, before, during or after the split;
//! - every shard's replicas, those of the new shards too, hold identical rows;
//! - bad calls get their SQLSTATE: a hash shard (0A000), a split point outside the shard
//!   (22023), an unknown shard (42P01), a name that exists (42P07).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_tests::replication::wait_for_replicas_to_agree;
use tessera_tests::writes::{int, longest_stall, tally, write, write_problems, Connection, EventsWriters, Outcome};
use tessera_tests::{execute, query_error, simple_rows, sqlstate, Cluster, ClusterOptions};

const WRITERS: i64 = 8;
const STUDT_WRITERS: i64 = 2;
const RECOVERY: Duration = Duration::from_secs(60);

fn fail(message: &str) -> ! {
    panic!("{message}")
}

/// What a `studt` writer did: the keys acknowledged, of unknown outcome, and failed.
#[derive(Default)]
struct StudtLog {
    acknowledged: Vec<(i64, Instant)>,
    unknown: Vec<(i64, String)>,
    failed: Vec<(i64, String)>,
}

/// Inserts `studt` rows with keys of its own in both halves of `sh2` (4096..6144 and
/// 6144..8192) until `stop`, publishing the acknowledged keys for the reader.
async fn studt_writer(
    router: std::net::SocketAddr,
    w: i64,
    stop: Arc<AtomicBool>,
    acked: Arc<std::sync::Mutex<Vec<i64>>>,
) -> StudtLog {
    let mut log = StudtLog::default();
    let mut connection = Connection::new(vec![router]);
    let mut seq = 0i64;
    while !stop.load(Ordering::Relaxed) && seq < 1000 {
        let Some((client, _)) = connection.get().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // Alternating halves; writer w takes every STUDT_WRITERS-th key of each.
        let half = if seq % 2 == 0 { 4096 } else { 6144 };
        let key = half + 1000 + (seq / 2) * STUDT_WRITERS + w;
        seq += 1;
        let sql = format!("INSERT INTO studt VALUES ({key}, 'writer {w}', {})", key % 100);
        match write(client, &sql).await {
            (Outcome::Acknowledged, 1) => {
                log.acknowledged.push((key, Instant::now()));
                acked.lock().unwrap_or_else(|p| p.into_inner()).push(key);
            }
            (Outcome::Acknowledged, n) => log.failed.push((key, format!("reported {n} rows"))),
            (Outcome::Unknown(e), _) => {
                log.unknown.push((key, e));
                connection.discard();
            }
            (Outcome::Failed(e), _) => {
                log.failed.push((key, e));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    log
}

/// Reads back acknowledged keys, one point read each, until `stop`: returns how many reads it
/// made and the keys a read did not find.
async fn reader(
    router: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    acked: Arc<std::sync::Mutex<Vec<i64>>>,
) -> (u64, Vec<String>) {
    let mut connection = Connection::new(vec![router]);
    let mut reads = 0u64;
    let mut missing = Vec::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let key = {
            let keys = acked.lock().unwrap_or_else(|p| p.into_inner());
            if keys.is_empty() {
                None
            } else {
                i = (i + 7) % keys.len();
                Some(keys[i])
            }
        };
        let (Some(key), Some((client, _))) = (key, connection.get().await) else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        match simple_rows(client, &format!("SELECT stud_name FROM studt WHERE stud_id = {key}")).await {
            Ok(rows) if rows.len() == 1 => reads += 1,
            Ok(rows) => missing.push(format!("key {key}: {} rows", rows.len())),
            Err(e) => {
                // An error is not a wrong answer, but it must be rare: it is reported below.
                missing.push(format!("key {key}: error {e}"));
                connection.discard();
            }
        }
    }
    (reads, missing)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_range_shard_splits_under_writes_without_losing_or_duplicating_any() {
    let mut options = ClusterOptions::new(3);
    options.replicas = 3;
    let mut cluster = Cluster::start_with(options).await;
    let client = cluster.client().await;
    let writers = EventsWriters::start(
        &client,
        vec![cluster.router_addr()],
        2,
        WRITERS,
        Duration::from_millis(20),
    )
    .await;
    for ddl in [
        "CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id)",
        "CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096)",
        "CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192)",
    ] {
        execute(&client, ddl).await;
    }
    // Rows already there on both sides of the split point.
    let preload: Vec<String> = (4096..4596)
        .chain(6144..6644)
        .map(|k| format!("({k}, 'preloaded', {})", k % 100))
        .collect();
    execute(&client, &format!("INSERT INTO studt VALUES {}", preload.join(", "))).await;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let studt_writers: Vec<_> = (0..STUDT_WRITERS)
        .map(|w| tokio::spawn(studt_writer(cluster.router_addr(), w, stop.clone(), acked.clone())))
        .collect();
    let reading = tokio::spawn(reader(cluster.router_addr(), stop.clone(), acked.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The errors first, while everything runs.
    for (sql, code) in [
        ("SELECT tessera_split_shard('events', 'events_p0', 5)", "0A000"),
        ("SELECT tessera_split_shard('studt', 'sh2', 9000)", "22023"),
        ("SELECT tessera_split_shard('studt', 'sh2', 4096)", "22023"),
        ("SELECT tessera_split_shard('studt', 'sh9', 5000)", "42P01"),
        ("SELECT tessera_split_shard('studt', 'sh2', 5000, 'sh1')", "42P07"),
        ("SELECT tessera_split_shard('studt', 'sh2', 'many')", "22P02"),
    ] {
        let e = query_error(&client, sql).await;
        assert_eq!(sqlstate(&e), Some(code), "{sql}: {e}");
    }

    let started = Instant::now();
    let task = simple_rows(&client, "SELECT tessera_split_shard('studt', 'sh2', 6144)")
        .await
        .unwrap_or_else(|e| fail(&format!("the split of sh2: {e}")));
    let split_took = started.elapsed();
    let counters_started = Instant::now();
    simple_rows(
        &client,
        "SELECT tessera_split_shard('counters', 'counters_high', 6, 'counters_top')",
    )
    .await
    .unwrap_or_else(|e| fail(&format!("the split of counters_high: {e}")));
    let counters_took = counters_started.elapsed();
    eprintln!(
        "split of sh2 (task {:?}) took {split_took:?}, of counters_high {counters_took:?}",
        task[0][0]
    );
    let split_window = (started, Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;

    stop.store(true, Ordering::Relaxed);
    let mut studt_logs = Vec::new();
    for w in studt_writers {
        studt_logs.push(w.await.expect("a studt writer panicked"));
    }
    let (reads, missing) = reading.await.expect("the reader panicked");
    let logs = writers.stop().await;

    // The map: narrowed bounds, new shards, finished tasks.
    let shards = cluster
        .rows("SELECT shard_name, bounds, replicas FROM tessera.shards WHERE table_name IN ('studt', 'counters') ORDER BY shard_name")
        .await
        .unwrap_or_else(|e| fail(&e));
    let described: Vec<(String, String, i64)> = shards
        .iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].clone().unwrap_or_default(),
                int(&r[2]),
            )
        })
        .collect();
    let expect = |name: &str, bounds: &str| (name.to_string(), bounds.to_string(), 3);
    assert_eq!(
        described,
        vec![
            expect("counters_high", "FOR VALUES FROM (4) TO (6)"),
            expect("counters_low", "FOR VALUES FROM (0) TO (4)"),
            expect("counters_top", "FOR VALUES FROM (6) TO (8)"),
            expect("sh1", "FOR VALUES FROM (0) TO (4096)"),
            expect("sh2", "FOR VALUES FROM (4096) TO (6144)"),
            expect("sh2_6144", "FOR VALUES FROM (6144) TO (8192)"),
        ]
    );
    let tasks = cluster
        .rows("SELECT state, step FROM tessera.tasks WHERE kind = 'split'")
        .await
        .unwrap_or_else(|e| fail(&e));
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(tasks.iter().all(|t| t[0].as_deref() == Some("done")), "{tasks:?}");

    // Every acknowledged studt row once, in the shard its key belongs to.
    let mut acknowledged: BTreeSet<i64> = (4096..4596).chain(6144..6644).collect();
    let mut unknown = BTreeSet::new();
    let mut acknowledged_at = Vec::new();
    let mut errors = Vec::new();
    for log in &studt_logs {
        acknowledged.extend(log.acknowledged.iter().map(|(k, _)| *k));
        acknowledged_at.extend(log.acknowledged.iter().map(|(_, t)| *t));
        unknown.extend(log.unknown.iter().map(|(k, _)| *k));
        errors.extend(log.unknown.iter().chain(&log.failed).map(|(k, e)| format!("{k}: {e}")));
    }
    let failed: BTreeSet<i64> = studt_logs
        .iter()
        .flat_map(|l| l.failed.iter().map(|(k, _)| *k))
        .collect();
    eprintln!(
        "studt: {} rows acknowledged, {} unknown, {} failed; errors: {:?}",
        acknowledged.len(),
        unknown.len(),
        failed.len(),
        errors.iter().take(10).collect::<Vec<_>>()
    );
    let stall = longest_stall(&acknowledged_at, split_window.0, split_window.1);
    eprintln!("studt: longest time without an acknowledged insert during the splits: {stall:?}");
    assert!(
        errors.is_empty(),
        "a split must only pause writes, not fail them: {errors:?}"
    );
    for (shard, low, high) in [("sh2", 4096, 6144), ("sh2_6144", 6144, 8192)] {
        let rows = cluster
            .rows(&format!("SELECT stud_id FROM {shard}"))
            .await
            .unwrap_or_else(|e| fail(&e));
        let keys: Vec<i64> = rows.iter().map(|r| int(&r[0])).collect();
        let distinct: BTreeSet<i64> = keys.iter().copied().collect();
        assert_eq!(keys.len(), distinct.len(), "{shard} holds a key twice");
        assert!(
            keys.iter().all(|k| (low..high).contains(k)),
            "{shard} holds a key outside [{low}, {high})"
        );
        let expected: BTreeSet<i64> = acknowledged.range(low..high).copied().collect();
        let lost: Vec<&i64> = expected.difference(&distinct).collect();
        assert!(lost.is_empty(), "{shard}: acknowledged rows missing: {lost:?}");
        let stray: Vec<&i64> = distinct
            .difference(&expected)
            .filter(|k| !unknown.contains(k))
            .collect();
        assert!(
            stray.is_empty(),
            "{shard}: rows that were never acknowledged: {stray:?}"
        );
    }
    let all = cluster
        .rows("SELECT count(*) FROM studt WHERE stud_id >= 4096")
        .await
        .unwrap_or_else(|e| fail(&e));
    assert!(
        int(&all[0][0]) >= acknowledged.len() as i64,
        "a scan of the table sees every acknowledged row: {all:?}"
    );
    eprintln!("reader: {reads} point reads, {} misses or errors", missing.len());
    assert!(reads > 0, "the reader read nothing");
    assert!(missing.is_empty(), "acknowledged rows were not found: {missing:?}");

    // The events writers' rows and counters (the counters table was split too).
    let tally = tally(&logs, "split");
    let events = cluster
        .rows("SELECT k, writer, v FROM events")
        .await
        .unwrap_or_else(|e| fail(&e));
    let counters = cluster
        .rows("SELECT w, n FROM counters")
        .await
        .unwrap_or_else(|e| fail(&e));
    let problems = write_problems(&logs, &tally, &events, &counters);
    assert!(problems.is_empty(), "{problems:?}");

    // The new shards take writes and their replicas agree with each other.
    execute(&client, "INSERT INTO studt VALUES (8000, 'after the split', 1)").await;
    let after = simple_rows(&client, "SELECT stud_name FROM sh2_6144 WHERE stud_id = 8000")
        .await
        .unwrap_or_else(|e| fail(&e));
    assert_eq!(after, vec![vec![Some("after the split".to_string())]]);
    let agreed = wait_for_replicas_to_agree(&client, RECOVERY)
        .await
        .unwrap_or_else(|e| fail(&e));
    assert_eq!(agreed.len(), 8, "every shard's replicas agree: {agreed:?}");
    assert!(agreed.values().all(|a| a.replicas == 3), "{agreed:?}");
    cluster.check_processes().unwrap_or_else(|e| fail(&e));
}
