//! Loading `COPY ... FROM STDIN`: decoded records become rows (fields parsed into their
//! column's type, the other columns given their DEFAULT), rows are sorted into per-shard
//! batches, and a full batch is written while decoding goes on, with at most `IN_FLIGHT`
//! batches being written at once. A parse error first writes every row before it, so the
//! error can say exactly what was written: the rows before that line.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tessera_types::binary::decode_binary;
use tessera_types::cast::cast;
use tessera_types::schema::ShardId;
use tessera_types::text::parse_text;
use tessera_types::{Row, Value};
use tokio::task::JoinHandle;

use super::format::{Decoder, Field, Record};
use super::CopyIn;
use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::plan::{no_partition, shard_for_row};
use crate::session::Session;
use crate::sql::InsertPlan;

/// Rows in one batch at most, and its approximate size in bytes at most: well under what one
/// write may carry (`MAX_ENTRY_BYTES` on the nodes).
const BATCH_ROWS: usize = 8_000;
const BATCH_BYTES: usize = 512 << 10;
/// Batches being written at once.
const IN_FLIGHT: usize = 8;

struct Batch {
    rows: Vec<Row>,
    bytes: usize,
    first_line: u64,
    last_line: u64,
}

struct Writing {
    shard: ShardId,
    first_line: u64,
    last_line: u64,
    task: JoinHandle<Result<u64>>,
}

pub struct Loader {
    executor: Arc<Executor>,
    plan: CopyIn,
    decoder: Decoder,
    batches: HashMap<ShardId, Batch>,
    writing: VecDeque<Writing>,
    written: u64,
    /// The first error and where it happened; once set, the rest of the data is ignored.
    failed: Option<(Error, Failure)>,
}

/// Where a COPY failed.
enum Failure {
    /// A row that cannot be read or placed: every row before it was written.
    Line { line: u64, column: Option<String> },
    /// A batch a shard refused (a duplicate key, say): the other batches may have been written.
    Batch {
        shard: String,
        first_line: u64,
        last_line: u64,
    },
}

fn approximate_size(row: &Row) -> usize {
    row.iter()
        .map(|v| match v {
            Value::Text(s) => s.len() + 8,
            Value::Bytea(b) => b.len() + 8,
            _ => 16,
        })
        .sum()
}

impl Loader {
    pub fn new(executor: Arc<Executor>, plan: CopyIn) -> Loader {
        let decoder = Decoder::new(plan.options.clone());
        Loader {
            executor,
            plan,
            decoder,
            batches: HashMap::new(),
            writing: VecDeque::new(),
            written: 0,
            failed: None,
        }
    }

    /// The result columns' count and format code, for CopyInResponse.
    pub fn shape(&self) -> (usize, i8) {
        let format = if self.plan.options.format == super::format::Format::Binary {
            1
        } else {
            0
        };
        (self.plan.columns.len(), format)
    }

    /// Takes the next piece of the client's data.
    pub async fn data(&mut self, bytes: &[u8], session: &mut Session) {
        if self.failed.is_some() {
            return;
        }
        let mut records = Vec::new();
        let decoded = self.decoder.feed(bytes, &mut records);
        self.take(records, session).await;
        if let Err(e) = decoded {
            let line = self.decoder.line();
            self.fail_at_line(e, line, None, session).await;
        }
    }

    /// The client sent everything: writes what is left and returns the row count.
    pub async fn done(&mut self, session: &mut Session) -> Result<u64> {
        if self.failed.is_none() {
            let mut records = Vec::new();
            let decoded = self.decoder.finish(&mut records);
            self.take(records, session).await;
            if let Err(e) = decoded {
                let line = self.decoder.line();
                self.fail_at_line(e, line, None, session).await;
            }
        }
        if self.failed.is_none() {
            let shards: Vec<ShardId> = self.batches.keys().copied().collect();
            for s in shards {
                self.flush(s, session).await;
            }
        }
        self.drain().await;
        match self.failed.take() {
            None => Ok(self.written),
            Some((cause, failure)) => {
                let table = &self.plan.table.name;
                let written = self.written;
                let context = match failure {
                    Failure::Line { line, column } => {
                        let at = column.map(|c| format!(", {c}")).unwrap_or_default();
                        format!(
                            "COPY {table}, line {line}{at}. The {written} rows before line {line} were written; \
                             nothing from line {line} on was."
                        )
                    }
                    Failure::Batch {
                        shard,
                        first_line,
                        last_line,
                    } => format!(
                        "COPY {table}: {written} rows were written. The rows of lines {first_line} to {last_line} \
                         bound for shard {shard} were not, nor the rows not yet sent when it failed."
                    ),
                };
                Err(Error::CopyFailed {
                    cause: Box::new(cause),
                    context,
                })
            }
        }
    }

    /// The client gave up (CopyFail): waits for the batches being written and says what was.
    pub async fn abort(&mut self, message: &str) -> Error {
        self.drain().await;
        Error::Exec(tessera_types::ExecError::other(
            "57014",
            format!(
                "COPY from stdin failed: {message}; {} rows were written before it failed",
                self.written
            ),
        ))
    }

    async fn take(&mut self, records: Vec<Record>, session: &mut Session) {
        for (line, fields) in records {
            if self.failed.is_some() {
                return;
            }
            match self.row(fields) {
                Ok(row) => self.add(line, row, session).await,
                Err((e, column)) => self.fail_at_line(e, line, column, session).await,
            }
        }
    }

