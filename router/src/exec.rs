//! Execution: runs a bound statement against the shards and produces what the client gets.
//!
//! Reads open one streaming scan per shard reached and merge them: a k-way merge when ordered
//! (stopping as soon as LIMIT is met, which cancels the shard scans), interleaved otherwise,
//! or a merge of partial aggregates that are then finished (AVG = SUM / COUNT), filtered by
//! HAVING, sorted and limited. Writes go to the primary of each shard they touch: directly for
//! an autocommit statement on one shard; through a transaction on every shard otherwise, so a
//! statement that fails on one shard leaves nothing behind on another. A transaction that
//! wrote to several shards commits through two-phase commit (`Executor::commit_shards`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tessera_types::fragment::{AggRow, AggState, ScanFragment, ShardRef, SortKey, WriteFragment, WriteOutcome};
use tessera_types::rpc::{ReadConsistency, Request, Response, RpcError, TxnId, TxnScope};
use tessera_types::scan::Batch;
use tessera_types::schema::{ClusterMap, Shard, ShardId, Table};
use tessera_types::{Expr, Row, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::error::{Error, Result};
use crate::plan::{no_partition, plan_select, prune, scan_range, shard_for_row, Merge};
use crate::routing::{layout, Routing};
use crate::session::Session;
use crate::sql::{DeletePlan, InsertPlan, OutputColumn, SelectPlan, UpdatePlan};

/// Runs a statement (`$run`, evaluated anew each time) until it no longer meets a split it may
/// be planned again around (`replannable`).
macro_rules! replanned {
    ($session:expr, $run:expr) => {{
        let mut attempt = 0;
        loop {
            match $run.await {
                Err(e) if replannable(&e, $session, attempt) => attempt += 1,
                other => break other.map_err(settle),
            }
        }
    }};
}

pub type RowStream = Pin<Box<dyn Stream<Item = Result<Row>> + Send>>;

/// What a statement produced.
pub enum Output {
    /// Rows, then a command tag: `tag` followed by the row count (`SELECT 5`, `INSERT 0 2`).
    Rows {
        columns: Vec<OutputColumn>,
        rows: RowStream,
        tag: String,
    },
    /// COPY FROM STDIN: the client sends the rows next.
    CopyIn(Box<crate::copy::CopyIn>),
    /// COPY TO STDOUT: rows to send as COPY data.
    CopyOut {
        columns: Vec<OutputColumn>,
        rows: RowStream,
        options: crate::copy::format::Options,
    },
    /// A command tag, with a notice to send first.
    Command {
        tag: String,
        notice: Option<String>,
    },
    Empty,
}

impl Output {
    pub fn command(tag: impl Into<String>) -> Output {
        Output::Command {
            tag: tag.into(),
            notice: None,
        }
    }
}

/// Rows already in hand, as a stream.
pub fn rows_stream(rows: Vec<Row>) -> RowStream {
    Box::pin(futures::stream::iter(rows.into_iter().map(Ok)))
}

fn channel_stream<T: Send + 'static>(rx: mpsc::Receiver<T>) -> Pin<Box<dyn Stream<Item = T> + Send>> {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Sends a request whose answer may take long (a big write, its commit): while its replica
/// leads with a majority behind it, the node says every few hundred milliseconds that it is
/// still working, so only `silence` without a word counts as a timeout.
async fn call_working(
    client: &tessera_types::rpc::RpcClient,
    addr: &str,
    request: Request,
    silence: Duration,
) -> std::result::Result<Response, RpcError> {
    let mut replies = client.stream(request).await?;
    loop {
        match tokio::time::timeout(silence, replies.next()).await {
            Err(_) => return Err(RpcError::Timeout(silence.as_millis() as u64)),
            Ok(Some(Ok(Response::Started))) => continue,
            Ok(Some(reply)) => return reply,
            Ok(None) => {
                return Err(RpcError::Disconnected {
                    addr: addr.to_string(),
                    reason: "the connection closed before the answer".into(),
                })
            }
        }
    }
}

/// A fresh request id: the time in microseconds in the high half, so that the ids a shard
/// remembers arrive in nearly ascending order (appends to its B-tree rather than inserts all
/// over it), and 64 random bits below.
fn new_request_id() -> u128 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    (u128::from(micros) << 64) | u128::from(rand::random::<u64>())
}

/// How long the router keeps retrying a shard whose primary cannot be reached (an election,
/// a restart or a map change in progress) before reporting the error.
const SHARD_RETRY_BUDGET: Duration = Duration::from_secs(10);

/// How long one attempt of a retryable request may take before the next replica is tried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long one attempt of a request that cannot be retried (a write inside a transaction)
/// may take.
const TXN_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Exponential backoff between retries, within `SHARD_RETRY_BUDGET`.
struct Backoff {
    start: std::time::Instant,
    attempt: u32,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            start: std::time::Instant::now(),
            attempt: 0,
        }
    }

    /// Sleeps before the next attempt; false when the budget is spent.
    async fn wait(&mut self) -> bool {
        if self.start.elapsed() >= SHARD_RETRY_BUDGET {
            return false;
        }
        let delay = Duration::from_millis((5u64 << self.attempt.min(6)).min(50));
        self.attempt += 1;
        tokio::time::sleep(delay).await;
        true
    }
}

pub struct Executor {
    pub routing: Arc<Routing>,
    /// Test-only: the step after which multi-shard commits are left unfinished.
    pub abandon_commit: Option<crate::config::AbandonCommit>,
}

