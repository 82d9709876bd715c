//! Transactions on a Tessera cluster: a transaction whose writes stay in one shard is atomic,
//! isolated from other sessions until COMMIT and reads its own writes; ROLLBACK discards it;
//! and a transaction that would write to a second shard is refused at that statement with
//! SQLSTATE 0A000 naming both shards, leaving nothing of it applied. (That refusal is a
//! difference from PostgreSQL by design, so it is tested here and not in the differential
//! scripts.)

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

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_writing_to_a_second_shard_is_refused_and_nothing_is_applied() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;

    // Explicit transaction, then ROLLBACK.
    run(&client, "BEGIN").await;
    run(&client, "INSERT INTO studt VALUES (1, 'first shard', 10)").await;
    assert_refused(
        &client,
        "INSERT INTO studt VALUES (5000, 'second shard', 20)",
        "0A000",
        &["sh1", "sh2"],
    )
    .await;
    run(&client, "ROLLBACK").await;
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM studt WHERE stud_id IN (1, 5000)").await,
        0
    );

    // The refused statement aborts the transaction: even COMMIT applies nothing.
    run(&client, "INSERT INTO studt VALUES (9000, 'stays', 40)").await;
    run(&client, "BEGIN").await;
    run(&client, "UPDATE studt SET stud_marks = 0 WHERE stud_id = 13000").await;
    run(&client, "INSERT INTO studt VALUES (13000, 'fourth shard', 30)").await;
    assert_refused(
        &client,
        "DELETE FROM studt WHERE stud_id = 9000",
        "0A000",
        &["sh3", "sh4"],
    )
    .await;
    assert_refused(&client, "SELECT 1", "25P02", &[]).await;
    run(&client, "COMMIT").await;
    assert_eq!(
        rows(&client, "SELECT stud_id, stud_name FROM studt").await,
        vec![vec![Some("9000".to_string()), Some("stays".to_string())]]
    );

    // One statement of a transaction writing to two shards.
    run(&client, "BEGIN").await;
    assert_refused(
        &client,
        "INSERT INTO studt VALUES (2, 'a', 1), (4097, 'b', 2)",
        "0A000",
        &["sh1", "sh2"],
    )
    .await;
    run(&client, "ROLLBACK").await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM studt").await, 1);

    // The implicit transaction of a query string with several statements.
    assert_refused(
        &client,
        "INSERT INTO studt VALUES (3, 'a', 1); INSERT INTO studt VALUES (8200, 'b', 2)",
        "0A000",
        &["sh1", "sh3"],
    )
    .await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM studt").await, 1);

    // The session is usable afterwards, and a statement spanning shards outside a transaction
    // is allowed.
    run(
        &client,
        "INSERT INTO studt VALUES (4, 'a', 1), (4098, 'b', 2), (8201, 'c', 3), (12289, 'd', 4)",
    )
    .await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM studt").await, 5);
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
