//! Shard pruning, seen through EXPLAIN: the router's plan lists the shards a statement reaches,
//! and a predicate on the shard key must keep the others out. The assertions look only for
//! shard names as words in the plan text, whatever its layout.

use tessera_tests::fixtures::{create_studt, mentions_shard, STUDT_SHARDS};
use tessera_tests::{execute, query_rows, Cluster};
use tokio_postgres::Client;

/// The plan of `EXPLAIN <statement>`, one line per row.
async fn explain(client: &Client, statement: &str) -> String {
    let sql = format!("EXPLAIN {statement}");
    let rows = query_rows(client, &sql).await;
    assert!(!rows.is_empty(), "`{sql}` returned no rows");
    rows.into_iter()
        .map(|row| row.into_iter().flatten().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that the plan of `statement` names exactly the shards `reached` among `all`.
async fn assert_reaches(client: &Client, statement: &str, all: &[&str], reached: &[&str]) {
    let plan = explain(client, statement).await;
    let named: Vec<&str> = all
        .iter()
        .copied()
        .filter(|shard| mentions_shard(&plan, shard))
        .collect();
    assert_eq!(
        named, reached,
        "EXPLAIN {statement} should reach exactly {reached:?}; its plan:\n{plan}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_shows_only_the_shards_a_statement_reaches() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    execute(
        &client,
        "INSERT INTO studt VALUES (5, 'a', 1), (4100, 'b', 2), (9000, 'c', 3), (13000, 'd', 4)",
    )
    .await;

    assert_reaches(
        &client,
        "SELECT * FROM studt WHERE stud_id = 5",
        &STUDT_SHARDS,
        &["sh1"],
    )
    .await;
    assert_reaches(
        &client,
        "SELECT * FROM studt WHERE stud_id = 4096",
        &STUDT_SHARDS,
        &["sh2"],
    )
    .await;
    assert_reaches(
        &client,
        "SELECT stud_name FROM studt WHERE stud_id = 16383",
        &STUDT_SHARDS,
        &["sh4"],
    )
    .await;
    assert_reaches(
        &client,
        "SELECT * FROM studt WHERE stud_id BETWEEN 5000 AND 9000",
        &STUDT_SHARDS,
        &["sh2", "sh3"],
    )
    .await;
    assert_reaches(
        &client,
        "SELECT * FROM studt WHERE stud_id >= 12288",
        &STUDT_SHARDS,
        &["sh4"],
    )
    .await;
    assert_reaches(
        &client,
        "SELECT * FROM studt WHERE stud_id < 4096 AND stud_marks > 1",
        &STUDT_SHARDS,
        &["sh1"],
    )
    .await;
    assert_reaches(
        &client,
        "SELECT count(*) FROM studt WHERE stud_id = 9000",
        &STUDT_SHARDS,
        &["sh3"],
    )
    .await;
    // No predicate on the shard key: every shard.
    assert_reaches(&client, "SELECT * FROM studt", &STUDT_SHARDS, &STUDT_SHARDS).await;
    assert_reaches(
        &client,
        "SELECT * FROM studt WHERE stud_marks = 3",
        &STUDT_SHARDS,
        &STUDT_SHARDS,
    )
    .await;
    assert_reaches(
        &client,
        "SELECT stud_marks, count(*) FROM studt GROUP BY stud_marks ORDER BY 1 LIMIT 2",
        &STUDT_SHARDS,
        &STUDT_SHARDS,
    )
    .await;

    // Hash partitions: the key lands in the partition PostgreSQL would choose (PostgreSQL 15,
    // `SELECT tableoid::regclass FROM accounts WHERE acct_id = 2` → accounts_p2).
    for statement in [
        "CREATE TABLE accounts (acct_id BIGINT PRIMARY KEY, owner TEXT) PARTITION BY HASH (acct_id)",
        "CREATE TABLE accounts_p0 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 0)",
        "CREATE TABLE accounts_p1 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 1)",
        "CREATE TABLE accounts_p2 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 2)",
        "CREATE TABLE accounts_p3 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 3)",
    ] {
        execute(&client, statement).await;
    }
    let partitions = ["accounts_p0", "accounts_p1", "accounts_p2", "accounts_p3"];
    assert_reaches(
        &client,
        "SELECT * FROM accounts WHERE acct_id = 2",
        &partitions,
        &["accounts_p2"],
    )
    .await;
    assert_reaches(
        &client,
        "SELECT * FROM accounts WHERE acct_id = 1",
        &partitions,
        &["accounts_p0"],
    )
    .await;
    assert_reaches(&client, "SELECT * FROM accounts", &partitions, &partitions).await;
}
