//! One replica of one shard: its Raft group member, its store and its open transactions, and
//! the operations the router asks of it (scan, write, commit, rollback).
//!
//! Reads are linearizable by default on any replica: the primary confirms it still leads (a
//! heartbeat round to a majority); a follower asks the primary for its commit point (the read
//! index) and waits until it has applied that far. A session may instead accept follower
//! reads that are at most `max_staleness` behind.
//!
//! Writes run on the primary only. A write's statement outcome is remembered with its request
//! id when it applies, so a request retried after a failover gets the first answer and is
//! applied at most once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use tessera_types::fragment::{ScanFragment, TableLayout, WriteFragment, WriteOutcome};
use tessera_types::rpc::{ConnId, ReadConsistency, Request, RequestId, Response, RpcError, TxnId, TxnScope};
use tessera_types::schema::{NodeId, ReplicaId, ShardId};
use tessera_types::ExecError;
use tokio::sync::mpsc;

use crate::exec::{Batch, ScanError};
use crate::proposer::{Proposer, MAX_ENTRY_BYTES, MAX_ROW_BYTES, MAX_STATEMENT_BYTES};
use crate::raft::{ApplyOutcome, Control, KeyWrite, Peers, Piece, Raft, WriteBatch, WriteSet};
use crate::store::Store;
use crate::txn::{merged_range, Overlay, TxnRegistry};
use crate::write::{compute, merge_into};
use tessera_types::scan::run_scan;

/// How often an autocommit write is recomputed when a concurrent write changed its rows.
const CONFLICT_RETRIES: usize = 50;

/// How long a write waits for rows held by a prepared multi-shard transaction (which is
/// decided within milliseconds unless its router died, see `Node::resolve_prepared`).
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// How often a write waiting for held rows tries again.
const LOCK_RETRY: Duration = Duration::from_millis(2);

/// How long a read waits for this replica to catch up with the read index.
const CATCH_UP_WAIT: Duration = Duration::from_secs(5);

/// How long a confirmed leadership serves reads without a new heartbeat round: well under the
/// minimum election timeout (`raft::raft_config`), leaving room for clock drift.
const LEADER_LEASE: Duration = Duration::from_millis(150);

pub struct Replica {
    pub shard: ShardId,
    pub id: ReplicaId,
    pub raft: Raft,
    proposer: Arc<Proposer>,
    pub store: Arc<Store>,
    pub txns: TxnRegistry,
    pub peers: Arc<Peers>,
    /// Placement epoch this replica was created or last confirmed at.
    pub epoch: AtomicU64,
    /// Test-only negative control: acknowledge writes before they are committed.
    pub ack_before_commit: bool,
    /// When the primary was last heard from, in milliseconds since `started`.
    last_leader_contact: AtomicU64,
    /// The term and start time of the last heartbeat round that confirmed this replica leads.
    lease: std::sync::Mutex<Option<(u64, Instant)>>,
    /// Serializes confirmation rounds, so concurrent reads share one.
    confirming: tokio::sync::Mutex<()>,
    /// On a follower: the reads waiting for the primary's read index, batched into one request.
    read_index_batch: std::sync::Mutex<ReadIndexBatch>,
    /// Scans served since the node started (`tessera.replicas.reads`).
    reads: AtomicU64,
    /// Write statements executed as primary since the node started.
    writes: AtomicU64,
    started: Instant,
}

/// Follower reads that wait for one read index request to the primary. A request serves only
/// the reads that were waiting when it was sent (a read index fetched before a read arrived
/// could miss a write acknowledged in between); reads arriving while it is in flight wait for
/// the next one, so a follower has at most one such request in flight per shard.
#[derive(Default)]
struct ReadIndexBatch {
    in_flight: bool,
    waiting: Vec<tokio::sync::oneshot::Sender<Result<u64, RpcError>>>,
}

fn scan_error(e: ScanError) -> RpcError {
    match e {
        ScanError::Exec(e) => RpcError::Exec(e),
        ScanError::Store(e) => RpcError::Internal(e.to_string()),
    }
}

