//! Runs one statement for a session; knows nothing of the wire. It binds the statement
//! against the current cluster map, enforces the transaction rules (a failed block refuses
//! everything but COMMIT/ROLLBACK), and hands reads and writes to the executor, DDL to the
//! catalog (effective at once, even inside a block), and SET/SHOW/EXPLAIN to the session and
//! planner.

use std::sync::Arc;

use futures::StreamExt;
use sqlparser::ast;
use tessera_types::rpc::{call_any, Request, Response};
use tessera_types::Value;

use crate::error::{Error, Result};
use crate::exec::{rows_stream, Executor, Output, RowStream};
use crate::explain::explain;
use crate::session::{Session, TxnStatus};
use crate::sql::expr::{Ctx, Params};
use crate::sql::statement::bind;
use crate::sql::{Bound, OutputColumn};

/// Microseconds since 2000-01-01 now.
pub fn now_micros() -> i64 {
    tessera_types::text::micros_from_datetime(chrono::Utc::now())
}

/// What running a statement produced, plus a setting to report to the client.
pub struct Ran {
    pub output: Output,
    pub report: Option<(String, String)>,
}

#[derive(Clone)]
pub struct Dispatcher {
    pub executor: Arc<Executor>,
    pub catalog: Vec<String>,
    pub metrics: Arc<crate::metrics::RouterMetrics>,
}

/// When the session's `statement_timeout` (milliseconds; 0 is none) ends a statement that
/// starts now.
fn statement_deadline(session: &Session) -> Option<tokio::time::Instant> {
    let ms: u64 = session.setting("statement_timeout")?.parse().ok()?;
    (ms > 0).then(|| tokio::time::Instant::now() + std::time::Duration::from_millis(ms))
}

/// The output, with its rows cut off by `error` once `stop` completes (a deadline, a cancel
/// request): a query's time is mostly spent streaming its rows, and dropping the stream stops
/// the shards' scans.
pub fn output_until(
    output: Output,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    error: Error,
) -> Output {
    let stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = Box::pin(stop);
    let limit = move |rows: RowStream| -> RowStream {
        Box::pin(futures::stream::unfold(Some((rows, stop, error)), |state| async move {
            let (mut rows, mut stop, error) = state?;
            tokio::select! {
                biased;
                _ = &mut stop => Some((Err(error), None)),
                item = rows.next() => item.map(|item| (item, Some((rows, stop, error)))),
            }
        }))
    };
    match output {
        Output::Rows { columns, rows, tag } => Output::Rows {
            columns,
            rows: limit(rows),
            tag,
        },
        Output::CopyOut { columns, rows, options } => Output::CopyOut {
            columns,
            rows: limit(rows),
            options,
        },
        other => other,
    }
}

/// Statements a failed transaction block still runs: its end, or a return to a savepoint.
fn is_txn_end(stmt: &ast::Statement) -> bool {
    matches!(stmt, ast::Statement::Commit { .. } | ast::Statement::Rollback { .. })
}

/// COMMIT (or END): neither a cancel request nor `statement_timeout` stops it.
pub fn is_commit(stmt: &ast::Statement) -> bool {
    matches!(stmt, ast::Statement::Commit { .. })
}

impl Dispatcher {
    /// Binds a statement for the session (also used to describe it).
    pub fn bind(&self, session: &Session, stmt: &ast::Statement, params: &Params) -> Result<Bound> {
        let now = if session.in_block() {
            session.txn.start
        } else {
            now_micros()
        };
        let map = self.executor.routing.current();
        let settings = session.settings();
        let ctx = Ctx {
            map: &map,
            params,
            now,
            user: &session.user,
            superuser: session.superuser(&map),
            database: &session.database,
            settings: &settings,
        };
        bind(&ctx, stmt)
    }

