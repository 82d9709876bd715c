//! `tessera bench course` runs end to end on a small workload, through SQL and through the
//! HTTP API, and its JSON carries the fields the benchmark page quotes. (The figures
//! themselves are for people: nothing here checks a speed.)

use std::process::Command;

use tessera_tests::binaries::tessera_bin;

/// Runs `tessera bench ARGS --json` and returns its JSON; panics with its output if it fails.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let output = Command::new(tessera_bin())
        .arg("bench")
        .args(args)
        .arg("--json")
        .env("RUST_LOG", "warn")
        .output()
        .expect("cannot run tessera bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tessera bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"))
}

fn bench_course(config: &str, via: &str, more: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "course",
        "--config",
        config,
        "--via",
        via,
        "--writes",
        "300",
        "--reads",
        "200",
        "--clients",
        "4",
    ];
    args.extend_from_slice(more);
    bench_json(&args)
}

/// `figures` (a run's JSON, or its `postgres` part) say that all 300 writes and 200 reads
/// were done without an error, took some time, and that the 300 rows are there.
fn assert_all_done(figures: &serde_json::Value, doc: &serde_json::Value) {
    assert_eq!(figures["writes"]["rows"], 300, "{doc}");
    assert_eq!(figures["writes"]["errors"], 0, "{doc}");
    assert_eq!(figures["reads"]["count"], 200, "{doc}");
    assert_eq!(figures["reads"]["errors"], 0, "{doc}");
    assert_eq!(figures["rows_present"], 300, "{doc}");
    for phase in ["writes", "reads"] {
        let seconds = figures[phase]["seconds"].as_f64().unwrap_or(0.0);
        assert!(seconds > 0.0, "{phase} took no time: {doc}");
    }
}

#[test]
fn the_course_benchmark_writes_reads_and_verifies_through_sql_and_http() {
    for (config, via, replicas) in [("a1", "sql", 3), ("a2", "http", 7)] {
        let doc = bench_course(config, via, &[]);
        assert_eq!(doc["config"], config, "{doc}");
        assert_eq!(doc["via"], via, "{doc}");
        assert_eq!(doc["replicas"], replicas, "{doc}");
        assert_all_done(&doc, &doc);
    }
    let refused = Command::new(tessera_bin())
        .args(["bench", "course", "--config", "a7"])
        .output()
        .expect("cannot run tessera bench course");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("a1, a2, a3"), "{stderr}");
}

/// `--postgres` runs the same writes and reads against a local PostgreSQL and reports them
/// beside Tessera's; it is refused where it cannot run the same workload.
#[test]
fn the_course_benchmark_runs_the_same_workload_on_postgres() {
    let doc = bench_course("a1", "sql", &["--postgres"]);
    assert_all_done(&doc, &doc);
    assert_all_done(&doc["postgres"], &doc);
    for phase in ["writes", "reads"] {
        let speedup = doc["postgres"]["speedup"][phase].as_f64().unwrap_or(0.0);
        assert!(speedup > 0.0, "{phase}: {doc}");
    }
    for refused_with in [&["--via", "http"][..], &["--config", "a4"][..]] {
        let refused = Command::new(tessera_bin())
            .args(["bench", "course", "--postgres"])
            .args(refused_with)
            .output()
            .expect("cannot run tessera bench course");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains("--via sql"),
            "{refused_with:?}: {stderr}"
        );
    }
}

#[test]
fn the_balance_benchmark_counts_every_read_once_and_reports_key_movement() {
    let doc = bench_json(&["balance", "--nodes", "3", "--requests", "300", "--clients", "4"]);
    let reads: Vec<i64> = doc["reads_per_node"][0]["reads"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(reads.len(), 3, "one count per node: {doc}");
    // Every point read is served by exactly one replica.
    assert_eq!(reads.iter().sum::<i64>(), 300, "{doc}");
    let moved = &doc["moved_share"][0];
    let on_add = moved["on_add"].as_f64().unwrap_or(-1.0);
    assert!(on_add > 0.0 && on_add < 1.0, "{doc}");
}

#[test]
fn the_a4_benchmark_kills_a_node_mid_writes_and_finds_every_row() {
    let doc = bench_course("a4", "sql", &[]);
    assert_eq!(doc["config"], "a4", "{doc}");
    assert!(doc["killed"].as_str().is_some_and(|k| k.starts_with("node-")), "{doc}");
    assert_eq!(doc["writes"]["rows"], 300, "{doc}");
    assert_eq!(doc["rows_present"], 300, "{doc}");
    assert_eq!(doc["rows_wrong"], 0, "{doc}");
    assert!(doc["stall_seconds"].as_f64().is_some_and(|s| s > 0.0), "{doc}");
}

/// Ctrl-C (SIGINT) stops a running benchmark: it exits with an error saying so, its child
/// processes are gone and its scratch directory is deleted.
#[test]
fn an_interrupted_benchmark_stops_and_cleans_up() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(tessera_bin())
        .args([
            "bench",
            "course",
            "--config",
            "a4",
            "--writes",
            "16000",
            "--clients",
            "1",
        ])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("cannot run tessera bench");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut scratch = None;
    let mut line = String::new();
    // Wait until the writes run: the scratch cluster is up.
    while stderr.read_line(&mut line).expect("read stderr") > 0 {
        if let Some(at) = line.find("starting the cluster in ") {
            scratch = Some(std::path::PathBuf::from(
                line[at + "starting the cluster in ".len()..].trim(),
            ));
        }
        if line.contains("writes from") {
            break;
        }
        line.clear();
    }
    let scratch = scratch.unwrap_or_else(|| panic!("the benchmark did not say where its cluster is: {line}"));
    assert!(scratch.is_dir(), "{} does not exist", scratch.display());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("read stderr");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "an interrupted benchmark reports failure");
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(
        !scratch.exists(),
        "the scratch directory {} was left behind",
        scratch.display()
    );
    // Killed children take a moment to go.
    let mut left = String::new();
    for _ in 0..20 {
        let found = Command::new("pgrep")
            .args(["-f", &scratch.display().to_string()])
            .output()
            .expect("pgrep");
        left = String::from_utf8_lossy(&found.stdout).trim().to_string();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        left.is_empty(),
        "processes of the benchmark's cluster still run: {left}"
    );
}
