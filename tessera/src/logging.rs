//! Logs: human-readable lines on stderr through `tracing-subscriber`. By default Tessera's own
//! crates log at `info` and everything else (openraft, pgwire, ...) at `warn`; `RUST_LOG`
//! replaces that filter (e.g. `RUST_LOG=debug` or `RUST_LOG=tessera_router=debug,info`).
//! Stdout is not for logs: `tessera dev` prints its one ready line there.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "warn,tessera=info,tessera_catalog=info,tessera_shard_node=info,\
                              tessera_router=info,tessera_types=info,tessera_wal=info";

/// Installs the global subscriber. Call once, before anything logs.
pub fn init() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("tessera: ignoring RUST_LOG={spec:?}: {e}");
            EnvFilter::new(DEFAULT_FILTER)
        }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
