//! Catalog queries, clause by clause: WITH, UNION / EXCEPT / INTERSECT, VALUES, and SELECT with
//! its FROM list (catalog relations, table functions, subqueries, inner and outer joins),
//! WHERE, GROUP BY with aggregates, HAVING, DISTINCT, ORDER BY and LIMIT / OFFSET.
//!
//! Joins are nested loops, except that an equality between the two sides is a hash join, and
//! WHERE conditions are applied as soon as the relations they read are joined: catalog
//! relations are small, but psql joins pg_class with itself.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{self, Visit, Visitor};
use tessera_types::DataType;

use super::datum::Datum;
use super::relations::Relation;
use super::{Engine, Env, Shape};
use crate::error::{Error, Result};
use crate::sql::names::{column_name, ident, object_parts};

/// Functions that may appear in FROM.
const TABLE_FUNCTIONS: &[&str] = &[
    "generate_series",
    "unnest",
    "pg_partition_ancestors",
    "_pg_expandarray",
    "pg_get_keywords",
    "pg_options_to_table",
];

pub fn is_table_function(name: &ast::ObjectName) -> bool {
    matches!(object_parts(name).as_slice(), [f] | [_, f] if TABLE_FUNCTIONS.contains(&f.as_str()))
}

pub const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "string_agg",
    "array_agg",
    "bool_and",
    "bool_or",
    "every",
];

/// Finds aggregate calls outside subqueries.
#[derive(Default)]
struct AggregateProbe {
    depth: usize,
}

impl Visitor for AggregateProbe {
    type Break = ();

