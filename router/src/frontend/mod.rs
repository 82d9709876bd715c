//! The PostgreSQL wire front end: accepts client connections (refusing those over
//! `max_connections` with SQLSTATE 53300) and serves each with pgwire and the handlers in
//! `conn.rs`; `encode.rs` puts values on the wire, `held.rs` holds an Execute's answer until
//! the client's Sync.

pub mod auth;
pub mod conn;
pub mod encode;
pub mod held;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, warn};

use crate::frontend::conn::{Canceller, Conn, Handlers, Shared};

/// How long a new connection's first bytes are waited for, to see whether it asks for TLS
/// (pgwire's own startup timeout then applies).
const FIRST_BYTES_WAIT: Duration = Duration::from_secs(5);

/// One open client connection in the router's metrics, for as long as it lives.
struct OpenConnection(Arc<crate::metrics::RouterMetrics>);

impl OpenConnection {
    fn count(metrics: &Arc<crate::metrics::RouterMetrics>) -> OpenConnection {
        metrics.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenConnection(metrics.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The socket back, and a second (blocking) handle on it.
fn second_handle(socket: tokio::net::TcpStream) -> std::io::Result<(tokio::net::TcpStream, std::net::TcpStream)> {
    let socket = socket.into_std()?;
    let writer = socket.try_clone()?;
    socket.set_nonblocking(true)?;
    Ok((tokio::net::TcpStream::from_std(socket)?, writer))
}

/// Accepts clients until `stop` fires; those that ask for TLS get it when `tls` is set.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: usize,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let canceller = Arc::new(Canceller { shared: shared.clone() });
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let permit = slots.clone().try_acquire_owned().ok();
        let refuse = permit.is_none().then(|| "sorry, too many clients already".to_string());
        let conn = Arc::new(Conn::new(shared.clone(), refuse));
        let handlers = Handlers {
            conn: conn.clone(),
            canceller: canceller.clone(),
        };
        // A second handle on the socket, for the one message the connection sends outside
        // pgwire's flow: why an idle session ends.
        let (socket, writer) = match second_handle(socket) {
            Ok(pair) => pair,
            Err(e) => {
                warn!(%peer, error = %e, "cannot set up a client connection");
                continue;
            }
        };
        let mut stop = stop.clone();
        let open = OpenConnection::count(&shared.dispatcher.metrics);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _open = open;
            // Over TLS, bytes written beside pgwire would break the stream: an idle session
            // is then closed without its FATAL message.
            let mut first = [0u8; 8];
            let encrypted = tls.is_some()
                && matches!(
                    tokio::time::timeout(FIRST_BYTES_WAIT, socket.peek(&mut first)).await,
                    Ok(Ok(n)) if crate::tls::asks_for_tls(&first[..n])
                );
            let writer = (!encrypted).then_some(writer);
            tokio::select! {
                r = pgwire::tokio::process_socket(socket, tls, handlers) => {
                    if let Err(e) = r {
                        debug!(%peer, error = %e, "client connection ended with an error");
                    }
                }
                _ = conn.end_when_idle_in_transaction(writer) => {
                    debug!(%peer, "ended a session idle in a transaction for too long");
                }
                _ = stop.changed() => {}
            }
        });
    }
}
