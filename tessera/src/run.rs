//! Running a loaded [`Process`]: the tokio runtime, starting the part (or, for `dev`, handing
//! over to `dev.rs`), waiting for a stop signal, shutting down, and the exit code. Start-up
//! failures end here as one line on stderr and exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tessera_catalog::{CatalogConfig, CatalogError};
use tessera_router::{RouterConfig, RouterError};
use tessera_shard_node::{NodeConfig, NodeError, NodeHandle};
use tessera_types::rpc::RpcError;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::Process;
use crate::dev;
use crate::signal::Stop;

/// How long a node keeps trying to reach a catalog that is not up yet (processes started
/// together, as by a service manager or compose file) before giving up.
const REGISTER_PATIENCE: Duration = Duration::from_secs(30);

/// How often a node started by a catalog's process provisioner checks that the catalog runs.
const PARENT_POLL: Duration = Duration::from_millis(500);

/// How long tasks that ignore the shutdown get before the runtime is dropped under them.
const RUNTIME_GRACE: Duration = Duration::from_secs(5);

/// The stack of every runtime thread. Expressions are bound, encoded, decoded and evaluated
/// recursively, one frame per nesting level, up to `MAX_EXPRESSION_DEPTH` levels; only the
/// pages a thread touches take memory.
const THREAD_STACK: usize = 32 << 20;

/// Why a process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error("cannot use data directory {}: {source}", path.display())]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot watch for stop signals: {0}")]
    Signals(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("benchmark failed: {0}")]
    Bench(String),
    #[error("unhealthy: {0}")]
    Unhealthy(#[from] crate::health::HealthError),
}

/// Runs the process until it is stopped; the exit code says how that went.
pub fn run(process: Process) -> ExitCode {
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK)
        .build()
        .map_err(StartError::Runtime)
        .and_then(|runtime| {
            let result = runtime.block_on(serve(process));
            runtime.shutdown_timeout(RUNTIME_GRACE);
            result
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(process: Process) -> Result<(), StartError> {
    let stop = Stop::install().map_err(StartError::Signals)?;
    match process {
        Process::Dev(config) => dev::run(config, stop).await,
        Process::Catalog(config) => catalog(config, stop).await,
        Process::Node(config) => node(config, stop).await,
        Process::Router(config) => router(config, stop).await,
        // A stop signal drops the benchmark, and with it its scratch clusters, child processes
        // and PostgreSQL server.
        Process::Bench(args) => {
            let mut stop = stop;
            match stop.until(crate::bench::run(args)).await {
                Some(result) => result.map_err(|e| StartError::Bench(e.to_string())),
                None => Err(StartError::Bench(
                    "interrupted; its scratch clusters were stopped and deleted".into(),
                )),
            }
        }
        // Blocks this runtime thread for at most its timeout; nothing else runs.
        Process::Health(args) => crate::health::check(&args).map(drop).map_err(StartError::from),
    }
}

async fn catalog(config: CatalogConfig, mut stop: Stop) -> Result<(), StartError> {
    let data_dir = config.data_dir.clone();
    let metrics_listener = crate::metrics::bind(config.metrics.as_deref()).await?;
    let Some(handle) = stop.until(tessera_catalog::start(config)).await.transpose()? else {
        return Ok(());
    };
    let catalog = handle.catalog.clone();
    let page: crate::metrics::Page = Arc::new(move || {
        let page = catalog.metrics();
        Box::pin(async move { page })
    });
    let metrics = crate::metrics::Server::start(metrics_listener, page);
    info!(addr = %handle.addr, data_dir = %data_dir.display(), "catalog ready");
    stop.wait().await;
    metrics.stop().await;
    handle.shutdown().await;
    info!("catalog stopped");
    Ok(())
}

async fn node(config: NodeConfig, mut stop: Stop) -> Result<(), StartError> {
    let config_parent = config.parent_pid;
    let metrics_listener = crate::metrics::bind(config.metrics.as_deref()).await?;
    let Some(handle) = stop.until(start_node(config)).await.transpose()? else {
        return Ok(());
    };
    let node = handle.node.clone();
    let page: crate::metrics::Page = Arc::new(move || {
        let node = node.clone();
        Box::pin(async move { node.metrics().await })
    });
    let metrics = crate::metrics::Server::start(metrics_listener, page);
    info!(node = handle.node.id, addr = %handle.addr, "node ready");
    tokio::select! {
        _ = stop.wait() => {}
        _ = parent_gone(config_parent) => info!("the process that started this node has ended; stopping"),
    }
    metrics.stop().await;
    handle.shutdown().await;
    info!("node stopped");
    Ok(())
}

/// Resolves once `parent` is no longer this process's parent (it ended, and the process was
/// handed to another); never when there is no such parent to watch.
async fn parent_gone(parent: Option<u32>) {
    let Some(parent) = parent else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(PARENT_POLL);
    while std::os::unix::process::parent_id() == parent {
        tick.tick().await;
    }
}

/// Starts a node, retrying for a while when the catalog cannot be reached yet.
async fn start_node(config: NodeConfig) -> Result<NodeHandle, NodeError> {
    let deadline = Instant::now() + REGISTER_PATIENCE;
    let mut delay = Duration::from_millis(100);
    let mut warned = false;
    loop {
        match tessera_shard_node::start(config.clone()).await {
            Err(NodeError::Register {
                source: RpcError::Unavailable { .. },
                ..
            }) if Instant::now() + delay < deadline => {
                if !warned {
                    warn!(catalog = %config.catalog.join(","), "catalog not reachable yet; retrying");
                    warned = true;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            result => return result,
        }
    }
}

async fn router(config: RouterConfig, mut stop: Stop) -> Result<(), StartError> {
    let metrics_listener = crate::metrics::bind(config.metrics.as_deref()).await?;
    let Some(handle) = stop.until(tessera_router::start(config)).await.transpose()? else {
        return Ok(());
    };
    let render = handle.metrics_page();
    let page: crate::metrics::Page = Arc::new(move || {
        let page = render();
        Box::pin(async move { page })
    });
    let metrics = crate::metrics::Server::start(metrics_listener, page);
    info!(addr = %handle.addr, "router ready");
    stop.wait().await;
    metrics.stop().await;
    handle.shutdown().await;
    info!("router stopped");
    Ok(())
}
