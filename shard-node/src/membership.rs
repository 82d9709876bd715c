//! Changes of a shard's group, asked for by the catalog's tasks (`catalog/src/tasks.rs`): a
//! new replica joins as a Raft learner and catches up by log or snapshot; once it is close
//! behind the primary, the group's voters become the set the catalog asks for, through one
//! membership change (openraft's joint configuration). Asking again is safe at every point.

use std::collections::BTreeSet;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;
use tessera_types::rpc::{Response, RpcError};
use tessera_types::schema::{NodeId, ReplicaId};

use crate::raft::ReplicaNode;
use crate::replica::Replica;

/// How many log entries a new replica may be behind the primary and still be promoted: the
/// membership change then waits for it only briefly.
const CAUGHT_UP_SLACK: u64 = 64;

impl Replica {
    /// On the primary: adds `add` as a learner (if it is not a member yet) and, once it has
    /// caught up, makes `voters` the group's voters; any other learner (left by a change that
    /// failed half-way) is removed. Answers `CatchingUp` while the new replica is behind.
    pub async fn change_replicas(
        &self,
        add: Option<(ReplicaId, NodeId)>,
        voters: Vec<ReplicaId>,
    ) -> Result<Response, RpcError> {
        self.ensure_leader()?;
        let voters: BTreeSet<ReplicaId> = voters.into_iter().collect();
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        if let Some((id, node)) = add {
            if membership.get_node(&id).is_none() {
                self.raft
                    .add_learner(id, ReplicaNode { node }, false)
                    .await
                    .map_err(|e| self.membership_error(e))?;
                return Ok(Response::CatchingUp {
                    matched: None,
                    last: m.last_log_index,
                });
            }
            let is_voter = membership.voter_ids().any(|v| v == id);
            if !is_voter {
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&id).cloned().flatten())
                    .map(|l| l.index);
                let last = m.last_log_index.unwrap_or(0);
                if matched.unwrap_or(0) + CAUGHT_UP_SLACK < last {
                    return Ok(Response::CatchingUp {
                        matched,
                        last: m.last_log_index,
                    });
                }
            }
        }
        let current: BTreeSet<ReplicaId> = membership.voter_ids().collect();
        let joint = membership.get_joint_config().len() > 1;
        if current != voters || joint {
            tracing::info!(shard = self.shard, from = ?current, to = ?voters, "changing the group's voters");
            self.raft
                .change_membership(voters.clone(), false)
                .await
                .map_err(|e| self.membership_error(e))?;
        }
        let strays: BTreeSet<ReplicaId> = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .learner_ids()
            .filter(|l| !voters.contains(l))
            .collect();
        if !strays.is_empty() {
            tracing::info!(shard = self.shard, learners = ?strays, "removing learners left by an earlier change");
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(strays), false)
                .await
                .map_err(|e| self.membership_error(e))?;
        }
        Ok(Response::Ok)
    }

    fn membership_error(&self, e: RaftError<ReplicaId, ClientWriteError<ReplicaId, ReplicaNode>>) -> RpcError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => RpcError::NotLeader {
                shard: self.shard,
                leader: f.leader_node.map(|n| n.node),
            },
            RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(p))) => {
                RpcError::Internal(format!("shard {}: a membership change is in progress: {p}", self.shard))
            }
            other => RpcError::Internal(format!("shard {}: membership change failed: {other}", self.shard)),
        }
    }
}
