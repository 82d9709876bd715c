//! Transactions on a Tessera cluster: a transaction is atomic, isolated from other sessions
//! until COMMIT and reads its own writes; ROLLBACK discards it. One that writes to several
//! shards commits on all of them or on none (two-phase commit): a failed statement, a conflict
//! found at COMMIT or a ROLLBACK leaves nothing of it on any shard. (What happens when the
//! router dies half-way through such a commit is tested in `two_phase.rs`.)

use tessera_tests::fixtures::create_studt;
use tessera_tests::{describe_error, execute as run, query_count, query_error, query_rows as rows, sqlstate, Cluster};
use tokio_postgres::Client;

/// Asserts that `sql` fails with `code` and that the message names every one of `words`.
async fn assert_refused(client: &Client, sql: &str, code: &str, words: &[&str]) {
    let error = query_error(client, sql).await;
    let text = describe_error(&error);
    assert_eq!(
        sqlstate(&error),
        Some(code),
        "`{sql}` failed with the wrong SQLSTATE: {text}"
    );
    let message = error
        .as_db_error()
        .map(|db| db.message().to_string())
        .unwrap_or_default();
    for word in words {
        assert!(
            message.contains(word),
            "the error of `{sql}` should name {word}: {text}"
        );
    }
}

/// The `(stud_id, stud_name)` rows of studt, in key order.
async fn names(client: &Client) -> Vec<(String, String)> {
    rows(client, "SELECT stud_id, stud_name FROM studt ORDER BY stud_id")
        .await
        .into_iter()
        .map(|r| {
            let text = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            (text(0), text(1))
        })
        .collect()
}

