//! Group commit: appends from many groups at once share disk flushes, and an append is reported
//! durable only after a flush. These check ratios of counters, never timings.

mod common;

use common::{append, entries, entry, observe, tempdir};
use tessera_wal::{SyncMode, Wal};

const GROUPS: u64 = 16;
const APPENDS_PER_GROUP: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_appends_from_many_groups_share_fsyncs() {
    let dir = tempdir();
    let wal = Wal::open(dir.path(), SyncMode::Durable).expect("open the write-ahead log");
    let start = wal.stats();

    let tasks: Vec<_> = (1..=GROUPS)
        .map(|g| {
            let mut log = wal.group(g);
            tokio::spawn(async move {
                for i in 1..=APPENDS_PER_GROUP {
                    append(&mut log, vec![entry(1, i)]).await;
                }
                log
            })
        })
        .collect();
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.expect("appending task"));
    }

    let end = wal.stats();
    let writes = end.writes - start.writes;
    let fsyncs = end.fsyncs - start.fsyncs;
    assert_eq!(writes, GROUPS * APPENDS_PER_GROUP, "one write per append");
    assert!(fsyncs > 0, "durable appends must be flushed");
    // 16 appenders each wait for their flush before the next append, so while one flush runs
    // the others queue up; a writer that flushed per write would have fsyncs == writes.
    assert!(
        fsyncs * 4 <= writes,
        "group commit is not sharing flushes: {fsyncs} fsyncs for {writes} concurrent appends"
    );

    for log in &mut logs {
        assert_eq!(observe(log).await.entries, entries(1, 1, APPENDS_PER_GROUP));
    }
    drop(logs);
    wal.shutdown();
    drop(wal);

    let wal = Wal::<common::TestRaft>::open(dir.path(), SyncMode::Durable).expect("reopen");
    for g in 1..=GROUPS {
        assert_eq!(
            observe(&mut wal.group(g)).await.entries,
            entries(1, 1, APPENDS_PER_GROUP),
            "group {g} after a restart"
        );
    }
}

#[tokio::test]
async fn an_append_is_reported_durable_only_after_a_flush() {
    let dir = tempdir();
    let wal = Wal::open(dir.path(), SyncMode::Durable).expect("open the write-ahead log");
    let mut log = wal.group(1);
    for i in 1..=20 {
        let before = wal.stats().fsyncs;
        append(&mut log, vec![entry(1, i)]).await;
        assert!(
            wal.stats().fsyncs > before,
            "append {i} was reported durable before any flush"
        );
    }
}

#[tokio::test]
async fn unsafe_mode_never_flushes() {
    let dir = tempdir();
    let wal = Wal::open(dir.path(), SyncMode::Unsafe).expect("open the write-ahead log");
    let mut log = wal.group(1);
    append(&mut log, entries(1, 1, 5)).await;
    let stats = wal.stats();
    assert_eq!(stats.fsyncs, 0);
    assert!(stats.writes >= 1, "the append was acknowledged");
    assert_eq!(stats.bytes, 0, "an acknowledged append may still be only in memory");
    wal.shutdown();
    assert!(wal.stats().bytes > 0, "a clean shutdown writes what was held in memory");
}

/// Records nobody waits for (the commit point, purges) cost no flush of their own: they reach
/// the disk with the next append's flush, and are then there after a restart.
#[tokio::test]
async fn commit_points_ride_along_with_the_next_flush() {
    use openraft::storage::RaftLogStorage;

    let dir = tempdir();
    let wal = Wal::open(dir.path(), SyncMode::Durable).expect("open the write-ahead log");
    let mut log = wal.group(1);
    append(&mut log, entries(1, 1, 3)).await;
    let before = wal.stats().fsyncs;
    for i in 1..=3 {
        log.save_committed(Some(common::log_id(1, i)))
            .await
            .expect("save_committed");
    }
    // The writer thread takes the records at once; give it the chance to (wrongly) flush.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(wal.stats().fsyncs, before, "a commit point alone must not cost a flush");

    append(&mut log, vec![entry(1, 4)]).await;
    assert_eq!(
        wal.stats().fsyncs,
        before + 1,
        "the append's flush covers the commit points"
    );
    drop(log);
    wal.shutdown();
    drop(wal);

    let wal = Wal::<common::TestRaft>::open(dir.path(), SyncMode::Durable).expect("reopen");
    let observed = observe(&mut wal.group(1)).await;
    assert_eq!(observed.committed, Some(common::log_id(1, 3)));
    assert_eq!(observed.entries, entries(1, 1, 4));
}