    /// Runs one statement. On error inside a transaction block the block fails.
    pub async fn run(&self, session: &mut Session, stmt: &ast::Statement, params: &Params) -> Result<Ran> {
        if session.txn.status == TxnStatus::Failed && !is_txn_end(stmt) {
            return Err(Error::TxnAborted);
        }
        let started = std::time::Instant::now();
        let deadline = if is_commit(stmt) {
            None
        } else {
            statement_deadline(session)
        };
        let work = async {
            let bound = self.bind(session, stmt, params)?;
            self.run_bound(session, bound).await
        };
        let result = match deadline {
            None => work.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, work).await {
                Ok(result) => result.map(|ran| Ran {
                    output: output_until(ran.output, tokio::time::sleep_until(deadline), Error::StatementTimeout),
                    report: ran.report,
                }),
                Err(_) => Err(Error::StatementTimeout),
            },
        };
        self.metrics
            .statement(crate::metrics::kind(stmt), result.is_ok(), started.elapsed());
        if result.is_err() {
            session.fail();
        }
        result
    }

    async fn run_bound(&self, session: &mut Session, bound: Bound) -> Result<Ran> {
        let plain = |output| Ok(Ran { output, report: None });
        let bound_columns = bound.output_columns();
        match bound {
            Bound::Select(p) => plain(self.executor.select(session, p).await?),
            Bound::CopyIn(plan) => plain(Output::CopyIn(plan)),
            Bound::CopyOut { query, options } => match Box::pin(self.run_bound(session, *query)).await?.output {
                Output::Rows { columns, rows, .. } => plain(Output::CopyOut { columns, rows, options }),
                _ => Err(Error::Internal("COPY TO ran a query without rows".into())),
            },
            Bound::Rows { rows, .. } => plain(Output::Rows {
                columns: bound_columns,
                rows: rows_stream(rows),
                tag: "SELECT".into(),
            }),
            Bound::Insert(p) => plain(self.executor.insert(session, p).await?),
            Bound::Update(p) => plain(self.executor.update(session, p).await?),
            Bound::Delete(p) => plain(self.executor.delete(session, p).await?),
            Bound::Truncate(plans) => {
                for p in plans {
                    self.executor.delete(session, p).await?;
                }
                plain(Output::command("TRUNCATE TABLE"))
            }
            Bound::Ddl { request, tag } => {
                // Schema changes take effect at once, also inside a transaction block (ORMs and
                // migration tools issue them there); ROLLBACK does not undo them.
                match call_any(&self.executor.routing.pool, &self.catalog, Request::Ddl(request)).await? {
                    Response::DdlDone { version, notice } => {
                        self.executor.routing.wait_for_version(version).await?;
                        plain(Output::Command {
                            tag: tag.to_string(),
                            notice,
                        })
                    }
                    other => Err(Error::Internal(format!("unexpected catalog reply {other:?}"))),
                }
            }
            Bound::Admin { request, .. } => {
                match call_any(&self.executor.routing.pool, &self.catalog, Request::Admin(request)).await? {
                    Response::Admin(value) => {
                        // The map may have changed (a replication factor, a draining node).
                        let _ = self.executor.routing.refresh().await;
                        plain(Output::Rows {
                            columns: bound_columns,
                            rows: rows_stream(vec![vec![tessera_types::Value::Int8(value)]]),
                            tag: "SELECT".into(),
                        })
                    }
                    other => Err(Error::Internal(format!("unexpected catalog reply {other:?}"))),
                }
            }
            Bound::Begin => {
                let notice = match session.txn.status {
                    TxnStatus::Idle => {
                        session.begin(false, now_micros());
                        None
                    }
                    _ if session.txn.implicit => {
                        session.txn.implicit = false;
                        None
                    }
                    _ => Some("there is already a transaction in progress".to_string()),
                };
                plain(Output::Command {
                    tag: "BEGIN".into(),
                    notice,
                })
            }
            Bound::Commit => match session.txn.status {
                TxnStatus::Idle => plain(Output::Command {
                    tag: "COMMIT".into(),
                    notice: Some("there is no transaction in progress".into()),
                }),
                TxnStatus::Failed => {
                    self.executor.rollback(session).await;
                    session.end_txn();
                    plain(Output::command("ROLLBACK"))
                }
                TxnStatus::InBlock => {
                    let result = self.executor.commit(session).await;
                    session.end_txn();
                    result?;
                    plain(Output::command("COMMIT"))
                }
            },
            Bound::Rollback => {
                if session.txn.status == TxnStatus::Idle {
                    return plain(Output::Command {
                        tag: "ROLLBACK".into(),
                        notice: Some("there is no transaction in progress".into()),
                    });
                }
                self.executor.rollback(session).await;
                session.end_txn();
                plain(Output::command("ROLLBACK"))
            }
            Bound::Savepoint(name) => {
                session.savepoint(name)?;
                plain(Output::command("SAVEPOINT"))
            }
            Bound::Release(name) => {
                session.release(&name)?;
                plain(Output::command("RELEASE"))
            }
            Bound::RollbackTo(name) => {
                session.rollback_to(&name)?;
                plain(Output::command("ROLLBACK"))
            }
            Bound::Set { name, value, tag } => {
                let report = session.set(&name, value)?;
                Ok(Ran {
                    output: Output::command(tag),
                    report,
                })
            }
            Bound::Show { name } => {
                let value = session.show(&name)?;
                let columns = vec![OutputColumn {
                    name: name.replace(' ', "_"),
                    ty: tessera_types::DataType::Text,
                }];
                plain(Output::Rows {
                    columns,
                    rows: rows_stream(vec![vec![Value::Text(value)]]),
                    tag: "SHOW".into(),
                })
            }
            Bound::Explain(inner) => {
                let lines = explain(&self.executor.routing.current(), session, &inner)?;
                let columns = vec![OutputColumn {
                    name: "QUERY PLAN".into(),
                    ty: tessera_types::DataType::Text,
                }];
                let rows = lines.into_iter().map(|l| vec![Value::Text(l)]).collect();
                plain(Output::Rows {
                    columns,
                    rows: rows_stream(rows),
                    tag: "EXPLAIN".into(),
                })
            }
            Bound::NoOp { tag, notice } => plain(Output::Command {
                tag: tag.to_string(),
                notice,
            }),
            Bound::Empty => plain(Output::Empty),
        }
    }

    /// Ends the implicit transaction around a multi-statement query string.
    pub async fn finish_implicit(&self, session: &mut Session, failed: bool) -> Result<()> {
        if !(session.in_block() && session.txn.implicit) {
            return Ok(());
        }
        if failed || session.txn.status == TxnStatus::Failed {
            self.executor.rollback(session).await;
            session.end_txn();
            return Ok(());
        }
        let result = self.executor.commit(session).await;
        session.end_txn();
        result
    }
}