impl Executor {
    /// Sends a request to a shard's primary, following primary changes and refreshing a stale
    /// map. Writes inside a transaction are not retried after a broken connection (the
    /// transaction died with it).
    /// The request is sent to the shard `planned` names only while its bounds are the planned
    /// ones: once a split changed them, `Error::MapChanged` tells the caller to plan again.
    async fn call_shard(
        &self,
        planned: &Shard,
        retry_unavailable: bool,
        req: &(dyn Fn(ShardRef) -> Request + Sync),
    ) -> Result<Response> {
        let shard_id = planned.id;
        let mut skip = 0usize;
        let mut backoff = Backoff::new();
        let mut maybe_applied = false;
        loop {
            let map = self.routing.current();
            let Some(shard) = map.shards.get(&shard_id) else {
                return Err(Error::UndefinedTable(format!("shard {shard_id} (was it dropped?)")));
            };
            if shard.bounds != planned.bounds {
                return Err(Error::MapChanged {
                    shard: planned.name.clone(),
                    maybe_applied,
                });
            }
            let node = self
                .routing
                .target_node(shard, skip)
                .ok_or_else(|| Error::Internal(format!("shard {} has no replicas", shard.name)))?;
            let Some(addr) = map.node_addr(node) else {
                return Err(Error::Internal(format!("node {node} has no address")));
            };
            let request = req(ShardRef {
                shard: shard_id,
                epoch: shard.epoch,
            });
            // A primary that stopped answering (paused, partitioned) must not hold the statement:
            // after the attempt timeout the next replica is tried. Only retryable requests get
            // the short timeout; a write inside a transaction cannot be sent twice.
            let attempt_timeout = if retry_unavailable {
                ATTEMPT_TIMEOUT
            } else {
                TXN_ATTEMPT_TIMEOUT
            };
            let retryable = match call_working(&self.routing.pool.client(addr), addr, request, attempt_timeout).await {
                Ok(r) => {
                    self.routing.set_leader(shard_id, node);
                    return Ok(r);
                }
                Err(RpcError::NotLeader { leader, .. }) => {
                    match leader {
                        Some(l) if l != node => {
                            // Go straight to the primary we were told about.
                            self.routing.set_leader(shard_id, l);
                            skip = 0;
                        }
                        _ => skip += 1,
                    }
                    RpcError::NotLeader {
                        shard: shard_id,
                        leader,
                    }
                }
                Err(e @ (RpcError::StaleEpoch { .. } | RpcError::UnknownShard { .. })) => {
                    let _ = self.routing.refresh().await;
                    e
                }
                Err(e @ RpcError::LayoutChanged { .. }) => {
                    // Planned with the table's old primary key: planned again with the new one
                    // once the map has it, until then tried again.
                    let _ = self.routing.refresh().await;
                    if self
                        .routing
                        .current()
                        .tables
                        .get(&planned.table)
                        .is_some_and(|t| !t.primary_key.is_empty())
                    {
                        return Err(Error::MapChanged {
                            shard: planned.name.clone(),
                            maybe_applied,
                        });
                    }
                    e
                }
                Err(e @ RpcError::Unavailable { .. }) if retry_unavailable => {
                    skip += 1;
                    e
                }
                Err(e @ (RpcError::Timeout(_) | RpcError::Disconnected { .. })) if retry_unavailable => {
                    // The request reached the node: it may have been applied. Retries are
                    // answered once by request id; if none gets an answer, say so.
                    maybe_applied = true;
                    skip += 1;
                    e
                }
                Err(e) => return Err(e.into()),
            };
            if !backoff.wait().await {
                if maybe_applied {
                    return Err(Error::Rpc(RpcError::OutcomeUnknown(format!(
                        "no primary of shard {shard_id} answered within {} s after the request was sent ({retryable})",
                        SHARD_RETRY_BUDGET.as_secs()
                    ))));
                }
                return Err(retryable.into());
            }
        }
    }

