//! `--metrics ADDR`: serves a process's Prometheus page at `GET /metrics` (the page itself is
//! rendered by the part's library: `RouterHandle::metrics_page`, `Node::metrics`,
//! `Catalog::metrics`). Any other path is 404.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use tokio::sync::watch;
use tracing::info;

use crate::run::StartError;

/// Renders the page, on every scrape.
pub type Page = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// Binds the metrics address, if one is set: done before the part starts, so a port in use
/// stops the process before anything else runs.
pub async fn bind(addr: Option<&str>) -> Result<Option<tokio::net::TcpListener>, StartError> {
    let Some(addr) = addr else { return Ok(None) };
    tokio::net::TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| StartError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// Serves a page on a bound listener until stopped.
pub struct Server {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Serves `page` on `listener` (nothing, when there is none).
    pub fn start(listener: Option<tokio::net::TcpListener>, page: Page) -> Server {
        let (stop, stop_rx) = watch::channel(false);
        Server {
            task: listener.map(|l| serve(l, page, stop_rx)),
            stop,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

fn serve(
    listener: tokio::net::TcpListener,
    page: Page,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let page = page.clone();
            async move {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    page().await,
                )
                    .into_response()
            }
        }),
    );
    info!(addr = %bound, "serving Prometheus metrics at /metrics");
    tokio::spawn(async move {
        let shutdown = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    })
}
