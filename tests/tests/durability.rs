//! Durability: every acknowledged row survives a restart of the whole cluster (SIGTERM, then
//! start again on the same data directories) and a node killed with SIGKILL and restarted,
//! and a node whose write-ahead log is corrupted in the middle sets its data aside, starts
//! empty under a new id, and its replicas are re-created from their peers.
//! Nodes run with fsync on. Reads after a restart are retried while the cluster recovers
//! (errors only); the rows read are then compared exactly with the rows acknowledged.

use std::collections::BTreeMap;
use std::time::Duration;

use tessera_tests::fixtures::create_studt;
use tessera_tests::{describe_error, execute, retry_until, simple_rows, Cluster};
use tokio_postgres::Client;

/// How long a restarted cluster may take to serve reads again (primaries must be elected).
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(45);

/// The rows of `studt` by id: (name, marks).
type Students = BTreeMap<i32, (String, Option<i32>)>;

/// Inserts `count` students whose ids are spread over all four shards, in multi-row
/// statements that each span several shards, and returns what was acknowledged.
async fn insert_students(client: &Client, first: i32, count: i32) -> Students {
    let mut acknowledged = Students::new();
    let ids: Vec<i32> = (0..count).map(|i| (first + i * 97) % 16384).collect();
    for batch in ids.chunks(20) {
        let rows: Vec<(i32, String, Option<i32>)> = batch
            .iter()
            .map(|&id| (id, format!("student {id}"), (id % 7 != 0).then_some(id % 101)))
            .collect();
        let values: Vec<String> = rows
            .iter()
            .map(|(id, name, marks)| {
                let marks = marks.map_or("NULL".to_string(), |m| m.to_string());
                format!("({id}, '{name}', {marks})")
            })
            .collect();
        let sql = format!("INSERT INTO studt VALUES {}", values.join(", "));
        execute(client, &sql).await;
        acknowledged.extend(rows.into_iter().map(|(id, name, marks)| (id, (name, marks))));
    }
    acknowledged
}

