//! Multi-shard transactions under failure: two-phase commit keeps them all-or-nothing.
//!
//! - A router that stops half-way through a commit (a test switch, `--test-abandon-commit`,
//!   makes it stop where a crash would) leaves prepared writes behind; their shards settle
//!   them with the coordinator shard: dropped when nothing was decided, applied everywhere when
//!   the coordinator had recorded the commit. Rows held meanwhile are released.
//! - Concurrent transfers between accounts on different shards, each also recording itself in
//!   a third table, while a node is killed (kill -9) and restarted: afterwards every balance
//!   is exactly what the recorded transfers make it, every acknowledged transfer is recorded,
//!   and the replicas of every shard agree.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_tests::binaries::tessera_bin;
use tessera_tests::net::{free_local_addr, wait_for_tcp};
use tessera_tests::process::ManagedProcess;
use tessera_tests::replication::wait_for_replicas_to_agree;
use tessera_tests::{
    connect, describe_error, execute as run, query_count, query_rows as rows, retry_until, sqlstate, Cluster,
    ClusterOptions,
};
use tokio_postgres::Client;

fn fail(message: &str) -> ! {
    panic!("{message}")
}

/// How long prepared writes may stay unsettled: the shards wait 5 s, then ask.
const SETTLED: Duration = Duration::from_secs(30);

/// A second router of the cluster that abandons multi-shard commits after `step`.
async fn abandoning_router(cluster: &Cluster, step: &str) -> (ManagedProcess, SocketAddr) {
    let addr = free_local_addr();
    let args = [
        "router",
        "--listen",
        &addr.to_string(),
        "--catalog",
        &cluster.catalog_addr().to_string(),
        "--auth",
        "trust",
        "--test-abandon-commit",
        step,
    ];
    let mut process = ManagedProcess::tied_to_test(
        format!("router (abandons {step})"),
        tessera_bin(),
        args.iter().map(Into::into).collect(),
        cluster.dir().join(format!("router-{step}.log")),
    );
    process.start().unwrap_or_else(|e| fail(&e));
    wait_for_tcp(addr, Duration::from_secs(30), || process.check_alive())
        .await
        .unwrap_or_else(|e| fail(&e));
    (process, addr)
}

