//! The transport between Tessera processes: one long-lived TCP connection per peer, carrying
//! length-prefixed bincode frames tagged with a call id, so many concurrent calls (and streams)
//! share it. A stream is flow-controlled by credits: the server sends at most `WINDOW` items
//! ahead of what the client has consumed, so a slow consumer never makes the connection buffer
//! without bound. Dropping a call or stream on the client cancels it on the server. Each side's
//! writer yields once before it writes, so frames queued by tasks that are ready at the same
//! moment (concurrent calls, the heartbeats of every group two nodes share) leave in one write.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, warn};

use super::message::{Request, Response, RpcError, PROTOCOL_VERSION};

const MAGIC: &[u8; 4] = b"TSRA";
const MAX_FRAME: usize = 512 << 20;
/// Stream items a server may send ahead of the client's consumption.
const WINDOW: usize = 8;

#[derive(Debug, Serialize, Deserialize)]
enum ClientFrame {
    Call {
        id: u64,
        request: Box<Request>,
    },
    Cancel {
        id: u64,
    },
    /// The client consumed `n` more items of a stream.
    Credit {
        id: u64,
        n: u32,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct ServerFrame {
    id: u64,
    /// True for the last frame of a call.
    last: bool,
    body: Result<Response, RpcError>,
}

async fn write_frame<W: AsyncWriteExt + Unpin, T: Serialize>(w: &mut W, msg: &T) -> std::io::Result<()> {
    let bytes = bincode::serialize(msg).map_err(std::io::Error::other)?;
    w.write_u32(bytes.len() as u32).await?;
    w.write_all(&bytes).await
}

async fn read_frame<R: AsyncReadExt + Unpin, T: for<'de> Deserialize<'de>>(r: &mut R) -> std::io::Result<Option<T>> {
    let len = match r.read_u32().await {
        Ok(len) => len as usize,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {len} bytes exceeds the limit")));
    }
    // Read into spare capacity: a zeroed buffer per frame costs more than the copy.
    let mut buf = Vec::with_capacity(len);
    if (&mut *r).take(len as u64).read_to_end(&mut buf).await? < len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    bincode::deserialize(&buf).map(Some).map_err(std::io::Error::other)
}

async fn handshake(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut hello = [0u8; 8];
    hello[..4].copy_from_slice(MAGIC);
    hello[4..6].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    stream.write_all(&hello).await?;
    let mut peer = [0u8; 8];
    stream.read_exact(&mut peer).await?;
    if &peer[..4] != MAGIC {
        return Err(std::io::Error::other("peer does not speak the Tessera protocol"));
    }
    let version = u16::from_be_bytes([peer[4], peer[5]]);
    if version != PROTOCOL_VERSION {
        return Err(std::io::Error::other(format!(
            "peer speaks protocol version {version}, this process speaks {PROTOCOL_VERSION}"
        )));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Server side
// ------------------------------------------------------------------------------------------

/// Running calls of a connection: how to abort each, and its stream credits.
type Calls = Arc<Mutex<HashMap<u64, (tokio::task::AbortHandle, Arc<Semaphore>)>>>;

/// Identifies one accepted connection (for state tied to it, such as open transactions).
pub type ConnId = u64;

/// Sends the replies of one call.
pub struct Responder {
    id: u64,
    tx: mpsc::UnboundedSender<ServerFrame>,
    credits: Arc<Semaphore>,
    finished: bool,
}

impl Responder {
    /// Sends one item of a stream, waiting until the client has room for it. Fails when the
    /// client went away.
    pub async fn send(&mut self, item: Response) -> Result<(), RpcError> {
        let permit = self
            .credits
            .acquire()
            .await
            .map_err(|_| RpcError::internal("call cancelled"))?;
        permit.forget();
        self.tx
            .send(ServerFrame {
                id: self.id,
                last: false,
                body: Ok(item),
            })
            .map_err(|_| RpcError::internal("connection closed"))
    }

    /// Sends the final reply.
    pub fn finish(mut self, reply: Result<Response, RpcError>) {
        self.finished = true;
        let _ = self.tx.send(ServerFrame {
            id: self.id,
            last: true,
            body: reply,
        });
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.tx.send(ServerFrame {
                id: self.id,
                last: true,
                body: Err(RpcError::internal("the handler ended without a reply")),
            });
        }
    }
}

pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What a server does with requests.
pub trait Service: Send + Sync + 'static {
    /// Handles one call; must eventually `finish` the responder (dropping it reports an error).
    fn handle(self: Arc<Self>, conn: ConnId, request: Request, reply: Responder) -> BoxFuture;

    /// Called when a connection closes, after its calls were cancelled.
    fn connection_closed(&self, _conn: ConnId) {}
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Accepts connections on `listener` and serves them with `service` until `shutdown` fires.
pub async fn serve<S: Service>(
    listener: TcpListener,
    service: Arc<S>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let service = service.clone();
                    tokio::spawn(async move {
                        let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = serve_connection(stream, conn, service).await {
                            debug!(%peer, error = %e, "rpc connection ended");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

async fn serve_connection<S: Service>(mut stream: TcpStream, conn: ConnId, service: Arc<S>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    handshake(&mut stream).await?;
    let (read_half, write_half) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<ServerFrame>();
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(64 << 10, write_half);
        while let Some(frame) = rx.recv().await {
            // Let the tasks that are ready queue their frames too, so they share one write.
            tokio::task::yield_now().await;
            if write_frame(&mut w, &frame).await.is_err() {
                return;
            }
            // Batch whatever else is ready before flushing.
            while let Ok(frame) = rx.try_recv() {
                if write_frame(&mut w, &frame).await.is_err() {
                    return;
                }
            }
            if w.flush().await.is_err() {
                return;
            }
        }
    });
    let calls: Calls = Arc::default();
    let mut reader = BufReader::with_capacity(64 << 10, read_half);
    let result = loop {
        let frame: ClientFrame = match read_frame(&mut reader).await {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match frame {
            ClientFrame::Call { id, request } => {
                let request = *request;
                let credits = Arc::new(Semaphore::new(WINDOW));
                let responder = Responder {
                    id,
                    tx: tx.clone(),
                    credits: credits.clone(),
                    finished: false,
                };
                let fut = service.clone().handle(conn, request, responder);
                let calls2 = calls.clone();
                let task = tokio::spawn(async move {
                    fut.await;
                    calls2.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                });
                let mut map = calls.lock().unwrap_or_else(|p| p.into_inner());
                if !task.is_finished() {
                    map.insert(id, (task.abort_handle(), credits));
                }
            }
            ClientFrame::Cancel { id } => {
                if let Some((task, _)) = calls.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
                    task.abort();
                }
            }
            ClientFrame::Credit { id, n } => {
                if let Some((_, credits)) = calls.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
                    credits.add_permits(n as usize);
                }
            }
        }
    };
    for (_, (task, _)) in calls.lock().unwrap_or_else(|p| p.into_inner()).drain() {
        task.abort();
    }
    service.connection_closed(conn);
    drop(tx);
    let _ = writer.await;
    result
}

// ------------------------------------------------------------------------------------------
// Client side
// ------------------------------------------------------------------------------------------

/// Per call: where its replies go, each with whether it is the last.
type Pending = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<(bool, Result<Response, RpcError>)>>>>;

struct Connection {
    tx: mpsc::UnboundedSender<ClientFrame>,
    pending: Pending,
    next_id: AtomicU64,
    closed: Arc<AtomicBool>,
}

/// A client of one peer address. Connects lazily, reconnects after a failure, and multiplexes
/// all calls over one connection.
pub struct RpcClient {
    addr: String,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    connect_timeout: Duration,
}

impl RpcClient {
    pub fn new(addr: impl Into<String>) -> RpcClient {
        RpcClient {
            addr: addr.into(),
            conn: tokio::sync::Mutex::new(None),
            connect_timeout: Duration::from_secs(3),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> RpcError {
        RpcError::Unavailable {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    async fn connection(&self) -> Result<Arc<Connection>, RpcError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.closed.load(Ordering::Acquire) {
                return Ok(c.clone());
            }
        }
        let connect = async {
            let mut stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            handshake(&mut stream).await?;
            Ok::<_, std::io::Error>(stream)
        };
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| self.unavailable("connect timed out"))?
            .map_err(|e| self.unavailable(e))?;
        let (read_half, write_half) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<ClientFrame>();
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let closed_w = closed.clone();
        tokio::spawn(async move {
            let mut w = BufWriter::with_capacity(64 << 10, write_half);
            while let Some(frame) = rx.recv().await {
                tokio::task::yield_now().await;
                if write_frame(&mut w, &frame).await.is_err() {
                    break;
                }
                while let Ok(frame) = rx.try_recv() {
                    if write_frame(&mut w, &frame).await.is_err() {
                        break;
                    }
                }
                if w.flush().await.is_err() {
                    break;
                }
            }
            closed_w.store(true, Ordering::Release);
        });
        let pending_r = pending.clone();
        let closed_r = closed.clone();
        let addr = self.addr.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::with_capacity(64 << 10, read_half);
            let reason = loop {
                match read_frame::<_, ServerFrame>(&mut reader).await {
                    Ok(Some(frame)) => {
                        let mut map = pending_r.lock().unwrap_or_else(|p| p.into_inner());
                        let sender = if frame.last {
                            map.remove(&frame.id)
                        } else {
                            map.get(&frame.id).cloned()
                        };
                        drop(map);
                        if let Some(s) = sender {
                            let _ = s.send((frame.last, frame.body));
                        }
                    }
                    Ok(None) => break "connection closed by peer".to_string(),
                    Err(e) => break e.to_string(),
                }
            };
            closed_r.store(true, Ordering::Release);
            let drained: Vec<_> = pending_r.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
            for (_, s) in drained {
                // These calls were sent: whether the peer acted on them is unknown.
                let _ = s.send((
                    true,
                    Err(RpcError::Disconnected {
                        addr: addr.clone(),
                        reason: reason.clone(),
                    }),
                ));
            }
        });
        let conn = Arc::new(Connection {
            tx,
            pending,
            next_id: AtomicU64::new(1),
            closed,
        });
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Starts a call and returns the stream of its replies.
    pub async fn stream(&self, request: Request) -> Result<ReplyStream, RpcError> {
        let conn = self.connection().await?;
        let id = conn.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        conn.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        if conn
            .tx
            .send(ClientFrame::Call {
                id,
                request: Box::new(request),
            })
            .is_err()
            || conn.closed.load(Ordering::Acquire)
        {
            conn.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return Err(self.unavailable("connection closed"));
        }
        Ok(ReplyStream {
            id,
            rx,
            conn,
            done: false,
            uncredited: 0,
        })
    }

    /// Makes a call that has a single reply.
    pub async fn call(&self, request: Request) -> Result<Response, RpcError> {
        let mut stream = self.stream(request).await?;
        match stream.next().await {
            Some(reply) => reply,
            None => Err(self.unavailable("no reply")),
        }
    }

    /// `call` with a deadline.
    pub async fn call_timeout(&self, request: Request, timeout: Duration) -> Result<Response, RpcError> {
        tokio::time::timeout(timeout, self.call(request))
            .await
            .unwrap_or(Err(RpcError::Timeout(timeout.as_millis() as u64)))
    }
}

/// The replies of one call. Dropping it before the end cancels the call on the server.
pub struct ReplyStream {
    id: u64,
    rx: mpsc::UnboundedReceiver<(bool, Result<Response, RpcError>)>,
    conn: Arc<Connection>,
    done: bool,
    /// Items consumed but not yet credited back (credits go in batches, to save packets).
    uncredited: u32,
}

impl ReplyStream {
    /// The next reply; `None` after the last one.
    pub async fn next(&mut self) -> Option<Result<Response, RpcError>> {
        if self.done {
            return None;
        }
        match self.rx.recv().await {
            Some((last, item)) => {
                if last {
                    self.done = true;
                } else {
                    self.uncredited += 1;
                    if self.uncredited as usize >= WINDOW / 2 {
                        let _ = self.conn.tx.send(ClientFrame::Credit {
                            id: self.id,
                            n: self.uncredited,
                        });
                        self.uncredited = 0;
                    }
                }
                Some(item)
            }
            None => {
                self.done = true;
                None
            }
        }
    }
}

impl Drop for ReplyStream {
    fn drop(&mut self) {
        let was_pending = self
            .conn
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id)
            .is_some();
        if was_pending {
            let _ = self.conn.tx.send(ClientFrame::Cancel { id: self.id });
        }
    }
}

/// Clients by peer address, shared by everything in a process that talks to other processes.
#[derive(Default)]
pub struct RpcPool {
    clients: Mutex<HashMap<String, Arc<RpcClient>>>,
    /// For each set of members `call_any` was given (joined by commas): the member that
    /// answered last, tried first next time.
    leaders: Mutex<HashMap<String, String>>,
}

impl RpcPool {
    pub fn new() -> RpcPool {
        RpcPool::default()
    }

    pub fn client(&self, addr: &str) -> Arc<RpcClient> {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(addr.to_string())
            .or_insert_with(|| Arc::new(RpcClient::new(addr)))
            .clone()
    }

    fn leader_of(&self, members: &str) -> Option<String> {
        self.leaders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(members)
            .cloned()
    }

    fn set_leader(&self, members: &str, leader: &str) {
        let mut leaders = self.leaders.lock().unwrap_or_else(|p| p.into_inner());
        if leaders.get(members).map(String::as_str) != Some(leader) {
            leaders.insert(members.to_string(), leader.to_string());
        }
    }
}

/// How long `call_any` keeps looking for a member that answers (a catalog electing a leader
/// takes one to two seconds).
const CALL_ANY_BUDGET: Duration = Duration::from_secs(5);
/// The pause between two rounds over the members.
const CALL_ANY_PAUSE: Duration = Duration::from_millis(100);

/// Calls the first of `addrs` that answers as the service's leader: the way to reach a
/// service with several members (the catalog). A member that is down or not the leader is
/// passed over (for the leader it names, if any); rounds over the members go on for
/// `CALL_ANY_BUDGET`, and the last error is returned after that. The member that answered is
/// remembered in the pool and tried first by the next call.
pub async fn call_any(pool: &RpcPool, addrs: &[String], request: Request) -> Result<Response, RpcError> {
    let members = addrs.join(",");
    let mut last = RpcError::Unavailable {
        addr: members.clone(),
        reason: "no address configured".into(),
    };
    let deadline = tokio::time::Instant::now() + CALL_ANY_BUDGET;
    // The member that answered last time: usually still the leader, saving a round trip.
    let mut hint: Option<String> = pool.leader_of(&members).filter(|l| addrs.contains(l));
    loop {
        let first = hint.take();
        let order: Vec<&String> = first
            .iter()
            .chain(addrs.iter().filter(|a| Some(*a) != first.as_ref()))
            .collect();
        for addr in order {
            match pool.client(addr).call(request.clone()).await {
                Err(e @ RpcError::Unavailable { .. }) => last = e,
                Err(RpcError::NotCatalogLeader { leader }) => {
                    last = RpcError::NotCatalogLeader { leader: leader.clone() };
                    if let Some(l) = leader.filter(|l| l != addr && addrs.contains(l)) {
                        hint = Some(l);
                        break;
                    }
                }
                other => {
                    // An answer, or a refusal of the request itself, comes from the leader.
                    if matches!(other, Ok(_) | Err(RpcError::Exec(_))) {
                        pool.set_leader(&members, addr);
                    }
                    return other;
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(last);
        }
        if hint.is_none() {
            tokio::time::sleep(CALL_ANY_PAUSE).await;
        }
    }
}