    /// Starts a scan on one shard; its batches arrive on the returned channel.
    /// `first` learns whether the shard answered at all (`true`), or was split since the
    /// statement was planned (`false`: nothing more comes, and the statement is planned again).
    fn open_scan(
        self: &Arc<Self>,
        table: &Table,
        planned: Shard,
        fragment: ScanFragment,
        txn: Option<TxnId>,
        consistency: ReadConsistency,
        first_reply: oneshot::Sender<bool>,
    ) -> mpsc::Receiver<Result<Batch>> {
        let (tx, rx) = mpsc::channel(2);
        let shard_id = planned.id;
        let mut first_reply = Some(first_reply);
        let this = self.clone();
        let table = table.clone();
        // Reads spread over the shard's replicas (its ring); a transaction's reads of a shard it
        // wrote go to the primary, which holds its uncommitted writes.
        let mut spread: Option<u64> = txn.is_none().then(rand::random);
        tokio::spawn(async move {
            let mut skip = 0usize;
            let mut backoff = Backoff::new();
            loop {
                let map = this.routing.current();
                let Some(shard) = map.shards.get(&shard_id) else {
                    let _ = tx.send(Err(Error::UndefinedTable(table.name.clone()))).await;
                    return;
                };
                if shard.bounds != planned.bounds {
                    match first_reply.take() {
                        Some(f) => {
                            let _ = f.send(false);
                        }
                        None => {
                            let _ = tx
                                .send(Err(Error::MapChanged {
                                    shard: planned.name.clone(),
                                    maybe_applied: false,
                                }))
                                .await;
                        }
                    }
                    return;
                }
                let target = match spread {
                    Some(key) => this.routing.read_node(shard, key, skip),
                    None => this.routing.target_node(shard, skip),
                };
                let Some(node) = target else {
                    return;
                };
                let addr = map.node_addr(node).unwrap_or_default().to_string();
                let request = Request::Scan {
                    shard: ShardRef {
                        shard: shard_id,
                        epoch: shard.epoch,
                    },
                    layout: layout(&table, shard),
                    txn,
                    consistency,
                    fragment: fragment.clone(),
                    batch_rows: 1024,
                };
                let mut stream = match this.routing.pool.client(&addr).stream(request).await {
                    Ok(s) => s,
                    Err(e) => {
                        skip += 1;
                        if !backoff.wait().await {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                        continue;
                    }
                };
                let mut first = true;
                loop {
                    // The first reply must come within the attempt timeout, or another
                    // replica is tried (the primary may be paused or cut off).
                    let next = if first {
                        match tokio::time::timeout(ATTEMPT_TIMEOUT, stream.next()).await {
                            Ok(n) => n,
                            Err(_) => Some(Err(RpcError::Timeout(ATTEMPT_TIMEOUT.as_millis() as u64))),
                        }
                    } else {
                        stream.next().await
                    };
                    if matches!(next, Some(Ok(_))) {
                        if let Some(f) = first_reply.take() {
                            let _ = f.send(true);
                        }
                    }
                    match next {
                        Some(Ok(Response::Rows(rows))) => {
                            first = false;
                            if tx.send(Ok(Batch::Rows(rows))).await.is_err() {
                                return;
                            }
                        }
                        Some(Ok(Response::Started)) => first = false,
                        Some(Ok(Response::Aggs(aggs))) => {
                            first = false;
                            if tx.send(Ok(Batch::Aggs(aggs))).await.is_err() {
                                return;
                            }
                        }
                        Some(Ok(Response::Done)) | None => {
                            this.routing.set_leader(shard_id, node);
                            return;
                        }
                        Some(Ok(other)) => {
                            let _ = tx
                                .send(Err(Error::Internal(format!("unexpected scan reply {other:?}"))))
                                .await;
                            return;
                        }
                        Some(Err(e)) if first => {
                            match &e {
                                RpcError::NotLeader { leader: Some(l), .. } if *l != node => {
                                    // This replica cannot serve the read now: read from the
                                    // primary it names.
                                    this.routing.set_leader(shard_id, *l);
                                    spread = None;
                                    skip = 0;
                                }
                                RpcError::NotLeader { .. }
                                | RpcError::Unavailable { .. }
                                | RpcError::Disconnected { .. }
                                | RpcError::Timeout(_) => skip += 1,
                                RpcError::StaleEpoch { .. } | RpcError::UnknownShard { .. } => {
                                    let _ = this.routing.refresh().await;
                                }
                                _ => {
                                    let _ = tx.send(Err(e.into())).await;
                                    return;
                                }
                            }
                            if !backoff.wait().await {
                                let _ = tx.send(Err(e.into())).await;
                                return;
                            }
                            break;
                        }
                        Some(Err(e)) => {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                    }
                }
            }
        });
        rx
    }

    pub async fn select(self: &Arc<Self>, session: &Session, plan: SelectPlan) -> Result<Output> {
        replanned!(session, self.select_once(session, &plan))
    }

    async fn select_once(self: &Arc<Self>, session: &Session, plan: &SelectPlan) -> Result<Output> {
        let columns = plan.columns.clone();
        let map = self.routing.current();
        let Some(tref) = &plan.from else {
            return Ok(Output::Rows {
                columns,
                rows: rows_stream(select_without_from(plan)?),
                tag: "SELECT".into(),
            });
        };
        if crate::virtual_tables::is_virtual(tref.table) {
            return self.select_virtual(plan.clone()).await;
        }
        let table = map
            .tables
            .get(&tref.table)
            .ok_or_else(|| Error::UndefinedTable(format!("#{}", tref.table)))?
            .clone();
        let shards: Vec<Shard> = prune(&map, &table, tref, plan.filter.as_ref())
            .into_iter()
            .cloned()
            .collect();
        let read = plan_select(plan, Some(&table))?;
        let write_shards = &session.txn.write_shards;
        let consistency = session.read_consistency();
        let mut answered = Vec::with_capacity(shards.len());
        let sources: Vec<mpsc::Receiver<Result<Batch>>> = shards
            .into_iter()
            .map(|s| {
                let txn = write_shards.contains(&s.id).then_some(session.txn.id);
                let (first, answer) = oneshot::channel();
                answered.push((s.name.clone(), answer));
                self.open_scan(&table, s, read.fragment.clone(), txn, consistency, first)
            })
            .collect();
        // Nothing is merged until every shard has answered or been found split: a statement
        // that met a split is planned again before it has sent a row.
        for (name, answer) in answered {
            if answer.await == Ok(false) {
                return Err(Error::MapChanged {
                    shard: name,
                    maybe_applied: false,
                });
            }
        }
        let rows = merge(sources, read.merge).await?;
        Ok(Output::Rows {
            columns,
            rows,
            tag: "SELECT".into(),
        })
    }

    /// SELECT over a `tessera.*` virtual table: its rows are computed here and run through the
    /// same scan executor and merge as a shard's.
    async fn select_virtual(&self, plan: SelectPlan) -> Result<Output> {
        let columns = plan.columns.clone();
        let id = plan.from.as_ref().map(|f| f.table).unwrap_or_default();
        let table = crate::virtual_tables::by_id(id).ok_or_else(|| Error::UndefinedTable(format!("#{id}")))?;
        let rows = crate::virtual_tables::rows(&self.routing, id).await;
        let read = plan_select(&plan, Some(&table))?;
        let mut batches = Vec::new();
        tessera_types::scan::run_scan::<tessera_types::ExecError>(
            rows.into_iter().map(Ok),
            &read.fragment,
            1024,
            &mut |b| {
                batches.push(b);
                true
            },
        )?;
        let (tx, rx) = mpsc::channel(batches.len() + 1);
        for b in batches {
            let _ = tx.try_send(Ok(b));
        }
        drop(tx);
        let rows = merge(vec![rx], read.merge).await?;
        Ok(Output::Rows {
            columns,
            rows,
            tag: "SELECT".into(),
        })
    }

    /// Writes fragments to shards. An autocommit statement on one shard that moves no row goes
    /// straight to it; any other goes through a transaction on every shard it touches: the
    /// session's inside a block, or else its own, committed at once (`commit_shards`), so that
    /// it applies everywhere or nowhere.
    async fn write(
        &self,
        session: &mut Session,
        map: &ClusterMap,
        table: &Table,
        targets: Vec<(ShardId, WriteFragment)>,
        moves_rows: bool,
    ) -> Result<WriteOutcome> {
        if targets.is_empty() {
            return Ok(WriteOutcome::default());
        }
        if session.in_block() {
            let several = targets.len() > 1 || moves_rows;
            let txn = session.txn.id;
            let result = self
                .write_in_txn(map, table, txn, &mut session.txn.write_shards, targets)
                .await;
            // A statement that failed on one shard may have written on another: counted, so
            // that ROLLBACK TO SAVEPOINT refuses to keep half of it.
            if result.is_ok() || several {
                session.txn.writes += 1;
            }
            return result;
        }
        if targets.len() == 1 && !moves_rows {
            let (shard, fragment) = targets
                .into_iter()
                .next()
                .ok_or_else(|| Error::Internal("no target".into()))?;
            return self
                .write_one(table, planned(map, shard)?, TxnScope::Single, &fragment, true)
                .await;
        }
        let txn: TxnId = rand::random();
        let mut touched = Vec::new();
        match self.write_in_txn(map, table, txn, &mut touched, targets).await {
            Ok(total) => {
                self.commit_shards(txn, &touched).await?;
                Ok(total)
            }
            Err(e) => {
                self.rollback_shards(txn, &touched).await;
                Err(e)
            }
        }
    }

    /// Writes fragments inside transaction `txn`, opening it on each shard it has not written
    /// to yet (recorded in `touched` before the write, so a failed first write is rolled back
    /// there too), then inserts the rows an UPDATE moved out of their shard where they now
    /// belong.
    async fn write_in_txn(
        &self,
        map: &ClusterMap,
        table: &Table,
        txn: TxnId,
        touched: &mut Vec<ShardId>,
        targets: Vec<(ShardId, WriteFragment)>,
    ) -> Result<WriteOutcome> {
        let mut scope = |shard: ShardId| {
            if touched.contains(&shard) {
                TxnScope::Continue(txn)
            } else {
                touched.push(shard);
                TxnScope::Begin(txn)
            }
        };
        let writes: Vec<(ShardId, TxnScope, WriteFragment)> =
            targets.into_iter().map(|(s, f)| (s, scope(s), f)).collect();
        let results = futures::future::join_all(writes.iter().map(|(shard, scope, fragment)| async move {
            match planned(map, *shard) {
                Ok(p) => self.write_one(table, p, *scope, fragment, false).await,
                Err(e) => Err(e),
            }
        }))
        .await;
        let mut total = WriteOutcome::default();
        let mut moved = Vec::new();
        for r in results {
            let o = r?;
            total.count += o.count;
            total.returning.extend(o.returning);
            moved.extend(o.moved);
        }
        let mut by_shard: HashMap<ShardId, Vec<Row>> = HashMap::new();
        for row in moved {
            let dest = shard_for_row(map, table, &row).ok_or_else(|| no_partition(table, &row))?;
            by_shard.entry(dest.id).or_default().push(row);
        }
        for (shard, rows) in by_shard {
            let fragment = WriteFragment::Insert {
                rows,
                on_conflict: None,
                returning: Vec::new(),
            };
            self.write_one(table, planned(map, shard)?, scope(shard), &fragment, false)
                .await?;
        }
        Ok(total)
    }

    async fn write_one(
        &self,
        table: &Table,
        planned: &Shard,
        scope: TxnScope,
        fragment: &WriteFragment,
        retry: bool,
    ) -> Result<WriteOutcome> {
        let layout = layout(table, planned);
        let request_id = new_request_id();
        let reply = self
            .call_shard(planned, retry, &|shard| Request::Write {
                shard,
                layout: layout.clone(),
                scope,
                request_id,
                fragment: fragment.clone(),
            })
            .await?;
        match reply {
            Response::Written(o) => Ok(o),
            other => Err(Error::Internal(format!("unexpected write reply {other:?}"))),
        }
    }

    /// Writes rows COPY loads into one shard, on their own (autocommit); returns how many.
    /// Rows meant for a shard that was split meanwhile go where the new map puts them.
    pub async fn copy_rows(&self, table: &Table, shard: ShardId, rows: Vec<Row>) -> Result<u64> {
        let mut pending = vec![(shard, rows)];
        let mut written = 0;
        for _ in 0..=REPLANS {
            let map = self.routing.current();
            let mut again: Vec<(ShardId, Vec<Row>)> = Vec::new();
            for (shard, rows) in pending {
                let fragment = WriteFragment::Insert {
                    rows,
                    on_conflict: None,
                    returning: Vec::new(),
                };
                match self
                    .write_one(table, planned(&map, shard)?, TxnScope::Single, &fragment, true)
                    .await
                {
                    Ok(o) => written += o.count,
                    Err(Error::MapChanged {
                        maybe_applied: false, ..
                    }) => {
                        let WriteFragment::Insert { rows, .. } = fragment else {
                            return Err(Error::Internal("a COPY batch is an insert".into()));
                        };
                        let map = self.routing.current();
                        for row in rows {
                            let dest = shard_for_row(&map, table, &row).ok_or_else(|| no_partition(table, &row))?;
                            match again.iter_mut().find(|(s, _)| *s == dest.id) {
                                Some((_, rows)) => rows.push(row),
                                None => again.push((dest.id, vec![row])),
                            }
                        }
                    }
                    Err(e) => return Err(settle(e)),
                }
            }
            if again.is_empty() {
                return Ok(written);
            }
            pending = again;
        }
        Err(Error::MapChanged {
            shard: format!("#{shard}"),
            maybe_applied: false,
        })
    }

    fn table<'m>(&self, map: &'m ClusterMap, id: u64) -> Result<&'m Table> {
        map.tables
            .get(&id)
            .ok_or_else(|| Error::UndefinedTable(format!("#{id}")))
    }

