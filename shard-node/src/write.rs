//! Turns a write fragment (INSERT / UPDATE / DELETE with their clauses) into the row writes it
//! makes, checking constraints (NOT NULL, primary key uniqueness, the shard's bounds) and
//! computing RETURNING rows. Reads see the committed rows plus the transaction's own writes;
//! the statement's writes go into a separate overlay, so a statement never sees its own
//! changes (an UPDATE does not revisit the rows it moved).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use tessera_types::fragment::{OnConflict, TableLayout, WriteFragment, WriteOutcome};
use tessera_types::key::{encode_key, KeyRange};
use tessera_types::{ExecError, Expr, Row, Value};

use crate::exec::ScanError;
use crate::store::RowsReader;
use crate::txn::{merged_range, Overlay, Pending};

/// The writes one statement makes and what it reports.
pub struct Effect {
    pub writes: Overlay,
    pub outcome: WriteOutcome,
}

struct Ctx<'a> {
    reader: &'a RowsReader,
    txn: Option<&'a Overlay>,
    layout: &'a TableLayout,
    writes: Overlay,
}

impl Ctx<'_> {
    /// The row under `key` as the statement sees it (its own writes included), with the
    /// version a write must expect.
    fn lookup(&self, key: &[u8]) -> Result<(Option<u64>, Option<Row>), ScanError> {
        if let Some(p) = self.writes.get(key) {
            return Ok((p.expected, p.row.clone()));
        }
        if let Some(p) = self.txn.and_then(|t| t.get(key)) {
            return Ok((p.expected, p.row.clone()));
        }
        Ok(match self.reader.get(key)? {
            Some((v, row)) => (Some(v), Some(row)),
            None => (None, None),
        })
    }

    /// Puts `row` under `key` if no row is there as the statement sees it (its own writes
    /// included), answering whether it did: a plain INSERT's check, which needs the stored
    /// row's version but not its values.
    fn insert_new(&mut self, key: Vec<u8>, row: &Row) -> Result<bool, ScanError> {
        // Only inserted rows are in a plain INSERT's own writes.
        let std::collections::btree_map::Entry::Vacant(slot) = self.writes.entry(key) else {
            return Ok(false);
        };
        let (expected, exists) = match self.txn.and_then(|t| t.get(slot.key())) {
            Some(p) => (p.expected, p.row.is_some()),
            None => {
                let version = self.reader.version(slot.key())?;
                (version, version.is_some())
            }
        };
        if exists {
            return Ok(false);
        }
        slot.insert(Pending {
            expected,
            row: Some(row.clone()),
        });
        Ok(true)
    }

    fn put(&mut self, key: Vec<u8>, expected: Option<u64>, row: Option<Row>) {
        match self.writes.get_mut(&key) {
            Some(p) => p.row = row,
            None => {
                self.writes.insert(key, Pending { expected, row });
            }
        }
    }

    fn check_not_null(&self, row: &[Value]) -> Result<(), ExecError> {
        for (col, value) in self.layout.columns.iter().zip(row) {
            if col.not_null && value.is_null() {
                return Err(ExecError::NotNullViolation {
                    table: self.layout.name.clone(),
                    column: col.name.clone(),
                });
            }
        }
        Ok(())
    }

    fn key_detail(&self, row: &[Value]) -> String {
        let cols: Vec<&str> = self
            .layout
            .primary_key
            .iter()
            .map(|i| self.layout.columns[*i].name.as_str())
            .collect();
        let vals: Vec<String> = self
            .layout
            .primary_key
            .iter()
            .map(|i| row[*i].to_text().unwrap_or_else(|| "null".into()))
            .collect();
        format!("Key ({})=({}) already exists.", cols.join(", "), vals.join(", "))
    }

    fn duplicate(&self, row: &[Value]) -> ExecError {
        ExecError::UniqueViolation {
            constraint: format!("{}_pkey", self.layout.name),
            detail: self.key_detail(row),
        }
    }
}

/// The storage key of a row: its encoded primary key, or for a table without one, a fresh
/// hidden row id that sorts in insertion order.
pub fn row_key(layout: &TableLayout, row: &[Value]) -> Option<Vec<u8>> {
    if layout.primary_key.is_empty() {
        return None;
    }
    let values: Vec<&Value> = layout.primary_key.iter().map(|i| &row[*i]).collect();
    Some(encode_key(&values))
}

static ROW_ID_SEQ: AtomicU32 = AtomicU32::new(0);

