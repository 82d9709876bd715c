//! Local ports: choosing a free one to hand to a process, and waiting until a process listens.
//!
//! Ports are not taken from the kernel's ephemeral range (bind to port 0): a port released by
//! the harness and not yet bound by its process could be handed out again to a test running in
//! parallel, or to a cluster whose node is down for a restart. Instead each test process walks
//! its own sequence through a range below the ephemeral range (which starts at 32768 on Linux),
//! starting at an offset derived from its process id, and skips ports that are in use. Within
//! one test binary no port is ever handed out twice.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The ports the harness hands out.
const PORT_RANGE: Range<u16> = 20_000..32_000;

/// How many ports this process has handed out or skipped.
static PORTS_TAKEN: AtomicU32 = AtomicU32::new(0);

/// A 127.0.0.1 address whose port is free and has not been handed out before by this process.
pub fn free_local_addr() -> SocketAddr {
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    let offset = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let n = PORTS_TAKEN.fetch_add(1, Ordering::Relaxed);
        let port = PORT_RANGE.start + ((offset + n) % span) as u16;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free port left in 127.0.0.1:{PORT_RANGE:?}");
}

/// Whether something accepts TCP connections on `addr` right now.
pub async fn accepts_tcp(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Waits until `addr` accepts TCP connections or `timeout` passes; `still_alive` is asked
/// between attempts so that a process that died stops the wait at once with its reason.
pub async fn wait_for_tcp(
    addr: SocketAddr,
    timeout: Duration,
    mut still_alive: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if accepts_tcp(addr).await {
            return Ok(());
        }
        still_alive()?;
        if Instant::now() >= deadline {
            return Err(format!("nothing accepted TCP connections on {addr} within {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_distinct_free_ports_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_local_addr().port()).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice: {ports:?}");
        assert!(ports.iter().all(|p| PORT_RANGE.contains(p)));
        let addr = free_local_addr();
        TcpListener::bind(addr).expect("the port handed out is free");
    }
}