    pub async fn insert(&self, session: &mut Session, plan: InsertPlan) -> Result<Output> {
        replanned!(session, self.insert_once(session, plan.clone()))
    }

    /// Takes the plan whole: its rows move into the per-shard fragments.
    async fn insert_once(&self, session: &mut Session, plan: InsertPlan) -> Result<Output> {
        let map = self.routing.current();
        let table = self.table(&map, plan.target.table)?.clone();
        let mut by_shard: Vec<(ShardId, Vec<Row>)> = Vec::new();
        for row in plan.rows {
            let shard = shard_for_row(&map, &table, &row).ok_or_else(|| no_partition(&table, &row))?;
            if let Some(only) = plan.target.shard {
                if shard.id != only {
                    let name = map.shards.get(&only).map(|s| s.name.clone()).unwrap_or_default();
                    return Err(Error::Exec(tessera_types::ExecError::other(
                        "23514",
                        format!("new row for relation \"{name}\" violates partition constraint"),
                    )));
                }
            }
            match by_shard.iter_mut().find(|(s, _)| *s == shard.id) {
                Some((_, rows)) => rows.push(row),
                None => by_shard.push((shard.id, vec![row])),
            }
        }
        let targets = by_shard
            .into_iter()
            .map(|(s, rows)| {
                (
                    s,
                    WriteFragment::Insert {
                        rows,
                        on_conflict: plan.on_conflict.clone(),
                        returning: plan.returning.clone(),
                    },
                )
            })
            .collect();
        let outcome = self.write(session, &map, &table, targets, false).await?;
        Ok(write_output(plan.columns, outcome, "INSERT 0"))
    }