    /// A row of the table from one record's fields.
    fn row(&self, fields: Vec<Field>) -> std::result::Result<Row, (Error, Option<String>)> {
        let table = &self.plan.table;
        let columns = &self.plan.columns;
        if fields.len() < columns.len() {
            let missing = &table.columns[columns[fields.len()]].name;
            let e = Error::Exec(tessera_types::ExecError::other(
                "22P04",
                format!("missing data for column \"{missing}\""),
            ));
            return Err((e, None));
        }
        if fields.len() > columns.len() {
            let e = Error::Exec(tessera_types::ExecError::other(
                "22P04",
                "extra data after last expected column",
            ));
            return Err((e, None));
        }
        let mut row = self.plan.template.clone();
        for (field, &c) in fields.into_iter().zip(columns) {
            let col = &table.columns[c];
            let (value, shown) = match field {
                Field::Null => (Ok(Value::Null), String::new()),
                Field::Text(t) => {
                    let v = parse_text(&t, col.ty).and_then(|v| cast(v, col.ty, false));
                    (v, t)
                }
                Field::Bytes(b) => (decode_binary(&b, col.ty), String::new()),
            };
            match value {
                Ok(v) => row[c] = v,
                Err(e) => {
                    let at = if shown.is_empty() {
                        format!("column {}", col.name)
                    } else {
                        format!("column {}: \"{shown}\"", col.name)
                    };
                    return Err((Error::Exec(e), Some(at)));
                }
            }
        }
        Ok(row)
    }

    async fn add(&mut self, line: u64, row: Row, session: &mut Session) {
        let map = self.executor.routing.current();
        let shard = match shard_for_row(&map, &self.plan.table, &row) {
            Some(s) if self.plan.target.shard.is_none_or(|only| only == s.id) => s.id,
            Some(_) => {
                let name = self
                    .plan
                    .target
                    .shard
                    .and_then(|s| map.shards.get(&s))
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                let e = Error::Exec(tessera_types::ExecError::other(
                    "23514",
                    format!("new row for relation \"{name}\" violates partition constraint"),
                ));
                return self.fail_at_line(e, line, None, session).await;
            }
            None => {
                let e = no_partition(&self.plan.table, &row);
                return self.fail_at_line(e, line, None, session).await;
            }
        };
        let size = approximate_size(&row);
        let batch = self.batches.entry(shard).or_insert_with(|| Batch {
            rows: Vec::new(),
            bytes: 0,
            first_line: line,
            last_line: line,
        });
        batch.rows.push(row);
        batch.bytes += size;
        batch.last_line = line;
        if batch.rows.len() >= BATCH_ROWS || batch.bytes >= BATCH_BYTES {
            self.flush(shard, session).await;
        }
    }

    /// Starts writing a shard's batch (inside a transaction block: writes it now, as part of
    /// the session's transaction).
    async fn flush(&mut self, shard: ShardId, session: &mut Session) {
        let Some(batch) = self.batches.remove(&shard) else {
            return;
        };
        if session.in_block() {
            let n = batch.rows.len() as u64;
            let plan = InsertPlan {
                target: self.plan.target.clone(),
                rows: batch.rows,
                on_conflict: None,
                returning: Vec::new(),
                columns: Vec::new(),
            };
            match self.executor.insert(session, plan).await {
                Ok(_) => self.written += n,
                Err(e) => self.fail_batch(e, shard, batch.first_line, batch.last_line),
            }
            return;
        }
        while self.writing.len() >= IN_FLIGHT {
            self.wait_oldest().await;
        }
        let executor = self.executor.clone();
        let table = self.plan.table.clone();
        let task = tokio::spawn(async move { executor.copy_rows(&table, shard, batch.rows).await });
        self.writing.push_back(Writing {
            shard,
            first_line: batch.first_line,
            last_line: batch.last_line,
            task,
        });
    }

    async fn wait_oldest(&mut self) {
        let Some(w) = self.writing.pop_front() else {
            return;
        };
        match w.task.await {
            Ok(Ok(n)) => self.written += n,
            Ok(Err(e)) => self.fail_batch(e, w.shard, w.first_line, w.last_line),
            Err(e) => self.fail_batch(Error::Internal(e.to_string()), w.shard, w.first_line, w.last_line),
        }
    }

    async fn drain(&mut self) {
        while !self.writing.is_empty() {
            self.wait_oldest().await;
        }
    }

    fn shard_name(&self, shard: ShardId) -> String {
        self.executor
            .routing
            .current()
            .shards
            .get(&shard)
            .map_or_else(|| format!("#{shard}"), |s| s.name.clone())
    }

    fn fail_batch(&mut self, e: Error, shard: ShardId, first_line: u64, last_line: u64) {
        if self.failed.is_some() {
            return;
        }
        let shard = self.shard_name(shard);
        self.failed = Some((
            e,
            Failure::Batch {
                shard,
                first_line,
                last_line,
            },
        ));
        self.batches.clear();
    }

    /// A bad row on `line`: writes every row before it, then fails.
    async fn fail_at_line(&mut self, e: Error, line: u64, column: Option<String>, session: &mut Session) {
        let shards: Vec<ShardId> = self.batches.keys().copied().collect();
        for s in shards {
            self.flush(s, session).await;
        }
        self.drain().await;
        if self.failed.is_none() {
            self.failed = Some((e, Failure::Line { line, column }));
        }
    }
}
