//! Connecting to Tessera or PostgreSQL with tokio-postgres, describing client errors fully
//! (tokio-postgres's own `Display` hides the server's message), and retrying an operation
//! while a cluster recovers.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// The user every test connects as.
pub const USER: &str = "tessera";
/// The database every test connects to.
pub const DATABASE: &str = "tessera";

/// Connects to `addr` as user `tessera` to database `dbname`, without TLS, and spawns the
/// connection's task on the current runtime.
pub async fn connect_to(addr: SocketAddr, dbname: &str) -> Result<Client, tokio_postgres::Error> {
    connect_as(addr, USER, None, dbname).await
}

/// Connects to `addr` as `user` (with `password`, if any) to database `dbname`, without TLS,
/// and spawns the connection's task on the current runtime.
pub async fn connect_as(
    addr: SocketAddr,
    user: &str,
    password: Option<&str>,
    dbname: &str,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user(user)
        .dbname(dbname)
        .application_name("tessera-tests")
        .connect_timeout(Duration::from_secs(10));
    if let Some(password) = password {
        config.password(password);
    }
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // The connection ends when the client is dropped or the server goes away; a query
        // on the client then fails and says so.
        let _ = connection.await;
    });
    Ok(client)
}

/// Connects to `addr` as user `tessera` to database `tessera`.
pub async fn connect(addr: SocketAddr) -> Result<Client, tokio_postgres::Error> {
    connect_to(addr, DATABASE).await
}

/// The SQLSTATE of a server error, if the error came from the server.
pub fn sqlstate(error: &tokio_postgres::Error) -> Option<&str> {
    error.code().map(|c| c.code())
}

/// A client error with everything known about it: the kind, the server's message and
/// SQLSTATE, or the underlying I/O error.
pub fn describe_error(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Runs `attempt` until it succeeds or `timeout` passes; the error then names `what` and the
/// last failure. Use it only for availability (a cluster electing primaries after a restart),
/// never to wait for a wrong answer to become right: retry on errors, assert on results.
pub async fn retry_until<T, E, F, Fut>(what: &str, timeout: Duration, mut attempt: F) -> Result<T, String>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "{what} did not succeed within {timeout:?} ({attempts} attempts); last error: {e}"
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// How long one query may take before the harness gives up on it (a hung server must fail the
/// test, not hang it).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Rows with every value as text; `None` is NULL.
pub type TextRows = Vec<Vec<Option<String>>>;

/// Sends `sql` through the simple query protocol and returns the rows of all its statements,
/// one after the other, as text. The error describes the failure fully.
pub async fn simple_rows(client: &Client, sql: &str) -> Result<TextRows, String> {
    let messages = match tokio::time::timeout(QUERY_TIMEOUT, client.simple_query(sql)).await {
        Ok(Ok(messages)) => messages,
        Ok(Err(e)) => return Err(describe_error(&e)),
        Err(_) => return Err(format!("no answer within {QUERY_TIMEOUT:?}")),
    };
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect())
}

/// Like [`simple_rows`], panicking with the statement and the error if it fails.
pub async fn query_rows(client: &Client, sql: &str) -> TextRows {
    simple_rows(client, sql)
        .await
        .unwrap_or_else(|e| panic!("`{sql}` failed: {e}"))
}

/// The single number `sql` returns (a `count(*)`, say); panics if it fails or returns
/// anything else.
pub async fn query_count(client: &Client, sql: &str) -> i64 {
    let rows = query_rows(client, sql).await;
    match rows.as_slice() {
        [row] if row.len() == 1 => row[0]
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("`{sql}` returned {rows:?}, not a number")),
        _ => panic!("`{sql}` should return one number: {rows:?}"),
    }
}

/// Runs `sql` through the simple query protocol, panicking with the error if it fails.
pub async fn execute(client: &Client, sql: &str) {
    query_rows(client, sql).await;
}

/// Runs `sql`, which must fail, and returns its error; panics if it succeeds or hangs.
pub async fn query_error(client: &Client, sql: &str) -> tokio_postgres::Error {
    match tokio::time::timeout(QUERY_TIMEOUT, client.simple_query(sql)).await {
        Ok(Ok(_)) => panic!("`{sql}` succeeded but must fail"),
        Ok(Err(e)) => e,
        Err(_) => panic!("`{sql}` got no answer within {QUERY_TIMEOUT:?}"),
    }
}