    pub async fn update(&self, session: &mut Session, plan: UpdatePlan) -> Result<Output> {
        replanned!(session, self.update_once(session, &plan))
    }

    async fn update_once(&self, session: &mut Session, plan: &UpdatePlan) -> Result<Output> {
        let map = self.routing.current();
        let table = self.table(&map, plan.target.table)?.clone();
        let range = scan_range(&table, plan.filter.as_ref());
        let targets = prune(&map, &table, &plan.target, plan.filter.as_ref())
            .into_iter()
            .map(|s| {
                let fragment = WriteFragment::Update {
                    range: range.clone(),
                    filter: plan.filter.clone(),
                    assignments: plan.assignments.clone(),
                    returning: plan.returning.clone(),
                };
                (s.id, fragment)
            })
            .collect();
        let outcome = self.write(session, &map, &table, targets, plan.moves_rows).await?;
        Ok(write_output(plan.columns.clone(), outcome, "UPDATE"))
    }

    pub async fn delete(&self, session: &mut Session, plan: DeletePlan) -> Result<Output> {
        replanned!(session, self.delete_once(session, &plan))
    }

    async fn delete_once(&self, session: &mut Session, plan: &DeletePlan) -> Result<Output> {
        let map = self.routing.current();
        let table = self.table(&map, plan.target.table)?.clone();
        let range = scan_range(&table, plan.filter.as_ref());
        let targets = prune(&map, &table, &plan.target, plan.filter.as_ref())
            .into_iter()
            .map(|s| {
                (
                    s.id,
                    WriteFragment::Delete {
                        range: range.clone(),
                        filter: plan.filter.clone(),
                        returning: plan.returning.clone(),
                    },
                )
            })
            .collect();
        let outcome = self.write(session, &map, &table, targets, false).await?;
        Ok(write_output(plan.columns.clone(), outcome, "DELETE"))
    }

    /// Commits the session's transaction on the shards it wrote to. Once begun, the commit
    /// runs to its end in a task of its own, even if the client goes away meanwhile.
    pub async fn commit(self: &Arc<Self>, session: &Session) -> Result<()> {
        let (txn, shards) = (session.txn.id, session.txn.write_shards.clone());
        let this = self.clone();
        tokio::spawn(async move { this.commit_shards(txn, &shards).await })
            .await
            .map_err(|e| Error::Internal(format!("the commit stopped: {e}")))?
    }