impl Replica {
    pub fn new(
        shard: ShardId,
        id: ReplicaId,
        raft: Raft,
        store: Arc<Store>,
        peers: Arc<Peers>,
        epoch: u64,
        ack_before_commit: bool,
    ) -> Replica {
        Replica {
            shard,
            id,
            proposer: Proposer::new(shard, id, raft.clone()),
            raft,
            store,
            txns: TxnRegistry::default(),
            peers,
            epoch: AtomicU64::new(epoch),
            ack_before_commit,
            last_leader_contact: AtomicU64::new(u64::MAX),
            lease: std::sync::Mutex::new(None),
            confirming: tokio::sync::Mutex::new(()),
            read_index_batch: std::sync::Mutex::new(ReadIndexBatch::default()),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Scans served since the node started.
    /// The placement epoch requests must carry: the newer of what the catalog last confirmed
    /// and what a split's fence raised the store to.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed).max(self.store.epoch())
    }

    fn stale(&self, sent: u64) -> RpcError {
        RpcError::StaleEpoch {
            shard: self.shard,
            sent,
            current: self.epoch(),
        }
    }

    pub fn reads_served(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Write statements executed as primary since the node started.
    pub fn writes_served(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Records that the primary just sent this replica log entries or a heartbeat.
    pub fn leader_contact(&self) {
        self.last_leader_contact
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long ago the primary was last heard from (`None`: never, since start).
    fn since_leader_contact(&self) -> Option<Duration> {
        match self.last_leader_contact.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(self.started.elapsed().saturating_sub(Duration::from_millis(ms))),
        }
    }

    /// On a follower whose primary has been silent for longer than `after`: the primary's
    /// node, the term, and how long the silence has lasted.
    pub fn silent_primary(&self, after: Duration) -> Option<(NodeId, u64, Duration)> {
        // The clock first: the metrics are looked at only when the primary is silent.
        let since = self.since_leader_contact().filter(|s| *s > after)?;
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state != ServerState::Follower {
            return None;
        }
        let node = m
            .current_leader
            .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.node))?;
        Some((node, m.current_term, since))
    }

    fn leader_node(&self) -> Option<NodeId> {
        let m = self.raft.metrics().borrow().clone();
        m.current_leader
            .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.node))
    }

    fn not_leader(&self) -> RpcError {
        RpcError::NotLeader {
            shard: self.shard,
            leader: self.leader_node(),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Fails unless this replica is its group's primary; the error names the primary's node.
    pub fn ensure_leader(&self) -> Result<(), RpcError> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(self.not_leader())
        }
    }

    /// On the primary: the commit point a linearizable read must see (the read index), after
    /// making sure this replica still leads.
    ///
    /// Leadership is confirmed by a heartbeat round to a majority, and that confirmation is a
    /// lease: no other primary can be elected before the followers' election timeout has run
    /// from the moment the round was sent, so for `LEADER_LEASE` (well under the minimum
    /// election timeout) reads need no new round. Concurrent reads share one round. Every write
    /// this primary acknowledged is already applied here, and on a new primary the first
    /// confirmation waits until everything its predecessors committed is applied.
    pub async fn read_index(&self) -> Result<u64, RpcError> {
        self.ensure_leader()?;
        let term = self.raft.metrics().borrow().current_term;
        let fresh =
            |lease: &Option<(u64, Instant)>| lease.is_some_and(|(t, at)| t == term && at.elapsed() < LEADER_LEASE);
        if !fresh(&self.lease.lock().unwrap_or_else(|p| p.into_inner())) {
            let _one_round = self.confirming.lock().await;
            if !fresh(&self.lease.lock().unwrap_or_else(|p| p.into_inner())) {
                let sent = Instant::now();
                if let Err(e) = self.raft.ensure_linearizable().await {
                    let leader = e
                        .forward_to_leader()
                        .and_then(|f| f.leader_node.as_ref().map(|n| n.node));
                    return Err(RpcError::NotLeader {
                        shard: self.shard,
                        leader,
                    });
                }
                *self.lease.lock().unwrap_or_else(|p| p.into_inner()) = Some((term, sent));
            }
        }
        self.ensure_leader()?;
        let committed = self
            .raft
            .with_raft_state(|st| st.committed.map(|c| c.index))
            .await
            .map_err(RpcError::internal)?;
        Ok(committed.unwrap_or(0))
    }

    /// Waits until this replica can serve a read at the required consistency.
    pub async fn read_barrier(self: &Arc<Self>, consistency: ReadConsistency) -> Result<(), RpcError> {
        if self.is_leader() {
            return match consistency {
                // The primary applies what it commits asynchronously, and a follower may have
                // served an entry the primary has committed but not applied yet: wait for it.
                ReadConsistency::Linearizable => {
                    let index = self.read_index().await?;
                    self.wait_applied(index).await
                }
                ReadConsistency::Follower { .. } => Ok(()),
            };
        }
        if let ReadConsistency::Follower { max_staleness_ms } = consistency {
            if self
                .since_leader_contact()
                .is_some_and(|d| d <= Duration::from_millis(max_staleness_ms))
            {
                return Ok(());
            }
        }
        // A follower: get the primary's read index (in a batch with the reads waiting with
        // this one), then catch up to it.
        let index = self.batched_read_index().await?;
        self.wait_applied(index).await
    }

    /// The primary's read index, asked for once for every read waiting at the time.
    async fn batched_read_index(self: &Arc<Self>) -> Result<u64, RpcError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = {
            let mut batch = self.read_index_batch.lock().unwrap_or_else(|p| p.into_inner());
            batch.waiting.push(tx);
            !std::mem::replace(&mut batch.in_flight, true)
        };
        if start {
            let replica = self.clone();
            tokio::spawn(async move { replica.send_read_index_batches().await });
        }
        rx.await.unwrap_or_else(|_| Err(self.not_leader()))
    }

    /// Sends read index requests while reads wait for one, each answering the reads that were
    /// waiting when it was sent.
    async fn send_read_index_batches(self: Arc<Self>) {
        loop {
            let waiting = {
                let mut batch = self.read_index_batch.lock().unwrap_or_else(|p| p.into_inner());
                if batch.waiting.is_empty() {
                    batch.in_flight = false;
                    return;
                }
                std::mem::take(&mut batch.waiting)
            };
            let result = self.ask_read_index().await;
            for w in waiting {
                let _ = w.send(result.clone());
            }
        }
    }

    /// One read index request to the primary.
    async fn ask_read_index(&self) -> Result<u64, RpcError> {
        let leader = self.leader_node().ok_or_else(|| self.not_leader())?;
        let addr = self.peers.addr(leader).ok_or_else(|| self.not_leader())?;
        let reply = self
            .peers
            .pool
            .client(&addr)
            .call_timeout(Request::ReadIndex { shard: self.shard }, CATCH_UP_WAIT)
            .await
            .map_err(|e| {
                tracing::debug!(shard = self.shard, replica = self.id, leader, error = %e, "read index request failed");
                self.not_leader()
            })?;
        match reply {
            Response::ReadIndex(index) => Ok(index),
            other => Err(RpcError::Internal(format!("unexpected read index reply {other:?}"))),
        }
    }

    /// Waits until this replica has applied the log up to `index`.
    async fn wait_applied(&self, index: u64) -> Result<(), RpcError> {
        if self
            .raft
            .metrics()
            .borrow()
            .last_applied
            .is_some_and(|a| a.index >= index)
            || index == 0
        {
            return Ok(());
        }
        self.raft
            .wait(Some(CATCH_UP_WAIT))
            .applied_index_at_least(Some(index), "replica catches up to the read index")
            .await
            .map_err(|_| RpcError::Timeout(CATCH_UP_WAIT.as_millis() as u64))?;
        Ok(())
    }

    /// Runs a scan, sending output batches to `tx` as they are produced.
    #[allow(clippy::too_many_arguments)]
    pub async fn scan(
        self: &Arc<Self>,
        epoch: u64,
        txn: Option<TxnId>,
        consistency: ReadConsistency,
        fragment: ScanFragment,
        batch_rows: usize,
        single_row: bool,
        tx: mpsc::Sender<Batch>,
    ) -> Result<(), RpcError> {
        let overlay: Option<Overlay> = match txn {
            Some(id) => {
                // A transaction that wrote here must still be open, or its reads would miss
                // its own writes. Its writes live on the primary.
                self.ensure_leader()?;
                let t = self.txns.get(id).ok_or(RpcError::TxnGone {
                    shard: self.shard,
                    txn: id,
                })?;
                let overlay = t.lock().await.overlay.clone();
                Some(overlay)
            }
            None => None,
        };
        self.read_barrier(consistency).await?;
        // Counted once it is served here: a read refused (not caught up, no primary known) and
        // retried elsewhere by the router counts where it was served.
        self.reads.fetch_add(1, Ordering::Relaxed);
        // The rows as of now, refused if a split fenced the shard since the request was sent:
        // some of them may have moved to the shard it split off.
        let reader = self.store.reader().map_err(RpcError::internal)?;
        if reader.epoch > epoch {
            return Err(self.stale(epoch));
        }
        if single_row {
            // One key at most: a B-tree lookup, done here rather than on a blocking thread.
            let mut batches = Vec::new();
            let rows = merged_range(&reader, overlay.as_ref(), &fragment.range)
                .map_err(RpcError::internal)?
                .map(|item| item.map(|(_, _, row)| row).map_err(ScanError::from));
            run_scan(rows, &fragment, batch_rows, &mut |batch| {
                batches.push(batch);
                true
            })
            .map_err(scan_error)?;
            for b in batches {
                if tx.send(b).await.is_err() {
                    break;
                }
            }
            return Ok(());
        }
        let result = tokio::task::spawn_blocking(move || -> Result<(), ScanError> {
            let rows = merged_range(&reader, overlay.as_ref(), &fragment.range)?
                .map(|item| item.map(|(_, _, row)| row).map_err(ScanError::from));
            run_scan(rows, &fragment, batch_rows, &mut |batch| {
                tx.blocking_send(batch).is_ok()
            })
        })
        .await
        .map_err(RpcError::internal)?;
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(scan_error(e)),
        }
    }

    async fn compute(
        &self,
        layout: Arc<TableLayout>,
        fragment: WriteFragment,
        txn: Option<Overlay>,
    ) -> Result<crate::write::Effect, RpcError> {
        let store = self.store.clone();
        let small = fragment.is_small();
        let run = move || -> Result<crate::write::Effect, ScanError> {
            let reader = store.reader()?;
            compute(&reader, txn.as_ref(), &layout, &fragment)
        };
        if small {
            return run().map_err(scan_error);
        }
        tokio::task::spawn_blocking(run)
            .await
            .map_err(RpcError::internal)?
            .map_err(scan_error)
    }

    /// On a new primary, waits until it has applied an entry of its own term, so everything
    /// its predecessors committed is applied before a write is computed from the rows.
    async fn caught_up_as_leader(&self) -> Result<(), RpcError> {
        let current = |m: &openraft::RaftMetrics<ReplicaId, crate::raft::ReplicaNode>| {
            m.last_applied.map(|l| l.leader_id.term) == Some(m.current_term)
        };
        if current(&self.raft.metrics().borrow()) {
            return Ok(());
        }
        self.raft
            .wait(Some(CATCH_UP_WAIT))
            .metrics(
                |m| current(m) || m.state != ServerState::Leader,
                "a new primary applies its first entry",
            )
            .await
            .map_err(|_| RpcError::Timeout(CATCH_UP_WAIT.as_millis() as u64))?;
        self.ensure_leader()
    }

    /// Proposes a write set through Raft (with whatever else is being proposed to this shard)
    /// and waits until it is committed and applied here. One bigger than a log entry should
    /// be goes in pieces (`Piece`), the last of which applies it; one over the statement or
    /// row limit is refused before anything is proposed.
    async fn propose(&self, ws: WriteSet) -> Result<ApplyOutcome, RpcError> {
        let too_big = |what: &str, bytes: u64, limit: u64| -> RpcError {
            ExecError::other(
                "54000",
                format!(
                    "{what} {} MiB to shard {}, more than the {} MiB allowed",
                    bytes.div_ceil(1 << 20),
                    self.shard,
                    limit >> 20
                ),
            )
            .into()
        };
        let bytes = bincode::serialized_size(&ws).unwrap_or(u64::MAX);
        if bytes <= MAX_ENTRY_BYTES {
            return self.proposer.propose(ws, bytes).await;
        }
        if bytes > MAX_STATEMENT_BYTES {
            return Err(too_big("the statement writes", bytes, MAX_STATEMENT_BYTES));
        }
        // Pieces of whole key writes, each up to an entry's worth (one big row alone).
        let mut pieces: Vec<(Vec<KeyWrite>, u64)> = vec![(Vec::new(), 0)];
        for w in ws.writes {
            let size = bincode::serialized_size(&w).unwrap_or(u64::MAX);
            if size > MAX_ROW_BYTES {
                return Err(too_big("a row of the statement writes", size, MAX_ROW_BYTES));
            }
            let last = pieces.last_mut().expect("pieces start with one");
            if last.1 + size > MAX_ENTRY_BYTES && !last.0.is_empty() {
                pieces.push((vec![w], size));
            } else {
                last.0.push(w);
                last.1 += size;
            }
        }
        let staged = (pieces.len() - 1) as u32;
        let mut outcome = ApplyOutcome::Applied;
        for (n, (writes, size)) in pieces.into_iter().enumerate() {
            let n = n as u32;
            let last = n == staged;
            let piece = WriteSet {
                request_id: ws.request_id,
                epoch: ws.epoch,
                writes,
                outcome: if last {
                    ws.outcome.clone()
                } else {
                    WriteOutcome::default()
                },
                piece: if last { Piece::Last(staged) } else { Piece::Staged(n) },
                control: if last { ws.control.clone() } else { None },
            };
            outcome = self.proposer.propose(piece, size).await?;
            if outcome == ApplyOutcome::Duplicate {
                // Applied before, under this request id: nothing more to do.
                return Ok(outcome);
            }
        }
        Ok(outcome)
    }

    fn remembered(&self, request_id: RequestId) -> Result<Option<WriteOutcome>, RpcError> {
        self.store.request_outcome(request_id).map_err(RpcError::internal)
    }

    /// Executes a write: at once (autocommit), or into an open transaction.
    pub async fn write(
        &self,
        conn: ConnId,
        epoch: u64,
        layout: Arc<TableLayout>,
        scope: TxnScope,
        request_id: RequestId,
        fragment: WriteFragment,
    ) -> Result<WriteOutcome, RpcError> {
        self.ensure_leader()?;
        // Caught up first: a new primary must have applied a re-key its predecessor committed.
        self.caught_up_as_leader().await?;
        self.check_layout(&layout)?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        match scope {
            TxnScope::Single => {
                // Caught up first, so a retry of a request applied under the previous primary
                // is recognised.
                self.caught_up_as_leader().await?;
                if let Some(outcome) = self.remembered(request_id)? {
                    return Ok(outcome);
                }
                let mut barrier_done = false;
                let mut conflicts = 0;
                let deadline = Instant::now() + LOCK_WAIT;
                loop {
                    let effect = self.compute(layout.clone(), fragment.clone(), None).await?;
                    if effect.writes.is_empty() {
                        // Nothing to write: the answer is a read, and must be as fresh as one.
                        if !barrier_done {
                            self.read_index().await?;
                            barrier_done = true;
                            continue;
                        }
                        // Computed from rows a split may have moved away since the request
                        // arrived (the fence applies before they leave).
                        if self.store.epoch() > epoch {
                            return Err(self.stale(epoch));
                        }
                        return Ok(effect.outcome);
                    }
                    // Again now that the writes are computed: a re-key may have applied since.
                    self.check_layout(&layout)?;
                    if self.held(effect.writes.keys().map(Vec::as_slice))? {
                        if Instant::now() >= deadline {
                            return Err(held_rows());
                        }
                        tokio::time::sleep(LOCK_RETRY).await;
                        continue;
                    }
                    let ws = write_set(request_id, epoch, effect.writes, effect.outcome.clone());
                    if self.ack_before_commit {
                        // The negative control: answer before a majority holds the write.
                        self.raft
                            .client_write_ff(WriteBatch::new(vec![ws]))
                            .await
                            .map_err(RpcError::internal)?;
                        return Ok(effect.outcome);
                    }
                    match self.propose(ws).await? {
                        ApplyOutcome::Conflict => {
                            conflicts += 1;
                            if conflicts >= CONFLICT_RETRIES {
                                return Err(ExecError::SerializationFailure.into());
                            }
                            tokio::time::sleep(Duration::from_micros(200 * conflicts as u64)).await;
                        }
                        ApplyOutcome::Locked => {
                            if Instant::now() >= deadline {
                                return Err(held_rows());
                            }
                            tokio::time::sleep(LOCK_RETRY).await;
                        }
                        ApplyOutcome::Duplicate => return Ok(self.remembered(request_id)?.unwrap_or_default()),
                        ApplyOutcome::Stale => return Err(self.stale(epoch)),
                        ApplyOutcome::Applied => return Ok(effect.outcome),
                        ApplyOutcome::Committed | ApplyOutcome::Aborted => {
                            return Err(RpcError::internal("a write set was answered as a decision"))
                        }
                    }
                }
            }
            TxnScope::Begin(txn_id) | TxnScope::Continue(txn_id) => {
                let txn = match scope {
                    TxnScope::Begin(_) => self.txns.open(txn_id, conn, epoch),
                    _ => self.txns.get(txn_id).ok_or(RpcError::TxnGone {
                        shard: self.shard,
                        txn: txn_id,
                    })?,
                };
                let mut txn = txn.lock().await;
                if txn.overlay.is_empty() {
                    self.caught_up_as_leader().await?;
                }
                let effect = self
                    .compute(layout.clone(), fragment, Some(txn.overlay.clone()))
                    .await?;
                self.check_layout(&layout)?;
                merge_into(&mut txn.overlay, effect.writes);
                txn.last_used = Instant::now();
                Ok(effect.outcome)
            }
        }
    }

    /// Commits a transaction's writes atomically (`prepare` is `None`), or prepares them for a
    /// multi-shard commit (`Control::Prepare`). A retried commit that already applied
    /// succeeds; a retry of one still in progress waits for it and gets its outcome; one whose
    /// transaction is gone without having committed fails with `TxnGone`.
    pub async fn commit(
        self: &Arc<Self>,
        txn_id: TxnId,
        request_id: RequestId,
        prepare: Option<Control>,
    ) -> Result<(), RpcError> {
        self.ensure_leader()?;
        self.caught_up_as_leader().await?;
        if self.remembered(request_id)?.is_some() {
            return Ok(());
        }
        let Some(txn) = self.txns.get(txn_id) else {
            return Err(RpcError::TxnGone {
                shard: self.shard,
                txn: txn_id,
            });
        };
        // Once started, a commit runs to its end even if the router stops waiting (its
        // request is dropped): it has taken the writes out of the transaction, and a retry
        // must find the outcome, not an empty transaction to "commit".
        let this = self.clone();
        tokio::spawn(async move { this.commit_now(txn, txn_id, request_id, prepare).await })
            .await
            .map_err(RpcError::internal)?
    }

    async fn commit_now(
        &self,
        txn: Arc<tokio::sync::Mutex<crate::txn::Txn>>,
        txn_id: TxnId,
        request_id: RequestId,
        prepare: Option<Control>,
    ) -> Result<(), RpcError> {
        // Held until the commit is decided, so that a retry waits here for it.
        let mut txn = txn.lock().await;
        if let Some(outcome) = &txn.committed {
            return outcome.clone();
        }
        let overlay = std::mem::take(&mut txn.overlay);
        let outcome = if overlay.is_empty() && prepare.is_none() {
            Ok(())
        } else {
            let mut ws = write_set(request_id, txn.epoch, overlay, WriteOutcome::default());
            ws.control = prepare;
            self.propose_commit(ws).await
        };
        txn.committed = Some(outcome.clone());
        self.txns.remove(txn_id);
        outcome
    }

    /// Proposes a transaction's write set, waiting for rows held by a prepared transaction
    /// unless it is itself being prepared (two preparing transactions waiting for each other's
    /// rows would wait forever; one is refused instead).
    async fn propose_commit(&self, ws: WriteSet) -> Result<(), RpcError> {
        let preparing = ws.control.is_some();
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            self.ensure_leader()?;
            return match self.propose(ws.clone()).await? {
                ApplyOutcome::Conflict => Err(ExecError::SerializationFailure.into()),
                ApplyOutcome::Stale => Err(ExecError::other(
                    "40001",
                    format!(
                        "could not commit: shard {} was split while the transaction was open; retry the transaction",
                        self.shard
                    ),
                )
                .into()),
                ApplyOutcome::Locked if !preparing => {
                    // Proposed again once the rows are free, not before.
                    while self.held(ws.writes.iter().map(|w| w.key.as_slice()))? {
                        if Instant::now() >= deadline {
                            return Err(held_rows());
                        }
                        tokio::time::sleep(LOCK_RETRY).await;
                    }
                    continue;
                }
                ApplyOutcome::Locked => Err(held_rows()),
                ApplyOutcome::Applied | ApplyOutcome::Duplicate => Ok(()),
                ApplyOutcome::Committed | ApplyOutcome::Aborted => {
                    Err(RpcError::internal("a write set was answered as a decision"))
                }
            };
        }
    }

    /// Refuses a write planned with another primary key than `ALTER TABLE ... ADD PRIMARY KEY`
    /// gave this shard's rows (its keys would be made of the wrong columns).
    fn check_layout(&self, layout: &TableLayout) -> Result<(), RpcError> {
        match self.store.primary_key() {
            Some(pk) if pk != layout.primary_key => Err(RpcError::LayoutChanged { shard: self.shard }),
            _ => Ok(()),
        }
    }

    fn held<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) -> Result<bool, RpcError> {
        self.store.held(keys).map_err(RpcError::internal)
    }

    /// Fences this shard at `epoch` (a split, a re-key) unless it already is, as its primary,
    /// then waits for the transactions prepared before the fence to be decided: from then on
    /// its rows change no more.
    async fn fenced_at(&self, epoch: u64, request_id: RequestId) -> Result<(), RpcError> {
        if self.store.epoch() < epoch {
            self.propose_control(request_id, epoch, Control::Fence).await?;
        } else {
            self.ensure_leader()?;
            self.caught_up_as_leader().await?;
        }
        self.drain_prepared().await
    }

    /// Waits until every transaction prepared here is decided (after a fence, when no new one
    /// can prepare; they are decided within milliseconds, or settled within seconds).
    async fn drain_prepared(&self) -> Result<(), RpcError> {
        let deadline = Instant::now() + LOCK_WAIT * 3;
        loop {
            if self.store.prepared().map_err(RpcError::internal)?.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RpcError::Internal(format!(
                    "shard {} still holds multi-shard transactions being committed; try again",
                    self.shard
                )));
            }
            tokio::time::sleep(LOCK_RETRY * 5).await;
        }
    }

    pub fn rollback(&self, txn_id: TxnId) {
        self.txns.remove(txn_id);
    }

    /// On the coordinator shard of a multi-shard transaction: records its outcome (the one
    /// recorded first wins) and applies or drops the writes prepared here. Returns whether
    /// the transaction committed.
    pub async fn decide(&self, txn_id: TxnId, commit: bool) -> Result<bool, RpcError> {
        self.txns.remove(txn_id);
        match self.propose_resolution(Control::Decide { txn: txn_id, commit }).await? {
            ApplyOutcome::Committed => Ok(true),
            ApplyOutcome::Aborted => Ok(false),
            other => Err(RpcError::internal(format!("a decision was answered with {other:?}"))),
        }
    }

    /// On another shard of a decided multi-shard transaction: applies (`commit`) or drops the
    /// writes prepared here, if any are left.
    pub async fn finish(&self, txn_id: TxnId, commit: bool) -> Result<(), RpcError> {
        self.txns.remove(txn_id);
        self.propose_resolution(Control::Finish { txn: txn_id, commit }).await?;
        Ok(())
    }

    async fn propose_resolution(&self, control: Control) -> Result<ApplyOutcome, RpcError> {
        self.ensure_leader()?;
        self.caught_up_as_leader().await?;
        let ws = WriteSet {
            request_id: 0,
            epoch: self.epoch(),
            writes: Vec::new(),
            outcome: WriteOutcome::default(),
            piece: Piece::Whole,
            control: Some(control),
        };
        let bytes = bincode::serialized_size(&ws).unwrap_or(u64::MAX);
        self.proposer.propose(ws, bytes).await
    }

    /// Proposes a split's control set (no row writes) and waits until it has applied here.
    async fn propose_control(&self, request_id: RequestId, epoch: u64, control: Control) -> Result<(), RpcError> {
        self.ensure_leader()?;
        self.caught_up_as_leader().await?;
        let ws = WriteSet {
            request_id,
            epoch,
            writes: Vec::new(),
            outcome: WriteOutcome::default(),
            piece: Piece::Whole,
            control: Some(control),
        };
        let bytes = bincode::serialized_size(&ws).unwrap_or(u64::MAX);
        let outcome = self.proposer.propose(ws, bytes).await?;
        self.must_apply(outcome, epoch, "the split")
    }

    /// What a set that must apply came to (a control set, a split's copy): applied, now or
    /// before, is success; `what` names it in the error otherwise.
    fn must_apply(&self, outcome: ApplyOutcome, epoch: u64, what: &str) -> Result<(), RpcError> {
        match outcome {
            ApplyOutcome::Applied | ApplyOutcome::Duplicate => Ok(()),
            ApplyOutcome::Stale => Err(self.stale(epoch)),
            ApplyOutcome::Locked => Err(RpcError::internal(format!(
                "shard {} holds a multi-shard transaction being committed; {what} tries again",
                self.shard
            ))),
            other => Err(RpcError::internal(format!(
                "{what} on shard {} was answered with {other:?}",
                self.shard
            ))),
        }
    }

    /// `ALTER TABLE ... ADD PRIMARY KEY` on this shard: fences it at `epoch` (under
    /// `request_id`), checks that the rows' keys under `layout.primary_key` are unique and not
    /// null, and unless `check_only` stores every row under its key (under `request_id + 1`).
    /// Repeatable.
    pub async fn rekey(
        &self,
        epoch: u64,
        request_id: RequestId,
        layout: Arc<TableLayout>,
        check_only: bool,
    ) -> Result<(), RpcError> {
        self.fenced_at(epoch, request_id).await?;
        let store = self.store.clone();
        let checked = layout.clone();
        tokio::task::spawn_blocking(move || check_keys(&store, &checked))
            .await
            .map_err(RpcError::internal)??;
        if check_only {
            return Ok(());
        }
        let ws = WriteSet {
            request_id: request_id.wrapping_add(1),
            epoch,
            writes: Vec::new(),
            outcome: WriteOutcome::default(),
            piece: Piece::Whole,
            control: Some(Control::Rekey {
                primary_key: layout.primary_key.clone(),
            }),
        };
        let bytes = bincode::serialized_size(&ws).unwrap_or(u64::MAX);
        let outcome = self.proposer.propose(ws, bytes).await?;
        self.must_apply(outcome, epoch, "ALTER TABLE")
    }

    /// The first step of a split on the shard being split: fences it at `epoch` (every write
    /// computed at an older epoch is refused from then on, on every replica), then sends the
    /// rows `moved` holds (the bounds of the shard split off) and every remembered request,
    /// in batches. Repeatable: a shard already fenced at `epoch` is only read.
    pub async fn split_read(
        &self,
        epoch: u64,
        request_id: RequestId,
        moved: Arc<TableLayout>,
        batch_rows: usize,
        tx: mpsc::Sender<Response>,
    ) -> Result<(), RpcError> {
        self.fenced_at(epoch, request_id).await?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || -> Result<(), RpcError> {
            let reader = store.reader().map_err(RpcError::internal)?;
            let mut batch = Vec::new();
            for item in reader
                .range(&tessera_types::key::KeyRange::all())
                .map_err(RpcError::internal)?
            {
                let (key, _, row) = item.map_err(RpcError::internal)?;
                if moved.holds(&row) {
                    batch.push((key, row));
                }
                if batch.len() >= batch_rows {
                    let rows = std::mem::take(&mut batch);
                    if tx
                        .blocking_send(Response::SplitRows {
                            rows,
                            requests: Vec::new(),
                        })
                        .is_err()
                    {
                        return Ok(());
                    }
                }
            }
            let requests = store.requests().map_err(RpcError::internal)?;
            let mut requests = requests.into_iter().peekable();
            while !batch.is_empty() || requests.peek().is_some() {
                let chunk: Vec<_> = requests.by_ref().take(batch_rows).collect();
                let rows = std::mem::take(&mut batch);
                if tx.blocking_send(Response::SplitRows { rows, requests: chunk }).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        })
        .await
        .map_err(RpcError::internal)?
    }

    /// On the shard split off: stages one part of the rows and remembered requests copied from
    /// its source; the `last` part applies all of them at once. Repeatable under the same
    /// request id.
    #[allow(clippy::too_many_arguments)]
    pub async fn split_ingest(
        &self,
        epoch: u64,
        request_id: RequestId,
        part: u32,
        last: bool,
        rows: Vec<(Vec<u8>, tessera_types::Row)>,
        requests: Vec<(RequestId, WriteOutcome)>,
    ) -> Result<(), RpcError> {
        self.ensure_leader()?;
        self.caught_up_as_leader().await?;
        if self.remembered(request_id)?.is_some() {
            return Ok(());
        }
        let ws = WriteSet {
            request_id,
            epoch,
            writes: rows
                .into_iter()
                .map(|(key, row)| KeyWrite {
                    key,
                    expected: None,
                    row: Some(row),
                })
                .collect(),
            outcome: WriteOutcome::default(),
            piece: if last { Piece::Last(part) } else { Piece::Staged(part) },
            control: (!requests.is_empty()).then_some(Control::Remember(requests)),
        };
        let bytes = bincode::serialized_size(&ws).unwrap_or(u64::MAX);
        match self.proposer.propose(ws, bytes).await? {
            ApplyOutcome::Conflict => Err(RpcError::internal(format!(
                "shard {} cannot take the copied rows: a part is missing or a row exists already",
                self.shard
            ))),
            other => self.must_apply(other, epoch, "a split's copy"),
        }
    }

    /// The last step of a split on the shard being split: deletes the rows its narrowed bounds
    /// (`kept`) no longer hold, which the shard split off now has. Returns how many.
    pub async fn split_cleanup(
        &self,
        epoch: u64,
        request_id: RequestId,
        kept: Arc<TableLayout>,
    ) -> Result<u64, RpcError> {
        self.ensure_leader()?;
        self.caught_up_as_leader().await?;
        if self.remembered(request_id)?.is_some() {
            return Ok(0);
        }
        let store = self.store.clone();
        let writes = tokio::task::spawn_blocking(move || -> Result<Vec<KeyWrite>, RpcError> {
            let reader = store.reader().map_err(RpcError::internal)?;
            let mut writes = Vec::new();
            for item in reader
                .range(&tessera_types::key::KeyRange::all())
                .map_err(RpcError::internal)?
            {
                let (key, version, row) = item.map_err(RpcError::internal)?;
                if !kept.holds(&row) {
                    writes.push(KeyWrite {
                        key,
                        expected: Some(version),
                        row: None,
                    });
                }
            }
            Ok(writes)
        })
        .await
        .map_err(RpcError::internal)??;
        let count = writes.len() as u64;
        let ws = WriteSet {
            request_id,
            epoch,
            writes,
            outcome: WriteOutcome {
                count,
                ..WriteOutcome::default()
            },
            piece: Piece::Whole,
            control: None,
        };
        match self.propose(ws).await? {
            ApplyOutcome::Applied | ApplyOutcome::Duplicate => Ok(count),
            ApplyOutcome::Stale => Err(self.stale(epoch)),
            // Nothing writes to a fenced shard at an older epoch; a conflict means a write at
            // this epoch got in, and the next attempt computes the deletes again.
            ApplyOutcome::Conflict | ApplyOutcome::Locked => Err(RpcError::internal(format!(
                "rows of shard {} changed while a split cleaned it up; it will try again",
                self.shard
            ))),
            other => Err(RpcError::internal(format!(
                "a split's cleanup was answered with {other:?}"
            ))),
        }
    }
}

