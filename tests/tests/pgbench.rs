//! pgbench against a cluster: custom scripts on `studt` in the simple, extended and prepared
//! query modes with concurrent clients, checked by an invariant of the script (every
//! transaction adds exactly one mark in all), and the built-in TPC-B run, which needs
//! multi-shard transactions: it must stop with the multi-shard error and leave the data as it
//! was. (`pgbench -i` stops the same way, at its TRUNCATE of four tables in one transaction.)

use std::process::{Command, Output};

use tessera_tests::binaries::pg_bin_dir;
use tessera_tests::fixtures::create_studt;
use tessera_tests::{execute, query_count, Cluster};

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

#[tokio::test(flavor = "multi_thread")]
async fn the_tpcb_run_stops_at_the_multi_shard_error_and_changes_nothing() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    // pgbench's tables, as `pgbench -i -s 1` makes them but smaller; each is one shard.
    for ddl in [
        "CREATE TABLE pgbench_branches (bid INT PRIMARY KEY, bbalance INT, filler CHAR(88))",
        "CREATE TABLE pgbench_tellers (tid INT PRIMARY KEY, bid INT, tbalance INT, filler CHAR(84))",
        "CREATE TABLE pgbench_accounts (aid INT PRIMARY KEY, bid INT, abalance INT, filler CHAR(84))",
        "CREATE TABLE pgbench_history (tid INT, bid INT, aid INT, delta INT, mtime TIMESTAMP, filler CHAR(22))",
        "INSERT INTO pgbench_branches VALUES (1, 0, '')",
    ] {
        execute(&client, ddl).await;
    }
    let tellers: Vec<String> = (1..=10).map(|t| format!("({t}, 1, 0, '')")).collect();
    execute(
        &client,
        &format!("INSERT INTO pgbench_tellers VALUES {}", tellers.join(", ")),
    )
    .await;
    let accounts: Vec<String> = (1..=1000).map(|a| format!("({a}, 1, 0, '')")).collect();
    execute(
        &client,
        &format!("INSERT INTO pgbench_accounts VALUES {}", accounts.join(", ")),
    )
    .await;

    // pgbench reads the scale from pgbench_branches; -n skips its VACUUM.
    let output = pgbench(&cluster, &["-n", "-c", "2", "-t", "20"]);
    let out = text(&output);
    assert!(!output.status.success(), "the TPC-B run succeeded:\n{out}");
    assert!(out.contains("a transaction can write to one shard only"), "{out}");
    for (sql, want) in [
        ("SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts", 0),
        ("SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers", 0),
        ("SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches", 0),
        ("SELECT count(*) FROM pgbench_history", 0),
    ] {
        assert_eq!(query_count(&client, sql).await, want, "{sql} after the refused run");
    }

    // `pgbench -i` stops at its first multi-shard statement and says why.
    let init = pgbench(&cluster, &["-i", "-s", "1"]);
    let out = text(&init);
    assert!(!init.status.success(), "pgbench -i succeeded:\n{out}");
    assert!(out.contains("ERROR:"), "{out}");
}