    /// Commits transaction `txn` on `shards`: on one shard at once; on several with two-phase
    /// commit, so that it commits on all or on none of them:
    ///
    /// 1. every shard prepares the transaction's writes (`Request::Prepare`): they become
    ///    durable and hold their rows against other writes, or the shard refuses (a row
    ///    changed, or another prepared transaction holds it);
    /// 2. if all prepared, the first shard, the coordinator, records the commit in its log
    ///    (`Request::Decide`), which is the moment the transaction commits; otherwise the
    ///    abort is recorded there;
    /// 3. the other shards apply (or drop) their prepared writes (`Request::Finish`).
    ///
    /// Each step is retried under failover like any write. A router that dies in between
    /// leaves prepared writes that their shards settle with the coordinator after a few
    /// seconds (`Node::resolve_prepared`): committed if the coordinator recorded the commit,
    /// dropped otherwise.
    async fn commit_shards(&self, txn: TxnId, shards: &[ShardId]) -> Result<()> {
        let map = self.routing.current();
        let [coordinator, others @ ..] = shards else {
            return Ok(());
        };
        if others.is_empty() {
            let rid = new_request_id();
            // Retried under the same request id: the shard answers from memory if it committed.
            self.call_shard(planned(&map, *coordinator)?, true, &|s| Request::Commit {
                shard: s,
                txn,
                request_id: rid,
            })
            .await?;
            return Ok(());
        }
        let prepares = shards.iter().map(|s| {
            let rid = new_request_id();
            let map = &map;
            async move {
                self.call_shard(planned(map, *s)?, true, &|shard| Request::Prepare {
                    shard,
                    txn,
                    coordinator: *coordinator,
                    request_id: rid,
                })
                .await
            }
        });
        let refused = futures::future::join_all(prepares)
            .await
            .into_iter()
            .find_map(|r| r.err());
        let abandoned = |step| {
            Err(Error::Internal(format!(
                "test switch: the multi-shard commit was abandoned {step}"
            )))
        };
        if refused.is_none() && self.abandon_commit == Some(crate::config::AbandonCommit::AfterPrepare) {
            return abandoned("after its shards prepared");
        }
        if let Some(e) = refused {
            // The abort is recorded, so that a prepare still on its way is dropped when its
            // shard settles it. Nothing was decided but the abort: the outcome is certain.
            self.settle_shards(&map, txn, *coordinator, others, false).await;
            return Err(match e {
                Error::Rpc(RpcError::OutcomeUnknown(why)) => Error::Exec(tessera_types::ExecError::other(
                    "40001",
                    format!("could not commit: a shard did not confirm that it prepared the transaction ({why}); it was rolled back"),
                )),
                other => other,
            });
        }
        let decided = self
            .call_shard(planned(&map, *coordinator)?, true, &|shard| Request::Decide {
                shard: unfenced(shard),
                txn,
                commit: true,
            })
            .await;
        match decided {
            Ok(Response::Decided { committed: true }) => {
                if self.abandon_commit == Some(crate::config::AbandonCommit::AfterDecide) {
                    return abandoned("after its coordinator recorded the commit");
                }
                self.finish_shards(&map, txn, others, true).await;
                Ok(())
            }
            Ok(Response::Decided { committed: false }) => {
                self.finish_shards(&map, txn, others, false).await;
                Err(Error::Exec(tessera_types::ExecError::other(
                    "40001",
                    "could not commit: the transaction's shards gave up waiting for its commit and aborted it; retry the transaction",
                )))
            }
            Ok(other) => Err(Error::Internal(format!("unexpected reply to a decision: {other:?}"))),
            Err(e) => Err(Error::Rpc(RpcError::OutcomeUnknown(format!(
                "the commit of a transaction on {} shards was not confirmed by its coordinator shard ({e}); its shards settle it within seconds",
                shards.len()
            )))),
        }
    }

    /// Records an abort on the coordinator and drops the prepared writes of the others.
    async fn settle_shards(
        &self,
        map: &ClusterMap,
        txn: TxnId,
        coordinator: ShardId,
        others: &[ShardId],
        commit: bool,
    ) {
        let decide = async {
            let Ok(p) = planned(map, coordinator) else {
                return;
            };
            if let Err(e) = self
                .call_shard(p, true, &|shard| Request::Decide {
                    shard: unfenced(shard),
                    txn,
                    commit,
                })
                .await
            {
                warn!(shard = coordinator, txn, error = %e, "a multi-shard abort did not reach its coordinator; its shards settle it");
            }
        };
        tokio::join!(decide, self.finish_shards(map, txn, others, commit));
    }

    /// Phase two of a multi-shard commit on the shards other than the coordinator. One that
    /// cannot be reached settles the transaction itself once it can.
    async fn finish_shards(&self, map: &ClusterMap, txn: TxnId, shards: &[ShardId], commit: bool) {
        let finishes = shards.iter().map(|s| async move {
            let Ok(p) = planned(map, *s) else {
                return;
            };
            if let Err(e) = self
                .call_shard(p, true, &|shard| Request::Finish {
                    shard: unfenced(shard),
                    txn,
                    commit,
                })
                .await
            {
                warn!(shard = *s, txn, commit, error = %e, "a shard did not confirm phase two of a multi-shard commit; it settles it itself");
            }
        });
        futures::future::join_all(finishes).await;
    }

    /// Discards the session's transaction.
    pub async fn rollback(&self, session: &Session) {
        self.rollback_shards(session.txn.id, &session.txn.write_shards).await;
    }

    /// Discards transaction `txn` on `shards` (best effort: a shard that cannot be reached
    /// drops it anyway when the connection closes or it restarts).
    async fn rollback_shards(&self, txn: TxnId, shards: &[ShardId]) {
        let map = self.routing.current();
        let rollbacks = shards.iter().map(|s| {
            let map = &map;
            async move {
                let Some(planned) = map.shards.get(s) else {
                    return;
                };
                if let Err(e) = self
                    .call_shard(planned, true, &|shard| Request::Rollback { shard, txn })
                    .await
                {
                    warn!(shard = *s, error = %e, "rollback did not reach the shard");
                }
            }
        });
        futures::future::join_all(rollbacks).await;
    }
}

/// A shard addressed without a placement epoch to check, for the decisions of a multi-shard
/// commit: they do not depend on placement, and a split's fence waits for them.
fn unfenced(shard: ShardRef) -> ShardRef {
    ShardRef {
        epoch: u64::MAX,
        ..shard
    }
}

/// How often a statement is planned again because a shard it was planned against was split.
const REPLANS: usize = 5;

/// Whether a statement that failed with `e` may be planned and run again: it met a split
/// before anything of it could have been applied, outside a transaction block.
fn replannable(e: &Error, session: &Session, attempt: usize) -> bool {
    matches!(
        e,
        Error::MapChanged {
            maybe_applied: false,
            ..
        }
    ) && !session.in_block()
        && attempt < REPLANS
}

/// A split met after an attempt that may have been applied: the outcome is unknown.
fn settle(e: Error) -> Error {
    match e {
        Error::MapChanged {
            shard,
            maybe_applied: true,
        } => Error::Rpc(RpcError::OutcomeUnknown(format!(
            "shard \"{shard}\" was split after the statement was sent to it, and no answer came back"
        ))),
        other => other,
    }
}

