//! A COPY FROM STDIN of ten million rows streams through the router in bounded memory: the
//! router's resident memory after the ten millionth row is within a few megabytes of what it
//! was after the first million, where holding the rows would take gigabytes. The rows are
//! generated as they are sent (`k, 'student k', k % 100`), into a table of four range shards
//! on one node, and every one is counted at the end.
//!
//! The node runs with `--snapshot-after 50`, so that its log is purged as the load goes and
//! the test does not need the memory of ten million rows of unpurged log on the node; the
//! router, which is what is measured, is the same as any other.

use std::time::Instant;

use futures::SinkExt;
use tessera_tests::{describe_error, Cluster, ClusterOptions};

const ROWS: u64 = 10_000_000;
const CHUNK: u64 = 10_000;
/// Resident memory of the router is sampled after every this many rows.
const SAMPLE_EVERY: u64 = 1_000_000;
/// How much the router's resident memory may grow between the first and the last sample: a
/// margin for the allocator's caches, against the 600 MB and more the nine million rows in
/// between would take if the router held them.
const GROWTH_ALLOWED_KIB: u64 = 48 << 10;

/// The resident set of process `pid`, in KiB (`VmRSS` of /proc/PID/status).
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_of_ten_million_rows_does_not_grow_the_routers_memory() {
    let mut options = ClusterOptions::new(1);
    options.node_flags = vec!["--snapshot-after".into(), "50".into()];
    let cluster = Cluster::start_with(options).await;
    let client = cluster.client().await;
    let quarter = ROWS / 4;
    client
        .batch_execute(&format!(
            "CREATE TABLE big (k BIGINT PRIMARY KEY, v TEXT, n INT) PARTITION BY RANGE (k);
             CREATE TABLE big0 PARTITION OF big FOR VALUES FROM (MINVALUE) TO ({quarter});
             CREATE TABLE big1 PARTITION OF big FOR VALUES FROM ({quarter}) TO ({});
             CREATE TABLE big2 PARTITION OF big FOR VALUES FROM ({}) TO ({});
             CREATE TABLE big3 PARTITION OF big FOR VALUES FROM ({}) TO (MAXVALUE);",
            2 * quarter,
            2 * quarter,
            3 * quarter,
            3 * quarter
        ))
        .await
        .unwrap_or_else(|e| panic!("CREATE TABLE: {}", describe_error(&e)));
    let pid = cluster.router_pid().expect("the router is running");
    let before = resident_kib(pid);

    let start = Instant::now();
    let sink = client
        .copy_in("COPY big FROM STDIN")
        .await
        .unwrap_or_else(|e| panic!("COPY: {}", describe_error(&e)));
    futures::pin_mut!(sink);
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let mut k = 0;
    while k < ROWS {
        let end = k + CHUNK;
        let mut chunk = String::with_capacity(32 * CHUNK as usize);
        for i in k..end {
            chunk.push_str(&format!("{i}\tstudent {i}\t{}\n", i % 100));
        }
        sink.send(bytes::Bytes::from(chunk))
            .await
            .unwrap_or_else(|e| panic!("COPY data after {k} rows: {}", describe_error(&e)));
        k = end;
        if k % SAMPLE_EVERY == 0 {
            samples.push((k, resident_kib(pid)));
        }
    }
    let written = sink
        .finish()
        .await
        .unwrap_or_else(|e| panic!("COPY end: {}", describe_error(&e)));
    let seconds = start.elapsed().as_secs_f64();
    let after = resident_kib(pid);
    let shown: Vec<String> = samples
        .iter()
        .map(|(rows, kib)| format!("{}M: {} MiB", rows / 1_000_000, kib / 1024))
        .collect();
    eprintln!(
        "COPY of {ROWS} rows in {seconds:.1} s; router resident memory before {} MiB, {}, after {} MiB",
        before / 1024,
        shown.join(", "),
        after / 1024
    );
    assert_eq!(written, ROWS, "the rows COPY reports");
    let count: i64 = client
        .query_one("SELECT count(*) FROM big", &[])
        .await
        .unwrap_or_else(|e| panic!("count: {}", describe_error(&e)))
        .get(0);
    assert_eq!(count as u64, ROWS, "the rows in the table");

    let first = samples[0].1;
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(first).max(after);
    assert!(
        peak <= first + GROWTH_ALLOWED_KIB,
        "the router's memory grew with the rows streamed through it: {} MiB after the first million, \
         {} MiB at most later ({})",
        first / 1024,
        peak / 1024,
        shown.join(", ")
    );
}
