//! Group commit at the Raft level: the write sets proposed to a shard while earlier ones are in
//! flight travel together as one log entry.
//!
//! openraft appends one entry at a time per group and waits for each append's fsync before
//! taking the next, on the primary and on every follower. Proposed one by one, concurrent
//! writes to a shard would each wait for their own flushes; gathered into one entry they share
//! one append, one fsync on every replica, one replication round and one apply transaction.
//!
//! A proposal joins a queue. Up to `IN_FLIGHT` drivers, each a task of its own, take whatever
//! is queued (at most `MAX_SETS` write sets) and propose it as one entry, then take the next lot
//! until the queue is empty. Drivers are tasks rather than the proposing requests themselves,
//! so a request cancelled by its client never strands the proposals it carried.

use std::sync::{Arc, Mutex};

use openraft::error::{ClientWriteError, RaftError};
use tessera_types::rpc::RpcError;
use tessera_types::schema::{ReplicaId, ShardId};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::raft::{ApplyOutcome, Raft, WriteBatch, WriteSet};

/// Entries of one shard being proposed at once: enough to keep the primary's log busy while an
/// earlier entry replicates and applies.
const IN_FLIGHT: usize = 2;

/// Most write sets in one entry, to bound the entry's size.
const MAX_SETS: usize = 512;

/// Most encoded bytes of write sets in one entry (an entry always takes at least one set). An
/// entry travels to every follower in one message that openraft allows one heartbeat interval,
/// so it must stay small enough to arrive, be written and be fsynced in that time even on a
/// busy node; bigger statements are proposed in pieces (`raft::Piece`).
pub const MAX_ENTRY_BYTES: u64 = 1 << 20;

/// The largest row a write may carry: a piece holds whole rows, so one row is one entry.
pub const MAX_ROW_BYTES: u64 = 8 << 20;

/// The most one statement (or transaction) may write to one shard: the primary holds it all
/// in memory while it is proposed.
pub const MAX_STATEMENT_BYTES: u64 = 64 << 20;

type Reply = oneshot::Sender<Result<ApplyOutcome, RpcError>>;

/// A proposed write set, its encoded size and where its outcome goes.
type Queued = (WriteSet, u64, Reply);

pub struct Proposer {
    shard: ShardId,
    replica: ReplicaId,
    raft: Raft,
    queue: Arc<Mutex<Vec<Queued>>>,
    drivers: Arc<Semaphore>,
}

impl Proposer {
    pub fn new(shard: ShardId, replica: ReplicaId, raft: Raft) -> Arc<Proposer> {
        Arc::new(Proposer {
            shard,
            replica,
            raft,
            queue: Arc::new(Mutex::new(Vec::new())),
            drivers: Arc::new(Semaphore::new(IN_FLIGHT)),
        })
    }

    /// Proposes a write set of `bytes` encoded bytes and waits until its entry is committed
    /// and applied here.
    pub async fn propose(self: &Arc<Self>, ws: WriteSet, bytes: u64) -> Result<ApplyOutcome, RpcError> {
        let (tx, rx) = oneshot::channel();
        self.lock().push((ws, bytes, tx));
        self.start_driver();
        rx.await.unwrap_or_else(|_| {
            Err(RpcError::OutcomeUnknown(format!(
                "replica {} stopped while proposing a write",
                self.replica
            )))
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a driver if anything is queued and fewer than `IN_FLIGHT` are running. A driver
    /// calls this after giving up its slot, so a proposal queued while every slot was taken
    /// is always picked up.
    fn start_driver(self: &Arc<Self>) {
        if self.lock().is_empty() {
            return;
        }
        let Ok(slot) = self.drivers.clone().try_acquire_owned() else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move { this.drive(slot).await });
    }

    async fn drive(self: Arc<Self>, slot: OwnedSemaphorePermit) {
        loop {
            let lot: Vec<Queued> = {
                let mut queue = self.lock();
                let mut bytes = 0;
                let n = queue
                    .iter()
                    .take(MAX_SETS)
                    .take_while(|(_, size, _)| {
                        bytes += size;
                        bytes <= MAX_ENTRY_BYTES
                    })
                    .count()
                    .max(1)
                    .min(queue.len());
                queue.drain(..n).collect()
            };
            if lot.is_empty() {
                break;
            }
            let (sets, replies): (Vec<WriteSet>, Vec<Reply>) =
                lot.into_iter().map(|(ws, _, reply)| (ws, reply)).unzip();
            let n = sets.len();
            match self.raft.client_write(WriteBatch::new(sets)).await {
                Ok(resp) if resp.data.len() == n => {
                    for (reply, outcome) in replies.into_iter().zip(resp.data) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Ok(resp) => {
                    let e = RpcError::Internal(format!(
                        "an entry of {n} write sets applied with {} outcomes",
                        resp.data.len()
                    ));
                    reply_all(replies, &e);
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    // The entry may still commit under the next primary: the router retries each
                    // request under its id, which answers with the first outcome if it did.
                    let e = RpcError::NotLeader {
                        shard: self.shard,
                        leader: f.leader_node.map(|n| n.node),
                    };
                    reply_all(replies, &e);
                }
                Err(RaftError::APIError(e)) => reply_all(replies, &RpcError::internal(e)),
                Err(RaftError::Fatal(e)) => reply_all(
                    replies,
                    &RpcError::OutcomeUnknown(format!("replica {} stopped: {e}", self.replica)),
                ),
            }
        }
        drop(slot);
        self.start_driver();
    }
}

fn reply_all(replies: Vec<Reply>, e: &RpcError) {
    for reply in replies {
        let _ = reply.send(Err(e.clone()));
    }
}
