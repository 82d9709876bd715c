//! The router's metrics: statements by kind and outcome and their latency (counted in
//! `Dispatcher::run`, so PostgreSQL clients and the HTTP API alike), open client connections
//! (counted by the frontend), and what the router knows of the cluster, rendered as a
//! Prometheus page by [`RouterMetrics::render`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use sqlparser::ast;
use tessera_types::metrics::{Exposition, Family, Histogram};
use tessera_types::schema::ClusterMap;

#[derive(Debug, Default)]
pub struct RouterMetrics {
    statements: Family<AtomicU64>,
    latency: Family<Histogram>,
    /// PostgreSQL client connections open now.
    pub connections: AtomicI64,
}

/// The kind a statement is counted under.
pub fn kind(stmt: &ast::Statement) -> &'static str {
    match stmt {
        ast::Statement::Query(_) => "select",
        ast::Statement::Insert(_) => "insert",
        ast::Statement::Update { .. } => "update",
        ast::Statement::Delete(_) => "delete",
        ast::Statement::Copy { .. } => "copy",
        ast::Statement::CreateTable(_)
        | ast::Statement::Drop { .. }
        | ast::Statement::Truncate { .. }
        | ast::Statement::CreateRole(_)
        | ast::Statement::AlterRole { .. } => "ddl",
        ast::Statement::StartTransaction { .. }
        | ast::Statement::Commit { .. }
        | ast::Statement::Rollback { .. }
        | ast::Statement::Savepoint { .. }
        | ast::Statement::ReleaseSavepoint { .. } => "transaction",
        _ => "other",
    }
}

impl RouterMetrics {
    /// Counts one statement of `kind` that took `elapsed` and succeeded or not.
    pub fn statement(&self, kind: &str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.statements.get(&[kind, outcome]).fetch_add(1, Ordering::Relaxed);
        self.latency.get(&[kind]).observe(elapsed);
    }

    /// The Prometheus page, with what the router's cluster map says.
    pub fn render(&self, map: &ClusterMap) -> String {
        let mut page = Exposition::default();
        page.counters(
            "tessera_router_statements_total",
            "Statements run, by kind and outcome.",
            &["kind", "outcome"],
            &self.statements,
        );
        page.histograms(
            "tessera_router_statement_seconds",
            "Time to run a statement, by kind (for a query, until its rows start to stream).",
            &["kind"],
            &self.latency,
        );
        page.single(
            "gauge",
            "tessera_router_connections",
            "PostgreSQL client connections open now.",
            self.connections.load(Ordering::Relaxed) as f64,
        );
        page.single(
            "gauge",
            "tessera_router_map_version",
            "Version of the cluster map the router routes by.",
            map.version as f64,
        );
        page.nodes_by_state("tessera_router_nodes", "Nodes in the cluster map, by state.", map);
        page.single(
            "gauge",
            "tessera_router_shards",
            "Shards in the cluster map.",
            map.shards.len() as f64,
        );
        page.finish()
    }
}
