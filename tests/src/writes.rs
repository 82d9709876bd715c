//! Concurrent writers for the fault tests (`failover.rs`, `compose.rs`, `rereplication.rs`): what a write's answer
//! says about whether it was applied, a connection that moves to another router when its own
//! fails, and a writer that inserts keys of its own and increments its counter while faults
//! happen, recording every acknowledged, unknown and failed write for the checks afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::client::{connect, describe_error, execute, TextRows};

/// How long one statement may take before its outcome counts as unknown.
pub const STATEMENT_WAIT: Duration = Duration::from_secs(20);

/// What a write's answer says about whether it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It was applied and must survive.
    Acknowledged,
    /// SQLSTATE 40003, a broken connection or no answer in time: it may or may not have been
    /// applied, at most once.
    Unknown(String),
    /// Any other error: it must not have been applied.
    Failed(String),
}

pub fn outcome_of(error: &tokio_postgres::Error) -> Outcome {
    match error.code() {
        Some(code) if code.code() == "40003" => Outcome::Unknown(describe_error(error)),
        Some(_) => Outcome::Failed(describe_error(error)),
        None => Outcome::Unknown(describe_error(error)),
    }
}

/// Runs one autocommit statement through the simple query protocol: its outcome and the row
/// count it reported.
pub async fn write(client: &Client, sql: &str) -> (Outcome, u64) {
    match tokio::time::timeout(STATEMENT_WAIT, client.simple_query(sql)).await {
        Ok(Ok(messages)) => {
            let count = messages
                .iter()
                .find_map(|m| match m {
                    SimpleQueryMessage::CommandComplete(n) => Some(*n),
                    _ => None,
                })
                .unwrap_or(0);
            (Outcome::Acknowledged, count)
        }
        Ok(Err(e)) => (outcome_of(&e), 0),
        Err(_) => (Outcome::Unknown(format!("no answer within {STATEMENT_WAIT:?}")), 0),
    }
}

/// A client connection to the first router of a list that accepts one, as a client given
/// several hosts does; it reconnects when its connection broke or a statement hung.
pub struct Connection {
    routers: Vec<SocketAddr>,
    client: Option<(Client, SocketAddr)>,
}

impl Connection {
    pub fn new(routers: Vec<SocketAddr>) -> Self {
        Connection { routers, client: None }
    }

    /// The current client and its router, connecting first if needed; `None` if no router
    /// accepts one now.
    pub async fn get(&mut self) -> Option<(&Client, SocketAddr)> {
        if self.client.as_ref().is_none_or(|(c, _)| c.is_closed()) {
            self.client = None;
            for addr in &self.routers {
                if let Ok(client) = connect(*addr).await {
                    self.client = Some((client, *addr));
                    break;
                }
            }
        }
        self.client.as_ref().map(|(c, a)| (c, *a))
    }

    /// Forgets the client after a hung statement, whose answer would confuse the next one.
    pub fn discard(&mut self) {
        self.client = None;
    }
}

/// What one writer did.
#[derive(Debug, Default)]
pub struct WriterLog {
    pub acknowledged_inserts: Vec<i64>,
    pub unknown_inserts: Vec<(i64, String)>,
    pub failed_inserts: Vec<(i64, String)>,
    pub acknowledged_increments: u64,
    pub unknown_increments: Vec<String>,
    pub failed_increments: Vec<String>,
    /// When each acknowledgement arrived, and through which router.
    pub acknowledged_at: Vec<(Instant, SocketAddr)>,
    /// Answers that contradict the statement (an insert or an increment of one existing row
    /// that reports another row count than 1).
    pub anomalies: Vec<String>,
}

/// The tables `events_writer` writes: `events (k, writer, v)` hash-partitioned over
/// `event_shards` shards, and `counters (w, n)` over two range shards, for `writers` writers.
pub fn events_ddl(event_shards: usize, writers: i64) -> Vec<String> {
    let mut ddl = vec![
        "CREATE TABLE events (k BIGINT PRIMARY KEY, writer INT NOT NULL, v BIGINT NOT NULL) PARTITION BY HASH (k)"
            .to_string(),
    ];
    for r in 0..event_shards {
        ddl.push(format!(
            "CREATE TABLE events_p{r} PARTITION OF events FOR VALUES WITH (MODULUS {event_shards}, REMAINDER {r})"
        ));
    }
    let half = writers / 2;
    ddl.push("CREATE TABLE counters (w INT PRIMARY KEY, n BIGINT NOT NULL) PARTITION BY RANGE (w)".into());
    ddl.push(format!(
        "CREATE TABLE counters_low PARTITION OF counters FOR VALUES FROM (0) TO ({half})"
    ));
    ddl.push(format!(
        "CREATE TABLE counters_high PARTITION OF counters FOR VALUES FROM ({half}) TO ({writers})"
    ));
    ddl
}

