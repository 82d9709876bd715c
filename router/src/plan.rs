//! Distributed planning: which shards a statement reaches (pruning on the partition key), the
//! fragment each shard executes (key range, filter, projection, partial aggregates, DISTINCT,
//! top-N), and what the router does with the streams (merge, finish aggregates, LIMIT).
//!
//! Pruning reads the WHERE clause as a set of intervals of the partition key: `=`, `<`, `<=`,
//! `>`, `>=`, `BETWEEN` and `IN` give intervals, AND intersects them, OR unites them, anything
//! else leaves the key unconstrained. Range shards overlapping the intervals are kept; hash
//! shards are kept for the hash of each point (or all, if the intervals are not points). The
//! same analysis on the first primary-key column bounds the key range each shard scans.

use std::cmp::Ordering;
use std::ops::Bound;

use tessera_types::expr::BinaryOp;
use tessera_types::fragment::{AggCall, AggFunc, ScanFragment, ScanOutput, SortKey};
use tessera_types::hashpart::in_hash_partition;
use tessera_types::key::KeyRange;
use tessera_types::schema::{ClusterMap, PartitionMethod, Shard, ShardBounds, Table};
use tessera_types::{DataType, Expr, Value};

use crate::error::{Error, Result};
use crate::sql::{OrderKey, SelectBody, SelectPlan, TableRef};

type Interval = (Bound<Value>, Bound<Value>);

fn cmp_lower(a: &Bound<Value>, b: &Bound<Value>) -> Ordering {
    match (a, b) {
        (Bound::Unbounded, Bound::Unbounded) => Ordering::Equal,
        (Bound::Unbounded, _) => Ordering::Less,
        (_, Bound::Unbounded) => Ordering::Greater,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            x.total_cmp(y).then_with(|| match (a, b) {
                (Bound::Included(_), Bound::Excluded(_)) => Ordering::Less,
                (Bound::Excluded(_), Bound::Included(_)) => Ordering::Greater,
                _ => Ordering::Equal,
            })
        }
    }
}

fn cmp_upper(a: &Bound<Value>, b: &Bound<Value>) -> Ordering {
    match (a, b) {
        (Bound::Unbounded, Bound::Unbounded) => Ordering::Equal,
        (Bound::Unbounded, _) => Ordering::Greater,
        (_, Bound::Unbounded) => Ordering::Less,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            x.total_cmp(y).then_with(|| match (a, b) {
                (Bound::Included(_), Bound::Excluded(_)) => Ordering::Greater,
                (Bound::Excluded(_), Bound::Included(_)) => Ordering::Less,
                _ => Ordering::Equal,
            })
        }
    }
}

fn non_empty(i: &Interval) -> bool {
    match (&i.0, &i.1) {
        (Bound::Included(l), Bound::Included(u)) => l.total_cmp(u) != Ordering::Greater,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u)) | (Bound::Excluded(l), Bound::Included(u)) => {
            l.total_cmp(u) == Ordering::Less
        }
        _ => true,
    }
}

