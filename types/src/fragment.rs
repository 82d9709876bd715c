//! Fragments: the part of a statement that one shard executes next to its data. The router's
//! planner produces them; a shard node executes them and streams back rows (or partial
//! aggregates, or the outcome of a write). Expressions in a fragment read the table's row, in
//! column order.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::datatype::DataType;
use crate::expr::Expr;
use crate::key::KeyRange;
use crate::schema::{Shard, ShardBounds, ShardId, Table, TableId};
use crate::value::{Row, Value};

/// What a shard must know about its table to execute fragments and writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableLayout {
    pub table: TableId,
    pub name: String,
    pub columns: Vec<ColumnLayout>,
    /// Positions of the primary key columns, in key order; empty when rows are keyed by a
    /// hidden row id.
    pub primary_key: Vec<usize>,
    /// Partition key column and this shard's bounds, to notice an UPDATE that moves a row
    /// out of the shard.
    pub partition_column: Option<usize>,
    pub bounds: ShardBounds,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnLayout {
    pub name: String,
    pub ty: DataType,
    pub not_null: bool,
}

impl TableLayout {
    /// What a shard of `table` with `shard`'s bounds needs to know about it.
    pub fn of(table: &Table, shard: &Shard) -> Arc<TableLayout> {
        Arc::new(TableLayout {
            table: table.id,
            name: table.name.clone(),
            columns: table
                .columns
                .iter()
                .map(|c| ColumnLayout {
                    name: c.name.clone(),
                    ty: c.ty,
                    not_null: c.not_null,
                })
                .collect(),
            primary_key: table.primary_key.clone(),
            partition_column: table.partitioning.as_ref().map(|p| p.column),
            bounds: shard.bounds.clone(),
        })
    }

    /// Whether this shard's bounds hold a row (by its partition key).
    pub fn holds(&self, row: &[Value]) -> bool {
        let Some(col) = self.partition_column else { return true };
        let key = &row[col];
        match &self.bounds {
            ShardBounds::All => true,
            ShardBounds::Range { .. } => !key.is_null() && self.bounds.range_contains(key),
            ShardBounds::Hash { modulus, remainder } => {
                if key.is_null() {
                    *remainder == 0
                } else {
                    crate::hashpart::in_hash_partition(key, *modulus, *remainder)
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    /// Position in the fragment's output row.
    pub column: usize,
    pub descending: bool,
    pub nulls_first: bool,
}

impl SortKey {
    pub fn compare(keys: &[SortKey], a: &[Value], b: &[Value]) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        for k in keys {
            let (x, y) = (&a[k.column], &b[k.column]);
            let ord = match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => {
                    if k.nulls_first {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (false, true) => {
                    if k.nulls_first {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (false, false) => {
                    let o = x.total_cmp(y);
                    if k.descending {
                        o.reverse()
                    } else {
                        o
                    }
                }
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }
}

/// Aggregate functions, computed in two phases: each shard produces a partial state per
/// group, the router merges the states and finishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggFunc {
    CountStar,
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    BoolAnd,
    BoolOr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggCall {
    pub func: AggFunc,
    /// The argument (ignored for `COUNT(*)`).
    pub arg: Expr,
}

/// A read a shard executes: scan a key range of the table, filter, then produce rows or
/// partial aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanFragment {
    pub range: KeyRange,
    pub filter: Option<Expr>,
    pub output: ScanOutput,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ScanOutput {
    /// One output row per matching row: the projections, deduplicated if `distinct`, sorted by
    /// `order_by` (positions in the output), at most `limit` of them after sorting.
    Rows {
        projections: Vec<Expr>,
        distinct: bool,
        order_by: Vec<SortKey>,
        limit: Option<u64>,
    },
    /// One row per group: the group key values followed by one partial state per aggregate.
    Aggregate {
        group_by: Vec<Expr>,
        aggregates: Vec<AggCall>,
    },
}

/// The partial state of one aggregate in one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AggState {
    Count(i64),
    /// Sum so far, `None` until a non-NULL input arrives.
    Sum(Option<Value>),
    /// Sum and count, for AVG.
    Avg {
        sum: Option<Value>,
        count: i64,
    },
    /// Min or max so far.
    Extreme(Option<Value>),
    /// The distinct non-NULL inputs seen, for COUNT(DISTINCT).
    Distinct(Vec<Value>),
    Bool(Option<bool>),
}

/// A partial aggregate result row from a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggRow {
    pub group: Row,
    pub states: Vec<AggState>,
}

/// What to do when an inserted row's key exists already.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OnConflict {
    DoNothing,
    /// `DO UPDATE SET col = expr ... [WHERE cond]`. The expressions read the existing row
    /// followed by the proposed row (`EXCLUDED`): positions `0..n` and `n..2n`.
    DoUpdate {
        assignments: Vec<(usize, Expr)>,
        filter: Option<Expr>,
    },
}

/// A write a shard executes on its primary. The result names how many rows it touched, the
/// rows for RETURNING, and rows an UPDATE moved out of this shard's bounds (the router inserts
/// those where they now belong).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WriteFragment {
    Insert {
        rows: Vec<Row>,
        on_conflict: Option<OnConflict>,
        returning: Vec<Expr>,
    },
    Update {
        range: KeyRange,
        filter: Option<Expr>,
        assignments: Vec<(usize, Expr)>,
        returning: Vec<Expr>,
    },
    Delete {
        range: KeyRange,
        filter: Option<Expr>,
        returning: Vec<Expr>,
    },
}

impl WriteFragment {
    /// Whether computing the write takes a few key lookups at most (an INSERT of a few rows),
    /// so that it can run on the task that received it instead of a blocking thread.
    pub fn is_small(&self) -> bool {
        matches!(self, WriteFragment::Insert { rows, .. } if rows.len() <= 16)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteOutcome {
    pub count: u64,
    pub returning: Vec<Row>,
    /// Full new rows that no longer belong to this shard (deleted here).
    pub moved: Vec<Row>,
}

/// Addresses one shard at the placement epoch the sender believes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRef {
    pub shard: ShardId,
    pub epoch: u64,
}
