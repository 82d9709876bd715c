//! Binding INSERT, UPDATE and DELETE: target columns, DEFAULT, values coerced to the column
//! types, ON CONFLICT on the primary key (with EXCLUDED), and RETURNING.

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use tessera_types::fragment::OnConflict;
use tessera_types::schema::{ColumnDef, Table};
use tessera_types::{DataType, Expr, Value};

use crate::error::{Error, Result};
use crate::sql::expr::{Coercion, Ctx, ExprBinder, Scope, ScopeRel, TExpr};
use crate::sql::names::{column_name, data_type, ident, object_parts};
use crate::sql::select::resolve_table;
use crate::sql::{DeletePlan, InsertPlan, OutputColumn, UpdatePlan};

fn is_default(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// The value of a column's DEFAULT (NULL when it has none).
pub fn column_default(ctx: &Ctx, col: &ColumnDef) -> Result<TExpr> {
    let Some(sql) = &col.default else {
        return Ok(TExpr::new(Expr::Literal(Value::Null), col.ty));
    };
    let parsed = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| {
            Error::Internal(format!(
                "the stored default of column \"{}\" does not parse: {e}",
                col.name
            ))
        })?;
    let scope = Scope::empty();
    let mut b = ExprBinder::new(ctx, &scope, "DEFAULT expressions");
    let te = b.bind(&parsed)?;
    b.coerce(te, col.ty, Coercion::Assignment)
}

fn column_index(table: &Table, name: &ast::ObjectName) -> Result<usize> {
    let parts = object_parts(name);
    let col = parts.last().cloned().unwrap_or_default();
    table
        .column_index(&col)
        .ok_or_else(|| Error::UndefinedColumn(format!("{col}\" of relation \"{}", table.name)))
}

/// Binds a RETURNING list over `scope`.
fn bind_returning(
    ctx: &Ctx,
    scope: &Scope,
    columns: &[ColumnDef],
    items: &Option<Vec<ast::SelectItem>>,
) -> Result<(Vec<Expr>, Vec<OutputColumn>)> {
    let mut exprs = Vec::new();
    let mut out = Vec::new();
    let Some(items) = items else { return Ok((exprs, out)) };
    let mut b = ExprBinder::new(ctx, scope, "RETURNING");
    for item in items {
        match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                let te = b.bind(e)?;
                let name = match item {
                    ast::SelectItem::ExprWithAlias { alias, .. } => ident(alias),
                    _ => column_name(e, |dt| data_type(dt).ok()),
                };
                out.push(OutputColumn {
                    name,
                    ty: if te.ty == DataType::Unknown {
                        DataType::Text
                    } else {
                        te.ty
                    },
                });
                exprs.push(te.expr);
            }
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                for (i, c) in columns.iter().enumerate() {
                    exprs.push(Expr::Column(i));
                    out.push(OutputColumn {
                        name: c.name.clone(),
                        ty: c.ty,
                    });
                }
            }
            other => return Err(Error::Unsupported(format!("RETURNING item {other} is not supported"))),
        }
    }
    Ok((exprs, out))
}

fn constant(te: TExpr, ctx: &Ctx, column: &str) -> Result<tessera_types::Value> {
    match te.expr {
        Expr::Literal(v) => Ok(v),
        _ if matches!(ctx.params, crate::sql::expr::Params::Infer(_)) => Ok(Value::Null),
        // A constant that folding left alone because evaluating it fails: fail with its error.
        e if !e.references_columns() => Ok(e.eval(&[])?),
        _ => Err(Error::Unsupported(format!(
            "the value for column \"{column}\" must not depend on other rows"
        ))),
    }
}