/// Events writers at work: `events_ddl`'s tables made, every writer's counter at zero, and one
/// [`events_writer`] per writer going through `routers`.
pub struct EventsWriters {
    stop: Arc<AtomicBool>,
    writers: Vec<tokio::task::JoinHandle<WriterLog>>,
}

impl EventsWriters {
    /// Makes the tables through `client` (`event_shards` shards of `events`) and starts
    /// `writers` writers, each waiting `after_failure` after a failed write.
    pub async fn start(
        client: &Client,
        routers: Vec<SocketAddr>,
        event_shards: usize,
        writers: i64,
        after_failure: Duration,
    ) -> EventsWriters {
        for ddl in events_ddl(event_shards, writers) {
            execute(client, &ddl).await;
        }
        let counters: Vec<String> = (0..writers).map(|w| format!("({w}, 0)")).collect();
        execute(client, &format!("INSERT INTO counters VALUES {}", counters.join(", "))).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writers = (0..writers)
            .map(|w| tokio::spawn(events_writer(routers.clone(), w, stop.clone(), after_failure)))
            .collect();
        EventsWriters { stop, writers }
    }

    /// Stops the writers and returns their logs. Panics if one does not stop within two
    /// statement waits, or panicked.
    pub async fn stop(self) -> Vec<WriterLog> {
        self.stop.store(true, Ordering::Relaxed);
        let mut logs = Vec::new();
        for writer in self.writers {
            let log = tokio::time::timeout(STATEMENT_WAIT * 2, writer)
                .await
                .unwrap_or_else(|_| panic!("a writer did not stop"))
                .expect("a writer panicked");
            logs.push(log);
        }
        logs
    }
}

/// Writer `w`: inserts rows of `events (k, writer, v)` with keys of its own and, every third
/// statement, increments its row of `counters (w, n)`, through the first router of `routers`
/// that answers, until `stop`. After a failed write it waits `after_failure`.
pub async fn events_writer(
    routers: Vec<SocketAddr>,
    w: i64,
    stop: Arc<AtomicBool>,
    after_failure: Duration,
) -> WriterLog {
    let mut log = WriterLog::default();
    let mut connection = Connection::new(routers);
    let mut seq: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some((client, router)) = connection.get().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        seq += 1;
        let increment = seq % 3 == 0;
        let key = w * 1_000_000 + seq;
        let sql = if increment {
            format!("UPDATE counters SET n = n + 1 WHERE w = {w}")
        } else {
            format!("INSERT INTO events VALUES ({key}, {w}, {})", seq * 7)
        };
        let (outcome, count) = write(client, &sql).await;
        if outcome == Outcome::Acknowledged && count != 1 {
            log.anomalies.push(format!("`{sql}` reported {count} rows"));
        }
        match (&outcome, increment) {
            (Outcome::Acknowledged, true) => log.acknowledged_increments += 1,
            (Outcome::Acknowledged, false) => log.acknowledged_inserts.push(key),
            (Outcome::Unknown(e), true) => log.unknown_increments.push(e.clone()),
            (Outcome::Unknown(e), false) => log.unknown_inserts.push((key, e.clone())),
            (Outcome::Failed(e), true) => log.failed_increments.push(e.clone()),
            (Outcome::Failed(e), false) => log.failed_inserts.push((key, e.clone())),
        }
        match outcome {
            Outcome::Acknowledged => log.acknowledged_at.push((Instant::now(), router)),
            Outcome::Unknown(_) => connection.discard(),
            Outcome::Failed(_) => tokio::time::sleep(after_failure).await,
        }
    }
    log
}

