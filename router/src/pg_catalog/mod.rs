//! Answers queries about the database itself: `pg_catalog` and `information_schema`, which
//! psql's `\d` family, drivers (JDBC metadata, psycopg type lookups) and ORMs (SQLAlchemy
//! reflection) query on connect and on demand.
//!
//! These queries join many small relations, use correlated subqueries, arrays, `regclass`
//! casts and catalog functions: a different shape from the distributed engine's, which plans
//! one table's scan out to the shards. So they run here, in the router, over relations
//! computed from the cluster map (`relations.rs`), by a small dynamically typed interpreter of
//! the parsed SQL (`query.rs` for FROM, joins, grouping, set operations and ordering;
//! `expr.rs` for expressions, casts and functions). Result column types are inferred from the
//! query alone, so Describe and Execute agree. Expressions the interpreter does not know (the
//! ordinary SQL functions and operators) are evaluated by the distributed engine's own binder
//! over constant arguments, so they behave exactly as they do in other queries.
//!
//! What it does not own: the `tessera` schema (`virtual_tables.rs`), which needs the nodes,
//! and any query that also reads a user table.

mod datum;
mod expr;
mod query;
mod relations;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{self, Visit, Visitor};
use tessera_types::schema::ClusterMap;
use tessera_types::{DataType, Row};

use crate::error::{Error, Result};
use crate::sql::expr::Ctx;
use crate::sql::names::object_parts;
use crate::sql::OutputColumn;
use datum::Datum;
use relations::{Relation, Source, INFORMATION_SCHEMA_RELATIONS, PG_CATALOG_RELATIONS};

/// The schema a relation name lives in, if it names a catalog relation. Unqualified names
/// find `pg_catalog` first, as PostgreSQL's search path does, unless a user table has the name.
fn catalog_schema(map: &ClusterMap, name: &ast::ObjectName) -> Option<&'static str> {
    let parts = object_parts(name);
    match parts.as_slice() {
        [schema, rel] if schema == "pg_catalog" && PG_CATALOG_RELATIONS.contains(&rel.as_str()) => Some("pg_catalog"),
        [schema, rel] if schema == "information_schema" && INFORMATION_SCHEMA_RELATIONS.contains(&rel.as_str()) => {
            Some("information_schema")
        }
        [schema, _] if schema == "pg_catalog" || schema == "information_schema" => Some("unknown"),
        [rel] if PG_CATALOG_RELATIONS.contains(&rel.as_str()) && map.table_by_name(rel).is_none() => Some("pg_catalog"),
        _ => None,
    }
}

/// Sorts the relations a query reads into catalog ones and others (WITH queries aside).
struct RelationProbe<'m> {
    map: &'m ClusterMap,
    ctes: Vec<String>,
    catalog: usize,
    other: usize,
}

impl Visitor for RelationProbe<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &ast::Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            self.ctes
                .extend(with.cte_tables.iter().map(|c| crate::sql::names::ident(&c.alias.name)));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &ast::ObjectName) -> ControlFlow<()> {
        let parts = object_parts(name);
        if parts.len() == 1 && self.ctes.contains(&parts[0]) {
            return ControlFlow::Continue(());
        }
        if catalog_schema(self.map, name).is_some() || query::is_table_function(name) {
            self.catalog += 1;
        } else {
            self.other += 1;
        }
        ControlFlow::Continue(())
    }
}

fn probe(map: &ClusterMap, q: &ast::Query) -> (usize, usize) {
    let mut probe = RelationProbe {
        map,
        ctes: Vec::new(),
        catalog: 0,
        other: 0,
    };
    let _ = q.visit(&mut probe);
    (probe.catalog, probe.other)
}

/// Whether `q` reads catalog relations only (and at least one), so this module answers it.
pub fn reads_only_catalog(map: &ClusterMap, q: &ast::Query) -> bool {
    let (catalog, other) = probe(map, q);
    catalog > 0 && other == 0
}

/// Whether `q` reads no relation at all: a query this module can answer when the distributed
/// binder cannot (catalog functions such as `pg_get_partkeydef`, `format_type`, `version()`).
pub fn reads_nothing(map: &ClusterMap, q: &ast::Query) -> bool {
    probe(map, q) == (0, 0)
}

/// A query's result: its columns and rows.
pub struct Answer {
    pub columns: Vec<OutputColumn>,
    pub rows: Vec<Row>,
}

/// Runs a catalog query for the session described by `ctx`.
pub fn run(ctx: &Ctx, q: &ast::Query) -> Result<Answer> {
    let engine = Engine {
        src: Source {
            map: ctx.map,
            user: ctx.user,
            database: ctx.database,
            settings: ctx.settings,
        },
        ctx,
        ctes: RefCell::new(Vec::new()),
        relations: RefCell::new(HashMap::new()),
        regexes: RefCell::new(HashMap::new()),
    };
    let result = engine.query(q, None)?;
    let columns: Vec<OutputColumn> = result
        .columns
        .iter()
        .map(|(name, ty)| OutputColumn {
            name: name.clone(),
            ty: output_type(*ty),
        })
        .collect();
    let rows = result
        .rows
        .into_iter()
        .map(|row| row.into_iter().zip(&columns).map(|(d, c)| d.into_value(c.ty)).collect())
        .collect();
    Ok(Answer { columns, rows })
}