pub fn bind_insert(ctx: &Ctx, ins: &ast::Insert) -> Result<InsertPlan> {
    let ast::TableObject::TableName(name) = &ins.table else {
        return Err(Error::Unsupported(
            "INSERT into a table function is not supported".into(),
        ));
    };
    let (table, target, referenced) = resolve_table(ctx, name)?;
    let alias = ins.table_alias.as_ref().map(|a| ident(&a.alias)).unwrap_or(referenced);
    let n = table.columns.len();

    // Target columns.
    let mut targets: Vec<usize> = Vec::new();
    for c in &ins.columns {
        let i = column_index(table, c)?;
        if targets.contains(&i) {
            return Err(Error::Exec(tessera_types::ExecError::other(
                "42701",
                format!("column \"{}\" specified more than once", table.columns[i].name),
            )));
        }
        targets.push(i);
    }
    if targets.is_empty() {
        targets = (0..n).collect();
    }

    // Rows.
    let source_rows: Vec<Vec<ast::Expr>> = match &ins.source {
        None => vec![Vec::new()],
        Some(q) => match q.body.as_ref() {
            ast::SetExpr::Values(v) => v.rows.iter().map(|r| r.content.clone()).collect(),
            _ => {
                return Err(Error::Unsupported(
                    "INSERT ... SELECT is not supported yet; insert VALUES".into(),
                ))
            }
        },
    };
    let default_values = ins.source.is_none();
    let scope = Scope::empty();
    let mut rows = Vec::with_capacity(source_rows.len());
    for exprs in &source_rows {
        if !default_values {
            if exprs.len() > targets.len() {
                return Err(Error::Syntax("INSERT has more expressions than target columns".into()));
            }
            if exprs.len() < targets.len() && !ins.columns.is_empty() {
                return Err(Error::Syntax("INSERT has more target columns than expressions".into()));
            }
        }
        let mut row = Vec::with_capacity(n);
        for (i, col) in table.columns.iter().enumerate() {
            let given = targets.iter().position(|t| *t == i).and_then(|k| exprs.get(k));
            let te = match given {
                Some(e) if !is_default(e) => {
                    let mut b = ExprBinder::new(ctx, &scope, "VALUES");
                    let te = b.bind(e)?;
                    b.coerce(te, col.ty, Coercion::Assignment).map_err(|err| match err {
                        Error::DatatypeMismatch(_) => Error::DatatypeMismatch(format!(
                            "column \"{}\" is of type {} but expression is of type {}",
                            col.name,
                            col.ty.display_name(),
                            ExprBinder::new(ctx, &scope, "VALUES")
                                .bind(e)
                                .map(|t| t.ty.display_name())
                                .unwrap_or_default()
                        )),
                        other => other,
                    })?
                }
                _ => column_default(ctx, col)?,
            };
            row.push(constant(te, ctx, &col.name)?);
        }
        rows.push(row);
    }

    // ON CONFLICT, on the primary key only.
    let on_conflict = match &ins.on {
        None => None,
        Some(ast::OnInsert::OnConflict(oc)) => {
            match &oc.conflict_target {
                None => {}
                Some(ast::ConflictTarget::Columns(cols)) => {
                    let mut given: Vec<usize> = cols
                        .iter()
                        .map(|c| {
                            table
                                .column_index(&ident(c))
                                .ok_or_else(|| Error::UndefinedColumn(ident(c)))
                        })
                        .collect::<Result<_>>()?;
                    given.sort_unstable();
                    let mut pk = table.primary_key.clone();
                    pk.sort_unstable();
                    if given != pk || pk.is_empty() {
                        return Err(Error::NoConflictTarget);
                    }
                }
                Some(ast::ConflictTarget::OnConstraint(c)) if object_parts(c).last() != Some(&table.pkey_name()) => {
                    return Err(Error::Exec(tessera_types::ExecError::other(
                        "42704",
                        format!("constraint \"{c}\" for table \"{}\" does not exist", table.name),
                    )));
                }
                Some(ast::ConflictTarget::OnConstraint(_)) => {}
            }
            if table.primary_key.is_empty() {
                return Err(Error::NoConflictTarget);
            }
            match &oc.action {
                ast::OnConflictAction::DoNothing => Some(OnConflict::DoNothing),
                ast::OnConflictAction::DoUpdate(du) => {
                    if oc.conflict_target.is_none() {
                        return Err(Error::Syntax(
                            "ON CONFLICT DO UPDATE requires inference specification or constraint name".into(),
                        ));
                    }
                    let scope = Scope {
                        rels: vec![
                            ScopeRel {
                                names: vec![alias.clone()],
                                columns: &table.columns,
                                offset: 0,
                            },
                            ScopeRel {
                                names: vec!["excluded".into()],
                                columns: &table.columns,
                                offset: n,
                            },
                        ],
                    };
                    let assignments = bind_assignments(ctx, &scope, table, &du.assignments)?;
                    let filter = match &du.selection {
                        Some(w) => Some(ExprBinder::new(ctx, &scope, "WHERE").bind_bool(w)?),
                        None => None,
                    };
                    Some(OnConflict::DoUpdate { assignments, filter })
                }
            }
        }
        Some(_) => {
            return Err(Error::Unsupported(
                "ON DUPLICATE KEY UPDATE is not PostgreSQL syntax; use ON CONFLICT".into(),
            ))
        }
    };

    let scope = Scope::single(vec![alias], &table.columns);
    let (returning, columns) = bind_returning(ctx, &scope, &table.columns, &ins.returning)?;
    Ok(InsertPlan {
        target,
        rows,
        on_conflict,
        returning,
        columns,
    })
}

