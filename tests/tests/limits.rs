//! Limits a user can reach with one statement: very long expressions and very large values.
//! Within the limits they work; past them the statement gets PostgreSQL's program-limit
//! SQLSTATEs (54001 stack depth, 54000 too big), nothing of it is applied, and the session
//! and the cluster go on working.

use tessera_tests::fixtures::create_studt;
use tessera_tests::{execute, query_count, query_error, query_rows, sqlstate, Cluster};

/// `col = 0 OR col = 1 OR ...` with `terms` terms: a left-deep chain `terms` levels deep.
fn or_chain(col: &str, terms: usize) -> String {
    (0..terms)
        .map(|i| format!("{col} = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

#[tokio::test(flavor = "multi_thread")]
async fn long_expressions_work_and_too_deep_ones_are_refused() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    execute(
        &client,
        "INSERT INTO studt VALUES (3, 'a', 30), (5000, 'b', 50), (9000, 'c', 90)",
    )
    .await;

    // 1,500 OR-ed equalities on the shard key (pruned and sent to shards) and on another
    // column (evaluated on every shard): both match what they should.
    let on_key = format!("SELECT count(*) FROM studt WHERE {}", or_chain("stud_id", 1_500));
    assert_eq!(query_count(&client, &on_key).await, 1, "only id 3 is below 1500");
    let on_marks = format!("SELECT count(*) FROM studt WHERE {}", or_chain("stud_marks", 1_500));
    assert_eq!(query_count(&client, &on_marks).await, 3);
    let sum = format!("SELECT {}", vec!["1"; 1_900].join(" + "));
    assert_eq!(query_rows(&client, &sum).await, vec![vec![Some("1900".to_string())]]);

    // Deeper than the limit: refused with 54001 (PostgreSQL's "stack depth limit exceeded"),
    // however long the chain, and the router keeps serving.
    for terms in [2_500, 200_000] {
        let sql = format!("SELECT count(*) FROM studt WHERE {}", or_chain("stud_id", terms));
        let e = query_error(&client, &sql).await;
        assert_eq!(sqlstate(&e), Some("54001"), "{terms} terms: {e}");
    }
    assert_eq!(query_count(&client, "SELECT count(*) FROM studt").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_too_large_for_one_write_is_refused_and_the_cluster_goes_on() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    execute(
        &client,
        "CREATE TABLE blobs (id INT PRIMARY KEY, v TEXT) PARTITION BY RANGE (id)",
    )
    .await;
    execute(
        &client,
        "CREATE TABLE blobs_low PARTITION OF blobs FOR VALUES FROM (0) TO (100)",
    )
    .await;
    execute(
        &client,
        "CREATE TABLE blobs_high PARTITION OF blobs FOR VALUES FROM (100) TO (200)",
    )
    .await;

    // A 6 MB value is replicated and read back whole.
    execute(&client, "INSERT INTO blobs VALUES (1, repeat('x', 6000000))").await;
    let rows = query_rows(&client, "SELECT length(v) FROM blobs WHERE id = 1").await;
    assert_eq!(rows, vec![vec![Some("6000000".to_string())]]);

    // 20 MB in one write is refused before anything is proposed, as is an UPDATE that would
    // grow a row past the limit; the existing row is untouched.
    let e = query_error(&client, "INSERT INTO blobs VALUES (2, repeat('y', 20000000))").await;
    assert_eq!(sqlstate(&e), Some("54000"), "{e}");
    let e = query_error(&client, "UPDATE blobs SET v = v || v WHERE id = 1").await;
    assert_eq!(sqlstate(&e), Some("54000"), "{e}");
    let rows = query_rows(&client, "SELECT id, length(v) FROM blobs ORDER BY id").await;
    assert_eq!(rows, vec![vec![Some("1".to_string()), Some("6000000".to_string())]]);

    // Both shards, on every replica, still take writes at once.
    execute(&client, "INSERT INTO blobs VALUES (3, 'small'), (150, 'small too')").await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM blobs").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_bigger_than_a_log_entry_apply_whole() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    execute(&client, "CREATE TABLE big (id INT PRIMARY KEY, v TEXT)").await;
    // 200,000 rows in one shard: each statement below writes several MiB there, more than a
    // log entry carries, so it goes in pieces that apply together.
    for start in (0..200_000).step_by(20_000) {
        let values: Vec<String> = (start..start + 20_000).map(|i| format!("({i}, 'row {i}')")).collect();
        execute(&client, &format!("INSERT INTO big VALUES {}", values.join(", "))).await;
    }
    assert_eq!(query_count(&client, "SELECT count(*) FROM big").await, 200_000);
    let rows = query_rows(&client, "UPDATE big SET v = v || ' updated' WHERE id >= 50000").await;
    assert!(rows.is_empty());
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM big WHERE v LIKE '% updated'").await,
        150_000
    );
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM big WHERE v NOT LIKE '% updated'").await,
        50_000
    );
    execute(&client, "DELETE FROM big WHERE id % 2 = 0").await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM big").await, 100_000);
    execute(&client, "DELETE FROM big").await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM big").await, 0);
}