/// The shard of `map` a statement planned against it writes to.
fn planned(map: &ClusterMap, shard: ShardId) -> Result<&Shard> {
    map.shards
        .get(&shard)
        .ok_or_else(|| Error::UndefinedTable(format!("shard {shard} (was it dropped?)")))
}

fn write_output(columns: Vec<OutputColumn>, outcome: WriteOutcome, tag: &str) -> Output {
    if columns.is_empty() {
        Output::command(format!("{tag} {}", outcome.count))
    } else {
        Output::Rows {
            columns,
            rows: rows_stream(outcome.returning),
            tag: tag.to_string(),
        }
    }
}

/// SELECT without FROM: one input row with no columns.
fn select_without_from(plan: &SelectPlan) -> Result<Vec<Row>> {
    let keep = match &plan.filter {
        Some(f) => f.eval_predicate(&[])?,
        None => true,
    };
    let read = plan_select(plan, None)?;
    match read.merge {
        Merge::Rows {
            offset, limit, width, ..
        } => {
            let crate::sql::SelectBody::Plain { projections, .. } = &plan.body else {
                return Ok(Vec::new());
            };
            if !keep || offset > 0 || limit == Some(0) {
                return Ok(Vec::new());
            }
            let row: Row = projections
                .iter()
                .map(|e| e.eval(&[]))
                .collect::<std::result::Result<_, _>>()?;
            Ok(vec![row.into_iter().take(width).collect()])
        }
        Merge::Aggregate {
            groups,
            aggregates,
            having,
            projections,
            sort,
            distinct,
            offset,
            limit,
            width,
        } => {
            let crate::sql::SelectBody::Aggregate {
                aggregates: calls,
                group_by,
                ..
            } = &plan.body
            else {
                return Ok(Vec::new());
            };
            let mut states: Vec<AggState> = calls.iter().map(|(c, _)| AggState::new(c.func)).collect();
            let group: Row = group_by
                .iter()
                .map(|e| e.eval(&[]))
                .collect::<std::result::Result<_, _>>()?;
            if keep {
                for (s, (c, _)) in states.iter_mut().zip(calls) {
                    s.update(c.func, c.arg.eval(&[])?)?;
                }
            }
            let merged = vec![(if keep || groups == 0 { group } else { Vec::new() }, states)];
            let merged = if !keep && groups > 0 { Vec::new() } else { merged };
            let _ = aggregates;
            finish_aggregates(
                merged,
                having.as_ref(),
                &projections,
                &sort,
                distinct,
                offset,
                limit,
                width,
            )
        }
    }
}

/// Combines the shards' outputs as the plan says: rows merged, or partial aggregates finished.
async fn merge(sources: Vec<mpsc::Receiver<Result<Batch>>>, plan: Merge) -> Result<RowStream> {
    Ok(match plan {
        Merge::Rows {
            sort,
            distinct,
            offset,
            limit,
            width,
        } => merge_rows(sources, sort, distinct, offset, limit, width),
        Merge::Aggregate {
            groups,
            aggregates,
            having,
            projections,
            sort,
            distinct,
            offset,
            limit,
            width,
        } => {
            let merged = merge_aggregates(sources, groups, &aggregates).await?;
            rows_stream(finish_aggregates(
                merged,
                having.as_ref(),
                &projections,
                &sort,
                distinct,
                offset,
                limit,
                width,
            )?)
        }
    })
}