fn pairs(list: &[(i32, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(id, name)| (id.to_string(), name.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_writing_to_several_shards_commits_on_all_or_none() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    let observer = cluster.client().await;
    create_studt(&client).await;
    run(
        &client,
        "INSERT INTO studt VALUES (9000, 'stays', 40), (13000, 'moves', 1)",
    )
    .await;

    // Two shards, then ROLLBACK: nothing anywhere.
    run(&client, "BEGIN").await;
    run(&client, "INSERT INTO studt VALUES (1, 'first shard', 10)").await;
    run(&client, "INSERT INTO studt VALUES (5000, 'second shard', 20)").await;
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM studt").await,
        4,
        "it reads its own writes"
    );
    run(&client, "ROLLBACK").await;
    assert_eq!(names(&observer).await, pairs(&[(9000, "stays"), (13000, "moves")]));

    // Four shards, one statement spanning two, a row moved between shards, a delete: the
    // observer sees none of it before COMMIT and all of it after.
    run(&client, "BEGIN").await;
    run(&client, "INSERT INTO studt VALUES (2, 'a', 1), (4097, 'b', 2)").await;
    run(
        &client,
        "UPDATE studt SET stud_id = 5, stud_name = 'moved' WHERE stud_id = 13000",
    )
    .await;
    run(&client, "DELETE FROM studt WHERE stud_id = 9000").await;
    assert_eq!(
        names(&client).await,
        pairs(&[(2, "a"), (5, "moved"), (4097, "b")]),
        "the transaction sees its writes on every shard"
    );
    assert_eq!(names(&observer).await, pairs(&[(9000, "stays"), (13000, "moves")]));
    run(&client, "COMMIT").await;
    let committed = pairs(&[(2, "a"), (5, "moved"), (4097, "b")]);
    assert_eq!(names(&observer).await, committed);

    // A statement that fails on one shard aborts the block: even COMMIT applies nothing.
    run(&client, "BEGIN").await;
    run(&client, "INSERT INTO studt VALUES (8200, 'lost', 1)").await;
    assert_refused(
        &client,
        "INSERT INTO studt VALUES (12289, 'lost', 1), (4097, 'dup', 2)",
        "23505",
        &[],
    )
    .await;
    assert_refused(&client, "SELECT 1", "25P02", &[]).await;
    run(&client, "COMMIT").await;
    assert_eq!(names(&observer).await, committed);

    // A row another session changed after the transaction wrote it: COMMIT fails with 40001
    // and nothing of the transaction is applied, on either shard.
    run(&client, "BEGIN").await;
    run(&client, "UPDATE studt SET stud_name = 'by the block' WHERE stud_id = 2").await;
    run(
        &client,
        "UPDATE studt SET stud_name = 'by the block' WHERE stud_id = 4097",
    )
    .await;
    run(
        &observer,
        "UPDATE studt SET stud_name = 'by the observer' WHERE stud_id = 4097",
    )
    .await;
    assert_refused(&client, "COMMIT", "40001", &[]).await;
    assert_eq!(
        names(&observer).await,
        pairs(&[(2, "a"), (5, "moved"), (4097, "by the observer")])
    );

    // The implicit transaction of a query string with several statements, and TRUNCATE of
    // several tables inside a block (as `pgbench -i` runs it).
    client
        .simple_query("INSERT INTO studt VALUES (3, 'c', 1); INSERT INTO studt VALUES (8201, 'd', 2)")
        .await
        .unwrap_or_else(|e| panic!("the query string failed: {}", describe_error(&e)));
    assert_eq!(query_count(&observer, "SELECT count(*) FROM studt").await, 5);
    run(&client, "CREATE TABLE other (id INT PRIMARY KEY, note TEXT)").await;
    run(&client, "INSERT INTO other VALUES (1, 'x')").await;
    run(&client, "BEGIN").await;
    run(&client, "TRUNCATE studt, other").await;
    run(&client, "INSERT INTO other VALUES (2, 'y')").await;
    assert_eq!(query_count(&observer, "SELECT count(*) FROM studt").await, 5);
    run(&client, "COMMIT").await;
    assert_eq!(query_count(&observer, "SELECT count(*) FROM studt").await, 0);
    assert_eq!(
        rows(&observer, "SELECT id, note FROM other").await,
        vec![vec![Some("2".to_string()), Some("y".to_string())]]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_shard_transaction_is_atomic_and_reads_its_own_writes() {
    let cluster = Cluster::start(3).await;
    let writer = cluster.client().await;
    let observer = cluster.client().await;
    create_studt(&writer).await;
    run(
        &writer,
        "INSERT INTO studt VALUES (4096, 'gina', 50), (4097, 'hal', 60), (1, 'elsewhere', 70)",
    )
    .await;

    run(&writer, "BEGIN").await;
    run(
        &writer,
        "INSERT INTO studt VALUES (4200, 'new', 80), (4300, 'newer', 90)",
    )
    .await;
    run(
        &writer,
        "UPDATE studt SET stud_marks = stud_marks + 1 WHERE stud_id = 4096",
    )
    .await;
    run(&writer, "DELETE FROM studt WHERE stud_id = 4097").await;

    // The transaction sees its own writes, by key, by range and in a read of every shard.
    assert_eq!(
        rows(
            &writer,
            "SELECT stud_id, stud_marks FROM studt WHERE stud_id BETWEEN 4096 AND 8191 ORDER BY stud_id"
        )
        .await,
        vec![
            vec![Some("4096".into()), Some("51".into())],
            vec![Some("4200".into()), Some("80".into())],
            vec![Some("4300".into()), Some("90".into())],
        ]
    );
    assert_eq!(query_count(&writer, "SELECT count(*) FROM studt").await, 4);
    assert_eq!(
        query_count(&writer, "SELECT stud_marks FROM studt WHERE stud_id = 4096").await,
        51
    );

    // Another session sees none of it before COMMIT.
    assert_eq!(query_count(&observer, "SELECT count(*) FROM studt").await, 3);
    assert_eq!(
        query_count(&observer, "SELECT stud_marks FROM studt WHERE stud_id = 4096").await,
        50
    );
    assert_eq!(
        query_count(
            &observer,
            "SELECT count(*) FROM studt WHERE stud_id IN (4097, 4200, 4300)"
        )
        .await,
        1
    );

    run(&writer, "COMMIT").await;

    // After COMMIT it sees all of it.
    assert_eq!(
        rows(
            &observer,
            "SELECT stud_id, stud_name, stud_marks FROM studt ORDER BY stud_id"
        )
        .await,
        vec![
            vec![Some("1".into()), Some("elsewhere".into()), Some("70".into())],
            vec![Some("4096".into()), Some("gina".into()), Some("51".into())],
            vec![Some("4200".into()), Some("new".into()), Some("80".into())],
            vec![Some("4300".into()), Some("newer".into()), Some("90".into())],
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_discards_every_write_of_the_transaction() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    let observer = cluster.client().await;
    create_studt(&client).await;
    run(
        &client,
        "INSERT INTO studt VALUES (8192, 'a', 1), (8193, 'b', 2), (9000, 'c', 3)",
    )
    .await;
    let before = rows(&observer, "SELECT * FROM studt ORDER BY stud_id").await;

    run(&client, "BEGIN").await;
    run(&client, "INSERT INTO studt VALUES (8194, 'd', 4)").await;
    run(
        &client,
        "UPDATE studt SET stud_name = 'changed' WHERE stud_id >= 8192 AND stud_id < 12288",
    )
    .await;
    run(&client, "DELETE FROM studt WHERE stud_id = 9000").await;
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM studt WHERE stud_name = 'changed'").await,
        3
    );
    run(&client, "ROLLBACK").await;

    assert_eq!(rows(&client, "SELECT * FROM studt ORDER BY stud_id").await, before);
    assert_eq!(rows(&observer, "SELECT * FROM studt ORDER BY stud_id").await, before);

    // A failed statement aborts the transaction; nothing of it is applied.
    run(&client, "BEGIN").await;
    run(&client, "INSERT INTO studt VALUES (8195, 'e', 5)").await;
    assert_refused(&client, "INSERT INTO studt VALUES (8192, 'duplicate', 0)", "23505", &[]).await;
    assert_refused(&client, "SELECT * FROM studt", "25P02", &[]).await;
    run(&client, "ROLLBACK").await;
    assert_eq!(rows(&observer, "SELECT * FROM studt ORDER BY stud_id").await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn savepoints_recover_a_failed_statement_and_refuse_to_undo_writes() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;

    // Outside a block, savepoints are refused as PostgreSQL refuses them.
    assert_refused(&client, "SAVEPOINT s", "25P01", &["transaction blocks"]).await;

    // An error after a savepoint fails the block; ROLLBACK TO the savepoint recovers it and
    // the writes before the savepoint are kept.
    run(&client, "BEGIN").await;
    run(&client, "INSERT INTO studt VALUES (1, 'kept', 1)").await;
    run(&client, "SAVEPOINT before_error").await;
    assert_refused(&client, "SELECT 1/0", "22012", &["division by zero"]).await;
    assert_refused(&client, "SELECT 1", "25P02", &["aborted"]).await;
    run(&client, "ROLLBACK TO SAVEPOINT before_error").await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM studt").await, 1);
    run(&client, "RELEASE SAVEPOINT before_error").await;
    assert_refused(&client, "RELEASE SAVEPOINT before_error", "3B001", &["before_error"]).await;
    run(&client, "ROLLBACK").await;
    run(&client, "BEGIN").await;
    run(&client, "INSERT INTO studt VALUES (1, 'kept', 1)").await;
    run(&client, "SAVEPOINT s").await;
    run(&client, "SAVEPOINT t").await;
    run(&client, "RELEASE SAVEPOINT s").await;
    run(&client, "COMMIT").await;
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM studt WHERE stud_id = 1").await,
        1
    );

    // Undoing a write made after the savepoint is not supported: refused, the block stays
    // failed, and ROLLBACK undoes all of it.
    run(&client, "BEGIN").await;
    run(&client, "SAVEPOINT s").await;
    run(&client, "INSERT INTO studt VALUES (2, 'undone', 2)").await;
    assert_refused(&client, "ROLLBACK TO SAVEPOINT s", "0A000", &["cannot undo writes"]).await;
    assert_refused(&client, "SELECT 1", "25P02", &["aborted"]).await;
    run(&client, "ROLLBACK").await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM studt").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statement_that_fails_to_parse_in_the_extended_protocol_fails_the_block() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;

    run(&client, "BEGIN").await;
    client
        .execute("INSERT INTO studt VALUES ($1, 'lost', 1)", &[&7i32])
        .await
        .expect("the insert in the block succeeds");
    // Parse fails (unknown table): PostgreSQL aborts the block, so COMMIT rolls back.
    let e = client
        .prepare("SELECT * FROM no_such_table WHERE x = $1")
        .await
        .expect_err("preparing a query of a missing table fails");
    assert_eq!(sqlstate(&e), Some("42P01"), "{e}");
    assert_refused(&client, "SELECT 1", "25P02", &["aborted"]).await;
    let tags = client.simple_query("COMMIT").await.expect("COMMIT answers");
    assert!(
        tags.iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::CommandComplete(_))),
        "COMMIT completes"
    );
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM studt").await,
        0,
        "the failed block wrote nothing"
    );
}
