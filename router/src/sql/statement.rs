//! Parsing SQL text and binding each statement: the entry point of the SQL layer.

use std::ops::ControlFlow;

use sqlparser::ast::{self, Visit, Visitor};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::error::{Error, Result};
use crate::sql::ddl::{bind_alter_table, bind_create_table, bind_drop};
use crate::sql::dml::{bind_delete, bind_insert, bind_update};
use crate::sql::expr::Ctx;
use crate::sql::names::{ident, object_parts};
use crate::sql::select::bind_query;
use crate::sql::Bound;

/// Turns a parser error into PostgreSQL's wording (`syntax error at or near "x"`), keeping
/// what the parser expected as a clue.
fn syntax_error(e: ParserError) -> Error {
    let msg = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => return Error::Syntax("statement is nested too deeply".into()),
    };
    let location_free = msg.split(" at Line:").next().unwrap_or(&msg).to_string();
    if let Some((expected, found)) = location_free.split_once(", found: ") {
        let found = found.trim();
        let expected = expected.trim_start_matches("Expected: ");
        if found == "EOF" {
            return Error::Syntax(format!("syntax error at end of input (expected {expected})"));
        }
        return Error::Syntax(format!("syntax error at or near \"{found}\" (expected {expected})"));
    }
    Error::Syntax(format!("syntax error: {location_free}"))
}

/// PostgreSQL writes `... PARTITION BY ... WITH (...)`; the parser only takes the WITH first.
fn move_with_before_partition(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let p = lower.find("partition by")?;
    let w = p + lower[p..].find(" with (")?;
    let open = w + " with ".len();
    let mut depth = 0usize;
    let mut close = None;
    for (i, c) in sql[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let with_clause = &sql[w..=close];
    Some(format!(
        "{}{} {}{}",
        &sql[..p],
        with_clause.trim_start(),
        &sql[p..w],
        &sql[close + 1..]
    ))
}

/// How deeply expressions may nest: a chain `a OR b OR ...` of n terms nests n deep. Binding,
/// shipping and evaluating an expression recurse once per level; the thread stacks of every
/// process (`tessera/src/run.rs`) hold this depth with a wide margin.
pub const MAX_EXPRESSION_DEPTH: usize = 2_000;

/// Finds whether any expression of a statement nests deeper than `MAX_EXPRESSION_DEPTH`,
/// stopping as soon as one does (so the walk itself stays within that depth).
#[derive(Default)]
struct DepthProbe {
    depth: usize,
}

impl Visitor for DepthProbe {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &ast::Expr) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > MAX_EXPRESSION_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn post_visit_expr(&mut self, _: &ast::Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// PostgreSQL takes `on` and `off` for COPY's boolean options (`WITH (FREEZE ON)`, as
/// `pgbench -i` sends); the parser only `true` and `false`.
fn copy_booleans_spelled_out(sql: &str) -> Option<String> {
    if !sql
        .trim_start()
        .get(..4)
        .is_some_and(|w| w.eq_ignore_ascii_case("copy"))
    {
        return None;
    }
    let re = regex::Regex::new(r"(?i)\b(freeze|header)\s+(on|off)\b").ok()?;
    let fixed = re.replace_all(sql, |c: &regex::Captures| {
        let value = if c[2].eq_ignore_ascii_case("on") {
            "true"
        } else {
            "false"
        };
        format!("{} {value}", &c[1])
    });
    (fixed != sql).then(|| fixed.into_owned())
}

/// Parses a query string into statements.
pub fn parse(sql: &str) -> Result<Vec<ast::Statement>> {
    let statements = match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => match move_with_before_partition(sql)
            .or_else(|| copy_booleans_spelled_out(sql))
            .and_then(|fixed| Parser::parse_sql(&PostgreSqlDialect {}, &fixed).ok())
        {
            Some(s) => s,
            None if is_create_user(sql) => return Err(create_user_unsupported()),
            None if is_vacuum(sql) => return Ok(vec![vacuum()]),
            None => return Err(syntax_error(e)),
        },
    };
    for statement in &statements {
        if statement.visit(&mut DepthProbe::default()).is_break() {
            return Err(Error::TooDeep(MAX_EXPRESSION_DEPTH));
        }
    }
    Ok(statements)
}

/// Whether `sql` is PostgreSQL's `CREATE USER`, which sqlparser reads in another dialect's way.
fn is_create_user(sql: &str) -> bool {
    let mut words = sql.split_whitespace();
    matches!((words.next(), words.next()), (Some(c), Some(u)) if c.eq_ignore_ascii_case("create") && u.eq_ignore_ascii_case("user"))
}

/// Whether `sql` is one PostgreSQL `VACUUM` (`VACUUM ANALYZE t`, `VACUUM (VERBOSE) t`...),
/// which sqlparser reads in another dialect's way.
fn is_vacuum(sql: &str) -> bool {
    let body = sql.trim().trim_end_matches(';');
    let mut words = body.split_whitespace();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case("vacuum")) && !body.contains(';')
}