/// Merges row streams from shards: in sort order when sorted (k-way), else as they arrive.
fn merge_rows(
    sources: Vec<mpsc::Receiver<Result<Batch>>>,
    sort: Vec<SortKey>,
    distinct: bool,
    offset: u64,
    limit: Option<u64>,
    width: usize,
) -> RowStream {
    if sources.len() == 1 {
        // One shard already sorted and deduplicated its rows: pass them through.
        let Some(rx) = sources.into_iter().next() else {
            return rows_stream(Vec::new());
        };
        let rows = channel_stream(rx)
            .flat_map(|batch| {
                let items: Vec<Result<Row>> = match batch {
                    Ok(Batch::Rows(rows)) => rows.into_iter().map(Ok).collect(),
                    Ok(Batch::Aggs(_)) => Vec::new(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(items)
            })
            // OFFSET skips rows, never errors; the stream ends (cancelling the scan) at LIMIT.
            .scan((offset, limit), move |(skip, left), item| {
                let out = match item {
                    Err(e) => Some(Some(Err(e))),
                    Ok(_) if *left == Some(0) => None,
                    Ok(_) if *skip > 0 => {
                        *skip -= 1;
                        Some(None)
                    }
                    Ok(mut row) => {
                        if let Some(l) = left {
                            *l -= 1;
                        }
                        row.truncate(width);
                        Some(Some(Ok(row)))
                    }
                };
                futures::future::ready(out)
            })
            .filter_map(futures::future::ready);
        return Box::pin(rows);
    }
    let (tx, rx) = mpsc::channel::<Result<Row>>(256);
    tokio::spawn(async move {
        let mut emitter = Emitter {
            tx,
            seen: HashSet::new(),
            distinct,
            skip: offset,
            left: limit,
            width,
        };
        if sort.is_empty() {
            let mut all = futures::stream::select_all(sources.into_iter().map(channel_stream));
            while let Some(batch) = all.next().await {
                match batch {
                    Ok(Batch::Rows(rows)) => {
                        for row in rows {
                            if !emitter.emit(row).await {
                                return;
                            }
                        }
                    }
                    Ok(Batch::Aggs(_)) => {}
                    Err(e) => {
                        let _ = emitter.tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            return;
        }
        let mut inputs: Vec<Input> = sources
            .into_iter()
            .map(|rx| Input {
                rx,
                queue: VecDeque::new(),
                done: false,
            })
            .collect();
        let mut heads: Vec<Option<Row>> = Vec::with_capacity(inputs.len());
        for input in inputs.iter_mut() {
            match input.next().await {
                Ok(r) => heads.push(r),
                Err(e) => {
                    let _ = emitter.tx.send(Err(e)).await;
                    return;
                }
            }
        }
        loop {
            let mut best: Option<usize> = None;
            for (i, h) in heads.iter().enumerate() {
                if let Some(row) = h {
                    best = match best {
                        Some(b)
                            if SortKey::compare(&sort, heads[b].as_deref().unwrap_or(&[]), row)
                                != std::cmp::Ordering::Greater =>
                        {
                            Some(b)
                        }
                        _ => Some(i),
                    };
                }
            }
            let Some(i) = best else { return };
            let row = heads[i].take().unwrap_or_default();
            if !emitter.emit(row).await {
                return;
            }
            match inputs[i].next().await {
                Ok(r) => heads[i] = r,
                Err(e) => {
                    let _ = emitter.tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    channel_stream(rx)
}

struct Input {
    rx: mpsc::Receiver<Result<Batch>>,
    queue: VecDeque<Row>,
    done: bool,
}

impl Input {
    async fn next(&mut self) -> Result<Option<Row>> {
        loop {
            if let Some(r) = self.queue.pop_front() {
                return Ok(Some(r));
            }
            if self.done {
                return Ok(None);
            }
            match self.rx.recv().await {
                Some(Ok(Batch::Rows(rows))) => self.queue.extend(rows),
                Some(Ok(Batch::Aggs(_))) => {}
                Some(Err(e)) => return Err(e),
                None => self.done = true,
            }
        }
    }
}

/// Applies DISTINCT, OFFSET and LIMIT to merged rows and sends them on.
struct Emitter {
    tx: mpsc::Sender<Result<Row>>,
    seen: HashSet<Row>,
    distinct: bool,
    skip: u64,
    left: Option<u64>,
    width: usize,
}

impl Emitter {
    /// Returns false when no more rows are wanted.
    async fn emit(&mut self, mut row: Row) -> bool {
        if self.left == Some(0) {
            return false;
        }
        row.truncate(self.width);
        if self.distinct && !self.seen.insert(row.clone()) {
            return true;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return true;
        }
        if let Some(l) = &mut self.left {
            *l -= 1;
        }
        self.tx.send(Ok(row)).await.is_ok() && self.left != Some(0)
    }
}

type Groups = Vec<(Row, Vec<AggState>)>;

/// Collects every shard's partial aggregates and merges them per group.
async fn merge_aggregates(
    sources: Vec<mpsc::Receiver<Result<Batch>>>,
    groups: usize,
    aggregates: &[(tessera_types::fragment::AggFunc, tessera_types::DataType)],
) -> Result<Groups> {
    let mut merged: HashMap<Row, Vec<AggState>> = HashMap::new();
    let mut order: Vec<Row> = Vec::new();
    let mut all = futures::stream::select_all(sources.into_iter().map(channel_stream));
    while let Some(batch) = all.next().await {
        let Batch::Aggs(rows) = batch? else { continue };
        for AggRow { group, states } in rows {
            match merged.get_mut(&group) {
                Some(existing) => {
                    for ((e, s), (f, _)) in existing.iter_mut().zip(states).zip(aggregates) {
                        e.merge(*f, s)?;
                    }
                }
                None => {
                    order.push(group.clone());
                    merged.insert(group, states);
                }
            }
        }
    }
    if merged.is_empty() && groups == 0 {
        // No shard reached: an ungrouped aggregate still returns one row.
        return Ok(vec![(
            Vec::new(),
            aggregates.iter().map(|(f, _)| AggState::new(*f)).collect(),
        )]);
    }
    Ok(order
        .into_iter()
        .filter_map(|g| merged.remove(&g).map(|s| (g, s)))
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn finish_aggregates(
    groups: Groups,
    having: Option<&Expr>,
    projections: &[Expr],
    sort: &[SortKey],
    distinct: bool,
    offset: u64,
    limit: Option<u64>,
    width: usize,
) -> Result<Vec<Row>> {
    let mut out: Vec<Row> = Vec::with_capacity(groups.len());
    for (group, states) in groups {
        let mut row = group;
        for s in states {
            // The aggregate's result type travels with its state's value.
            row.push(finish_state(s)?);
        }
        if let Some(h) = having {
            if !h.eval_predicate(&row)? {
                continue;
            }
        }
        out.push(
            projections
                .iter()
                .map(|e| e.eval(&row))
                .collect::<std::result::Result<Row, _>>()?,
        );
    }
    if !sort.is_empty() {
        out.sort_by(|a, b| SortKey::compare(sort, a, b));
    }
    let mut seen = HashSet::new();
    let rows = out
        .into_iter()
        .map(|mut r| {
            r.truncate(width);
            r
        })
        .filter(|r| !distinct || seen.insert(r.clone()))
        .skip(offset as usize)
        .take(limit.map(|l| l as usize).unwrap_or(usize::MAX))
        .collect();
    Ok(rows)
}

fn finish_state(s: AggState) -> Result<Value> {
    use tessera_types::DataType;
    let ty = match &s {
        AggState::Sum(Some(Value::Int8(_))) => DataType::Int8,
        AggState::Sum(Some(Value::Float8(_)))
        | AggState::Avg {
            sum: Some(Value::Float8(_)),
            ..
        } => DataType::Float8,
        AggState::Sum(Some(Value::Float4(_))) => DataType::Float4,
        _ => DataType::Numeric(None),
    };
    Ok(s.finish(ty)?)
}
