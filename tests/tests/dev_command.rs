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