fn vacuum() -> ast::Statement {
    ast::Statement::Vacuum(ast::VacuumStatement {
        full: false,
        sort_only: false,
        delete_only: false,
        reindex: false,
        recluster: false,
        table_name: None,
        threshold: None,
        boost: false,
    })
}

fn create_user_unsupported() -> Error {
    Error::Unsupported(
        "CREATE USER is not supported: write CREATE ROLE name LOGIN PASSWORD '...', which is the same".into(),
    )
}

fn setting_value(values: &[ast::Expr]) -> Option<String> {
    let parts: Vec<String> = values
        .iter()
        .map(|v| match v {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            ast::Expr::Identifier(id) => id.value.clone(),
            other => other.to_string(),
        })
        .collect();
    if parts.len() == 1 && parts[0].eq_ignore_ascii_case("default") {
        return None;
    }
    Some(parts.join(", "))
}

/// Binds a query: catalog queries are answered at once by `pg_catalog`; a query that reads no
/// table goes there too when the distributed binder does not know what it calls.
pub fn bind_select(ctx: &Ctx, q: &ast::Query) -> Result<Bound> {
    let answer = |q| {
        crate::pg_catalog::run(ctx, q).map(|a| Bound::Rows {
            columns: a.columns,
            rows: a.rows,
        })
    };
    if let Some(admin) = crate::sql::admin::bind_admin(q) {
        return admin;
    }
    if crate::pg_catalog::reads_only_catalog(ctx.map, q) {
        return answer(q);
    }
    match bind_query(ctx, q) {
        Ok(plan) => Ok(Bound::Select(plan)),
        Err(e @ (Error::UndefinedFunction(_) | Error::Unsupported(_)))
            if crate::pg_catalog::reads_nothing(ctx.map, q) =>
        {
            answer(q).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

/// Binds one parsed statement.
pub fn bind(ctx: &Ctx, stmt: &ast::Statement) -> Result<Bound> {
    use ast::Statement as S;
    Ok(match stmt {
        S::Query(q) => bind_select(ctx, q)?,
        S::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            values,
        } => {
            if !values.is_empty() {
                return Err(Error::Unsupported(
                    "COPY data inside the query string is not supported; send it as COPY data (psql's \\copy)".into(),
                ));
            }
            crate::copy::bind_copy(ctx, source, *to, target, options, legacy_options)?
        }
        S::Insert(ins) => Bound::Insert(bind_insert(ctx, ins)?),
        S::Update(up) => Bound::Update(bind_update(ctx, up)?),
        S::Delete(del) => Bound::Delete(bind_delete(ctx, del)?),
        S::CreateTable(ct) => Bound::Ddl {
            request: bind_create_table(ctx, ct)?,
            tag: "CREATE TABLE",
        },
        S::AlterTable(at) => Bound::Ddl {
            request: bind_alter_table(ctx, at)?,
            tag: "ALTER TABLE",
        },
        S::CreateUser(_) => return Err(create_user_unsupported()),
        S::CreateRole(cr) => Bound::Ddl {
            request: crate::sql::role::bind_create_role(ctx, cr)?,
            tag: "CREATE ROLE",
        },
        S::AlterRole { name, operation } => Bound::Ddl {
            request: crate::sql::role::bind_alter_role(ctx, name, operation)?,
            tag: "ALTER ROLE",
        },
        S::Drop {
            object_type: ast::ObjectType::Role,
            if_exists,
            names,
            ..
        } => Bound::Ddl {
            request: crate::sql::role::bind_drop_roles(ctx, *if_exists, names)?,
            tag: "DROP ROLE",
        },
        S::Drop {
            object_type,
            if_exists,
            names,
            ..
        } => Bound::Ddl {
            request: bind_drop(object_type, *if_exists, names)?,
            tag: "DROP TABLE",
        },
        S::StartTransaction { .. } => Bound::Begin,
        S::Commit { .. } => Bound::Commit,
        S::Rollback { savepoint: None, .. } => Bound::Rollback,
        S::Rollback {
            savepoint: Some(name), ..
        } => Bound::RollbackTo(ident(name)),
        S::Savepoint { name } => Bound::Savepoint(ident(name)),
        S::Truncate(t) => {
            // TRUNCATE deletes every row of each table, table by table.
            let mut plans = Vec::new();
            for target in &t.table_names {
                let sql = format!("DELETE FROM {}", target.name);
                match parse(&sql)?.first() {
                    Some(S::Delete(del)) => plans.push(bind_delete(ctx, del)?),
                    _ => return Err(Error::Internal(format!("TRUNCATE built an odd statement: {sql}"))),
                }
            }
            Bound::Truncate(plans)
        }
        S::ReleaseSavepoint { name } => Bound::Release(ident(name)),
        // No cursors, listeners or advisory locks to let go of: what a connection pool sends
        // when it hands a connection back succeeds.
        S::Close { .. } => Bound::NoOp {
            tag: "CLOSE CURSOR ALL",
            notice: None,
        },
        S::UNLISTEN { .. } => Bound::NoOp {
            tag: "UNLISTEN",
            notice: None,
        },
        // Tessera's store reclaims space and keeps no planner statistics: scripts written for
        // PostgreSQL (`pgbench -i`) run on.
        S::Vacuum(_) => Bound::NoOp {
            tag: "VACUUM",
            notice: Some("VACUUM does nothing in Tessera: its storage reclaims space by itself".into()),
        },
        S::Analyze(_) => Bound::NoOp {
            tag: "ANALYZE",
            notice: Some("ANALYZE does nothing in Tessera: it keeps no planner statistics".into()),
        },
        S::Set(set) => match set {
            ast::Set::SingleAssignment { variable, values, .. } => Bound::Set {
                name: object_parts(variable).join("."),
                value: setting_value(values),
                tag: "SET",
            },
            ast::Set::SetTimeZone { value, .. } => Bound::Set {
                name: "timezone".into(),
                value: setting_value(std::slice::from_ref(value)),
                tag: "SET",
            },
            ast::Set::SetNames { charset_name, .. } => Bound::Set {
                name: "client_encoding".into(),
                value: Some(charset_name.value.clone()),
                tag: "SET",
            },
            ast::Set::SetTransaction { .. } => Bound::NoOp {
                tag: "SET",
                notice: None,
            },
            other => return Err(Error::Unsupported(format!("{other} is not supported"))),
        },
        S::ShowVariable { variable } => {
            let words: Vec<String> = variable.iter().map(ident).collect();
            // Multi-word settings are spelled with spaces; a qualified one (`tessera.x`) comes
            // in parts.
            let name = match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                ["time", "zone"] => "timezone".to_string(),
                ["transaction", "isolation", "level"] => words.join(" "),
                _ => words.join("."),
            };
            Bound::Show { name }
        }
        S::Reset(r) => match &r.reset {
            ast::Reset::ConfigurationParameter(name) => Bound::Set {
                name: object_parts(name).join("."),
                value: None,
                tag: "RESET",
            },
            ast::Reset::ALL => Bound::Set {
                name: "all".into(),
                value: None,
                tag: "RESET",
            },
            _ => return Err(Error::Unsupported(format!("{stmt} is not supported"))),
        },
        S::Explain { statement, analyze, .. } => {
            if *analyze {
                return Err(Error::Unsupported("EXPLAIN ANALYZE is not supported yet".into()));
            }
            Bound::Explain(Box::new(bind(ctx, statement)?))
        }
        S::Discard { .. } => Bound::NoOp {
            tag: "DISCARD ALL",
            notice: None,
        },
        S::Deallocate { .. } => Bound::NoOp {
            tag: "DEALLOCATE",
            notice: None,
        },
        other => {
            let text = other.to_string();
            let head: Vec<&str> = text.split_whitespace().take(2).collect();
            return Err(Error::Unsupported(format!("{} is not supported", head.join(" "))));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_clause_after_partition_by_is_accepted() {
        let sql = "CREATE TABLE t (a int PRIMARY KEY) PARTITION BY RANGE (a) WITH (replicas = 3)";
        let fixed = move_with_before_partition(sql).unwrap();
        assert_eq!(
            fixed,
            "CREATE TABLE t (a int PRIMARY KEY) WITH (replicas = 3) PARTITION BY RANGE (a)"
        );
        assert!(parse(sql).is_ok());
    }

    #[test]
    fn syntax_errors_read_like_postgres() {
        let e = parse("SELEC 1").unwrap_err();
        assert!(e.to_string().starts_with("syntax error at or near \"SELEC\""), "{e}");
        let e = parse("SELECT (1").unwrap_err();
        assert!(e.to_string().starts_with("syntax error at end of input"), "{e}");
    }
}
