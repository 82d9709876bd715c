//! pgbench against a cluster: custom scripts on `studt` in the simple, extended and prepared
//! query modes with concurrent clients, checked by an invariant of the script (every
//! transaction adds exactly one mark in all); `pgbench -i`, whose data generation is one
//! transaction over four tables, then ALTER TABLE ... ADD PRIMARY KEY; and the built-in
//! select-only and TPC-B runs, the latter updating three tables and inserting into a fourth
//! in every transaction (each table one shard): two-phase commit must keep their sums equal.

use std::process::{Command, Output};

use tessera_tests::binaries::pg_bin_dir;
use tessera_tests::fixtures::create_studt;
use tessera_tests::{query_count, query_error, sqlstate, Cluster};

/// Each transaction upserts one random student: a new one gets 1 mark, an existing one one
/// more, so the marks of all students sum to the number of transactions.
const SCRIPT: &str = "\\set id random(0, 16383)
INSERT INTO studt VALUES (:id, 'pgbench', 1) ON CONFLICT (stud_id) DO UPDATE SET stud_marks = studt.stud_marks + 1;
SELECT stud_name, stud_marks FROM studt WHERE stud_id = :id;
";

const CLIENTS: usize = 8;
const TRANSACTIONS_PER_CLIENT: usize = 100;

fn pgbench(cluster: &Cluster, args: &[&str]) -> Output {
    let addr = cluster.router_addr();
    Command::new(pg_bin_dir().join("pgbench"))
        .args([
            "-h",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-U",
            "tessera",
        ])
        .args(args)
        .arg("tessera")
        .output()
        .expect("cannot run pgbench")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_scripts_run_in_every_query_mode_and_lose_nothing() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("upsert.sql");
    std::fs::write(&script, SCRIPT).expect("write the script");
    let script = script.to_string_lossy().into_owned();
    let modes = ["simple", "extended", "prepared"];
    for mode in modes {
        let output = pgbench(
            &cluster,
            &[
                "-n",
                "-f",
                &script,
                "-c",
                &CLIENTS.to_string(),
                "-j",
                "2",
                "-t",
                &TRANSACTIONS_PER_CLIENT.to_string(),
                "-M",
                mode,
            ],
        );
        let out = text(&output);
        assert!(output.status.success(), "pgbench -M {mode} failed:\n{out}");
        let total = CLIENTS * TRANSACTIONS_PER_CLIENT;
        assert!(
            out.contains(&format!("number of transactions actually processed: {total}/{total}")),
            "pgbench -M {mode}:\n{out}"
        );
        assert!(
            out.contains("number of failed transactions: 0 "),
            "pgbench -M {mode}:\n{out}"
        );
    }
    let transactions = (modes.len() * CLIENTS * TRANSACTIONS_PER_CLIENT) as i64;
    assert_eq!(
        query_count(&client, "SELECT sum(stud_marks) FROM studt").await,
        transactions,
        "every transaction adds one mark"
    );
}

/// The number after `label` in pgbench's report.
fn reported(out: &str, label: &str) -> i64 {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().split(['/', ' ']).next().map(str::to_string))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no \"{label}\" in pgbench's report:\n{out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn pgbench_initializes_and_its_built_in_runs_keep_the_books_balanced() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;

    // `pgbench -i` as it comes: drop, create, generate (one transaction over the four tables:
    // TRUNCATE, INSERTs and a COPY of 100,000 rows), vacuum (a no-op with a notice), then
    // ALTER TABLE ... ADD PRIMARY KEY on three of the tables, which re-keys their rows.
    let init = pgbench(&cluster, &["-i", "-s", "1"]);
    let out = text(&init);
    assert!(init.status.success(), "pgbench -i failed:\n{out}");
    assert!(out.contains("VACUUM does nothing in Tessera"), "{out}");
    for (table, rows) in [
        ("pgbench_branches", 1),
        ("pgbench_tellers", 10),
        ("pgbench_accounts", 100_000),
        ("pgbench_history", 0),
    ] {
        assert_eq!(
            query_count(&client, &format!("SELECT count(*) FROM {table}")).await,
            rows,
            "{table} after pgbench -i"
        );
    }
    let duplicate = query_error(&client, "INSERT INTO pgbench_accounts VALUES (7, 1, 0, '')").await;
    assert_eq!(sqlstate(&duplicate), Some("23505"), "the added key is enforced");
    assert_eq!(
        query_count(
            &client,
            "SELECT count(*) FROM pgbench_accounts WHERE aid BETWEEN 10 AND 19"
        )
        .await,
        10
    );

    // The built-in select-only run.
    let select_only = pgbench(&cluster, &["-S", "-c", "4", "-j", "2", "-t", "200"]);
    let out = text(&select_only);
    assert!(select_only.status.success(), "pgbench -S failed:\n{out}");
    assert_eq!(
        reported(&out, "number of transactions actually processed:"),
        800,
        "{out}"
    );
    report("pgbench -S", &out);

    // The built-in TPC-B run: every transaction updates an account, a teller and the branch
    // and inserts into the history, each table one shard. Transactions that meet a conflict on
    // the one branch row (40001) are tried again.
    let output = pgbench(&cluster, &["-c", "4", "-j", "2", "-t", "50", "--max-tries", "1000"]);
    let out = text(&output);
    assert!(output.status.success(), "the TPC-B run failed:\n{out}");
    let processed = reported(&out, "number of transactions actually processed:");
    assert_eq!(processed, 200, "{out}");
    let sums: Vec<i64> = futures::future::join_all(
        [
            "SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts",
            "SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers",
            "SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches",
            "SELECT coalesce(sum(delta), 0) FROM pgbench_history",
        ]
        .map(|sql| query_count(&client, sql)),
    )
    .await;
    assert!(
        sums.iter().all(|s| *s == sums[0]),
        "accounts, tellers, branches and history disagree: {sums:?}\n{out}"
    );
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM pgbench_history").await,
        processed,
        "one history row per transaction pgbench saw commit"
    );
    report(
        &format!(
            "pgbench TPC-B ({} transactions retried)",
            reported(&out, "number of transactions retried:")
        ),
        &out,
    );
}

/// Prints pgbench's throughput and latency lines (figures for the notes, not assertions).
fn report(what: &str, out: &str) {
    let figures: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("tps") || l.starts_with("latency"))
        .collect();
    eprintln!("{what}: {}", figures.join("; "));
}