/// Runs a two-shard transaction whose COMMIT the router abandons.
async fn abandoned_commit(client: &Client, first: i32, second: i32) {
    run(client, "BEGIN").await;
    run(client, &format!("INSERT INTO studt VALUES ({first}, 'abandoned', 1)")).await;
    run(client, &format!("INSERT INTO studt VALUES ({second}, 'abandoned', 1)")).await;
    match client.simple_query("COMMIT").await {
        Ok(_) => fail("the abandoned COMMIT succeeded"),
        Err(e) => assert!(
            describe_error(&e).contains("test switch"),
            "the COMMIT failed for another reason: {}",
            describe_error(&e)
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shards_settle_a_commit_their_router_abandoned() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    tessera_tests::fixtures::create_studt(&client).await;

    // Abandoned after every shard prepared: nothing was decided, so nothing is applied.
    let (_undecided, addr) = abandoning_router(&cluster, "after-prepare").await;
    let abandoning = connect(addr).await.unwrap_or_else(|e| fail(&describe_error(&e)));
    abandoned_commit(&abandoning, 1, 5000).await;
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM studt").await,
        0,
        "prepared writes are not visible"
    );
    // The rows are held until the shards settle the transaction (after 5 s): a write to one
    // waits, and is refused with 40001 if that takes longer than it waits (5 s too).
    let started = Instant::now();
    match client.execute("INSERT INTO studt VALUES (1, 'after', 2)", &[]).await {
        Ok(_) => assert!(
            started.elapsed() >= Duration::from_secs(1),
            "a write to a held row went through at once, after {:?}",
            started.elapsed()
        ),
        Err(e) => assert_eq!(sqlstate(&e), Some("40001"), "{}", describe_error(&e)),
    }
    retry_until("a write to the held row", SETTLED, || async {
        client
            .execute(
                "INSERT INTO studt VALUES (1, 'after', 2) ON CONFLICT (stud_id) DO NOTHING",
                &[],
            )
            .await
            .map_err(|e| describe_error(&e))
    })
    .await
    .unwrap_or_else(|e| fail(&e));
    assert_eq!(
        rows(&client, "SELECT stud_id, stud_name FROM studt ORDER BY stud_id").await,
        vec![vec![Some("1".to_string()), Some("after".to_string())]],
        "the undecided transaction was dropped on both shards"
    );
    client
        .execute("INSERT INTO studt VALUES (5000, 'after', 2)", &[])
        .await
        .unwrap_or_else(|e| fail(&format!("the other held row: {}", describe_error(&e))));

    // Abandoned after the coordinator (the first shard written) recorded the commit: it is
    // committed there at once, and the other shard applies its part when it settles.
    let (_decided, addr) = abandoning_router(&cluster, "after-decide").await;
    let abandoning = connect(addr).await.unwrap_or_else(|e| fail(&describe_error(&e)));
    abandoned_commit(&abandoning, 2, 5001).await;
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM studt WHERE stud_id = 2").await,
        1,
        "the coordinator applied its part with the decision"
    );
    retry_until("the second shard's part", SETTLED, || async {
        match query_count(&client, "SELECT count(*) FROM studt WHERE stud_id = 5001").await {
            1 => Ok(()),
            n => Err(format!("{n} rows")),
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e));
    client
        .execute("UPDATE studt SET stud_marks = 3 WHERE stud_id = 5001", &[])
        .await
        .unwrap_or_else(|e| fail(&format!("the settled row is not released: {}", describe_error(&e))));

    wait_for_replicas_to_agree(&client, SETTLED)
        .await
        .unwrap_or_else(|e| fail(&e));
}

const ACCOUNTS: i32 = 40;
const OPENING_BALANCE: i64 = 1_000;
const CLIENTS: usize = 4;

/// The rows of an all-integer query.
async fn int_rows(client: &Client, sql: &str) -> Vec<Vec<i64>> {
    rows(client, sql)
        .await
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| {
                    v.and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| fail(&format!("a missing value in {sql}")))
                })
                .collect()
        })
        .collect()
}

/// What one client's transfers came to.
#[derive(Default)]
struct Tally {
    acknowledged: Vec<i64>,
    unknown: usize,
    retried: usize,
}

