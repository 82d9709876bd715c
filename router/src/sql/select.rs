//! Binding SELECT: the table (or partition) it reads, WHERE, the select list with `*`
//! expanded, aggregates with GROUP BY and HAVING (grouped expressions rewritten to read the
//! aggregate row), ORDER BY by expression, output name or position, DISTINCT, LIMIT and OFFSET.

use std::cell::RefCell;

use sqlparser::ast;
use tessera_types::schema::{ColumnDef, Table};
use tessera_types::{DataType, Expr, Value};

use crate::error::{Error, Result};
use crate::sql::expr::{Coercion, Ctx, ExprBinder, Scope, TExpr, AGG_MARK};
use crate::sql::names::{column_name, data_type, ident, table_name};
use crate::sql::{OrderKey, OutputColumn, SelectBody, SelectPlan, TableRef};

/// The table a FROM item or DML target names: a table, or one of its partitions.
pub fn resolve_table<'m>(ctx: &Ctx<'m>, name: &ast::ObjectName) -> Result<(&'m Table, TableRef, String)> {
    let (schema, name) = table_name(name)?;
    match schema.as_deref() {
        None | Some("public") => {}
        Some("tessera") if crate::virtual_tables::lookup(&name).is_some() => {
            return Err(Error::Unsupported(format!(
                "tessera.{name} is a read-only view of the cluster"
            )));
        }
        Some(s) => return Err(Error::UndefinedTable(format!("{s}.{name}"))),
    }
    if let Some(t) = ctx.map.table_by_name(&name) {
        return Ok((
            t,
            TableRef {
                table: t.id,
                shard: None,
            },
            name,
        ));
    }
    if let Some(s) = ctx.map.shard_by_name(&name) {
        if let Some(t) = ctx.map.tables.get(&s.table) {
            return Ok((
                t,
                TableRef {
                    table: t.id,
                    shard: Some(s.id),
                },
                name,
            ));
        }
    }
    Err(Error::UndefinedTable(name))
}

/// A non-negative integer for LIMIT or OFFSET (NULL means no limit).
fn count_clause(b: &mut ExprBinder, e: &ast::Expr, what: &str) -> Result<Option<u64>> {
    let te = b.bind(e)?;
    let te = b.coerce(te, DataType::Int8, Coercion::Assignment)?;
    let value = match te.expr {
        Expr::Literal(v) => v,
        // Describing a statement: the parameter has no value yet.
        _ if matches!(b.ctx.params, crate::sql::expr::Params::Infer(_)) => return Ok(None),
        // A constant that folding left alone because evaluating it fails.
        e if !e.references_columns() => e.eval(&[])?,
        _ => return Err(Error::Unsupported(format!("{what} must be a constant"))),
    };
    match value {
        Value::Null => Ok(None),
        Value::Int8(n) if n < 0 => {
            let code = if what == "OFFSET" { "2201X" } else { "2201W" };
            Err(Error::Exec(tessera_types::ExecError::other(
                code,
                format!("{what} must not be negative"),
            )))
        }
        Value::Int8(n) => Ok(Some(n as u64)),
        _ => Err(Error::Unsupported(format!("{what} must be a constant"))),
    }
}

/// Rewrites an expression over the table row (with aggregate markers) to read the aggregate
/// row: group-by expressions become their group column, aggregates their result column, and
/// any other column is a grouping error.
fn to_agg_row(e: &Expr, group_by: &[Expr], column_label: &dyn Fn(usize) -> String) -> Result<Expr> {
    let groups = group_by.len();
    e.try_rewrite(&mut |node| {
        if let Some(i) = group_by
            .iter()
            .position(|g| g == node && !matches!(g, Expr::Literal(_)))
        {
            return Ok(Some(Expr::Column(i)));
        }
        match node {
            Expr::Column(c) if *c >= AGG_MARK => Ok(Some(Expr::Column(groups + c - AGG_MARK))),
            Expr::Column(c) => Err(Error::Grouping(format!(
                "column \"{}\" must appear in the GROUP BY clause or be used in an aggregate function",
                column_label(*c)
            ))),
            _ => Ok(None),
        }
    })
}

