//! `tessera health`: whether a Tessera process accepts connections, as an exit code (0 yes,
//! 1 no), for a container's HEALTHCHECK: the image holds no shell or other program, so the
//! check is the binary itself. It opens a TCP connection to the process's address and closes
//! it; it does not speak the protocol, so it says "listening", not "serving queries".
//!
//! The address defaults to `TESSERA_LISTEN`, the variable the checked process reads its own
//! `--listen` from, so one HEALTHCHECK line fits a catalog, a node and a router alike. A
//! wildcard host (`0.0.0.0`, `[::]`) means this machine. This module starts no runtime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use clap::Args;

/// Flags of `tessera health`.
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// Address of the process to check; by default the one it listens on when started with
    /// TESSERA_LISTEN, which this flag reads too
    #[arg(long, env = "TESSERA_LISTEN", value_name = "HOST:PORT")]
    pub addr: String,

    /// Milliseconds to wait for the connection
    #[arg(long, value_name = "MS", default_value_t = 2_000)]
    pub timeout_ms: u64,
}

/// Why the process is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("{addr}: cannot resolve the address: {source}")]
    Resolve { addr: String, source: std::io::Error },
    #[error("{addr}: resolves to no address")]
    NoAddress { addr: String },
    #[error("{addr}: does not accept connections: {source}")]
    Connect { addr: String, source: std::io::Error },
}

/// Connects to the address once; `Ok` with the address that accepted.
pub fn check(args: &HealthArgs) -> Result<SocketAddr, HealthError> {
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let candidates: Vec<SocketAddr> = args
        .addr
        .to_socket_addrs()
        .map_err(|source| HealthError::Resolve {
            addr: args.addr.clone(),
            source,
        })?
        .map(local_if_wildcard)
        .collect();
    let mut last = None;
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(_) => return Ok(candidate),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(source) => HealthError::Connect {
            addr: args.addr.clone(),
            source,
        },
        None => HealthError::NoAddress {
            addr: args.addr.clone(),
        },
    })
}

/// A listen address on every interface is reached through the loopback interface.
fn local_if_wildcard(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn args(addr: String) -> HealthArgs {
        HealthArgs { addr, timeout_ms: 500 }
    }

    #[test]
    fn a_listening_port_is_healthy_and_a_closed_one_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let checked = check(&args(format!("0.0.0.0:{port}"))).expect("healthy");
        assert_eq!(checked, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        drop(listener);
        let refused = check(&args(format!("127.0.0.1:{port}"))).expect_err("nothing listens");
        assert!(matches!(refused, HealthError::Connect { .. }), "{refused}");
    }

    #[test]
    fn a_bad_address_says_so() {
        let error = check(&args("no-port".into())).expect_err("not host:port");
        assert!(error.to_string().starts_with("no-port: cannot resolve"), "{error}");
    }
}