/// Checks that every row of `store` has a key under `layout.primary_key`, unique and not null,
/// with the errors PostgreSQL gives `ALTER TABLE ... ADD PRIMARY KEY`.
fn check_keys(store: &crate::store::Store, layout: &TableLayout) -> Result<(), RpcError> {
    let reader = store.reader().map_err(RpcError::internal)?;
    let mut seen = std::collections::HashSet::new();
    let mut duplicate = None;
    for item in reader
        .range(&tessera_types::key::KeyRange::all())
        .map_err(RpcError::internal)?
    {
        let (_, _, row) = item.map_err(RpcError::internal)?;
        if let Some(&i) = layout
            .primary_key
            .iter()
            .find(|&&i| row.get(i).is_none_or(|v| v.is_null()))
        {
            let column = layout.columns.get(i).map(|c| c.name.as_str()).unwrap_or("?");
            return Err(ExecError::other(
                "23502",
                format!(
                    "column \"{column}\" of relation \"{}\" contains null values",
                    layout.name
                ),
            )
            .into());
        }
        let key = crate::store::primary_key_of(&row, &layout.primary_key).unwrap_or_default();
        if !seen.insert(key) && duplicate.is_none() {
            let names: Vec<&str> = layout
                .primary_key
                .iter()
                .map(|i| layout.columns[*i].name.as_str())
                .collect();
            let values: Vec<String> = layout
                .primary_key
                .iter()
                .map(|i| row[*i].to_text().unwrap_or_default())
                .collect();
            duplicate = Some(ExecError::other(
                "23505",
                format!(
                    "could not create unique index \"{}_pkey\": key ({})=({}) is duplicated",
                    layout.name,
                    names.join(", "),
                    values.join(", ")
                ),
            ));
        }
    }
    // As in PostgreSQL, a null key value is reported before a duplicate key.
    duplicate.map_or(Ok(()), |e| Err(e.into()))
}

/// The error of a write that waited too long for rows a prepared transaction holds.
fn held_rows() -> RpcError {
    ExecError::other(
        "40001",
        "could not serialize access: a row is held by a multi-shard transaction being committed; retry",
    )
    .into()
}

fn write_set(request_id: RequestId, epoch: u64, writes: Overlay, outcome: WriteOutcome) -> WriteSet {
    WriteSet {
        request_id,
        epoch,
        writes: writes
            .into_iter()
            .map(|(key, p)| KeyWrite {
                key,
                expected: p.expected,
                row: p.row,
            })
            .collect(),
        outcome,
        piece: Piece::Whole,
        control: None,
    }
}
