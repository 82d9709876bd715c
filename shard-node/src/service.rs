//! The node's RPC front: dispatches requests from routers, the catalog and peer nodes to the
//! replica they address, after checking the sender's placement epoch.

use std::sync::Arc;

use tessera_types::fragment::ShardRef;
use tessera_types::rpc::{BoxFuture, ConnId, Request, Responder, Response, RpcError, Service};
use tokio::sync::mpsc;

use crate::exec::Batch;
use crate::node::Node;
use crate::raft::handle_raft_message;
use crate::raft::Control;
use crate::replica::Replica;

/// How long a scan may run without output before it tells the router it is working.
const STARTED_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

/// How long a primary may go without hearing from a majority and still say it is working.
const QUORUM_FRESH_MS: u64 = 1_000;

/// Runs a long write or commit, telling the router every `STARTED_AFTER` that it is still
/// working while this replica leads with a majority behind it: a big statement is then given
/// the time it needs, while a primary cut off from its majority falls silent, so the router
/// moves on to the next one.
async fn working<T>(
    replica: &Replica,
    work: impl std::future::Future<Output = Result<T, RpcError>>,
    reply: &mut Responder,
) -> Result<T, RpcError> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = tokio::time::sleep(STARTED_AFTER) => {
                let m = replica.raft.metrics().borrow().clone();
                let leading = m.state == openraft::ServerState::Leader
                    && m.millis_since_quorum_ack.is_some_and(|ms| ms <= QUORUM_FRESH_MS);
                if leading && reply.send(Response::Started).await.is_err() {
                    // The router went away: the work goes on (a proposal may commit) but
                    // nobody waits for the answer.
                    return work.await;
                }
            }
        }
    }
}

pub struct NodeService {
    pub node: Arc<Node>,
}

impl NodeService {
    /// The addressed replica, if this node holds it at an epoch no newer than the sender knows.
    fn replica(&self, shard: ShardRef) -> Result<Arc<Replica>, RpcError> {
        let r = self
            .node
            .replica(shard.shard)
            .ok_or(RpcError::UnknownShard { shard: shard.shard })?;
        let current = r.epoch();
        if shard.epoch < current {
            return Err(RpcError::StaleEpoch {
                shard: shard.shard,
                sent: shard.epoch,
                current,
            });
        }
        Ok(r)
    }

