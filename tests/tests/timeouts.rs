//! A long query stops when the client cancels it (CancelRequest, psql's Ctrl-C) or when the
//! session's `statement_timeout` runs out, with SQLSTATE 57014, on every shard it reached; the
//! session stays usable afterwards. A session left idle inside a transaction block for longer
//! than its `idle_in_transaction_session_timeout` is ended with FATAL 25P03, and its
//! transaction is not committed; one that keeps working, or idles outside a block, is not.

use std::time::{Duration, Instant};

use futures::SinkExt;
use tessera_tests::{describe_error, execute, query_count, sqlstate, Cluster};
use tokio_postgres::NoTls;

const ROWS: i64 = 200_000;
/// A query that reads every row of every shard and merges them in order.
const LONG_QUERY: &str = "SELECT k, v FROM big ORDER BY v";

async fn load(client: &tokio_postgres::Client) {
    execute(
        client,
        "CREATE TABLE big (k INT PRIMARY KEY, v TEXT) PARTITION BY HASH (k)",
    )
    .await;
    for r in 0..4 {
        execute(
            client,
            &format!("CREATE TABLE big{r} PARTITION OF big FOR VALUES WITH (MODULUS 4, REMAINDER {r})"),
        )
        .await;
    }
    let sink = client.copy_in("COPY big FROM STDIN").await.expect("COPY");
    futures::pin_mut!(sink);
    let mut data = String::new();
    for k in 0..ROWS {
        data.push_str(&format!("{k}\tvalue {:09}\n", (k * 7919) % ROWS));
    }
    sink.send(bytes::Bytes::from(data)).await.expect("COPY data");
    assert_eq!(sink.finish().await.expect("COPY end"), ROWS as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_and_statement_timeout_stop_a_long_query() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    load(&client).await;

    // How long the query takes here, to know that what follows stops it early.
    let began = Instant::now();
    let rows = client.query(LONG_QUERY, &[]).await.expect("the long query");
    let full = began.elapsed();
    assert_eq!(rows.len() as i64, ROWS);
    assert!(full > Duration::from_millis(100), "the long query took only {full:?}");

    // statement_timeout, well under the query's time.
    execute(&client, "SET statement_timeout = 20").await;
    let began = Instant::now();
    let e = match client.query(LONG_QUERY, &[]).await {
        Ok(rows) => panic!("the query outlived statement_timeout ({} rows)", rows.len()),
        Err(e) => e,
    };
    assert_eq!(sqlstate(&e), Some("57014"), "{e:?}");
    assert!(
        describe_error(&e).contains("statement timeout"),
        "{}",
        describe_error(&e)
    );
    assert!(
        began.elapsed() < full,
        "stopped after {:?}, the full query takes {full:?}",
        began.elapsed()
    );
    // The session stays usable; a query well within a (generous, on a shared machine)
    // timeout completes.
    execute(&client, "SET statement_timeout = 10000").await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM big WHERE k < 10").await, 10);
    execute(&client, "SET statement_timeout = 0").await;

    // A cancel request from another connection, as psql's Ctrl-C sends it.
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        token.cancel_query(NoTls).await
    });
    let began = Instant::now();
    let e = match client.query(LONG_QUERY, &[]).await {
        Ok(rows) => panic!("the query outlived its cancel ({} rows)", rows.len()),
        Err(e) => e,
    };
    assert_eq!(sqlstate(&e), Some("57014"), "{e:?}");
    assert!(describe_error(&e).contains("user request"), "{}", describe_error(&e));
    assert!(
        began.elapsed() < full,
        "stopped after {:?}, the full query takes {full:?}",
        began.elapsed()
    );
    canceller.await.expect("canceller").expect("cancel request");
    assert_eq!(query_count(&client, "SELECT count(*) FROM big").await, ROWS);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_idle_in_a_transaction_block_is_ended() {
    let cluster = Cluster::start(1).await;
    let other = cluster.client().await;
    execute(&other, "CREATE TABLE t (k INT PRIMARY KEY)").await;
    let addr = cluster.router_addr();
    let (client, connection) = tokio_postgres::Config::new()
        .host(addr.ip().to_string())
        .port(addr.port())
        .user("tessera")
        .dbname("tessera")
        .connect(NoTls)
        .await
        .expect("connect");
    let connection = tokio::spawn(connection);
    execute(&client, "SET idle_in_transaction_session_timeout = 300").await;
    let e = other
        .simple_query("SET idle_in_transaction_session_timeout = 'soon'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), Some("22023"), "{}", describe_error(&e));

    // Idle outside a block: nothing happens.
    tokio::time::sleep(Duration::from_millis(700)).await;
    execute(&client, "SELECT 1").await;

    // Busy inside a block, never idle for 300 ms: nothing happens either.
    execute(&client, "BEGIN").await;
    for k in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        execute(&client, &format!("INSERT INTO t VALUES ({k})")).await;
    }
    execute(&client, "COMMIT").await;
    assert_eq!(query_count(&other, "SELECT count(*) FROM t").await, 8);

    // Idle inside a block past the limit: the session ends, and its insert with it.
    execute(&client, "BEGIN").await;
    execute(&client, "INSERT INTO t VALUES (100)").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "the session still serves"
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the connection did not end")
        .expect("connection task");
    let e = ended.expect_err("the server ended the connection without an error");
    assert_eq!(sqlstate(&e), Some("25P03"), "{}", describe_error(&e));
    assert!(
        describe_error(&e).contains("idle-in-transaction timeout"),
        "{}",
        describe_error(&e)
    );
    assert_eq!(query_count(&other, "SELECT count(*) FROM t").await, 8);
}
