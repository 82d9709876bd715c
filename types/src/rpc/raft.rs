//! Raft messages over the RPC connections, for any openraft group a process takes part in (a
//! shard's replicas, the catalog's members): the sender serializes openraft's request into a
//! `Request` the caller builds (tagged with the group it belongs to), the receiver hands it to
//! its group and sends back openraft's serialized result.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::RaftTypeConfig;
use serde::{Deserialize, Serialize};

use crate::rpc::{RaftKind, Request, Response, RpcClient, RpcError};

/// What a Raft message to one peer can fail with, as openraft wants it.
pub type SendError<C, E> =
    RPCError<<C as RaftTypeConfig>::NodeId, <C as RaftTypeConfig>::Node, RaftError<<C as RaftTypeConfig>::NodeId, E>>;

/// Sends one Raft message to `target` through `client` (`None`: the target's address is not
/// known) and decodes the answer. `request` wraps the serialized message.
pub async fn send<C, Req, Resp, E>(
    client: Option<&RpcClient>,
    target: C::NodeId,
    message: &Req,
    request: impl FnOnce(Vec<u8>) -> Request,
    timeout: Duration,
) -> Result<Resp, SendError<C, E>>
where
    C: RaftTypeConfig,
    Req: Serialize,
    Resp: for<'de> Deserialize<'de>,
    E: std::error::Error + for<'de> Deserialize<'de>,
{
    let payload = bincode::serialize(message).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
    let Some(client) = client else {
        let e = std::io::Error::other(format!("Raft peer {target} has no known address"));
        return Err(RPCError::Unreachable(Unreachable::new(&e)));
    };
    let bytes = match client.call_timeout(request(payload), timeout).await {
        Ok(Response::Raft(bytes)) => bytes,
        Ok(other) => {
            let e = std::io::Error::other(format!("unexpected reply to a Raft message: {other:?}"));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        Err(e @ (RpcError::Unavailable { .. } | RpcError::UnknownShard { .. })) => {
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        }
        Err(e) => return Err(RPCError::Network(NetworkError::new(&e))),
    };
    let result: Result<Resp, RaftError<C::NodeId, E>> =
        bincode::deserialize(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
    result.map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
}

/// Serves an incoming Raft message for `raft`, returning the serialized result.
pub async fn handle<C: RaftTypeConfig>(
    raft: &openraft::Raft<C>,
    kind: RaftKind,
    payload: &[u8],
) -> Result<Vec<u8>, RpcError> {
    let bad = |e: bincode::Error| RpcError::Internal(format!("undecodable Raft message: {e}"));
    let encoded = match kind {
        RaftKind::AppendEntries => {
            let req: AppendEntriesRequest<C> = bincode::deserialize(payload).map_err(bad)?;
            bincode::serialize(&raft.append_entries(req).await)
        }
        RaftKind::Vote => {
            let req: VoteRequest<C::NodeId> = bincode::deserialize(payload).map_err(bad)?;
            bincode::serialize(&raft.vote(req).await)
        }
        RaftKind::InstallSnapshot => {
            let req: InstallSnapshotRequest<C> = bincode::deserialize(payload).map_err(bad)?;
            let reply: Result<_, RaftError<C::NodeId, InstallSnapshotError>> = raft.install_snapshot(req).await;
            bincode::serialize(&reply)
        }
    };
    encoded.map_err(|e| RpcError::Internal(format!("cannot encode a Raft reply: {e}")))
}