/// The wire type of a result column.
fn output_type(ty: DataType) -> DataType {
    match ty {
        DataType::Unknown => DataType::Text,
        other => other,
    }
}

/// The interpreter: relations computed once per query, the WITH queries in scope and compiled
/// regular expressions.
pub struct Engine<'a> {
    src: Source<'a>,
    ctx: &'a Ctx<'a>,
    ctes: RefCell<Vec<(String, Relation)>>,
    relations: RefCell<HashMap<(&'static str, String), Relation>>,
    regexes: RefCell<HashMap<String, regex::Regex>>,
}

impl Engine<'_> {
    /// The catalog relation `schema.name` (computed on first use).
    fn relation(&self, name: &ast::ObjectName) -> Result<Relation> {
        let parts = object_parts(name);
        let rel_name = parts.last().cloned().unwrap_or_default();
        if parts.len() == 1 {
            if let Some((_, r)) = self.ctes.borrow().iter().rev().find(|(n, _)| *n == rel_name) {
                return Ok(r.clone());
            }
        }
        let schema = catalog_schema(self.src.map, name).ok_or_else(|| Error::UndefinedTable(parts.join(".")))?;
        let key = (schema, rel_name.clone());
        if let Some(r) = self.relations.borrow().get(&key) {
            return Ok(r.clone());
        }
        let r =
            relations::relation(&self.src, schema, &rel_name).ok_or_else(|| Error::UndefinedTable(parts.join(".")))?;
        self.relations.borrow_mut().insert(key, r.clone());
        Ok(r)
    }
}

/// The columns a row holds, grouped by the relation (FROM item) they come from.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    rels: Vec<RelShape>,
}

#[derive(Debug, Clone)]
struct RelShape {
    /// The name the relation answers to (its alias, or its own name).
    name: String,
    columns: Vec<(String, DataType)>,
    offset: usize,
}

impl Shape {
    fn width(&self) -> usize {
        self.rels.iter().map(|r| r.columns.len()).sum()
    }

    fn add(&mut self, name: String, columns: Vec<(String, DataType)>) {
        let offset = self.width();
        self.rels.push(RelShape { name, columns, offset });
    }

    fn append(&mut self, other: &Shape) {
        for r in &other.rels {
            self.add(r.name.clone(), r.columns.clone());
        }
    }

    /// The position and type of a column, `Ok(None)` if no relation here has it.
    fn find(&self, qualifier: Option<&str>, name: &str) -> Result<Option<(usize, DataType)>> {
        let mut found = None;
        for rel in &self.rels {
            if qualifier.is_some_and(|q| q != rel.name) {
                continue;
            }
            if let Some(i) = rel.columns.iter().position(|(c, _)| c == name) {
                if found.is_some() {
                    return Err(Error::AmbiguousColumn(name.to_string()));
                }
                found = Some((rel.offset + i, rel.columns[i].1));
            }
        }
        Ok(found)
    }

    fn has_rel(&self, name: &str) -> bool {
        self.rels.iter().any(|r| r.name == name)
    }
}

/// Where an expression is evaluated: a row of a shape, the rows of its group when
/// aggregating, and the enclosing query's row for correlated subqueries. Type inference uses
/// an empty row.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    shape: &'a Shape,
    row: &'a [Datum],
    group: Option<&'a [Vec<Datum>]>,
    outer: Option<&'a Env<'a>>,
}

impl<'a> Env<'a> {
    fn new(shape: &'a Shape, row: &'a [Datum], outer: Option<&'a Env<'a>>) -> Env<'a> {
        Env {
            shape,
            row,
            group: None,
            outer,
        }
    }

    /// A column's value and type, looked up here and then in the enclosing queries.
    fn lookup(&self, qualifier: Option<&str>, name: &str) -> Result<(Datum, DataType)> {
        if let Some((i, ty)) = self.shape.find(qualifier, name)? {
            return Ok((self.row.get(i).cloned().unwrap_or(Datum::Null), ty));
        }
        match self.outer {
            Some(o) => o.lookup(qualifier, name),
            None => Err(match qualifier {
                Some(q) if !self.has_rel(q) => Error::MissingFrom(q.to_string()),
                Some(q) => Error::UndefinedColumn(format!("{q}.{name}")),
                None => Error::UndefinedColumn(name.to_string()),
            }),
        }
    }

    fn has_rel(&self, name: &str) -> bool {
        self.shape.has_rel(name) || self.outer.is_some_and(|o| o.has_rel(name))
    }
}
