//! Messages between Tessera processes and the multiplexed connections that carry them.

pub mod message;
pub mod raft;
pub mod transport;

pub use message::*;
pub use transport::{call_any, serve, BoxFuture, ConnId, ReplyStream, Responder, RpcClient, RpcPool, Service};

/// Checks that a configured address looks like host:port, naming the config field at fault.
pub fn check_addr(field: &str, value: &str) -> Result<(), String> {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(format!("{field}: \"{value}\" is not a host:port address")),
    }
}
