//! The `tessera` binary: one program for every Tessera process (`dev`, `catalog`, `node`,
//! `router`). It reads the command line, environment and config file into a validated
//! configuration, sets up logging, and runs the chosen process until it is told to stop.
//!
//! - `cli.rs`: the subcommands and flags (and the config file's keys).
//! - `config.rs`: layering defaults, file, environment and flags; validation.
//! - `run.rs`: the runtime, starting and stopping a catalog, node or router; exit codes.
//! - `dev.rs`: `tessera dev`, a whole cluster in one process.
//! - `bench.rs`: `tessera bench`, throughput and latency next to a local PostgreSQL.
//! - `health.rs`: `tessera health`, a container's healthcheck.
//! - `signal.rs`: Ctrl-C and SIGTERM.
//! - `logging.rs`: logs on stderr.
//!
//! The processes themselves are the library crates `tessera-catalog`, `tessera-shard-node`
//! and `tessera-router`.

mod bench;
mod cli;
mod config;
mod dev;
mod health;
mod logging;
mod metrics;
mod run;
mod signal;

use std::process::ExitCode;

use config::LoadError;

/// Tessera allocates many small, short-lived buffers per statement (messages, rows, futures)
/// across threads; mimalloc serves them with less contention and fewer page faults than the
/// system allocator. It is built without transparent huge pages (`no_thp`): with them, memory
/// it returned to the system came back as 2 MiB pages the kernel zeroes whole, and a COPY
/// spent a quarter of its CPU time clearing pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a configuration that is refused (as for clap's usage errors).
const INVALID_CONFIG_EXIT_CODE: u8 = 2;

fn main() -> ExitCode {
    let process = match config::load(std::env::args_os()) {
        Ok(process) => process,
        Err(LoadError::Usage(e)) => e.exit(),
        Err(LoadError::Invalid(e)) => {
            eprintln!("tessera: invalid configuration: {e}");
            return ExitCode::from(INVALID_CONFIG_EXIT_CODE);
        }
    };
    logging::init();
    run::run(process)
}
