//! `ALTER TABLE name ADD PRIMARY KEY (columns)` on a table that has none (its rows are keyed
//! by hidden row ids, as `pgbench -i` makes its tables before adding their keys). The catalog
//! carries it out shard by shard, through each shard's own log (`Request::Rekey`):
//!
//! 1. every shard is fenced at a new epoch, so writes planned before are refused from then on
//!    (routers plan them again with the new key once the map has it), and its rows are checked:
//!    a null key value (23502) or a key two rows share (23505) refuses the statement, after
//!    which the map records only the new epochs and the table stays as it was;
//! 2. every shard stores its rows under their new keys;
//! 3. the map records the primary key (its columns become NOT NULL) and the epochs.
//!
//! A shard's rows are re-keyed in memory, in one store transaction: fine for tables of the
//! size this is meant for (a few hundred MB per shard at most).

use std::time::Duration;

use tessera_types::fragment::TableLayout;
use tessera_types::rpc::{Request, RequestId, Response, RpcError};
use tessera_types::ExecError;
use tracing::info;

use crate::service::{now_ms, Catalog};
use crate::state::Command;

/// How long a shard may take to fence, check or re-key its rows.
const REKEY_TIMEOUT: Duration = Duration::from_secs(120);

/// How far past a shard's epoch its fence goes: replica changes that finish meanwhile raise the
/// map's epoch by one each, and must not reach the fence's, which only a map that has the new
/// key may (routers that meet the fence then plan again with the key).
const FENCE_GAP: u64 = 16;

fn refuse(code: &str, message: String) -> RpcError {
    RpcError::Exec(ExecError::other(code, message))
}

impl Catalog {
    pub(crate) async fn add_primary_key(&self, table: &str, columns: Vec<usize>) -> Result<Response, RpcError> {
        let map = self.map();
        let Some(t) = map.table_by_name(table) else {
            return Err(refuse("42P01", format!("relation \"{table}\" does not exist")));
        };
        if !t.primary_key.is_empty() {
            return Err(refuse(
                "42P16",
                format!("multiple primary keys for table \"{table}\" are not allowed"),
            ));
        }
        if let Some(p) = t.partitioning.as_ref().filter(|p| !columns.contains(&p.column)) {
            return Err(refuse(
                "0A000",
                format!(
                    "unique constraint on partitioned table must include all partitioning columns: PRIMARY KEY constraint on table \"{table}\" lacks column \"{}\" which is part of the partition key.",
                    t.columns[p.column].name
                ),
            ));
        }
        let shards: Vec<_> = map.shards_of(t.id).into_iter().cloned().collect();
        if let Some(busy) = shards
            .iter()
            .find(|s| self.with_state(|st| st.running_task(s.id).is_some()))
        {
            return Err(refuse(
                "55006",
                format!(
                    "shard \"{}\" is being changed by a task; try again when it has finished",
                    busy.name
                ),
            ));
        }
        let mut keyed = t.clone();
        keyed.primary_key = columns.clone();
        // The high half marks a catalog request; the fence takes this id, the re-keying the next.
        let request_id: RequestId = (u128::from(u64::MAX - 1) << 64) | (u128::from(now_ms()) << 8);
        let epochs: Vec<_> = shards.iter().map(|s| (s.id, s.epoch + FENCE_GAP)).collect();
        for check_only in [true, false] {
            for (shard, (_, epoch)) in shards.iter().zip(&epochs) {
                let request = Request::Rekey {
                    shard: shard.id,
                    epoch: *epoch,
                    request_id,
                    layout: TableLayout::of(&keyed, shard),
                    check_only,
                };
                let done = self
                    .on_primary_rpc(&shard.replicas, |addr| {
                        let request = request.clone();
                        async move { self.pool.client(&addr).call_timeout(request, REKEY_TIMEOUT).await }
                    })
                    .await;
                if let Err(e) = done {
                    if check_only {
                        // Fenced shards are served again at their new epoch, with the old key.
                        self.commit(vec![Command::SetPrimaryKey {
                            table: t.id,
                            primary_key: Vec::new(),
                            epochs: epochs.clone(),
                        }])
                        .await?;
                        return Err(e);
                    }
                    return Err(RpcError::Internal(format!(
                        "ALTER TABLE stopped after re-keying part of \"{table}\" (shard \"{}\": {e}); its writes are refused until the same ALTER TABLE is run again",
                        shard.name
                    )));
                }
            }
        }
        self.commit(vec![Command::SetPrimaryKey {
            table: t.id,
            primary_key: columns,
            epochs,
        }])
        .await?;
        info!(table, shards = shards.len(), "primary key added");
        Ok(self.ddl_done(Vec::new()))
    }
}