fn intersect(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let lo = if cmp_lower(&x.0, &y.0) == Ordering::Greater {
                x.0.clone()
            } else {
                y.0.clone()
            };
            let hi = if cmp_upper(&x.1, &y.1) == Ordering::Less {
                x.1.clone()
            } else {
                y.1.clone()
            };
            let i = (lo, hi);
            if non_empty(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// The intervals of column `col` a predicate allows (`None`: unconstrained).
fn key_intervals(e: &Expr, col: usize) -> Option<Vec<Interval>> {
    match e {
        Expr::Binary(BinaryOp::And, a, b) => match (key_intervals(a, col), key_intervals(b, col)) {
            (None, x) | (x, None) => x,
            (Some(x), Some(y)) => Some(intersect(&x, &y)),
        },
        Expr::Binary(BinaryOp::Or, a, b) => {
            let mut x = key_intervals(a, col)?;
            x.extend(key_intervals(b, col)?);
            Some(x)
        }
        Expr::Binary(op, a, b) if op.is_comparison() => {
            let (op, v) = match (a.as_ref(), b.as_ref()) {
                (Expr::Column(c), Expr::Literal(v)) if *c == col => (*op, v),
                (Expr::Literal(v), Expr::Column(c)) if *c == col => (op.flip(), v),
                _ => return None,
            };
            if v.is_null() {
                return Some(Vec::new());
            }
            let v = v.clone();
            Some(match op {
                BinaryOp::Eq => vec![(Bound::Included(v.clone()), Bound::Included(v))],
                BinaryOp::Lt => vec![(Bound::Unbounded, Bound::Excluded(v))],
                BinaryOp::LtEq => vec![(Bound::Unbounded, Bound::Included(v))],
                BinaryOp::Gt => vec![(Bound::Excluded(v), Bound::Unbounded)],
                BinaryOp::GtEq => vec![(Bound::Included(v), Bound::Unbounded)],
                _ => return None,
            })
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } => match expr.as_ref() {
            Expr::Column(c) if *c == col => {
                let mut out = Vec::new();
                for item in list {
                    match item {
                        Expr::Literal(v) if v.is_null() => {}
                        Expr::Literal(v) => out.push((Bound::Included(v.clone()), Bound::Included(v.clone()))),
                        _ => return None,
                    }
                }
                Some(out)
            }
            _ => None,
        },
        Expr::Literal(Value::Bool(false)) | Expr::Literal(Value::Null) => Some(Vec::new()),
        _ => None,
    }
}

fn range_overlaps(bounds: &ShardBounds, i: &Interval) -> bool {
    let ShardBounds::Range { from, to } = bounds else {
        return true;
    };
    let shard = (
        from.clone().map(Bound::Included).unwrap_or(Bound::Unbounded),
        to.clone().map(Bound::Excluded).unwrap_or(Bound::Unbounded),
    );
    !intersect(std::slice::from_ref(&shard), std::slice::from_ref(i)).is_empty()
}

fn point(i: &Interval) -> Option<&Value> {
    match (&i.0, &i.1) {
        (Bound::Included(a), Bound::Included(b)) if a.total_cmp(b) == Ordering::Equal => Some(a),
        _ => None,
    }
}

/// The shards of `target` that rows matching `filter` can be in, in shard order.
pub fn prune<'m>(map: &'m ClusterMap, table: &Table, target: &TableRef, filter: Option<&Expr>) -> Vec<&'m Shard> {
    let mut shards = map.shards_of(table.id);
    if let Some(only) = target.shard {
        shards.retain(|s| s.id == only);
    }
    let (Some(part), Some(filter)) = (&table.partitioning, filter) else {
        return shards;
    };
    let Some(intervals) = key_intervals(filter, part.column) else {
        return shards;
    };
    match part.method {
        PartitionMethod::Range => shards.retain(|s| intervals.iter().any(|i| range_overlaps(&s.bounds, i))),
        PartitionMethod::Hash => {
            let points: Option<Vec<&Value>> = intervals.iter().map(point).collect();
            if let Some(points) = points {
                shards.retain(|s| match &s.bounds {
                    ShardBounds::Hash { modulus, remainder } => {
                        points.iter().any(|v| in_hash_partition(v, *modulus, *remainder))
                    }
                    _ => true,
                });
            }
        }
    }
    shards
}

/// The values of the first primary-key column a scan must cover: one interval spanning all
/// the filter allows (`None`: the whole table; an empty list: nothing).
pub fn key_hull(table: &Table, filter: Option<&Expr>) -> Option<Vec<Interval>> {
    let (Some(first), Some(filter)) = (table.primary_key.first(), filter) else {
        return None;
    };
    let intervals = key_intervals(filter, *first)?;
    if intervals.is_empty() {
        return Some(Vec::new());
    }
    let lo = intervals
        .iter()
        .map(|i| &i.0)
        .min_by(|a, b| cmp_lower(a, b))
        .cloned()
        .unwrap_or(Bound::Unbounded);
    let hi = intervals
        .iter()
        .map(|i| &i.1)
        .max_by(|a, b| cmp_upper(a, b))
        .cloned()
        .unwrap_or(Bound::Unbounded);
    Some(vec![(lo, hi)])
}

/// The key range a shard scans, from the filter's constraints on the first key column (the
/// filter still applies to every row in it).
pub fn scan_range(table: &Table, filter: Option<&Expr>) -> KeyRange {
    match key_hull(table, filter) {
        None => KeyRange::all(),
        Some(h) => match h.first() {
            None => KeyRange::empty(),
            Some((lo, hi)) => KeyRange::between(lo.as_ref(), hi.as_ref()),
        },
    }
}

