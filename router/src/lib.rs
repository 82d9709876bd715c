//! The router (`tessera router`): accepts PostgreSQL clients, parses and plans their SQL, sends
//! each statement to the shards it touches and merges what comes back.

pub mod config;
pub mod copy;
pub mod dispatch;
pub mod error;
pub mod exec;
pub mod explain;
pub mod frontend;
pub mod http;
pub mod metrics;
pub mod pg_catalog;
pub mod plan;
pub mod routing;
pub mod session;
pub mod sql;
pub mod tls;
pub mod virtual_tables;

use std::sync::Arc;

pub use config::RouterConfig;

/// A running router.
pub struct RouterHandle {
    /// The address clients connect to.
    pub addr: String,
    /// The address of the HTTP API, when it is served.
    pub http_addr: Option<String>,
    metrics: Arc<metrics::RouterMetrics>,
    routing: Arc<routing::Routing>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RouterHandle {
    /// Renders the router's Prometheus page, for as long as the caller keeps it.
    pub fn metrics_page(&self) -> impl Fn() -> String + Send + Sync + 'static {
        let (metrics, routing) = (self.metrics.clone(), self.routing.clone());
        move || metrics.render(&routing.current())
    }

    /// Stops accepting clients and closes the connections.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot listen on {addr} for the HTTP API: {source}")]
    HttpListen { addr: String, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Tls(String),
}

/// Starts a router: binds its port, follows the catalog's cluster map and serves clients.
pub async fn start(config: RouterConfig) -> Result<RouterHandle, RouterError> {
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(RouterError::Tls)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| RouterError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| RouterError::Listen {
            addr: config.listen.clone(),
            source,
        })?
        .to_string();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let routing = routing::Routing::new(config.catalog.clone());
    // Serve with whatever map the catalog has; statements wait for a fresher one when needed.
    if let Err(e) = routing.refresh().await {
        tracing::warn!(error = %e, "the catalog is not reachable yet; the router keeps trying");
    }
    let follower = tokio::spawn(routing.clone().follow(stop_rx.clone()));
    if let Some(step) = config.test_abandon_commit {
        tracing::warn!(?step, "test switch: multi-shard commits are left unfinished");
    }
    let executor = Arc::new(exec::Executor {
        routing: routing.clone(),
        abandon_commit: config.test_abandon_commit,
    });
    let metrics = Arc::new(metrics::RouterMetrics::default());
    let dispatcher = dispatch::Dispatcher {
        executor,
        catalog: config.catalog.clone(),
        metrics: metrics.clone(),
    };
    let mut tasks = Vec::new();
    let mut http_addr = None;
    if let Some(listen) = &config.http {
        let engine = Arc::new(http::Engine {
            dispatcher: dispatcher.clone(),
        });
        let server = http::start(listen, engine, stop_rx.clone())
            .await
            .map_err(|source| RouterError::HttpListen {
                addr: listen.clone(),
                source,
            })?;
        http_addr = Some(server.addr);
        tasks.push(server.task);
    }
    let shared = Arc::new(frontend::conn::Shared {
        dispatcher,
        cancels: std::sync::Mutex::new(std::collections::HashMap::new()),
        next_pid: std::sync::atomic::AtomicI32::new(std::process::id() as i32 * 1000 % 1_000_000 + 1),
        auth: config.auth,
    });
    let server = tokio::spawn(frontend::serve(listener, shared, config.max_connections, tls, stop_rx));
    tracing::info!(%addr, "router accepting PostgreSQL clients");
    tasks.extend([server, follower]);
    Ok(RouterHandle {
        addr,
        http_addr,
        metrics,
        routing,
        stop,
        tasks,
    })
}

/// The server version Tessera reports (`server_version`, `version()`): the PostgreSQL version
/// whose protocol and catalog it follows.
pub const SERVER_VERSION: &str = "15.0";

pub fn server_version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (Tessera {}) on x86_64-pc-linux-gnu, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION")
    )
}
