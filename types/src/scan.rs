//! Runs a scan fragment over rows: filter, then either project (with DISTINCT, a top-N sort
//! and LIMIT) or fold into partial aggregates. Shard nodes run it next to their data; the
//! router runs it over its own virtual tables. Output is handed over in batches so it can
//! stream on while the scan goes on.

use std::collections::{HashMap, HashSet};

use crate::error::ExecError;
use crate::fragment::{AggFunc, AggRow, AggState, ScanFragment, ScanOutput, SortKey};
use crate::value::{Row, Value};

/// A batch of a scan's output.
pub enum Batch {
    Rows(Vec<Row>),
    Aggs(Vec<AggRow>),
}

/// Runs `fragment` over `rows`, passing output batches of about `batch_rows` to `emit`, which
/// returns false to stop early.
pub fn run_scan<E: From<ExecError>>(
    rows: impl Iterator<Item = Result<Row, E>>,
    fragment: &ScanFragment,
    batch_rows: usize,
    emit: &mut dyn FnMut(Batch) -> bool,
) -> Result<(), E> {
    let batch_rows = batch_rows.max(1);
    let matching = rows.filter_map(|item| match item {
        Err(e) => Some(Err(e)),
        Ok(row) => match &fragment.filter {
            None => Some(Ok(row)),
            Some(f) => match f.eval_predicate(&row) {
                Ok(true) => Some(Ok(row)),
                Ok(false) => None,
                Err(e) => Some(Err(e.into())),
            },
        },
    });
    match &fragment.output {
        ScanOutput::Rows {
            projections,
            distinct,
            order_by,
            limit,
        } => {
            let project = |row: &Row| -> Result<Row, ExecError> {
                if projections.is_empty() {
                    return Ok(row.clone());
                }
                projections.iter().map(|e| e.eval(row)).collect()
            };
            let limit = limit.map(|l| l as usize).unwrap_or(usize::MAX);
            if limit == 0 {
                return Ok(());
            }
            let mut seen: HashSet<Row> = HashSet::new();
            if order_by.is_empty() {
                // Stream in key order, stopping at the limit.
                let mut batch = Vec::with_capacity(batch_rows.min(limit));
                let mut sent = 0usize;
                for row in matching {
                    let out = project(&row?)?;
                    if *distinct && !seen.insert(out.clone()) {
                        continue;
                    }
                    batch.push(out);
                    sent += 1;
                    if batch.len() >= batch_rows && !emit(Batch::Rows(std::mem::take(&mut batch))) {
                        return Ok(());
                    }
                    if sent >= limit {
                        break;
                    }
                }
                if !batch.is_empty() && !emit(Batch::Rows(batch)) {
                    return Ok(());
                }
                return Ok(());
            }
            // Sort here; with a limit, keep only the best rows while scanning (top-N).
            let mut kept: Vec<Row> = Vec::new();
            for row in matching {
                let out = project(&row?)?;
                if *distinct && !seen.insert(out.clone()) {
                    continue;
                }
                kept.push(out);
                if limit != usize::MAX && kept.len() >= limit.saturating_mul(2).max(1024) {
                    kept.sort_by(|a, b| SortKey::compare(order_by, a, b));
                    kept.truncate(limit);
                }
            }
            kept.sort_by(|a, b| SortKey::compare(order_by, a, b));
            kept.truncate(limit);
            for chunk in chunks(kept, batch_rows) {
                if !emit(Batch::Rows(chunk)) {
                    return Ok(());
                }
            }
            Ok(())
        }
        ScanOutput::Aggregate { group_by, aggregates } => {
            let mut groups: HashMap<Row, Vec<AggState>> = HashMap::new();
            for row in matching {
                let row = row?;
                let key: Row = group_by.iter().map(|e| e.eval(&row)).collect::<Result<_, _>>()?;
                let states = groups
                    .entry(key)
                    .or_insert_with(|| aggregates.iter().map(|a| AggState::new(a.func)).collect());
                for (state, agg) in states.iter_mut().zip(aggregates) {
                    let v = if agg.func == AggFunc::CountStar {
                        Value::Null
                    } else {
                        agg.arg.eval(&row)?
                    };
                    state.update(agg.func, v)?;
                }
            }
            if groups.is_empty() && group_by.is_empty() {
                // An aggregate without GROUP BY has one row even over no input.
                groups.insert(Vec::new(), aggregates.iter().map(|a| AggState::new(a.func)).collect());
            }
            let rows: Vec<AggRow> = groups
                .into_iter()
                .map(|(group, states)| AggRow {
                    group,
                    states: states.into_iter().map(dedup_distinct).collect(),
                })
                .collect();
            for chunk in chunks(rows, batch_rows) {
                if !emit(Batch::Aggs(chunk)) {
                    return Ok(());
                }
            }
            Ok(())
        }
    }
}

/// COUNT(DISTINCT) states carry each distinct value once per shard.
fn dedup_distinct(state: AggState) -> AggState {
    match state {
        AggState::Distinct(mut values) => {
            values.sort();
            values.dedup();
            AggState::Distinct(values)
        }
        other => other,
    }
}

fn chunks<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut current = Vec::with_capacity(size.min(items.len()));
    for item in items {
        current.push(item);
        if current.len() >= size {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