/// The longest time without any acknowledgement between `from` and `to`, counting from `from`
/// to the first acknowledgement and from the last one to `to`.
pub fn longest_stall(acknowledged_at: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut points: Vec<Instant> = acknowledged_at
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .collect();
    points.push(from);
    points.push(to);
    points.sort();
    points.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

/// Counts each error message (its first 120 characters) for a summary.
pub fn error_summary<'a>(errors: impl Iterator<Item = &'a String>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in errors {
        let short: String = e.chars().take(120).collect();
        *counts.entry(short).or_default() += 1;
    }
    counts
        .iter()
        .map(|(e, n)| format!("{n} × {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A text cell that must hold an integer.
pub fn int(value: &Option<String>) -> i64 {
    value
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("expected an integer, got {value:?}"))
}

/// What all writers' inserts came to: the keys acknowledged, unknown and failed, with errors.
pub struct Tally {
    pub acknowledged: BTreeSet<i64>,
    pub unknown: BTreeMap<i64, String>,
    pub failed: BTreeMap<i64, String>,
}

/// Sums up the writers' logs, printing the counts and the errors seen under `label`.
pub fn tally(logs: &[WriterLog], label: &str) -> Tally {
    let tally = Tally {
        acknowledged: logs
            .iter()
            .flat_map(|l| l.acknowledged_inserts.iter().copied())
            .collect(),
        unknown: logs.iter().flat_map(|l| l.unknown_inserts.iter().cloned()).collect(),
        failed: logs.iter().flat_map(|l| l.failed_inserts.iter().cloned()).collect(),
    };
    eprintln!(
        "{label}: {} inserts acknowledged, {} unknown, {} failed; {} increments acknowledged, {} unknown, {} failed",
        tally.acknowledged.len(),
        tally.unknown.len(),
        tally.failed.len(),
        logs.iter().map(|l| l.acknowledged_increments).sum::<u64>(),
        logs.iter().map(|l| l.unknown_increments.len()).sum::<usize>(),
        logs.iter().map(|l| l.failed_increments.len()).sum::<usize>(),
    );
    let all_errors = logs.iter().flat_map(|l| {
        l.unknown_inserts
            .iter()
            .chain(&l.failed_inserts)
            .map(|(_, e)| e)
            .chain(&l.unknown_increments)
            .chain(&l.failed_increments)
    });
    eprintln!("{label}: errors seen: {}", error_summary(all_errors));
    tally
}

/// What is wrong with the writers' tables afterwards, given `events` (`k, writer, v`) and
/// `counters` (`w, n`) as read: every acknowledged insert must be there exactly once, nothing
/// may be there that was never attempted or failed for sure, and each counter must count every
/// acknowledged increment and at most the unknown ones besides.
pub fn write_problems(logs: &[WriterLog], tally: &Tally, events: &TextRows, counters: &TextRows) -> Vec<String> {
    let mut present: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
    for row in events {
        present
            .entry(int(&row[0]))
            .or_default()
            .push((int(&row[1]), int(&row[2])));
    }
    let mut problems = Vec::new();
    for k in &tally.acknowledged {
        let expected = (k / 1_000_000, (k % 1_000_000) * 7);
        match present.get(k).map(Vec::as_slice) {
            None | Some([]) => problems.push(format!("acknowledged insert {k} is missing")),
            Some([row]) if *row == expected => {}
            Some(found) => problems.push(format!("insert {k}: expected one row {expected:?}, found {found:?}")),
        }
    }
    for (k, found) in &present {
        if let Some(e) = tally.failed.get(k) {
            problems.push(format!(
                "insert {k} failed with a definite error ({e}) but its row is there: {found:?}"
            ));
        } else if !tally.acknowledged.contains(k) && !tally.unknown.contains_key(k) {
            problems.push(format!("row {k} was never written: {found:?}"));
        } else if found.len() > 1 {
            problems.push(format!("insert {k} is there {} times: {found:?}", found.len()));
        }
    }
    let counters: BTreeMap<i64, i64> = counters.iter().map(|r| (int(&r[0]), int(&r[1]))).collect();
    for (w, log) in logs.iter().enumerate() {
        let low = log.acknowledged_increments as i64;
        let high = low + log.unknown_increments.len() as i64;
        match counters.get(&(w as i64)) {
            Some(n) if (low..=high).contains(n) => {}
            other => problems.push(format!(
                "counter of writer {w} is {other:?}: {low} increments were acknowledged, {} unknown \
                 ({} failed for sure)",
                high - low,
                log.failed_increments.len()
            )),
        }
        problems.extend(log.anomalies.iter().cloned());
    }
    problems
}