/// Moves money between two random accounts (on different shards, as often as not) and
/// records the transfer in `transfers`, in one transaction; tries again after a failure that
/// certainly applied nothing.
async fn transfer_client(addr: SocketAddr, client_no: usize, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    let mut client = None;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let c = match &client {
            Some(c) => c,
            None => match connect(addr).await {
                Ok(c) => client.insert(c),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let id = (client_no * 1_000 + n) as i64;
        let from = (rand::random::<u32>() % ACCOUNTS as u32) as i32;
        let to = (from + 1 + (rand::random::<u32>() % (ACCOUNTS as u32 - 1)) as i32) % ACCOUNTS;
        let amount = 1 + i64::from(rand::random::<u8>() % 50);
        let body = format!(
            "UPDATE accounts SET balance = balance - {amount} WHERE id = {from};
             UPDATE accounts SET balance = balance + {amount} WHERE id = {to};
             INSERT INTO transfers VALUES ({id}, {from}, {to}, {amount});"
        );
        let result = async {
            c.batch_execute("BEGIN").await.map_err(|e| (false, e))?;
            c.batch_execute(&body).await.map_err(|e| (false, e))?;
            c.batch_execute("COMMIT").await.map_err(|e| (true, e))
        }
        .await;
        match result {
            Ok(()) => {
                tally.acknowledged.push(id);
                n += 1;
            }
            Err((at_commit, e)) if at_commit && sqlstate(&e) == Some("40003") => {
                tally.unknown += 1;
                n += 1;
            }
            Err((_, e)) => {
                // Applied nothing: the block failed before COMMIT, or COMMIT was refused.
                tally.retried += 1;
                if e.is_closed() {
                    client = None;
                } else {
                    let _ = c.batch_execute("ROLLBACK").await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_across_shards_stay_whole_through_a_node_kill() {
    let mut options = ClusterOptions::new(3);
    options.replicas = 3;
    let mut cluster = Cluster::start_with(options).await;
    let client = cluster.client().await;
    run(
        &client,
        "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY RANGE (id)",
    )
    .await;
    for (name, from, to) in [
        ("acc_a", 0, 10),
        ("acc_b", 10, 20),
        ("acc_c", 20, 30),
        ("acc_d", 30, 40),
    ] {
        run(
            &client,
            &format!("CREATE TABLE {name} PARTITION OF accounts FOR VALUES FROM ({from}) TO ({to})"),
        )
        .await;
    }
    run(
        &client,
        "CREATE TABLE transfers (id BIGINT PRIMARY KEY, src INT, dst INT, amount BIGINT)",
    )
    .await;
    let opening: Vec<String> = (0..ACCOUNTS).map(|i| format!("({i}, {OPENING_BALANCE})")).collect();
    run(&client, &format!("INSERT INTO accounts VALUES {}", opening.join(", "))).await;

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(transfer_client(cluster.router_addr(), i, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.kill_node(1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart_node(1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let finish = tokio::time::timeout(Duration::from_secs(60), async {
        let mut tallies = Vec::new();
        for c in clients {
            tallies.push(c.await.unwrap_or_else(|e| fail(&e.to_string())));
        }
        tallies
    })
    .await;
    let tallies = finish.unwrap_or_else(|_| fail("the transfer clients did not stop within 60 s"));
    let acknowledged: Vec<i64> = tallies.iter().flat_map(|t| t.acknowledged.iter().copied()).collect();
    let unknown: usize = tallies.iter().map(|t| t.unknown).sum();
    let retried: usize = tallies.iter().map(|t| t.retried).sum();
    eprintln!(
        "two-phase: {} transfers acknowledged, {unknown} of unknown outcome, {retried} attempts refused and retried",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty(), "no transfer was acknowledged");

    // Every prepared transaction is settled by now or soon: wait for the replicas to agree,
    // then check the books.
    wait_for_replicas_to_agree(&client, SETTLED)
        .await
        .unwrap_or_else(|e| fail(&e));
    // A commit of unknown outcome, or one whose phase two did not reach a shard, is settled
    // by the shards within seconds: the books are read until they balance, or time runs out.
    let books = || async {
        let recorded = int_rows(&client, "SELECT id, src, dst, amount FROM transfers").await;
        let recorded: BTreeMap<i64, (i64, i64, i64)> =
            recorded.into_iter().map(|r| (r[0], (r[1], r[2], r[3]))).collect();
        if let Some(id) = acknowledged.iter().find(|id| !recorded.contains_key(id)) {
            return Err(format!("acknowledged transfer {id} is not recorded"));
        }
        if recorded.len() > acknowledged.len() + unknown {
            return Err(format!(
                "{} transfers recorded, more than the {} acknowledged and {unknown} unknown",
                recorded.len(),
                acknowledged.len()
            ));
        }
        let mut expected: BTreeMap<i64, i64> = (0..i64::from(ACCOUNTS)).map(|i| (i, OPENING_BALANCE)).collect();
        for (src, dst, amount) in recorded.values() {
            *expected.entry(*src).or_default() -= amount;
            *expected.entry(*dst).or_default() += amount;
        }
        let balances: BTreeMap<i64, i64> = int_rows(&client, "SELECT id, balance FROM accounts")
            .await
            .into_iter()
            .map(|r| (r[0], r[1]))
            .collect();
        if balances != expected {
            return Err(format!(
                "the balances are not what the recorded transfers make them:\n{balances:?}\n{expected:?}"
            ));
        }
        Ok(())
    };
    retry_until("the books to balance", SETTLED, books)
        .await
        .unwrap_or_else(|e| fail(&e));
    assert_eq!(
        query_count(&client, "SELECT sum(balance) FROM accounts").await,
        i64::from(ACCOUNTS) * OPENING_BALANCE
    );
}