fn bind_assignments(ctx: &Ctx, scope: &Scope, table: &Table, list: &[ast::Assignment]) -> Result<Vec<(usize, Expr)>> {
    let mut out: Vec<(usize, Expr)> = Vec::new();
    for a in list {
        let ast::AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(Error::Unsupported(
                "assigning a tuple of columns is not supported yet".into(),
            ));
        };
        let i = column_index(table, name)?;
        if out.iter().any(|(c, _)| *c == i) {
            return Err(Error::Syntax(format!(
                "multiple assignments to same column \"{}\"",
                table.columns[i].name
            )));
        }
        let col = &table.columns[i];
        let te = if is_default(&a.value) {
            column_default(ctx, col)?
        } else {
            let mut b = ExprBinder::new(ctx, scope, "UPDATE");
            let te = b.bind(&a.value)?;
            let found = te.ty;
            b.coerce(te, col.ty, Coercion::Assignment).map_err(|err| match err {
                Error::DatatypeMismatch(_) => Error::DatatypeMismatch(format!(
                    "column \"{}\" is of type {} but expression is of type {}",
                    col.name,
                    col.ty.display_name(),
                    found.display_name()
                )),
                other => other,
            })?
        };
        out.push((i, te.expr));
    }
    Ok(out)
}

/// The single table an UPDATE or DELETE names, with the names it answers to.
fn dml_target<'m>(ctx: &Ctx<'m>, twj: &ast::TableWithJoins) -> Result<(&'m Table, crate::sql::TableRef, String)> {
    if !twj.joins.is_empty() {
        return Err(Error::Unsupported("joins are not supported yet".into()));
    }
    match &twj.relation {
        ast::TableFactor::Table { name, alias, .. } => {
            let (t, r, referenced) = resolve_table(ctx, name)?;
            let alias = alias.as_ref().map(|a| ident(&a.name)).unwrap_or(referenced);
            Ok((t, r, alias))
        }
        other => Err(Error::Unsupported(format!("cannot modify {other}"))),
    }
}

pub fn bind_update(ctx: &Ctx, up: &ast::Update) -> Result<UpdatePlan> {
    if up.from.is_some() {
        return Err(Error::Unsupported("UPDATE ... FROM is not supported yet".into()));
    }
    if up.limit.is_some() || !up.order_by.is_empty() {
        return Err(Error::Syntax("UPDATE does not take ORDER BY or LIMIT".into()));
    }
    let (table, target, alias) = dml_target(ctx, &up.table)?;
    let scope = Scope::single(vec![alias], &table.columns);
    let assignments = bind_assignments(ctx, &scope, table, &up.assignments)?;
    let filter = match &up.selection {
        Some(w) => Some(ExprBinder::new(ctx, &scope, "WHERE").bind_bool(w)?),
        None => None,
    };
    let (returning, columns) = bind_returning(ctx, &scope, &table.columns, &up.returning)?;
    let moves_rows = table
        .partitioning
        .as_ref()
        .is_some_and(|p| assignments.iter().any(|(c, _)| *c == p.column));
    Ok(UpdatePlan {
        target,
        filter,
        assignments,
        returning,
        columns,
        moves_rows,
    })
}

pub fn bind_delete(ctx: &Ctx, del: &ast::Delete) -> Result<DeletePlan> {
    if del.using.is_some() {
        return Err(Error::Unsupported("DELETE ... USING is not supported yet".into()));
    }
    if del.limit.is_some() || !del.order_by.is_empty() {
        return Err(Error::Syntax("DELETE does not take ORDER BY or LIMIT".into()));
    }
    let tables = match &del.from {
        ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
    };
    let [twj] = tables.as_slice() else {
        return Err(Error::Unsupported("DELETE from several tables is not supported".into()));
    };
    let (table, target, alias) = dml_target(ctx, twj)?;
    let scope = Scope::single(vec![alias], &table.columns);
    let filter = match &del.selection {
        Some(w) => Some(ExprBinder::new(ctx, &scope, "WHERE").bind_bool(w)?),
        None => None,
    };
    let (returning, columns) = bind_returning(ctx, &scope, &table.columns, &del.returning)?;
    Ok(DeletePlan {
        target,
        filter,
        returning,
        columns,
    })
}