struct SelectItem {
    expr: TExpr,
    name: String,
    /// The source expression, for GROUP BY / ORDER BY references by position or name.
    ast: Option<ast::Expr>,
}

pub fn bind_query(ctx: &Ctx, q: &ast::Query) -> Result<SelectPlan> {
    if q.with.is_some() {
        return Err(Error::Unsupported("WITH queries are not supported yet".into()));
    }
    if !q.locks.is_empty() {
        return Err(Error::Unsupported(
            "SELECT ... FOR UPDATE/SHARE is not supported yet".into(),
        ));
    }
    if q.fetch.is_some() {
        return Err(Error::Unsupported("FETCH FIRST is not supported yet; use LIMIT".into()));
    }
    let select = match q.body.as_ref() {
        ast::SetExpr::Select(s) => s,
        ast::SetExpr::Query(inner) if q.order_by.is_none() && q.limit_clause.is_none() => {
            return bind_query(ctx, inner)
        }
        ast::SetExpr::SetOperation { .. } => {
            return Err(Error::Unsupported(
                "UNION, INTERSECT and EXCEPT are not supported yet".into(),
            ))
        }
        ast::SetExpr::Values(_) => {
            return Err(Error::Unsupported(
                "a VALUES list as a query is not supported yet".into(),
            ))
        }
        other => return Err(Error::Unsupported(format!("query {other} is not supported"))),
    };
    if select.from.len() > 1 || select.from.iter().any(|f| !f.joins.is_empty()) {
        return Err(Error::Unsupported("joins are not supported yet".into()));
    }
    if select.into.is_some() {
        return Err(Error::Unsupported("SELECT INTO is not supported".into()));
    }

    // FROM
    let mut from = None;
    let mut table: Option<&Table> = None;
    let mut rel_names = Vec::new();
    let virtual_table: Option<Table> = match select.from.first().map(|f| &f.relation) {
        Some(ast::TableFactor::Table { name, .. }) => match table_name(name)? {
            (Some(schema), n) if schema == "tessera" => {
                Some(crate::virtual_tables::lookup(&n).ok_or(Error::UndefinedTable(format!("tessera.{n}")))?)
            }
            _ => None,
        },
        _ => None,
    };
    if let Some(item) = select.from.first() {
        match &item.relation {
            ast::TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => {
                let (t, r, referenced) = match &virtual_table {
                    Some(v) => (
                        v,
                        TableRef {
                            table: v.id,
                            shard: None,
                        },
                        v.name.clone(),
                    ),
                    None => resolve_table(ctx, name)?,
                };
                rel_names = match alias {
                    Some(a) => vec![ident(&a.name)],
                    None => vec![referenced],
                };
                table = Some(t);
                from = Some(r);
            }
            ast::TableFactor::Derived { .. } => {
                return Err(Error::Unsupported("subqueries in FROM are not supported yet".into()))
            }
            other => return Err(Error::Unsupported(format!("FROM item {other} is not supported"))),
        }
    }
    let no_columns: Vec<ColumnDef> = Vec::new();
    let columns: &[ColumnDef] = table.map(|t| t.columns.as_slice()).unwrap_or(&no_columns);
    let scope = if table.is_some() {
        Scope::single(rel_names.clone(), columns)
    } else {
        Scope::empty()
    };
    let label = |c: usize| -> String {
        match columns.get(c) {
            Some(col) => format!("{}.{}", rel_names.first().map(String::as_str).unwrap_or(""), col.name),
            None => format!("#{c}"),
        }
    };

    // WHERE
    let filter = match &select.selection {
        Some(w) => Some(ExprBinder::new(ctx, &scope, "WHERE").bind_bool(w)?),
        None => None,
    };

    // Select list (aggregates allowed).
    let aggs = RefCell::new(Vec::new());
    let mut items: Vec<SelectItem> = Vec::new();
    {
        let mut b = ExprBinder {
            ctx,
            scope: &scope,
            aggs: Some(&aggs),
            clause: "SELECT",
        };
        for item in &select.projection {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    let te = b.bind(e)?;
                    let name = column_name(e, |dt| data_type(dt).ok());
                    items.push(SelectItem {
                        expr: te,
                        name,
                        ast: Some(e.clone()),
                    });
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let te = b.bind(expr)?;
                    items.push(SelectItem {
                        expr: te,
                        name: ident(alias),
                        ast: Some(expr.clone()),
                    });
                }
                ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                    if table.is_none() {
                        return Err(Error::Syntax("SELECT * with no tables specified is not valid".into()));
                    }
                    if let ast::SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(n), _) =
                        item
                    {
                        let q = crate::sql::names::object_parts(n).pop().unwrap_or_default();
                        if !rel_names.contains(&q) {
                            return Err(Error::MissingFrom(q));
                        }
                    }
                    for (i, c) in columns.iter().enumerate() {
                        items.push(SelectItem {
                            expr: TExpr::new(Expr::Column(i), c.ty),
                            name: c.name.clone(),
                            ast: None,
                        });
                    }
                }
                other => return Err(Error::Unsupported(format!("select item {other} is not supported"))),
            }
        }
    }

    // GROUP BY: expressions, output positions or output names.
    let group_exprs: Vec<&ast::Expr> = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, mods) if mods.is_empty() => exprs.iter().collect(),
        _ => {
            return Err(Error::Unsupported(
                "GROUP BY ALL, ROLLUP, CUBE and GROUPING SETS are not supported".into(),
            ))
        }
    };
    let mut group_by = Vec::new();
    for g in group_exprs {
        let mut b = ExprBinder::new(ctx, &scope, "GROUP BY");
        let bound = match output_reference(g, &items, "GROUP BY", &|n| columns.iter().any(|c| c.name == n))? {
            Some(i) => match &items[i].ast {
                Some(src) => b.bind(src)?.expr,
                None => items[i].expr.expr.clone(),
            },
            None => b.bind(g)?.expr,
        };
        group_by.push(bound);
    }

    let having_ast = select.having.as_ref();
    let having = match having_ast {
        Some(h) => Some(
            ExprBinder {
                ctx,
                scope: &scope,
                aggs: Some(&aggs),
                clause: "HAVING",
            }
            .bind_bool(h)?,
        ),
        None => None,
    };

    // ORDER BY
    let mut order_exprs: Vec<(Expr, bool, bool)> = Vec::new();
    if let Some(ob) = &q.order_by {
        let ast::OrderByKind::Expressions(list) = &ob.kind else {
            return Err(Error::Unsupported("ORDER BY ALL is not supported".into()));
        };
        let mut b = ExprBinder {
            ctx,
            scope: &scope,
            aggs: Some(&aggs),
            clause: "ORDER BY",
        };
        for o in list {
            let descending = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
            if matches!(o.options.sort, Some(ast::OrderBySort::Using(_))) {
                return Err(Error::Unsupported("ORDER BY ... USING is not supported".into()));
            }
            // PostgreSQL: NULLs sort as larger than every value, so first when descending.
            let nulls_first = o.options.nulls_first.unwrap_or(descending);
            let expr = match output_reference(&o.expr, &items, "ORDER BY", &|_| false)? {
                Some(i) => items[i].expr.expr.clone(),
                None => b.bind(&o.expr)?.expr,
            };
            order_exprs.push((expr, descending, nulls_first));
        }
    }

    let distinct = match &select.distinct {
        None | Some(ast::Distinct::All) => false,
        Some(ast::Distinct::Distinct) => true,
        Some(ast::Distinct::On(_)) => return Err(Error::Unsupported("SELECT DISTINCT ON is not supported yet".into())),
    };
    if distinct {
        for (e, _, _) in &order_exprs {
            if !items.iter().any(|i| i.expr.expr == *e) {
                return Err(Error::InvalidColumnReference(
                    "for SELECT DISTINCT, ORDER BY expressions must appear in select list".into(),
                ));
            }
        }
    }

    // LIMIT / OFFSET
    let (mut limit, mut offset) = (None, 0);
    if let Some(lc) = &q.limit_clause {
        let mut b = ExprBinder::new(ctx, &scope, "LIMIT");
        match lc {
            ast::LimitClause::LimitOffset {
                limit: l,
                offset: o,
                limit_by,
            } => {
                if !limit_by.is_empty() {
                    return Err(Error::Unsupported("LIMIT BY is not supported".into()));
                }
                if let Some(l) = l {
                    limit = count_clause(&mut b, l, "LIMIT")?;
                }
                if let Some(o) = o {
                    offset = count_clause(&mut b, &o.value, "OFFSET")?.unwrap_or(0);
                }
            }
            ast::LimitClause::OffsetCommaLimit { .. } => {
                return Err(Error::Syntax("LIMIT #,# syntax is not supported".into()))
            }
        }
    }

    let columns_out: Vec<OutputColumn> = items
        .iter()
        .map(|i| OutputColumn {
            name: i.name.clone(),
            ty: if i.expr.ty == DataType::Unknown {
                DataType::Text
            } else {
                i.expr.ty
            },
        })
        .collect();
    let projections: Vec<Expr> = items.iter().map(|i| i.expr.expr.clone()).collect();

    let aggregates = aggs.into_inner();
    let body = if aggregates.is_empty() && group_by.is_empty() && having.is_none() {
        SelectBody::Plain { projections, distinct }
    } else {
        let rewrite = |e: &Expr| to_agg_row(e, &group_by, &label);
        let projections = projections.iter().map(rewrite).collect::<Result<Vec<_>>>()?;
        let having = having.as_ref().map(rewrite).transpose()?;
        order_exprs = order_exprs
            .into_iter()
            .map(|(e, d, n)| Ok((rewrite(&e)?, d, n)))
            .collect::<Result<Vec<_>>>()?;
        SelectBody::Aggregate {
            group_by,
            aggregates,
            having,
            projections,
            distinct,
        }
    };
    let order_by = order_exprs
        .into_iter()
        .map(|(expr, descending, nulls_first)| OrderKey {
            expr,
            descending,
            nulls_first,
        })
        .collect();
    Ok(SelectPlan {
        from,
        filter,
        body,
        order_by,
        limit,
        offset,
        columns: columns_out,
    })
}

/// Whether a GROUP BY or ORDER BY item names a select-list entry: by position (`ORDER BY 2`)
/// or by output name (`ORDER BY total`). As in PostgreSQL, an input column of the same name
/// wins in GROUP BY (`is_input_column`), an output name wins in ORDER BY.
fn output_reference(
    e: &ast::Expr,
    items: &[SelectItem],
    clause: &str,
    is_input_column: &dyn Fn(&str) -> bool,
) -> Result<Option<usize>> {
    match e {
        ast::Expr::Value(v) => {
            if let ast::Value::Number(n, _) = &v.value {
                let pos: usize = n.parse().unwrap_or(0);
                if pos == 0 || pos > items.len() {
                    return Err(Error::InvalidColumnReference(format!(
                        "{clause} position {n} is not in select list"
                    )));
                }
                return Ok(Some(pos - 1));
            }
            Ok(None)
        }
        ast::Expr::Identifier(id) => {
            let name = ident(id);
            if is_input_column(&name) {
                return Ok(None);
            }
            Ok(items.iter().position(|i| i.name == name))
        }
        _ => Ok(None),
    }
}