    fn pre_visit_query(&mut self, _: &ast::Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &ast::Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &ast::Expr) -> ControlFlow<()> {
        if let ast::Expr::Function(f) = e {
            let name = object_parts(&f.name).last().cloned().unwrap_or_default();
            if self.depth == 0 && f.over.is_none() && AGGREGATES.contains(&name.as_str()) {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

fn has_aggregate(e: &ast::Expr) -> bool {
    e.visit(&mut AggregateProbe::default()).is_break()
}

/// The column references of an expression, `None` if it holds a subquery (which may read
/// anything).
fn column_refs(e: &ast::Expr) -> Option<Vec<(Option<String>, String)>> {
    struct Refs {
        refs: Vec<(Option<String>, String)>,
    }
    impl Visitor for Refs {
        type Break = ();
        fn pre_visit_query(&mut self, _: &ast::Query) -> ControlFlow<()> {
            ControlFlow::Break(())
        }
        fn pre_visit_expr(&mut self, e: &ast::Expr) -> ControlFlow<()> {
            match e {
                ast::Expr::Identifier(i) => self.refs.push((None, ident(i))),
                ast::Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    let n = parts.len();
                    self.refs.push((Some(ident(&parts[n - 2])), ident(&parts[n - 1])));
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut r = Refs { refs: Vec::new() };
    if e.visit(&mut r).is_break() {
        return None;
    }
    Some(r.refs)
}

/// Whether every column `e` reads is a column of `shape` (so it can be evaluated on its rows).
fn reads_only(e: &ast::Expr, shape: &Shape) -> bool {
    column_refs(e).is_some_and(|refs| {
        refs.iter().all(|(q, n)| match q {
            Some(q) => shape.has_rel(q),
            None => matches!(shape.find(None, n), Ok(Some(_))),
        })
    })
}

fn split_and<'e>(e: &'e ast::Expr, out: &mut Vec<&'e ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        ast::Expr::Nested(inner) => split_and(inner, out),
        other => out.push(other),
    }
}

/// A key for hash joins and grouping that equal values share: OIDs by number, the rest by
/// their text.
fn hash_key(d: &Datum) -> Option<String> {
    match d {
        d if d.is_null() => None,
        Datum::Reg(oid, _) => Some(oid.to_string()),
        Datum::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some((*f as i64).to_string()),
        d => d.to_text(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

/// An ORDER BY key: an output column, or an expression over the input row.
enum KeySource<'e> {
    Output(usize),
    Expr(&'e ast::Expr),
}

struct SortKey<'e> {
    source: KeySource<'e>,
    descending: bool,
    nulls_first: bool,
}

fn sort_keys<'e>(order: &'e [ast::OrderByExpr], names: &[String], inputs_allowed: bool) -> Result<Vec<SortKey<'e>>> {
    order
        .iter()
        .map(|o| {
            let descending = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
            let nulls_first = o.options.nulls_first.unwrap_or(descending);
            let source = match &o.expr {
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => {
                        let pos: usize = n.parse().unwrap_or(0);
                        if pos == 0 || pos > names.len() {
                            return Err(Error::InvalidColumnReference(format!(
                                "ORDER BY position {n} is not in select list"
                            )));
                        }
                        KeySource::Output(pos - 1)
                    }
                    _ => KeySource::Expr(&o.expr),
                },
                ast::Expr::Identifier(id) if names.iter().filter(|n| **n == ident(id)).count() == 1 => {
                    KeySource::Output(names.iter().position(|n| *n == ident(id)).unwrap_or(0))
                }
                e if inputs_allowed => KeySource::Expr(e),
                e => {
                    return Err(Error::Unsupported(format!(
                        "ORDER BY {e} of a UNION, INTERSECT or EXCEPT must name a result column"
                    )))
                }
            };
            Ok(SortKey {
                source,
                descending,
                nulls_first,
            })
        })
        .collect()
}

fn compare_keys(keys: &[SortKey], a: &[Datum], b: &[Datum]) -> Ordering {
    for (k, (x, y)) in keys.iter().zip(a.iter().zip(b)) {
        let o = match (x.is_null(), y.is_null()) {
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
            _ => {
                let o = x.sort_cmp(y);
                if k.descending {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn dedupe(rows: Vec<Vec<Datum>>) -> Vec<Vec<Datum>> {
    let mut seen: HashMap<Vec<Option<String>>, Vec<Vec<Datum>>> = HashMap::new();
    let mut out = Vec::new();
    for row in rows {
        let key: Vec<Option<String>> = row.iter().map(hash_key).collect();
        let bucket = seen.entry(key).or_default();
        if bucket.iter().any(|r| r.iter().zip(&row).all(|(a, b)| a.same(b))) {
            continue;
        }
        bucket.push(row.clone());
        out.push(row);
    }
    out
}

/// One output row's context: a row, and the rows of its group when aggregating.
type Group = (Vec<Datum>, Option<Vec<Vec<Datum>>>);

/// A select-list item after expanding wildcards (window functions already replaced by the
/// hidden columns that hold their values).
enum Item {
    Column(usize),
    Expr(Box<ast::Expr>),
}

/// Set-returning functions a select list may call: each input row gives as many output rows
/// as the longest of them returns.
const SELECT_LIST_SRFS: &[&str] = &["unnest", "generate_subscripts", "generate_series", "_pg_expandarray"];

/// `f(...)` or `(f(...)).field` for a set-returning `f`: the call and the field.
fn srf_call(e: &ast::Expr) -> Option<(&ast::Function, Option<String>)> {
    match e {
        ast::Expr::Function(f) if f.over.is_none() => {
            let name = object_parts(&f.name).last().cloned().unwrap_or_default();
            SELECT_LIST_SRFS.contains(&name.as_str()).then_some((f, None))
        }
        ast::Expr::Nested(inner) => srf_call(inner),
        ast::Expr::CompoundFieldAccess { root, access_chain } => match access_chain.as_slice() {
            [ast::AccessExpr::Dot(ast::Expr::Identifier(field))] => {
                srf_call(root).map(|(f, _)| (f, Some(ident(field))))
            }
            _ => None,
        },
        ast::Expr::CompoundIdentifier(_) => None,
        _ => None,
    }
}

/// Replaces window function calls by references to hidden columns, collecting the calls.
struct WindowCollector {
    calls: Vec<ast::Function>,
}

impl sqlparser::ast::VisitorMut for WindowCollector {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut ast::Expr) -> ControlFlow<()> {
        if let ast::Expr::Function(f) = e {
            if f.over.is_some() {
                self.calls.push(f.clone());
                *e = ast::Expr::Identifier(ast::Ident::new(format!("\u{1}window{}", self.calls.len() - 1)));
            }
        }
        ControlFlow::Continue(())
    }
}

impl Engine<'_> {
    pub(super) fn query(&self, q: &ast::Query, outer: Option<&Env>) -> Result<Relation> {
        let mut pushed = 0;
        if let Some(with) = &q.with {
            if with.recursive {
                return Err(Error::Unsupported("WITH RECURSIVE is not supported".into()));
            }
            for cte in &with.cte_tables {
                let r = self.query(&cte.query, outer).map(|r| rename_columns(r, &cte.alias));
                match r {
                    Ok(r) => {
                        self.ctes.borrow_mut().push((ident(&cte.alias.name), r));
                        pushed += 1;
                    }
                    Err(e) => {
                        self.pop_ctes(pushed);
                        return Err(e);
                    }
                }
            }
        }
        let result = self.query_body(q, outer);
        self.pop_ctes(pushed);
        result
    }

    fn pop_ctes(&self, n: usize) {
        let mut ctes = self.ctes.borrow_mut();
        let keep = ctes.len().saturating_sub(n);
        ctes.truncate(keep);
    }

    fn query_body(&self, q: &ast::Query, outer: Option<&Env>) -> Result<Relation> {
        if q.fetch.is_some() || !q.locks.is_empty() {
            return Err(Error::Unsupported(
                "FETCH and FOR UPDATE are not supported in catalog queries".into(),
            ));
        }
        let order: &[ast::OrderByExpr] = match &q.order_by {
            None => &[],
            Some(ast::OrderBy {
                kind: ast::OrderByKind::Expressions(e),
                ..
            }) => e,
            Some(_) => return Err(Error::Unsupported("ORDER BY ALL is not supported".into())),
        };
        let mut rel = match q.body.as_ref() {
            ast::SetExpr::Select(s) => self.select(s, order, outer)?,
            other => {
                let mut r = self.set_expr(other, outer)?;
                let names: Vec<String> = r.columns.iter().map(|(n, _)| n.clone()).collect();
                let keys = sort_keys(order, &names, false)?;
                if !keys.is_empty() {
                    let key_of = |row: &[Datum]| -> Vec<Datum> {
                        keys.iter()
                            .map(|k| match k.source {
                                KeySource::Output(i) => row[i].clone(),
                                KeySource::Expr(_) => Datum::Null,
                            })
                            .collect()
                    };
                    r.rows.sort_by(|a, b| compare_keys(&keys, &key_of(a), &key_of(b)));
                }
                r
            }
        };
        if let Some(lc) = &q.limit_clause {
            let (limit, offset) = match lc {
                ast::LimitClause::LimitOffset { limit, offset, .. } => {
                    (limit.as_ref(), offset.as_ref().map(|o| &o.value))
                }
                ast::LimitClause::OffsetCommaLimit { offset, limit } => (Some(limit), Some(offset)),
            };
            let empty = Shape::default();
            let env = Env::new(&empty, &[], outer);
            let count = |e: Option<&ast::Expr>, what: &str| -> Result<Option<usize>> {
                let Some(e) = e else { return Ok(None) };
                let d = self.eval(e, &env)?;
                if d.is_null() {
                    return Ok(None);
                }
                match d.as_int() {
                    Some(n) if n >= 0 => Ok(Some(n as usize)),
                    _ => Err(Error::Exec(tessera_types::ExecError::other(
                        if what == "OFFSET" { "2201X" } else { "2201W" },
                        format!("{what} must not be negative"),
                    ))),
                }
            };
            let offset = count(offset, "OFFSET")?.unwrap_or(0);
            let limit = count(limit, "LIMIT")?;
            rel.rows = rel
                .rows
                .into_iter()
                .skip(offset)
                .take(limit.unwrap_or(usize::MAX))
                .collect();
        }
        Ok(rel)
    }

    fn set_expr(&self, e: &ast::SetExpr, outer: Option<&Env>) -> Result<Relation> {
        match e {
            ast::SetExpr::Select(s) => self.select(s, &[], outer),
            ast::SetExpr::Query(q) => self.query(q, outer),
            ast::SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let l = self.set_expr(left, outer)?;
                let r = self.set_expr(right, outer)?;
                if l.columns.len() != r.columns.len() {
                    return Err(Error::Syntax(format!(
                        "each {op} query must have the same number of columns"
                    )));
                }
                let all = matches!(set_quantifier, ast::SetQuantifier::All);
                let columns = l
                    .columns
                    .iter()
                    .zip(&r.columns)
                    .map(|((n, lt), (_, rt))| (n.clone(), if *lt == DataType::Unknown { *rt } else { *lt }))
                    .collect();
                let contains =
                    |rows: &[Vec<Datum>], row: &[Datum]| rows.iter().any(|x| x.iter().zip(row).all(|(a, b)| a.same(b)));
                let rows = match op {
                    ast::SetOperator::Union => l.rows.into_iter().chain(r.rows).collect(),
                    ast::SetOperator::Except | ast::SetOperator::Minus => {
                        l.rows.into_iter().filter(|row| !contains(&r.rows, row)).collect()
                    }
                    ast::SetOperator::Intersect => l.rows.into_iter().filter(|row| contains(&r.rows, row)).collect(),
                };
                Ok(Relation {
                    columns,
                    rows: if all { rows } else { dedupe(rows) },
                })
            }
            ast::SetExpr::Values(values) => {
                let empty = Shape::default();
                let env = Env::new(&empty, &[], outer);
                let mut rows = Vec::new();
                for row in &values.rows {
                    rows.push(row.iter().map(|e| self.eval(e, &env)).collect::<Result<Vec<_>>>()?);
                }
                let columns = values
                    .rows
                    .first()
                    .map(|first| {
                        first
                            .iter()
                            .enumerate()
                            .map(|(i, e)| (format!("column{}", i + 1), self.infer(e, &env)))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Relation { columns, rows })
            }
            other => Err(Error::Unsupported(format!(
                "{other} is not supported in catalog queries"
            ))),
        }
    }

    fn select(&self, s: &ast::Select, order: &[ast::OrderByExpr], outer: Option<&Env>) -> Result<Relation> {
        if s.into.is_some() {
            return Err(Error::Unsupported("SELECT INTO is not supported".into()));
        }
        let (shape, rows) = self.from(&s.from, s.selection.as_ref(), outer)?;

        // The select list, wildcards expanded.
        let mut items = Vec::new();
        let mut names = Vec::new();
        for item in &s.projection {
            match item {
                ast::SelectItem::Wildcard(_) => {
                    for rel in &shape.rels {
                        for (i, (name, _)) in rel.columns.iter().enumerate() {
                            items.push(Item::Column(rel.offset + i));
                            names.push(name.clone());
                        }
                    }
                }
                ast::SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(q), _) => {
                    let q = object_parts(q).last().cloned().unwrap_or_default();
                    let rel = shape
                        .rels
                        .iter()
                        .find(|r| r.name == q)
                        .ok_or_else(|| Error::MissingFrom(q.clone()))?;
                    for (i, (name, _)) in rel.columns.iter().enumerate() {
                        items.push(Item::Column(rel.offset + i));
                        names.push(name.clone());
                    }
                }
                ast::SelectItem::UnnamedExpr(e) => {
                    items.push(Item::Expr(Box::new(e.clone())));
                    names.push(match srf_call(e) {
                        Some((_, Some(field))) => field,
                        _ => column_name(e, |t| crate::sql::names::data_type(t).ok()),
                    });
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    items.push(Item::Expr(Box::new(expr.clone())));
                    names.push(ident(alias));
                }
                other => return Err(Error::Unsupported(format!("select item {other} is not supported"))),
            }
        }
        let (shape, rows) = self.windows(shape, rows, &mut items, outer)?;
        let types_env = Env::new(&shape, &[], outer);
        let columns: Vec<(String, DataType)> = items
            .iter()
            .zip(&names)
            .map(|(item, name)| {
                let ty = match item {
                    Item::Column(i) => column_type(&shape, *i),
                    Item::Expr(e) => match srf_call(e) {
                        Some((f, field)) => self.srf_type(f, field.as_deref(), &types_env),
                        None => self.infer(e, &types_env),
                    },
                };
                (name.clone(), ty)
            })
            .collect();

        let group_by: &[ast::Expr] = match &s.group_by {
            ast::GroupByExpr::Expressions(e, _) => e,
            ast::GroupByExpr::All(_) => return Err(Error::Unsupported("GROUP BY ALL is not supported".into())),
        };
        let aggregated = !group_by.is_empty()
            || s.having.is_some()
            || items.iter().any(|i| matches!(i, Item::Expr(e) if has_aggregate(e)))
            || order.iter().any(|o| has_aggregate(&o.expr));
        let keys = sort_keys(order, &names, true)?;

        // One evaluation context per output row: the row, or a group of rows.
        let null_row = vec![Datum::Null; shape.width()];
        let groups: Vec<Group> = if aggregated {
            let group_exprs: Vec<&ast::Expr> = group_by
                .iter()
                .map(|g| match g {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::Number(n, _) => {
                            match n.parse::<usize>().ok().and_then(|p| items.get(p.wrapping_sub(1))) {
                                Some(Item::Expr(e)) => Ok(e.as_ref()),
                                _ => Err(Error::InvalidColumnReference(format!(
                                    "GROUP BY position {n} is not in select list"
                                ))),
                            }
                        }
                        _ => Ok(g),
                    },
                    g => Ok(g),
                })
                .collect::<Result<_>>()?;
            let mut order_of_keys: Vec<Vec<Option<String>>> = Vec::new();
            let mut by_key: HashMap<Vec<Option<String>>, Vec<Vec<Datum>>> = HashMap::new();
            for row in rows {
                let env = Env::new(&shape, &row, outer);
                let key: Vec<Option<String>> = group_exprs
                    .iter()
                    .map(|g| self.eval(g, &env).map(|d| hash_key(&d)))
                    .collect::<Result<_>>()?;
                if !by_key.contains_key(&key) {
                    order_of_keys.push(key.clone());
                }
                by_key.entry(key).or_default().push(row);
            }
            if group_exprs.is_empty() && order_of_keys.is_empty() {
                order_of_keys.push(Vec::new());
                by_key.insert(Vec::new(), Vec::new());
            }
            order_of_keys
                .into_iter()
                .map(|k| {
                    let members = by_key.remove(&k).unwrap_or_default();
                    let first = members.first().cloned().unwrap_or_else(|| null_row.clone());
                    (first, Some(members))
                })
                .collect()
        } else {
            rows.into_iter().map(|r| (r, None)).collect()
        };

        let mut out: Vec<(Vec<Datum>, Vec<Datum>)> = Vec::new();
        for (row, members) in &groups {
            let env = Env {
                shape: &shape,
                row,
                group: members.as_deref(),
                outer,
            };
            if let Some(h) = &s.having {
                if self.eval(h, &env)?.truth() != Some(true) {
                    continue;
                }
            }
            // Each item's value, or values for a set-returning call.
            let mut produced: Vec<Vec<Datum>> = Vec::with_capacity(items.len());
            let mut many = false;
            for item in &items {
                produced.push(match item {
                    Item::Column(i) => vec![row.get(*i).cloned().unwrap_or(Datum::Null)],
                    Item::Expr(e) => match srf_call(e) {
                        Some((f, field)) if members.is_none() => {
                            many = true;
                            self.srf_values(f, field.as_deref(), &env)?
                        }
                        _ => vec![self.eval(e, &env)?],
                    },
                });
            }
            let count = if many {
                produced.iter().map(Vec::len).max().unwrap_or(0)
            } else {
                1
            };
            for k in 0..count {
                let values: Vec<Datum> = produced
                    .iter()
                    .map(|p| {
                        if many && p.len() == 1 && k > 0 {
                            p[0].clone()
                        } else {
                            p.get(k).cloned().unwrap_or(Datum::Null)
                        }
                    })
                    .collect();
                let key_values: Vec<Datum> = keys
                    .iter()
                    .map(|key| match key.source {
                        KeySource::Output(i) => Ok(values[i].clone()),
                        KeySource::Expr(e) => self.eval(e, &env),
                    })
                    .collect::<Result<_>>()?;
                out.push((values, key_values));
            }
        }
        if matches!(s.distinct, Some(ast::Distinct::Distinct)) {
            let mut seen: Vec<Vec<Datum>> = Vec::new();
            out.retain(|(values, _)| {
                if seen.iter().any(|r| r.iter().zip(values).all(|(a, b)| a.same(b))) {
                    false
                } else {
                    seen.push(values.clone());
                    true
                }
            });
        } else if matches!(s.distinct, Some(ast::Distinct::On(_))) {
            return Err(Error::Unsupported("SELECT DISTINCT ON is not supported".into()));
        }
        if !keys.is_empty() {
            out.sort_by(|(_, a), (_, b)| compare_keys(&keys, a, b));
        }
        Ok(Relation {
            columns,
            rows: out.into_iter().map(|(v, _)| v).collect(),
        })
    }

    /// Computes the window functions the items call (`row_number() OVER (PARTITION BY ...
    /// ORDER BY ...)`, `rank`, `dense_rank`, `count`): each becomes a hidden column of every
    /// row, which the items then read.
    fn windows(
        &self,
        mut shape: Shape,
        mut rows: Vec<Vec<Datum>>,
        items: &mut [Item],
        outer: Option<&Env>,
    ) -> Result<(Shape, Vec<Vec<Datum>>)> {
        let mut collector = WindowCollector { calls: Vec::new() };
        for item in items.iter_mut() {
            if let Item::Expr(e) = item {
                let _ = sqlparser::ast::VisitMut::visit(e, &mut collector);
            }
        }
        if collector.calls.is_empty() {
            return Ok((shape, rows));
        }
        let mut columns = Vec::new();
        for (w, call) in collector.calls.iter().enumerate() {
            let name = object_parts(&call.name).last().cloned().unwrap_or_default();
            let Some(ast::WindowType::WindowSpec(spec)) = &call.over else {
                return Err(Error::Unsupported("named windows are not supported".into()));
            };
            if !matches!(name.as_str(), "row_number" | "rank" | "dense_rank" | "count") {
                return Err(Error::Unsupported(format!("window function {name} is not supported")));
            }
            // (partition key, order key, row index) of every row, sorted.
            let mut keyed = Vec::with_capacity(rows.len());
            for (i, row) in rows.iter().enumerate() {
                let env = Env::new(&shape, row, outer);
                let part: Vec<Datum> = spec
                    .partition_by
                    .iter()
                    .map(|p| self.eval(p, &env))
                    .collect::<Result<_>>()?;
                let ord: Vec<Datum> = spec
                    .order_by
                    .iter()
                    .map(|o| self.eval(&o.expr, &env))
                    .collect::<Result<_>>()?;
                keyed.push((part, ord, i));
            }
            let order_keys = sort_keys(&spec.order_by, &[], true)?;
            let part_keys: Vec<SortKey> = spec
                .partition_by
                .iter()
                .map(|e| SortKey {
                    source: KeySource::Expr(e),
                    descending: false,
                    nulls_first: false,
                })
                .collect();
            keyed.sort_by(|a, b| {
                compare_keys(&part_keys, &a.0, &b.0).then_with(|| compare_keys(&order_keys, &a.1, &b.1))
            });
            let mut values = vec![Datum::Null; rows.len()];
            let mut start = 0;
            while start < keyed.len() {
                let end = (start..keyed.len())
                    .find(|&j| compare_keys(&part_keys, &keyed[j].0, &keyed[start].0) != Ordering::Equal)
                    .unwrap_or(keyed.len());
                let (mut rank, mut dense) = (0i64, 0i64);
                for j in start..end {
                    let peer = j > start && compare_keys(&order_keys, &keyed[j].1, &keyed[j - 1].1) == Ordering::Equal;
                    if !peer {
                        rank = (j - start) as i64 + 1;
                        dense += 1;
                    }
                    values[keyed[j].2] = Datum::Int(match name.as_str() {
                        "row_number" => (j - start) as i64 + 1,
                        "rank" => rank,
                        "dense_rank" => dense,
                        _ => (end - start) as i64,
                    });
                }
                start = end;
            }
            for (row, v) in rows.iter_mut().zip(values) {
                row.push(v);
            }
            columns.push((format!("\u{1}window{w}"), DataType::Int8));
        }
        shape.add("\u{1}windows".into(), columns);
        Ok((shape, rows))
    }

    /// The rows a set-returning call in a select list gives for one input row.
    fn srf_values(&self, f: &ast::Function, field: Option<&str>, env: &Env) -> Result<Vec<Datum>> {
        let name = object_parts(&f.name).last().cloned().unwrap_or_default();
        let args: Vec<ast::FunctionArg> = match &f.args {
            ast::FunctionArguments::List(l) => l.args.clone(),
            _ => Vec::new(),
        };
        if name == "generate_subscripts" {
            let arr = match args.first() {
                Some(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))) => self.eval(e, env)?,
                _ => return Err(Error::UndefinedFunction("generate_subscripts".into())),
            };
            let zero_based = matches!(&arr, Datum::Text(t) if !t.trim_start().starts_with('{'));
            let n = super::expr::element_count(&arr);
            let base = i64::from(!zero_based);
            return Ok((0..n as i64).map(|i| Datum::Int(i + base)).collect());
        }
        let r = self.table_function(&name, &args, Some(env))?;
        let column = match field {
            // A function of several columns gives a composite value.
            None if r.columns.len() > 1 => {
                return Ok(r
                    .rows
                    .into_iter()
                    .map(|row| Datum::Record(r.columns.iter().map(|(n, _)| n.clone()).zip(row).collect()))
                    .collect())
            }
            None => 0,
            Some(fname) => r
                .columns
                .iter()
                .position(|(c, _)| c == fname)
                .ok_or_else(|| Error::UndefinedColumn(fname.to_string()))?,
        };
        Ok(r.rows.into_iter().map(|mut row| row.swap_remove(column)).collect())
    }

    fn srf_type(&self, f: &ast::Function, field: Option<&str>, env: &Env) -> DataType {
        let name = object_parts(&f.name).last().cloned().unwrap_or_default();
        match (name.as_str(), field) {
            ("generate_subscripts" | "generate_series", _) | ("_pg_expandarray", Some("n")) => DataType::Int4,
            ("unnest" | "_pg_expandarray", _) => {
                let arg = match &f.args {
                    ast::FunctionArguments::List(l) => match l.args.first() {
                        Some(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))) => Some(e),
                        _ => None,
                    },
                    _ => None,
                };
                // Arrays of the catalog (indkey, conkey...) hold smallints; others text.
                match arg.map(|a| self.infer(a, env)) {
                    Some(DataType::Text) | None => DataType::Text,
                    Some(t) => t,
                }
            }
            _ => DataType::Text,
        }
    }

    /// The rows of the FROM list that pass `filter`, each condition applied as soon as the
    /// relations it reads are joined.
    fn from(
        &self,
        from: &[ast::TableWithJoins],
        filter: Option<&ast::Expr>,
        outer: Option<&Env>,
    ) -> Result<(Shape, Vec<Vec<Datum>>)> {
        let mut pending: Vec<&ast::Expr> = Vec::new();
        if let Some(f) = filter {
            split_and(f, &mut pending);
        }
        let mut shape = Shape::default();
        let mut rows: Vec<Vec<Datum>> = vec![Vec::new()];
        for item in from {
            let (item_shape, mut item_rows) = self.table_with_joins(item, outer)?;
            // Conditions on this item alone filter it before it is joined.
            let (own, rest): (Vec<&ast::Expr>, Vec<&ast::Expr>) =
                pending.into_iter().partition(|c| reads_only(c, &item_shape));
            pending = rest;
            item_rows = self.filter_rows(&item_shape, item_rows, &own, outer)?;
            let mut joined = shape.clone();
            joined.append(&item_shape);
            let (now, later): (Vec<&ast::Expr>, Vec<&ast::Expr>) =
                pending.into_iter().partition(|c| reads_only(c, &joined));
            pending = later;
            rows = self.join(&shape, rows, &item_shape, item_rows, JoinKind::Inner, &now, outer)?;
            shape = joined;
        }
        let rows = self.filter_rows(&shape, rows, &pending, outer)?;
        Ok((shape, rows))
    }

    fn filter_rows(
        &self,
        shape: &Shape,
        rows: Vec<Vec<Datum>>,
        conditions: &[&ast::Expr],
        outer: Option<&Env>,
    ) -> Result<Vec<Vec<Datum>>> {
        if conditions.is_empty() {
            return Ok(rows);
        }
        let mut out = Vec::new();
        for row in rows {
            let env = Env::new(shape, &row, outer);
            let mut keep = true;
            for c in conditions {
                if self.eval(c, &env)?.truth() != Some(true) {
                    keep = false;
                    break;
                }
            }
            if keep {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Joins two row sets on `conditions` (all must hold). An equality between an expression
    /// of each side makes it a hash join.
    #[allow(clippy::too_many_arguments)]
    fn join(
        &self,
        left_shape: &Shape,
        left: Vec<Vec<Datum>>,
        right_shape: &Shape,
        right: Vec<Vec<Datum>>,
        kind: JoinKind,
        conditions: &[&ast::Expr],
        outer: Option<&Env>,
    ) -> Result<Vec<Vec<Datum>>> {
        let mut shape = left_shape.clone();
        shape.append(right_shape);
        // An equality usable as a hash key: (left expression, right expression, its index).
        let equi = conditions.iter().enumerate().find_map(|(i, c)| match c {
            ast::Expr::BinaryOp {
                left: a,
                op: ast::BinaryOperator::Eq,
                right: b,
            } => {
                if reads_only(a, left_shape) && reads_only(b, right_shape) {
                    Some((a.as_ref(), b.as_ref(), i))
                } else if reads_only(b, left_shape) && reads_only(a, right_shape) {
                    Some((b.as_ref(), a.as_ref(), i))
                } else {
                    None
                }
            }
            _ => None,
        });
        let others: Vec<&ast::Expr> = conditions
            .iter()
            .enumerate()
            .filter(|(i, _)| equi.is_none_or(|(_, _, e)| e != *i))
            .map(|(_, c)| *c)
            .collect();
        // Candidate right rows for each left row.
        let buckets: Option<HashMap<String, Vec<usize>>> = match equi {
            Some((_, r, _)) => {
                let mut m: HashMap<String, Vec<usize>> = HashMap::new();
                for (i, row) in right.iter().enumerate() {
                    if let Some(k) = hash_key(&self.eval(r, &Env::new(right_shape, row, outer))?) {
                        m.entry(k).or_default().push(i);
                    }
                }
                Some(m)
            }
            None => None,
        };
        let all_right: Vec<usize> = (0..right.len()).collect();
        let mut right_matched = vec![false; right.len()];
        let mut out = Vec::new();
        for l in &left {
            let candidates: &[usize] = match (&buckets, equi) {
                (Some(b), Some((lexpr, _, _))) => {
                    let key = hash_key(&self.eval(lexpr, &Env::new(left_shape, l, outer))?);
                    key.and_then(|k| b.get(&k)).map_or(&[], |v| v.as_slice())
                }
                _ => &all_right,
            };
            let mut matched = false;
            for &ri in candidates {
                let mut row = l.clone();
                row.extend(right[ri].iter().cloned());
                let env = Env::new(&shape, &row, outer);
                let mut ok = true;
                for c in &others {
                    if self.eval(c, &env)?.truth() != Some(true) {
                        ok = false;
                        break;
                    }
                }
                if ok {
                    matched = true;
                    right_matched[ri] = true;
                    out.push(row);
                }
            }
            if !matched && matches!(kind, JoinKind::Left | JoinKind::Full) {
                let mut row = l.clone();
                row.extend(std::iter::repeat_n(Datum::Null, right_shape.width()));
                out.push(row);
            }
        }
        if matches!(kind, JoinKind::Right | JoinKind::Full) {
            for (ri, r) in right.iter().enumerate() {
                if !right_matched[ri] {
                    let mut row = vec![Datum::Null; left_shape.width()];
                    row.extend(r.iter().cloned());
                    out.push(row);
                }
            }
        }
        Ok(out)
    }

    fn table_with_joins(&self, item: &ast::TableWithJoins, outer: Option<&Env>) -> Result<(Shape, Vec<Vec<Datum>>)> {
        let (mut shape, mut rows) = self.table_factor(&item.relation, outer)?;
        for j in &item.joins {
            let (right_shape, right_rows) = self.table_factor(&j.relation, outer)?;
            use ast::JoinOperator as J;
            let (kind, constraint) = match &j.join_operator {
                J::Join(c) | J::Inner(c) | J::CrossJoin(c) => (JoinKind::Inner, c),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, c),
                J::Right(c) | J::RightOuter(c) => (JoinKind::Right, c),
                J::FullOuter(c) => (JoinKind::Full, c),
                other => return Err(Error::Unsupported(format!("join {other:?} is not supported"))),
            };
            let using: Vec<ast::Expr>;
            let mut conditions: Vec<&ast::Expr> = Vec::new();
            match constraint {
                ast::JoinConstraint::On(e) => split_and(e, &mut conditions),
                ast::JoinConstraint::None => {}
                ast::JoinConstraint::Using(cols) => {
                    let left_name = shape.rels.last().map(|r| r.name.clone()).unwrap_or_default();
                    let right_name = right_shape.rels.first().map(|r| r.name.clone()).unwrap_or_default();
                    using = cols
                        .iter()
                        .map(|c| {
                            let col = object_parts(c).last().cloned().unwrap_or_default();
                            let side = |rel: &str| {
                                ast::Expr::CompoundIdentifier(vec![ast::Ident::new(rel), ast::Ident::new(col.clone())])
                            };
                            ast::Expr::BinaryOp {
                                left: Box::new(side(&left_name)),
                                op: ast::BinaryOperator::Eq,
                                right: Box::new(side(&right_name)),
                            }
                        })
                        .collect();
                    conditions.extend(using.iter());
                }
                ast::JoinConstraint::Natural => {
                    return Err(Error::Unsupported("NATURAL JOIN is not supported".into()));
                }
            }
            rows = self.join(&shape, rows, &right_shape, right_rows, kind, &conditions, outer)?;
            shape.append(&right_shape);
        }
        Ok((shape, rows))
    }

    fn table_factor(&self, tf: &ast::TableFactor, outer: Option<&Env>) -> Result<(Shape, Vec<Vec<Datum>>)> {
        let (default_name, rel, alias) = match tf {
            ast::TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => (
                object_parts(name).last().cloned().unwrap_or_default(),
                self.relation(name)?,
                alias,
            ),
            ast::TableFactor::Table {
                name,
                alias,
                args: Some(args),
                ..
            } => {
                let fname = object_parts(name).last().cloned().unwrap_or_default();
                let r = self.table_function(&fname, &args.args, outer)?;
                (fname, scalar_function_alias(r, alias), alias)
            }
            ast::TableFactor::Function { name, args, alias, .. } => {
                let fname = object_parts(name).last().cloned().unwrap_or_default();
                let r = self.table_function(&fname, args, outer)?;
                (fname, scalar_function_alias(r, alias), alias)
            }
            ast::TableFactor::UNNEST { alias, array_exprs, .. } => {
                let args: Vec<ast::FunctionArg> = array_exprs
                    .iter()
                    .map(|e| ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e.clone())))
                    .collect();
                let r = self.table_function("unnest", &args, outer)?;
                ("unnest".to_string(), scalar_function_alias(r, alias), alias)
            }
            ast::TableFactor::Derived { subquery, alias, .. } => {
                ("?subquery?".to_string(), self.query(subquery, outer)?, alias)
            }
            ast::TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let (shape, rows) = self.table_with_joins(table_with_joins, outer)?;
                if let Some(a) = alias {
                    let columns = shape.rels.iter().flat_map(|r| r.columns.clone()).collect();
                    let rel = rename_columns(Relation { columns, rows }, a);
                    let mut s = Shape::default();
                    s.add(ident(&a.name), rel.columns);
                    return Ok((s, rel.rows));
                }
                return Ok((shape, rows));
            }
            other => return Err(Error::Unsupported(format!("FROM item {other} is not supported"))),
        };
        let (name, rel) = match alias {
            Some(a) => (ident(&a.name), rename_columns(rel, a)),
            None => (default_name, rel),
        };
        let mut shape = Shape::default();
        shape.add(name, rel.columns);
        Ok((shape, rel.rows))
    }
}

/// A function returning one column takes the alias as its column's name (`generate_series(1,
/// 3) s` has a column `s`), as in PostgreSQL.
fn scalar_function_alias(mut r: Relation, alias: &Option<ast::TableAlias>) -> Relation {
    if let (Some(a), [only]) = (alias, r.columns.as_mut_slice()) {
        if a.columns.is_empty() {
            only.0 = ident(&a.name);
        }
    }
    r
}

fn rename_columns(mut r: Relation, alias: &ast::TableAlias) -> Relation {
    for (c, name) in r.columns.iter_mut().zip(&alias.columns) {
        c.0 = ident(&name.name);
    }
    r
}

fn column_type(shape: &Shape, i: usize) -> DataType {
    shape
        .rels
        .iter()
        .find_map(|r| (i >= r.offset && i < r.offset + r.columns.len()).then(|| r.columns[i - r.offset].1))
        .unwrap_or(DataType::Text)
}
