//! `--max-connections`: a router serves at most that many clients at once; one more is refused
//! with SQLSTATE 53300 ("sorry, too many clients already"), and a slot freed by a client that
//! leaves is taken by the next one.

use std::time::{Duration, Instant};

use tessera_tests::{connect, describe_error, query_count, sqlstate, Cluster, ClusterOptions};

const LIMIT: usize = 3;

#[tokio::test(flavor = "multi_thread")]
async fn clients_beyond_max_connections_are_refused_with_53300() {
    let mut options = ClusterOptions::new(1);
    options.router_flags = vec!["--max-connections".into(), LIMIT.to_string()];
    let cluster = Cluster::start_with(options).await;
    let addr = cluster.router_addr();

    // The harness's own start-up connections may take a moment to be released.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut clients = Vec::new();
    while clients.len() < LIMIT {
        match connect(addr).await {
            Ok(c) => {
                assert_eq!(query_count(&c, "SELECT 1").await, 1);
                clients.push(c);
            }
            Err(e) if Instant::now() < deadline => {
                assert_eq!(sqlstate(&e), Some("53300"), "{}", describe_error(&e));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!(
                "only {} of {LIMIT} clients connected: {}",
                clients.len(),
                describe_error(&e)
            ),
        }
    }

    match connect(addr).await {
        Ok(_) => panic!("client {} of a router limited to {LIMIT} was served", LIMIT + 1),
        Err(e) => {
            assert_eq!(sqlstate(&e), Some("53300"), "{}", describe_error(&e));
            assert!(
                describe_error(&e).contains("too many clients"),
                "{}",
                describe_error(&e)
            );
        }
    }
    // The clients already in keep working.
    for c in &clients {
        assert_eq!(query_count(c, "SELECT 2").await, 2);
    }

    // One leaves; the next client gets its slot.
    drop(clients.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect(addr).await {
            Ok(c) => {
                assert_eq!(query_count(&c, "SELECT 3").await, 3);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                assert_eq!(sqlstate(&e), Some("53300"), "{}", describe_error(&e));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("a freed slot was not reused: {}", describe_error(&e)),
        }
    }
}