/// The scanned key interval as text for EXPLAIN (`stud_id in [1000, 9000]`).
pub fn describe_hull(table: &Table, filter: Option<&Expr>) -> Option<String> {
    let hull = key_hull(table, filter)?;
    let column = &table.columns[*table.primary_key.first()?].name;
    let Some((lo, hi)) = hull.first() else {
        return Some("no rows can match".into());
    };
    let text = |v: &Value| v.to_text().unwrap_or_default();
    let lo = match lo {
        Bound::Unbounded => "(-inf".to_string(),
        Bound::Included(v) => format!("[{}", text(v)),
        Bound::Excluded(v) => format!("({}", text(v)),
    };
    let hi = match hi {
        Bound::Unbounded => "+inf)".to_string(),
        Bound::Included(v) => format!("{}]", text(v)),
        Bound::Excluded(v) => format!("{})", text(v)),
    };
    Some(format!("{column} in {lo}, {hi}"))
}

/// The shard a row belongs to (by its partition key).
pub fn shard_for_row<'m>(map: &'m ClusterMap, table: &Table, row: &[Value]) -> Option<&'m Shard> {
    let shards = map.shards_of(table.id);
    let Some(part) = &table.partitioning else {
        return shards.into_iter().next();
    };
    let key = &row[part.column];
    shards.into_iter().find(|s| match &s.bounds {
        ShardBounds::All => true,
        ShardBounds::Range { .. } => !key.is_null() && s.bounds.range_contains(key),
        ShardBounds::Hash { modulus, remainder } => {
            if key.is_null() {
                *remainder == 0 && *modulus > 0
            } else {
                in_hash_partition(key, *modulus, *remainder)
            }
        }
    })
}

/// How the router combines shard outputs for a SELECT.
#[derive(Debug, Clone)]
pub enum Merge {
    /// Rows: merged in `sort` order (if any), deduplicated if `distinct`, then OFFSET/LIMIT,
    /// keeping the first `width` columns.
    Rows {
        sort: Vec<SortKey>,
        distinct: bool,
        offset: u64,
        limit: Option<u64>,
        width: usize,
    },
    /// Partial aggregates: merged per group, finished, filtered by HAVING, projected (with
    /// sort keys appended), sorted, deduplicated, limited.
    Aggregate {
        groups: usize,
        aggregates: Vec<(AggFunc, DataType)>,
        having: Option<Expr>,
        projections: Vec<Expr>,
        sort: Vec<SortKey>,
        distinct: bool,
        offset: u64,
        limit: Option<u64>,
        width: usize,
    },
}

/// A SELECT planned for execution.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    pub fragment: ScanFragment,
    pub merge: Merge,
}

/// Appends sort expressions that are not already projected; returns the sort keys.
fn sort_keys(projections: &mut Vec<Expr>, order: &[OrderKey]) -> Vec<SortKey> {
    order
        .iter()
        .map(|o| {
            let column = match projections.iter().position(|p| *p == o.expr) {
                Some(i) => i,
                None => {
                    projections.push(o.expr.clone());
                    projections.len() - 1
                }
            };
            SortKey {
                column,
                descending: o.descending,
                nulls_first: o.nulls_first,
            }
        })
        .collect()
}

pub fn plan_select(plan: &SelectPlan, table: Option<&Table>) -> Result<ReadPlan> {
    let range = match table {
        Some(t) => scan_range(t, plan.filter.as_ref()),
        None => KeyRange::all(),
    };
    let width = plan.columns.len();
    let shard_limit = plan.limit.map(|l| l.saturating_add(plan.offset));
    match &plan.body {
        SelectBody::Plain { projections, distinct } => {
            let mut projections = projections.clone();
            let sort = sort_keys(&mut projections, &plan.order_by);
            let fragment = ScanFragment {
                range,
                filter: plan.filter.clone(),
                output: ScanOutput::Rows {
                    projections,
                    distinct: *distinct,
                    order_by: sort.clone(),
                    limit: shard_limit,
                },
            };
            Ok(ReadPlan {
                fragment,
                merge: Merge::Rows {
                    sort,
                    distinct: *distinct,
                    offset: plan.offset,
                    limit: plan.limit,
                    width,
                },
            })
        }
        SelectBody::Aggregate {
            group_by,
            aggregates,
            having,
            projections,
            distinct,
        } => {
            let mut projections = projections.clone();
            let sort = sort_keys(&mut projections, &plan.order_by);
            let calls: Vec<AggCall> = aggregates.iter().map(|(c, _)| c.clone()).collect();
            let fragment = ScanFragment {
                range,
                filter: plan.filter.clone(),
                output: ScanOutput::Aggregate {
                    group_by: group_by.clone(),
                    aggregates: calls,
                },
            };
            Ok(ReadPlan {
                fragment,
                merge: Merge::Aggregate {
                    groups: group_by.len(),
                    aggregates: aggregates.iter().map(|(c, t)| (c.func, *t)).collect(),
                    having: having.clone(),
                    projections,
                    sort,
                    distinct: *distinct,
                    offset: plan.offset,
                    limit: plan.limit,
                    width,
                },
            })
        }
    }
}

