//! `tessera dev`, the command a new user runs first: it prints its ready line, serves
//! PostgreSQL clients, stops cleanly on Ctrl-C (exit status 0), and finds every row again when
//! started on the same data directory.

use std::time::Duration;

use tessera_tests::net::free_local_addr;
use tessera_tests::{connect, describe_error, execute, query_rows, retry_until, simple_rows, DevServer};

/// How long `tessera dev` may take to exit after SIGINT.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn dev_serves_clients_stops_on_ctrl_c_and_keeps_its_data() {
    let dir = tempfile::Builder::new()
        .prefix("tessera-dev-")
        .tempdir()
        .expect("cannot create a temp dir");
    let listen = free_local_addr();

    let mut dev = DevServer::start(dir.path(), listen, 3)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dev.addr().port(), listen.port(), "ready line: {}", dev.ready_line());
    let client = connect(dev.addr())
        .await
        .unwrap_or_else(|e| panic!("cannot connect: {}", describe_error(&e)));
    for statement in [
        "CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id)",
        "CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096)",
        "CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192)",
        "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)",
        "INSERT INTO studt VALUES (1, 'alice', 90), (4096, 'bob', 72), (4097, 'carol', NULL)",
        "INSERT INTO notes VALUES (1, 'kept across restarts')",
    ] {
        execute(&client, statement).await;
    }
    let before = query_rows(&client, "SELECT * FROM studt ORDER BY stud_id").await;
    assert_eq!(before.len(), 3);
    drop(client);

    let status = dev.interrupt(SHUTDOWN_TIMEOUT).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "tessera dev must exit with status 0 within {SHUTDOWN_TIMEOUT:?} of SIGINT, got {status:?}\n{}",
        dev.diagnostics()
    );
    drop(dev);

    // Started again on the same directory, it has every row.
    let mut dev = DevServer::start(dir.path(), listen, 3)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = dev.addr();
    let after = retry_until("reading studt after the restart", Duration::from_secs(30), || async {
        let client = connect(addr).await.map_err(|e| describe_error(&e))?;
        simple_rows(&client, "SELECT * FROM studt ORDER BY stud_id").await
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after, before, "studt after restarting tessera dev");
    let client = connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot connect: {}", describe_error(&e)));
    assert_eq!(
        query_rows(&client, "SELECT body FROM notes").await,
        vec![vec![Some("kept across restarts".to_string())]]
    );
    drop(client);

    let status = dev.interrupt(SHUTDOWN_TIMEOUT).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "second shutdown: {status:?}\n{}",
        dev.diagnostics()
    );
}

/// `tessera dev`'s catalog starts more nodes on request (its provisioner is `process`): a
/// `tessera node` child process with its data under the catalog's directory, which takes
/// replicas, ends with `tessera dev`, and is started again with it.
#[tokio::test(flavor = "multi_thread")]
async fn dev_starts_a_node_on_request_stops_it_and_starts_it_again() {
    let dir = tempfile::Builder::new()
        .prefix("tessera-dev-")
        .tempdir()
        .expect("cannot create a temp dir");
    let mut dev = DevServer::start(dir.path(), free_local_addr(), 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = connect(dev.addr())
        .await
        .unwrap_or_else(|e| panic!("cannot connect: {}", describe_error(&e)));
    execute(&client, "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)").await;
    execute(&client, "INSERT INTO notes VALUES (1, 'one'), (2, 'two')").await;
    let moved = simple_rows(&client, "SELECT tessera_add_node()")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        moved,
        vec![vec![Some("0".to_string())]],
        "one replica per shard: nothing to move"
    );
    let nodes = simple_rows(
        &client,
        "SELECT node_id, address, state FROM tessera.nodes ORDER BY node_id",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(nodes.iter().all(|n| n[2].as_deref() == Some("alive")), "{nodes:?}");
    let node_dir = dir.path().join("data").join("catalog").join("nodes").join("node-1");
    assert!(node_dir.is_dir(), "no data directory {}", node_dir.display());
    let address = nodes[1][1].clone().unwrap_or_default();
    assert_eq!(
        tessera_tests::process::pids_with_arg("--listen", &address).len(),
        1,
        "the new node runs as a process of its own"
    );
    // The new node takes replicas: a table with two replicas per shard needs it.
    execute(&client, "CREATE TABLE pairs (id INT PRIMARY KEY) WITH (replicas = 2)").await;
    execute(&client, "INSERT INTO pairs VALUES (1)").await;
    assert_eq!(
        simple_rows(
            &client,
            "SELECT count(*) FROM tessera.replicas WHERE shard_name = 'pairs'"
        )
        .await
        .unwrap_or_else(|e| panic!("{e}")),
        vec![vec![Some("2".to_string())]]
    );
    drop(client);
    let status = dev.interrupt(SHUTDOWN_TIMEOUT).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "tessera dev did not stop cleanly: {status:?}"
    );
    retry_until("the started node's exit", Duration::from_secs(20), || async {
        match tessera_tests::process::pids_with_arg("--listen", &address).as_slice() {
            [] => Ok(()),
            pids => Err(format!("still running: {pids:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // Started again on the same directory, the catalog starts the node it made again: same id,
    // its replica of `pairs` back.
    let mut dev = DevServer::start(dir.path(), free_local_addr(), 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = connect(dev.addr())
        .await
        .unwrap_or_else(|e| panic!("cannot connect: {}", describe_error(&e)));
    let ids: Vec<Option<String>> = nodes.iter().map(|n| n[0].clone()).collect();
    retry_until("the started node's return", Duration::from_secs(30), || async {
        let now = simple_rows(&client, "SELECT node_id, state FROM tessera.nodes ORDER BY node_id").await?;
        let alive: Vec<Option<String>> = now
            .iter()
            .filter(|n| n[1].as_deref() == Some("alive"))
            .map(|n| n[0].clone())
            .collect();
        if alive == ids {
            Ok(())
        } else {
            Err(format!("nodes {now:?}, expected {ids:?} alive"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        query_rows(&client, "SELECT id FROM pairs").await.len(),
        1,
        "the row of pairs is back"
    );
    drop(client);
    let status = dev.interrupt(SHUTDOWN_TIMEOUT).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "tessera dev did not stop cleanly: {status:?}"
    );
}
