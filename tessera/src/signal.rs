//! Stop signals: Ctrl-C (SIGINT) and SIGTERM ask a process to stop cleanly; a second one while
//! it is stopping ends it at once. The handlers are installed before anything starts, so a
//! signal that arrives during start-up is not lost (and does not kill the process half-way).
//! What stopping means is up to the caller (`run.rs`, `dev.rs`).

use std::future::Future;

use tracing::{info, warn};

/// Exit code when a second signal cuts a clean shutdown short (128 + SIGINT, as shells do).
const FORCED_EXIT_CODE: i32 = 130;

/// Listens for stop signals.
pub struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    /// Installs the handlers. Must be called inside the tokio runtime.
    pub fn install() -> std::io::Result<Stop> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Stop {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Stop {})
        }
    }

    /// Waits for the next signal and returns its name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Runs `work` (a start-up) unless a signal comes first, in which case `work` is dropped
    /// and the result is `None`.
    pub async fn until<F: Future>(&mut self, work: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            signal = self.next() => {
                info!(signal, "stopping during start-up");
                None
            }
            output = work => Some(output),
        }
    }

    /// Waits for a signal. From then on, another signal exits the process immediately.
    pub async fn wait(mut self) {
        let signal = self.next().await;
        info!(signal, "stopping; send the signal again to exit at once");
        tokio::spawn(async move {
            let signal = self.next().await;
            warn!(signal, "second signal: exiting without a clean shutdown");
            std::process::exit(FORCED_EXIT_CODE);
        });
    }
}