fn hidden_row_id() -> Vec<u8> {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let mut key = micros.to_be_bytes().to_vec();
    key.extend(ROW_ID_SEQ.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    key.extend(rand::random::<u32>().to_be_bytes());
    key
}

fn returning(exprs: &[Expr], row: &[Value]) -> Result<Option<Row>, ExecError> {
    if exprs.is_empty() {
        return Ok(None);
    }
    exprs.iter().map(|e| e.eval(row)).collect::<Result<Row, _>>().map(Some)
}

/// Computes the effect of `fragment` against the committed rows (`reader`) and the
/// transaction's overlay (`txn`).
pub fn compute(
    reader: &RowsReader,
    txn: Option<&Overlay>,
    layout: &TableLayout,
    fragment: &WriteFragment,
) -> Result<Effect, ScanError> {
    let mut ctx = Ctx {
        reader,
        txn,
        layout,
        writes: BTreeMap::new(),
    };
    let mut outcome = WriteOutcome::default();
    match fragment {
        WriteFragment::Insert {
            rows,
            on_conflict,
            returning: ret,
        } => {
            for row in rows {
                ctx.check_not_null(row)?;
                if !layout.holds(row) {
                    return Err(ExecError::other("XX000", "a row was routed to a shard that does not hold it").into());
                }
                let key = row_key(layout, row).unwrap_or_else(hidden_row_id);
                if on_conflict.is_none() {
                    if !ctx.insert_new(key, row)? {
                        return Err(ctx.duplicate(row).into());
                    }
                    if let Some(r) = returning(ret, row)? {
                        outcome.returning.push(r);
                    }
                    outcome.count += 1;
                    continue;
                }
                let (expected, existing) = ctx.lookup(&key)?;
                let final_row = match (existing, on_conflict) {
                    (None, _) => row.clone(),
                    (Some(_), None) => return Err(ctx.duplicate(row).into()),
                    (Some(_), Some(OnConflict::DoNothing)) => continue,
                    (Some(old), Some(OnConflict::DoUpdate { assignments, filter })) => {
                        if ctx.writes.contains_key(&key) {
                            return Err(ExecError::other(
                                "21000",
                                "ON CONFLICT DO UPDATE command cannot affect row a second time",
                            )
                            .into());
                        }
                        let mut combined = old.clone();
                        combined.extend(row.iter().cloned());
                        if let Some(f) = filter {
                            if !f.eval_predicate(&combined)? {
                                continue;
                            }
                        }
                        let mut new = old.clone();
                        for (col, expr) in assignments {
                            new[*col] = expr.eval(&combined)?;
                        }
                        ctx.check_not_null(&new)?;
                        if row_key(layout, &new).as_deref() != Some(key.as_slice()) || !layout.holds(&new) {
                            return Err(ExecError::other(
                                "0A000",
                                "ON CONFLICT DO UPDATE cannot change the primary key or the partition key",
                            )
                            .into());
                        }
                        new
                    }
                };
                if let Some(r) = returning(ret, &final_row)? {
                    outcome.returning.push(r);
                }
                ctx.put(key, expected, Some(final_row));
                outcome.count += 1;
            }
        }
        WriteFragment::Update {
            range,
            filter,
            assignments,
            returning: ret,
        } => {
            let targets = matching_rows(reader, txn, range, filter.as_ref())?;
            let mut inserts: Vec<(Vec<u8>, Row)> = Vec::new();
            for (key, expected, old) in targets {
                let mut new = old.clone();
                for (col, expr) in assignments {
                    new[*col] = expr.eval(&old)?;
                }
                ctx.check_not_null(&new)?;
                if let Some(r) = returning(ret, &new)? {
                    outcome.returning.push(r);
                }
                outcome.count += 1;
                if !layout.holds(&new) {
                    ctx.put(key, expected, None);
                    outcome.moved.push(new);
                    continue;
                }
                match row_key(layout, &new) {
                    Some(new_key) if new_key != key => {
                        ctx.put(key, expected, None);
                        inserts.push((new_key, new));
                    }
                    _ => ctx.put(key, expected, Some(new)),
                }
            }
            // Rows whose key changed are re-inserted after every old key was vacated, so a
            // statement may shift keys (`SET id = id + 1`) without colliding with itself.
            for (key, row) in inserts {
                let (expected, existing) = ctx.lookup(&key)?;
                if existing.is_some() {
                    return Err(ctx.duplicate(&row).into());
                }
                ctx.put(key, expected, Some(row));
            }
        }
        WriteFragment::Delete {
            range,
            filter,
            returning: ret,
        } => {
            for (key, expected, old) in matching_rows(reader, txn, range, filter.as_ref())? {
                if let Some(r) = returning(ret, &old)? {
                    outcome.returning.push(r);
                }
                outcome.count += 1;
                ctx.put(key, expected, None);
            }
        }
    }
    Ok(Effect {
        writes: ctx.writes,
        outcome,
    })
}

type Matched = Vec<(Vec<u8>, Option<u64>, Row)>;

fn matching_rows(
    reader: &RowsReader,
    txn: Option<&Overlay>,
    range: &KeyRange,
    filter: Option<&Expr>,
) -> Result<Matched, ScanError> {
    let mut out = Vec::new();
    for item in merged_range(reader, txn, range)? {
        let (key, expected, row) = item?;
        if let Some(f) = filter {
            if !f.eval_predicate(&row)? {
                continue;
            }
        }
        out.push((key, expected, row));
    }
    Ok(out)
}

/// Folds a statement's writes into its transaction's overlay, keeping the version each row
/// had when the transaction first touched it.
pub fn merge_into(txn: &mut Overlay, writes: Overlay) {
    for (key, pending) in writes {
        match txn.get_mut(&key) {
            Some(existing) => existing.row = pending.row,
            None => {
                txn.insert(key, pending);
            }
        }
    }
}
