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

/// Binds `addr` and serves `page` until `stop` turns true.
pub async fn serve(
    addr: &str,
    page: Page,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| addr.to_string());
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
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    }))
}
