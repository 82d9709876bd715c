//! The PostgreSQL protocol at the level of bytes, for tests that must control exactly which
//! messages a client sends and see exactly which come back (logins, Flush and Sync).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One frontend message: its type byte, its length, its body.
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&((4 + body.len()) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Connects to `addr` and sends the startup message of protocol 3.0 for `user` on database
/// `tessera`.
pub async fn start(addr: std::net::SocketAddr, user: &str) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    let params = format!("user\0{user}\0database\0tessera\0\0");
    let mut startup = ((8 + params.len()) as i32).to_be_bytes().to_vec();
    startup.extend_from_slice(&196_608i32.to_be_bytes());
    startup.extend_from_slice(params.as_bytes());
    stream.write_all(&startup).await?;
    Ok(stream)
}

/// Reads one backend message: its type byte and body.
pub async fn read_message(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).await?;
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(4)];
    stream.read_exact(&mut body).await?;
    Ok((head[0], body))
}