/// Every row of `studt`, read through a new connection; retried on errors while the cluster
/// recovers.
async fn read_students(cluster: &Cluster) -> Students {
    let rows = retry_until("reading studt", RECOVERY_TIMEOUT, || async {
        let client = tessera_tests::connect(cluster.router_addr())
            .await
            .map_err(|e| describe_error(&e))?;
        simple_rows(
            &client,
            "SELECT stud_id, stud_name, stud_marks FROM studt ORDER BY stud_id",
        )
        .await
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    rows.into_iter()
        .map(|row| {
            let id = row[0]
                .as_deref()
                .expect("stud_id is never NULL")
                .parse()
                .expect("stud_id is an integer");
            let name = row[1].clone().expect("every inserted student has a name");
            let marks = row[2].as_deref().map(|m| m.parse().expect("stud_marks is an integer"));
            (id, (name, marks))
        })
        .collect()
}

/// Compares what was read with what was acknowledged, naming the first differences.
fn assert_same_students(read: &Students, acknowledged: &Students, when: &str) {
    let missing: Vec<&i32> = acknowledged
        .keys()
        .filter(|id| !read.contains_key(id))
        .take(10)
        .collect();
    let unexpected: Vec<&i32> = read
        .keys()
        .filter(|id| !acknowledged.contains_key(id))
        .take(10)
        .collect();
    let changed: Vec<&i32> = acknowledged
        .iter()
        .filter(|(id, row)| read.get(id).is_some_and(|r| r != *row))
        .map(|(id, _)| id)
        .take(10)
        .collect();
    assert!(
        missing.is_empty() && unexpected.is_empty() && changed.is_empty(),
        "{when}: read {} rows, {} were acknowledged; missing ids (first 10): {missing:?}; \
         unexpected ids: {unexpected:?}; changed rows: {changed:?}",
        read.len(),
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_rows_survive_a_restart_of_every_process() {
    let mut cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    let mut acknowledged = insert_students(&client, 0, 200).await;
    assert_same_students(&read_students(&cluster).await, &acknowledged, "before the restart");
    drop(client);

    let reports = cluster.stop().await;
    assert!(
        reports.iter().all(|r| r.status.is_some() && !r.forced),
        "every process must be running before stop() and exit within its timeout after SIGTERM: {reports:?}"
    );
    cluster.restart_all().await;
    assert_same_students(
        &read_students(&cluster).await,
        &acknowledged,
        "after stopping and restarting every process",
    );

    // The restarted cluster takes writes again, and they too survive a restart.
    let client = cluster.client().await;
    let more = retry_until("inserting after the restart", RECOVERY_TIMEOUT, || async {
        // ON CONFLICT DO NOTHING makes a retry safe if an attempt committed but its answer
        // was lost.
        simple_rows(
            &client,
            "INSERT INTO studt VALUES (16383, 'after restart', 1), (1, 'after restart', 2) \
             ON CONFLICT (stud_id) DO NOTHING",
        )
        .await
    })
    .await;
    more.unwrap_or_else(|e| panic!("{e}"));
    acknowledged.insert(16383, ("after restart".into(), Some(1)));
    acknowledged.insert(1, ("after restart".into(), Some(2)));
    drop(client);
    cluster.restart_all().await;
    assert_same_students(&read_students(&cluster).await, &acknowledged, "after a second restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_rows_survive_kill_9_of_a_node() {
    let mut cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    let acknowledged = insert_students(&client, 5, 120).await;

    // No pause between the acknowledgement and the kill: acknowledged means on disk.
    cluster.kill_node(1);
    cluster.restart_node(1).await;
    assert_same_students(
        &read_students(&cluster).await,
        &acknowledged,
        "after kill -9 and restart of node-1",
    );

    cluster.kill_node(0);
    cluster.restart_node(0).await;
    assert_same_students(
        &read_students(&cluster).await,
        &acknowledged,
        "after kill -9 and restart of node-0",
    );
    cluster.check_processes().unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_written_while_a_node_is_down_are_kept() {
    let mut cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    let mut acknowledged = insert_students(&client, 11, 40).await;

    // Every shard has a replica on every node (3 replicas, 3 nodes): the other two are a
    // majority, so writes go on once a new primary is elected where node-2 led.
    cluster.kill_node(2);
    let rows = [(100, 'a'), (4200, 'b'), (8300, 'c'), (12400, 'd')];
    for (id, tag) in rows {
        // ON CONFLICT DO NOTHING makes the retry safe if an attempt committed but its answer
        // was lost.
        let sql = format!("INSERT INTO studt VALUES ({id}, 'while down {tag}', 7) ON CONFLICT (stud_id) DO NOTHING");
        retry_until(
            &format!("inserting {id} while node-2 is down"),
            RECOVERY_TIMEOUT,
            || simple_rows(&client, &sql),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        acknowledged.insert(id, (format!("while down {tag}"), Some(7)));
    }
    assert_same_students(&read_students(&cluster).await, &acknowledged, "while node-2 is down");

    cluster.restart_node(2).await;
    assert_same_students(&read_students(&cluster).await, &acknowledged, "after node-2 came back");
}

/// Flips bytes in the middle of the largest segment of a node's write-ahead log.
fn corrupt_the_log(node_dir: &std::path::Path) {
    let wal = node_dir.join("wal");
    let segment = std::fs::read_dir(&wal)
        .unwrap_or_else(|e| panic!("{}: {e}", wal.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap_or_else(|| panic!("no segment in {}", wal.display()));
    let mut bytes = std::fs::read(&segment).expect("read the segment");
    assert!(
        bytes.len() > 1_000,
        "{} is only {} bytes",
        segment.display(),
        bytes.len()
    );
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&segment, &bytes).expect("write the segment");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_log_is_corrupt_starts_empty_and_its_replicas_come_back_from_peers() {
    let mut options = tessera_tests::ClusterOptions::new(4);
    options.replicas = 3;
    options.dead_after_ms = Some(1_500);
    let mut cluster = Cluster::start_with(options).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    let acknowledged = insert_students(&client, 11, 400).await;

    let addr = cluster.node_addr(1).to_string();
    let before = simple_rows(
        &client,
        &format!("SELECT node_id FROM tessera.nodes WHERE address = '{addr}'"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let old_id = before[0][0].clone().unwrap_or_default();
    cluster.kill_node(1);
    let node_dir = cluster.dir().join("node-1");
    corrupt_the_log(&node_dir);
    cluster.restart_node(1).await;

    // The node set its data aside and registered anew; the old identity's replicas are
    // re-created from their peers, every shard back to three.
    let set_aside = std::fs::read_dir(&node_dir)
        .expect("node dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("corrupt-"));
    assert!(
        set_aside,
        "the corrupt data was not set aside in {}",
        node_dir.display()
    );
    retry_until(
        "every shard back to three replicas, none on the old identity",
        RECOVERY_TIMEOUT,
        || async {
            let shards = simple_rows(&client, "SELECT shard_name, replicas, nodes FROM tessera.shards").await?;
            let nodes = simple_rows(
                &client,
                &format!("SELECT node_id FROM tessera.nodes WHERE address = '{addr}'"),
            )
            .await?;
            let pending: Vec<String> = shards
                .iter()
                .filter(|s| {
                    s[1].as_deref() != Some("3") || s[2].as_deref().unwrap_or("").split(',').any(|n| n == old_id)
                })
                .map(|s| format!("{s:?}"))
                .collect();
            let new_id = nodes.iter().filter_map(|n| n[0].clone()).any(|id| id != old_id);
            if pending.is_empty() && new_id {
                Ok(())
            } else {
                Err(format!("pending: {pending:?}; nodes at {addr}: {nodes:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_same_students(
        &read_students(&cluster).await,
        &acknowledged,
        "after node-1's log was corrupted",
    );
    cluster.check_processes().unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_log_is_corrupt_refuses_to_start_when_its_peers_cannot_stand_in() {
    // One replica per shard: nobody else holds what node-1 holds.
    let mut options = tessera_tests::ClusterOptions::new(3);
    options.replicas = 1;
    let mut cluster = Cluster::start_with(options).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    insert_students(&client, 3, 200).await;
    cluster.kill_node(1);
    let node_dir = cluster.dir().join("node-1");
    corrupt_the_log(&node_dir);
    // It may bind its port before it reads its log: wait for it to exit.
    let _ = cluster.try_restart_node(1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cluster.node_is_running(1) {
        assert!(std::time::Instant::now() < deadline, "node-1 started on a corrupt log");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(cluster.dir().join("node-1.log")).unwrap_or_default();
    assert!(log.contains("not starting, so that nothing is lost"), "{log}");
    let set_aside = std::fs::read_dir(&node_dir)
        .expect("node dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("corrupt-"));
    assert!(!set_aside, "the only copy of node-1's data was set aside");
    assert!(node_dir.join("wal").is_dir(), "node-1's log is gone");
}