/// The error PostgreSQL gives for a row that fits no partition.
pub fn no_partition(table: &Table, row: &[Value]) -> Error {
    let detail = match &table.partitioning {
        Some(p) => format!(
            "Partition key of the failing row contains ({}) = ({}).",
            table.columns[p.column].name,
            row[p.column].to_text().unwrap_or_else(|| "null".into())
        ),
        None => String::new(),
    };
    Error::Exec(tessera_types::ExecError::NoPartition {
        table: table.name.clone(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_types::schema::{ColumnDef, Partitioning, ReplicaInfo};

    fn studt() -> (ClusterMap, Table) {
        let table = Table {
            id: 1,
            name: "studt".into(),
            columns: vec![
                ColumnDef {
                    name: "stud_id".into(),
                    ty: DataType::Int4,
                    not_null: true,
                    default: None,
                },
                ColumnDef {
                    name: "stud_marks".into(),
                    ty: DataType::Int4,
                    not_null: false,
                    default: None,
                },
            ],
            primary_key: vec![0],
            partitioning: Some(Partitioning {
                method: PartitionMethod::Range,
                column: 0,
            }),
            replicas: 1,
        };
        let mut map = ClusterMap::default();
        map.tables.insert(1, table.clone());
        for i in 0..4u64 {
            map.shards.insert(
                10 + i,
                Shard {
                    id: 10 + i,
                    table: 1,
                    name: format!("sh{}", i + 1),
                    bounds: ShardBounds::Range {
                        from: Some(Value::Int4(4096 * i as i32)),
                        to: Some(Value::Int4(4096 * (i as i32 + 1))),
                    },
                    replicas: vec![ReplicaInfo { id: i, node: 1 }],
                    epoch: 1,
                },
            );
        }
        (map, table)
    }

    fn names(shards: Vec<&Shard>) -> Vec<String> {
        shards.into_iter().map(|s| s.name.clone()).collect()
    }

    fn cmp(op: BinaryOp, v: i32) -> Expr {
        Expr::binary(op, Expr::Column(0), Expr::Literal(Value::Int4(v)))
    }

    #[test]
    fn point_and_range_predicates_prune() {
        let (map, t) = studt();
        let target = TableRef { table: 1, shard: None };
        assert_eq!(names(prune(&map, &t, &target, Some(&cmp(BinaryOp::Eq, 5)))), ["sh1"]);
        let between = Expr::binary(BinaryOp::And, cmp(BinaryOp::GtEq, 1000), cmp(BinaryOp::LtEq, 9000));
        assert_eq!(names(prune(&map, &t, &target, Some(&between))), ["sh1", "sh2", "sh3"]);
        let or = Expr::binary(BinaryOp::Or, cmp(BinaryOp::Eq, 1), cmp(BinaryOp::Gt, 12288));
        assert_eq!(names(prune(&map, &t, &target, Some(&or))), ["sh1", "sh4"]);
        let other_column = Expr::binary(BinaryOp::Eq, Expr::Column(1), Expr::Literal(Value::Int4(5)));
        assert_eq!(prune(&map, &t, &target, Some(&other_column)).len(), 4);
        let contradiction = Expr::binary(BinaryOp::And, cmp(BinaryOp::Lt, 10), cmp(BinaryOp::Gt, 20));
        assert!(prune(&map, &t, &target, Some(&contradiction)).is_empty());
        let in_list = Expr::InList {
            expr: Box::new(Expr::Column(0)),
            list: vec![Expr::Literal(Value::Int4(5000)), Expr::Literal(Value::Int4(9000))],
            negated: false,
        };
        assert_eq!(names(prune(&map, &t, &target, Some(&in_list))), ["sh2", "sh3"]);
    }

    #[test]
    fn scan_ranges_follow_the_key() {
        let (_, t) = studt();
        let r = scan_range(&t, Some(&cmp(BinaryOp::Eq, 7)));
        let key = |v: i32| tessera_types::key::encode_key(&[&Value::Int4(v)]);
        assert!(r.contains(&key(7)) && !r.contains(&key(8)) && !r.contains(&key(6)));
        assert!(scan_range(&t, None).is_all());
    }
}