    async fn handle_request(&self, conn: ConnId, request: Request, mut reply: Responder) {
        let result = match request {
            Request::Scan {
                shard,
                layout,
                txn,
                consistency,
                fragment,
                batch_rows,
            } => {
                let replica = match self.replica(shard) {
                    Ok(r) => r,
                    Err(e) => return reply.finish(Err(e)),
                };
                let (tx, mut rx) = mpsc::channel::<Batch>(4);
                let single_row = layout.primary_key.len() == 1 && is_single_key(&fragment.range);
                let scan = replica.scan(
                    shard.epoch,
                    txn,
                    consistency,
                    fragment,
                    batch_rows.max(1) as usize,
                    single_row,
                    tx,
                );
                // One batch is held back so that the last one travels as the final reply: a
                // small scan is then a single frame each way.
                let forward = async {
                    // A slow first batch (a big aggregate) is announced, so the router knows
                    // this replica is alive and working.
                    let first = tokio::select! {
                        b = rx.recv() => b,
                        _ = tokio::time::sleep(STARTED_AFTER) => {
                            if reply.send(Response::Started).await.is_err() {
                                return None;
                            }
                            rx.recv().await
                        }
                    };
                    let first = first?;
                    let mut held = Some(match first {
                        Batch::Rows(rows) => Response::Rows(rows),
                        Batch::Aggs(aggs) => Response::Aggs(aggs),
                    });
                    while let Some(batch) = rx.recv().await {
                        let item = match batch {
                            Batch::Rows(rows) => Response::Rows(rows),
                            Batch::Aggs(aggs) => Response::Aggs(aggs),
                        };
                        if let Some(previous) = held.replace(item) {
                            if reply.send(previous).await.is_err() {
                                return None;
                            }
                        }
                    }
                    held
                };
                let (result, last) = tokio::join!(scan, forward);
                result.map(|()| last.unwrap_or(Response::Done))
            }
            Request::Write {
                shard,
                layout,
                scope,
                request_id,
                fragment,
            } => match self.replica(shard) {
                Ok(r) => {
                    let write = r.write(conn, shard.epoch, layout, scope, request_id, fragment);
                    working(&r, write, &mut reply).await.map(Response::Written)
                }
                Err(e) => Err(e),
            },
            Request::Commit { shard, txn, request_id } => match self.replica(shard) {
                Ok(r) => working(&r, r.commit(txn, request_id, None), &mut reply)
                    .await
                    .map(|()| Response::Ok),
                Err(e) => Err(e),
            },
            Request::Prepare {
                shard,
                txn,
                coordinator,
                request_id,
            } => match self.replica(shard) {
                Ok(r) => {
                    let prepare = Some(Control::Prepare { txn, coordinator });
                    working(&r, r.commit(txn, request_id, prepare), &mut reply)
                        .await
                        .map(|()| Response::Ok)
                }
                Err(e) => Err(e),
            },
            Request::Decide { shard, txn, commit } => match self.replica(shard) {
                Ok(r) => working(&r, r.decide(txn, commit), &mut reply)
                    .await
                    .map(|committed| Response::Decided { committed }),
                Err(e) => Err(e),
            },
            Request::Finish { shard, txn, commit } => match self.replica(shard) {
                Ok(r) => working(&r, r.finish(txn, commit), &mut reply)
                    .await
                    .map(|()| Response::Ok),
                Err(e) => Err(e),
            },
            Request::Rollback { shard, txn } => {
                if let Some(r) = self.node.replica(shard.shard) {
                    r.rollback(txn);
                }
                Ok(Response::Ok)
            }
            Request::CreateReplica {
                shard,
                replica,
                members,
                epoch,
            } => self
                .node
                .create_replica(shard, replica, members, epoch)
                .await
                .map(|()| Response::Ok),
            Request::ChangeReplicas { shard, add, voters } => match self.node.replica(shard) {
                Some(r) => r.change_replicas(add, voters).await,
                None => Err(RpcError::UnknownShard { shard }),
            },
            Request::DropReplica { shard, replica } => {
                self.node.drop_replica(shard, replica).await.map(|()| Response::Ok)
            }
            Request::Raft {
                shard,
                to,
                kind,
                payload,
            } => match self.node.replica(shard) {
                Some(r) if r.id == to => {
                    if kind == tessera_types::rpc::RaftKind::AppendEntries {
                        r.leader_contact();
                    }
                    handle_raft_message(&r.raft, kind, &payload).await.map(Response::Raft)
                }
                _ => Err(RpcError::UnknownShard { shard }),
            },
            Request::NodeStatus => Ok(Response::NodeStatus(self.node.status().await)),
            Request::Checksums => self.node.checksums().await.map(Response::Checksums),
            Request::SplitRead {
                shard,
                epoch,
                request_id,
                moved,
                batch_rows,
            } => {
                let Some(r) = self.node.replica(shard) else {
                    return reply.finish(Err(RpcError::UnknownShard { shard }));
                };
                let (tx, mut rx) = mpsc::channel::<Response>(4);
                let read = r.split_read(epoch, request_id, moved, batch_rows.max(1) as usize, tx);
                let forward = async {
                    while let Some(batch) = rx.recv().await {
                        if reply.send(batch).await.is_err() {
                            return;
                        }
                    }
                };
                let (result, ()) = tokio::join!(read, forward);
                result.map(|()| Response::Done)
            }
            Request::SplitIngest {
                shard,
                request_id,
                part,
                last,
                rows,
                requests,
            } => match self.replica(shard) {
                Ok(r) => r
                    .split_ingest(shard.epoch, request_id, part, last, rows, requests)
                    .await
                    .map(|()| Response::Ok),
                Err(e) => Err(e),
            },
            Request::SplitCleanup {
                shard,
                epoch,
                request_id,
                kept,
            } => match self.node.replica(shard) {
                Some(r) => r.split_cleanup(epoch, request_id, kept).await.map(|count| {
                    Response::Written(tessera_types::fragment::WriteOutcome {
                        count,
                        ..Default::default()
                    })
                }),
                None => Err(RpcError::UnknownShard { shard }),
            },
            Request::Rekey {
                shard,
                epoch,
                request_id,
                layout,
                check_only,
            } => match self.node.replica(shard) {
                Some(r) => r
                    .rekey(epoch, request_id, layout, check_only)
                    .await
                    .map(|()| Response::Ok),
                None => Err(RpcError::UnknownShard { shard }),
            },
            Request::ReadIndex { shard } => match self.node.replica(shard) {
                Some(r) => r.read_index().await.map(Response::ReadIndex),
                None => Err(RpcError::UnknownShard { shard }),
            },
            other => Err(RpcError::Internal(format!(
                "a shard node does not serve {}",
                request_name(&other)
            ))),
        };
        reply.finish(result);
    }
}

fn request_name(r: &Request) -> &'static str {
    match r {
        Request::RegisterNode { .. } => "RegisterNode",
        Request::Heartbeat { .. } => "Heartbeat",
        Request::GetMap { .. } => "GetMap",
        Request::Ddl(_) => "Ddl",
        _ => "this request",
    }
}

impl Service for NodeService {
    fn handle(self: Arc<Self>, conn: ConnId, request: Request, reply: Responder) -> BoxFuture {
        Box::pin(async move { self.handle_request(conn, request, reply).await })
    }

    fn connection_closed(&self, conn: ConnId) {
        self.node.connection_closed(conn);
    }
}

/// Whether a key range covers exactly the keys starting with one encoded value: with a
/// one-column key, that is one row at most.
fn is_single_key(range: &tessera_types::key::KeyRange) -> bool {
    use std::ops::Bound;
    match (&range.start, &range.end) {
        (Bound::Included(start), Bound::Excluded(end)) => {
            tessera_types::key::prefix_end(start).as_deref() == Some(end.as_slice())
        }
        _ => false,
    }
}
