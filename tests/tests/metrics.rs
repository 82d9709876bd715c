//! Every process serves Prometheus metrics on `--metrics ADDR`: the router counts statements by
//! kind and outcome with their latency and open connections; each node reports its replicas'
//! roles, indexes, reads and writes and its write-ahead log's flushes; the catalog its nodes and
//! shards. The figures are checked against what the test did.

use std::net::SocketAddr;

use tessera_tests::fixtures::create_studt;
use tessera_tests::http::request;
use tessera_tests::{query_count, Cluster};

async fn scrape(addr: SocketAddr) -> String {
    let reply = request(addr, "GET", "/metrics", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.status, 200, "GET /metrics on {addr}: {reply:?}");
    reply.body
}

/// The values of `name` whose label set contains every one of `labels`, one per sample.
fn samples(page: &str, name: &str, labels: &[&str]) -> Vec<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, set) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|want| set.contains(want))).then(|| value.parse().ok())?
        })
        .collect()
}

fn one(page: &str, name: &str, labels: &[&str]) -> f64 {
    match samples(page, name, labels).as_slice() {
        [v] => *v,
        other => panic!("{name}{labels:?}: expected one sample, found {other:?} in\n{page}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_process_serves_metrics_that_count_what_happened() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    for id in [1, 4100, 8200, 12300, 2, 4101, 8201, 12301, 3, 4102] {
        client
            .execute("INSERT INTO studt VALUES ($1, 'x', 1)", &[&id])
            .await
            .expect("insert");
    }
    let duplicate = client.execute("INSERT INTO studt VALUES (1, 'again', 2)", &[]).await;
    assert!(duplicate.is_err(), "a duplicate key was accepted");
    assert_eq!(query_count(&client, "SELECT count(*) FROM studt").await, 10);

    let addrs = cluster.metrics_addrs();
    let router = scrape(addrs.router).await;
    assert_eq!(
        one(
            &router,
            "tessera_router_statements_total",
            &["kind=\"insert\"", "outcome=\"ok\""]
        ),
        10.0,
        "{router}"
    );
    assert_eq!(
        one(
            &router,
            "tessera_router_statements_total",
            &["kind=\"insert\"", "outcome=\"error\""]
        ),
        1.0
    );
    assert_eq!(
        one(&router, "tessera_router_statement_seconds_count", &["kind=\"insert\""]),
        11.0
    );
    assert_eq!(
        one(
            &router,
            "tessera_router_statement_seconds_bucket",
            &["kind=\"insert\"", "le=\"+Inf\""]
        ),
        11.0
    );
    assert!(one(&router, "tessera_router_connections", &[]) >= 1.0, "{router}");
    assert_eq!(one(&router, "tessera_router_nodes", &["state=\"alive\""]), 3.0);

    // Each shard has exactly one primary, and the primaries executed the writes.
    let mut leaders = std::collections::BTreeMap::<String, f64>::new();
    let mut writes = 0.0;
    for (i, addr) in addrs.nodes.iter().enumerate() {
        let page = scrape(*addr).await;
        for line in page.lines().filter(|l| l.starts_with("tessera_replica_leader{")) {
            let shard = line
                .split("shard=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("");
            let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
            *leaders.entry(shard.to_string()).or_default() += value;
        }
        writes += samples(&page, "tessera_replica_writes_total", &[]).iter().sum::<f64>();
        assert!(
            one(&page, "tessera_wal_fsyncs_total", &[]) > 0.0,
            "node {i} never flushed its log:\n{page}"
        );
        assert!(one(&page, "tessera_node_replicas", &[]) >= 1.0, "node {i}:\n{page}");
    }
    assert_eq!(leaders.len(), 4, "{leaders:?}");
    assert!(leaders.values().all(|n| *n == 1.0), "primaries per shard: {leaders:?}");
    assert!(writes >= 11.0, "the nodes counted {writes} writes for 11 INSERTs");

    let catalog = scrape(addrs.catalog).await;
    assert_eq!(
        one(&catalog, "tessera_catalog_nodes", &["state=\"alive\""]),
        3.0,
        "{catalog}"
    );
    assert_eq!(one(&catalog, "tessera_catalog_shards", &[]), 4.0);
    assert_eq!(one(&catalog, "tessera_catalog_replicas", &[]), 12.0);
    assert_eq!(
        one(&catalog, "tessera_catalog_leader", &[]),
        1.0,
        "a catalog of one leads"
    );
    assert!(one(&catalog, "tessera_catalog_term", &[]) >= 1.0, "{catalog}");
    assert_eq!(one(&catalog, "tessera_catalog_tasks_running", &[]), 0.0, "{catalog}");

    let elsewhere = request(addrs.router, "GET", "/other", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(elsewhere.status, 404, "{elsewhere:?}");
}
