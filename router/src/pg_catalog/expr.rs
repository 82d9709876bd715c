//! Expressions of catalog queries: evaluation over a row (`Engine::eval`), the result type a
//! column will have (`Engine::infer`, from the query alone), casts to the `reg*` types and
//! arrays, the catalog's own functions, aggregates and subqueries.
//!
//! Everything else (ordinary functions and operators: `lower`, `||` on text, LIKE, date
//! arithmetic...) goes to the distributed engine's binder: the expression's column references
//! and subqueries are replaced by their values as literals, and the binder folds the rest, so
//! those expressions mean here exactly what they mean elsewhere.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use sqlparser::ast::{self, VisitMut, VisitorMut};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use tessera_types::datatype::ArrayElem;
use tessera_types::{DataType, ExecError};

use super::datum::{parse_array, Datum, RegKind};
use super::query::AGGREGATES;
use super::relations::{
    self, format_type, namespace_name, namespace_oid, rel_by_oid, rel_oid_by_name, type_name, type_oid, RelPart,
    Relation, ROLE_OID,
};
use super::{Engine, Env, Shape};
use crate::error::{Error, Result};
use crate::sql::expr::{string_value, ExprBinder, Scope};
use crate::sql::names::{ident, internal_type_name, object_parts};

/// Functions this module evaluates itself (the others go to the binder).
const CATALOG_FUNCTIONS: &[&str] = &[
    "pg_get_userbyid",
    "pg_table_is_visible",
    "pg_type_is_visible",
    "pg_function_is_visible",
    "pg_get_expr",
    "pg_get_partkeydef",
    "pg_get_partition_constraintdef",
    "pg_get_indexdef",
    "pg_get_constraintdef",
    "pg_get_viewdef",
    "pg_get_triggerdef",
    "pg_get_ruledef",
    "pg_get_statisticsobjdef_columns",
    "pg_get_function_result",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_serial_sequence",
    "format_type",
    "obj_description",
    "col_description",
    "shobj_description",
    "pg_encoding_to_char",
    "pg_char_to_encoding",
    "array_to_string",
    "array_upper",
    "array_lower",
    "array_length",
    "cardinality",
    "current_schema",
    "current_schemas",
    "current_database",
    "current_catalog",
    "current_user",
    "session_user",
    "user",
    "current_role",
    "version",
    "pg_backend_pid",
    "current_setting",
    "has_table_privilege",
    "has_schema_privilege",
    "has_database_privilege",
    "has_column_privilege",
    "has_any_column_privilege",
    "has_function_privilege",
    "has_sequence_privilege",
    "pg_has_role",
    "pg_relation_is_publishable",
    "pg_total_relation_size",
    "pg_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_size_pretty",
    "pg_is_in_recovery",
    "pg_tablespace_location",
    "to_regclass",
    "to_regtype",
    "to_regnamespace",
    "quote_ident",
    "txid_current",
    "pg_current_xact_id",
    "inet_server_addr",
    "inet_server_port",
    "pg_advisory_unlock_all",
    "pg_collation_is_visible",
    "pg_opclass_is_visible",
    "array",
    "coalesce",
];

/// Types that a catalog query may cast to and this module casts itself.
fn reg_kind(t: &ast::DataType) -> Option<RegKind> {
    match t {
        ast::DataType::Regclass => Some(RegKind::Class),
        ast::DataType::Custom(name, _) => match object_parts(name).last().map(String::as_str) {
            Some("regclass") => Some(RegKind::Class),
            Some("regtype") => Some(RegKind::Type),
            Some("regnamespace") => Some(RegKind::Namespace),
            Some("regproc" | "regprocedure") => Some(RegKind::Proc),
            Some("regrole") => Some(RegKind::Role),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `t` is text or an unbounded varchar, however it is spelled.
fn is_text_type(t: &ast::DataType) -> bool {
    matches!(
        t,
        ast::DataType::Text | ast::DataType::Varchar(None) | ast::DataType::CharacterVarying(None)
    ) || custom_type(t).is_some_and(|n| n == "text" || n == "varchar")
}

/// The last part of a custom type's name (`pg_catalog.oid` → `oid`).
fn custom_type(t: &ast::DataType) -> Option<String> {
    match t {
        ast::DataType::Custom(name, _) => object_parts(name).last().cloned(),
        _ => None,
    }
}

fn int_arg(args: &[Datum], i: usize) -> Option<i64> {
    args.get(i).and_then(Datum::as_int)
}

fn text_arg(args: &[Datum], i: usize) -> Option<String> {
    args.get(i).and_then(Datum::to_text)
}

/// The elements of an array value; int2vector and oidvector (space-separated) count as arrays.
fn elements(d: &Datum) -> Option<Vec<Datum>> {
    match d {
        Datum::Array(items) => Some(items.clone()),
        Datum::Text(t) if t.trim_start().starts_with('{') => match parse_array(t) {
            Datum::Array(items) => Some(items),
            _ => None,
        },
        Datum::Text(t) => Some(
            t.split_whitespace()
                .map(|s| Datum::Int(s.parse().unwrap_or(0)))
                .collect(),
        ),
        d if d.is_null() => None,
        other => Some(vec![other.clone()]),
    }
}

/// How many elements an array value has (0 for NULL).
pub(super) fn element_count(d: &Datum) -> usize {
    elements(d).map_or(0, |e| e.len())
}

/// A datum as a SQL literal of its type, for the binder.
fn literal(d: &Datum, ty: Option<DataType>) -> Result<ast::Expr> {
    let value = |v: ast::Value| ast::Expr::Value(v.into());
    let cast_text = |text: String, ty: DataType| -> Result<ast::Expr> {
        Ok(ast::Expr::Cast {
            kind: ast::CastKind::DoubleColon,
            expr: Box::new(value(ast::Value::SingleQuotedString(text))),
            data_type: ast_type(ty)?,
            format: None,
        })
    };
    Ok(match d {
        d if d.is_null() => match ty {
            Some(t) if t != DataType::Unknown => ast::Expr::Cast {
                kind: ast::CastKind::DoubleColon,
                expr: Box::new(value(ast::Value::Null)),
                data_type: ast_type(t)?,
                format: None,
            },
            _ => value(ast::Value::Null),
        },
        Datum::Bool(b) => value(ast::Value::Boolean(*b)),
        Datum::Int(i) | Datum::Reg(i, _) => value(ast::Value::Number(i.to_string(), false)),
        Datum::Float(f) => cast_text(tessera_types::text::format_float(*f, false), DataType::Float8)?,
        Datum::Other(v) => cast_text(v.to_text().unwrap_or_default(), v.data_type())?,
        other => value(ast::Value::SingleQuotedString(other.to_text().unwrap_or_default())),
    })
}

fn ast_type(ty: DataType) -> Result<ast::DataType> {
    let name = match ty {
        DataType::Unknown => "text",
        other => internal_type_name(other),
    };
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(name)
        .and_then(|mut p| p.parse_data_type())
        .map_err(|e| Error::Internal(format!("type {name} does not parse: {e}")))
}

/// Replaces, in an expression the binder will evaluate, every part this module must evaluate
/// (column references, subqueries, catalog functions, reg casts) by a literal of its value.
struct Substitute<'e, 'a> {
    engine: &'e Engine<'a>,
    env: &'e Env<'e>,
    /// Whether to substitute typed NULLs (for type inference) instead of values.
    types_only: bool,
    /// Whether the expression's root was seen: the root itself is the binder's to evaluate
    /// (substituting it would hand it back to `Engine::eval`, which sent it here).
    past_root: bool,
    error: Option<Error>,
}

impl VisitorMut for Substitute<'_, '_> {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut ast::Expr) -> ControlFlow<()> {
        if !std::mem::replace(&mut self.past_root, true) || !self.engine.evaluates_itself(e) {
            return ControlFlow::Continue(());
        }
        let r = if self.types_only {
            let ty = self.engine.infer(e, self.env);
            literal(&Datum::Null, Some(ty))
        } else {
            self.engine.eval(e, self.env).and_then(|d| literal(&d, None))
        };
        match r {
            Ok(lit) => {
                *e = lit;
                ControlFlow::Continue(())
            }
            Err(err) => {
                self.error = Some(err);
                ControlFlow::Break(())
            }
        }
    }
}

impl Engine<'_> {
    /// Whether this module evaluates `e` itself rather than handing it to the binder.
    fn evaluates_itself(&self, e: &ast::Expr) -> bool {
        use ast::Expr as E;
        match e {
            E::Identifier(_)
            | E::CompoundIdentifier(_)
            | E::Subquery(_)
            | E::Exists { .. }
            | E::InSubquery { .. }
            | E::AnyOp { .. }
            | E::AllOp { .. }
            | E::Array(_)
            | E::CompoundFieldAccess { .. }
            | E::Case { .. } => true,
            E::Cast { data_type, .. } => {
                reg_kind(data_type).is_some()
                    || matches!(data_type, ast::DataType::Array(_))
                    || is_text_type(data_type)
                    || custom_type(data_type)
                        .is_some_and(|t| matches!(t.as_str(), "oid" | "int2vector" | "oidvector" | "char" | "name"))
            }
            E::Function(f) => {
                let name = object_parts(&f.name).last().cloned().unwrap_or_default();
                CATALOG_FUNCTIONS.contains(&name.as_str()) || AGGREGATES.contains(&name.as_str())
            }
            E::BinaryOp { op, .. } => matches!(
                op,
                ast::BinaryOperator::PGRegexMatch
                    | ast::BinaryOperator::PGRegexIMatch
                    | ast::BinaryOperator::PGRegexNotMatch
                    | ast::BinaryOperator::PGRegexNotIMatch
                    | ast::BinaryOperator::PGCustomBinaryOperator(_)
                    | ast::BinaryOperator::BitwiseAnd
                    | ast::BinaryOperator::BitwiseOr
                    | ast::BinaryOperator::PGBitwiseXor
            ),
            _ => false,
        }
    }

    /// Evaluates `e` with the binder, after substituting what this module must evaluate.
    fn through_binder(&self, e: &ast::Expr, env: &Env) -> Result<(Datum, DataType)> {
        self.binder(e, env, false)
    }

    fn binder(&self, e: &ast::Expr, env: &Env, types_only: bool) -> Result<(Datum, DataType)> {
        let mut e = e.clone();
        let mut s = Substitute {
            engine: self,
            env,
            types_only,
            past_root: false,
            error: None,
        };
        let _ = e.visit(&mut s);
        if let Some(err) = s.error {
            return Err(err);
        }
        let scope = Scope::empty();
        let mut b = ExprBinder::new(self.ctx, &scope, "SELECT");
        let te = b.bind(&e)?;
        if types_only {
            return Ok((Datum::Null, te.ty));
        }
        let v = match te.expr {
            tessera_types::Expr::Literal(v) => v,
            other => other.eval(&[])?,
        };
        Ok((Datum::from_value(v), te.ty))
    }

    pub(super) fn predicate(&self, e: &ast::Expr, env: &Env) -> Result<Option<bool>> {
        Ok(self.eval(e, env)?.truth())
    }

    pub(super) fn eval(&self, e: &ast::Expr, env: &Env) -> Result<Datum> {
        use ast::Expr as E;
        match e {
            E::Identifier(id) => match env.lookup(None, &ident(id)) {
                Ok((d, _)) => Ok(d),
                Err(Error::UndefinedColumn(_)) if id.quote_style.is_none() => {
                    let name = ident(id);
                    if CATALOG_FUNCTIONS.contains(&name.as_str()) {
                        self.function(&name, &[], env)
                    } else {
                        Ok(self.through_binder(e, env)?.0)
                    }
                }
                Err(err) => Err(err),
            },
            E::CompoundIdentifier(parts) => {
                let n = parts.len();
                if n < 2 {
                    return Err(Error::Syntax(format!("bad column reference {e}")));
                }
                Ok(env.lookup(Some(&ident(&parts[n - 2])), &ident(&parts[n - 1]))?.0)
            }
            E::Value(v) => match &v.value {
                ast::Value::Null => Ok(Datum::Null),
                ast::Value::Boolean(b) => Ok(Datum::Bool(*b)),
                ast::Value::Number(n, _) => match n.parse::<i64>() {
                    Ok(i) => Ok(Datum::Int(i)),
                    Err(_) => Ok(self.through_binder(e, env)?.0),
                },
                ast::Value::Placeholder(_) => Ok(self.through_binder(e, env)?.0),
                other => match string_value(other) {
                    Some(s) => Ok(Datum::text(s)),
                    None => Ok(self.through_binder(e, env)?.0),
                },
            },
            E::Nested(inner) => self.eval(inner, env),
            E::Collate { expr, .. } => self.eval(expr, env),
            E::UnaryOp {
                op: ast::UnaryOperator::Not,
                expr,
            } => Ok(match self.predicate(expr, env)? {
                Some(b) => Datum::Bool(!b),
                None => Datum::Null,
            }),
            E::BinaryOp { left, op, right } => self.binary(e, left, op, right, env),
            E::IsNull(x) => Ok(Datum::Bool(self.eval(x, env)?.is_null())),
            E::IsNotNull(x) => Ok(Datum::Bool(!self.eval(x, env)?.is_null())),
            E::IsTrue(x) => Ok(Datum::Bool(self.predicate(x, env)? == Some(true))),
            E::IsNotTrue(x) => Ok(Datum::Bool(self.predicate(x, env)? != Some(true))),
            E::IsFalse(x) => Ok(Datum::Bool(self.predicate(x, env)? == Some(false))),
            E::IsNotFalse(x) => Ok(Datum::Bool(self.predicate(x, env)? != Some(false))),
            E::IsUnknown(x) => Ok(Datum::Bool(self.predicate(x, env)?.is_none())),
            E::IsNotUnknown(x) => Ok(Datum::Bool(self.predicate(x, env)?.is_some())),
            E::IsDistinctFrom(a, b) => Ok(Datum::Bool(!self.eval(a, env)?.same(&self.eval(b, env)?))),
            E::IsNotDistinctFrom(a, b) => Ok(Datum::Bool(self.eval(a, env)?.same(&self.eval(b, env)?))),
            E::InList { expr, list, negated } => {
                let v = self.eval(expr, env)?;
                let candidates: Vec<Datum> = list.iter().map(|x| self.eval(x, env)).collect::<Result<_>>()?;
                Ok(membership(&v, &candidates, *negated))
            }
            E::InSubquery {
                expr,
                subquery,
                negated,
            } => {
                let v = self.eval(expr, env)?;
                let r = self.query(subquery, Some(env))?;
                let candidates: Vec<Datum> = r.rows.into_iter().filter_map(|row| row.into_iter().next()).collect();
                Ok(membership(&v, &candidates, *negated))
            }
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let v = self.eval(expr, env)?;
                let (lo, hi) = (self.eval(low, env)?, self.eval(high, env)?);
                Ok(match (v.compare(&lo), v.compare(&hi)) {
                    (Some(a), Some(b)) => Datum::Bool((a != Ordering::Less && b != Ordering::Greater) != *negated),
                    _ => Datum::Null,
                })
            }
            E::AnyOp {
                left,
                compare_op,
                right,
                ..
            } => self.quantified(left, compare_op, right, env, true),
            E::AllOp {
                left,
                compare_op,
                right,
            } => self.quantified(left, compare_op, right, env, false),
            E::Cast { expr, data_type, .. } if self.evaluates_itself(e) => {
                let v = self.eval(expr, env)?;
                self.cast(v, data_type)
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let subject = operand.as_ref().map(|o| self.eval(o, env)).transpose()?;
                for w in conditions {
                    let hit = match &subject {
                        Some(s) => s.compare(&self.eval(&w.condition, env)?) == Some(Ordering::Equal),
                        None => self.predicate(&w.condition, env)? == Some(true),
                    };
                    if hit {
                        return self.eval(&w.result, env);
                    }
                }
                match else_result {
                    Some(x) => self.eval(x, env),
                    None => Ok(Datum::Null),
                }
            }
            E::Exists { subquery, negated } => {
                let r = self.query(subquery, Some(env))?;
                Ok(Datum::Bool(r.rows.is_empty() == *negated))
            }
            E::Subquery(q) => {
                let r = self.query(q, Some(env))?;
                if r.columns.len() != 1 {
                    return Err(Error::Syntax("subquery must return only one column".into()));
                }
                match r.rows.len() {
                    0 => Ok(Datum::Null),
                    1 => Ok(r
                        .rows
                        .into_iter()
                        .next()
                        .and_then(|row| row.into_iter().next())
                        .unwrap_or(Datum::Null)),
                    _ => Err(Error::Exec(ExecError::other(
                        "21000",
                        "more than one row returned by a subquery used as an expression",
                    ))),
                }
            }
            E::Array(a) => Ok(Datum::Array(
                a.elem.iter().map(|x| self.eval(x, env)).collect::<Result<_>>()?,
            )),
            E::CompoundFieldAccess { root, access_chain } => {
                // `t.col[i]` parses as `t` followed by `.col` and `[i]`.
                let (mut v, chain) = match (root.as_ref(), access_chain.first()) {
                    (E::Identifier(q), Some(ast::AccessExpr::Dot(E::Identifier(c)))) if env.has_rel(&ident(q)) => {
                        (env.lookup(Some(&ident(q)), &ident(c))?.0, &access_chain[1..])
                    }
                    _ => (self.eval(root, env)?, &access_chain[..]),
                };
                for access in chain {
                    if let ast::AccessExpr::Dot(ast::Expr::Identifier(field)) = access {
                        let name = ident(field);
                        v = match v {
                            Datum::Record(fields) => fields
                                .into_iter()
                                .find(|(n, _)| *n == name)
                                .map(|(_, d)| d)
                                .ok_or_else(|| Error::UndefinedColumn(name.clone()))?,
                            d if d.is_null() => Datum::Null,
                            _ => {
                                return Err(Error::Syntax(format!(
                                    "column notation .{name} applied to a non-composite value"
                                )))
                            }
                        };
                        continue;
                    }
                    let ast::AccessExpr::Subscript(ast::Subscript::Index { index }) = access else {
                        return Err(Error::Unsupported(format!("{e} is not supported in catalog queries")));
                    };
                    let i = self.eval(index, env)?.as_int();
                    v = match (elements(&v), i) {
                        // int2vector and oidvector subscripts start at 0, arrays at 1.
                        (Some(items), Some(i)) => {
                            let base = if matches!(v, Datum::Text(ref t) if !t.trim_start().starts_with('{')) {
                                0
                            } else {
                                1
                            };
                            usize::try_from(i - base)
                                .ok()
                                .and_then(|i| items.get(i).cloned())
                                .unwrap_or(Datum::Null)
                        }
                        _ => Datum::Null,
                    };
                }
                Ok(v)
            }
            E::Function(f) => self.call(f, env),
            _ => Ok(self.through_binder(e, env)?.0),
        }
    }

    fn quantified(
        &self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        env: &Env,
        any: bool,
    ) -> Result<Datum> {
        let v = self.eval(left, env)?;
        let items = match right {
            ast::Expr::Subquery(q) => self
                .query(q, Some(env))?
                .rows
                .into_iter()
                .filter_map(|r| r.into_iter().next())
                .collect(),
            other => match elements(&self.eval(other, env)?) {
                Some(items) => items,
                None => return Ok(Datum::Null),
            },
        };
        let mut saw_null = false;
        for item in &items {
            match compare_op(op, &v, item) {
                Some(b) if b == any => return Ok(Datum::Bool(any)),
                Some(_) => {}
                None => saw_null = true,
            }
        }
        Ok(if saw_null { Datum::Null } else { Datum::Bool(!any) })
    }

    fn binary(
        &self,
        whole: &ast::Expr,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        env: &Env,
    ) -> Result<Datum> {
        use ast::BinaryOperator as B;
        match op {
            B::And => {
                let l = self.predicate(left, env)?;
                if l == Some(false) {
                    return Ok(Datum::Bool(false));
                }
                let r = self.predicate(right, env)?;
                Ok(match (l, r) {
                    (_, Some(false)) => Datum::Bool(false),
                    (Some(true), Some(true)) => Datum::Bool(true),
                    _ => Datum::Null,
                })
            }
            B::Or => {
                let l = self.predicate(left, env)?;
                if l == Some(true) {
                    return Ok(Datum::Bool(true));
                }
                let r = self.predicate(right, env)?;
                Ok(match (l, r) {
                    (_, Some(true)) => Datum::Bool(true),
                    (Some(false), Some(false)) => Datum::Bool(false),
                    _ => Datum::Null,
                })
            }
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                let (l, r) = (self.eval(left, env)?, self.eval(right, env)?);
                Ok(compare_op(op, &l, &r).map_or(Datum::Null, Datum::Bool))
            }
            B::PGRegexMatch | B::PGRegexIMatch | B::PGRegexNotMatch | B::PGRegexNotIMatch => {
                self.regex(left, op, right, env)
            }
            B::BitwiseAnd | B::BitwiseOr | B::PGBitwiseXor => {
                let (l, r) = (self.eval(left, env)?, self.eval(right, env)?);
                Ok(match (l.as_int(), r.as_int()) {
                    (Some(a), Some(b)) if !l.is_null() && !r.is_null() => Datum::Int(match op {
                        B::BitwiseAnd => a & b,
                        B::BitwiseOr => a | b,
                        _ => a ^ b,
                    }),
                    _ => Datum::Null,
                })
            }
            B::PGCustomBinaryOperator(parts) => {
                let op = match parts.last().map(String::as_str) {
                    Some("~") => B::PGRegexMatch,
                    Some("~*") => B::PGRegexIMatch,
                    Some("!~") => B::PGRegexNotMatch,
                    Some("!~*") => B::PGRegexNotIMatch,
                    Some("=") => B::Eq,
                    Some("<>") => B::NotEq,
                    Some("<") => B::Lt,
                    Some("<=") => B::LtEq,
                    Some(">") => B::Gt,
                    Some(">=") => B::GtEq,
                    _ => return Err(Error::UndefinedOperator(format!("OPERATOR({})", parts.join(".")))),
                };
                self.binary(whole, left, &op, right, env)
            }
            B::StringConcat => {
                let (l, r) = (self.eval(left, env)?, self.eval(right, env)?);
                match (&l, &r) {
                    (Datum::Array(a), Datum::Array(b)) => Ok(Datum::Array(a.iter().chain(b).cloned().collect())),
                    (Datum::Array(a), other) | (other, Datum::Array(a)) if other.is_null() => {
                        Ok(Datum::Array(a.clone()))
                    }
                    _ if l.is_null() || r.is_null() => Ok(Datum::Null),
                    (Datum::Text(_) | Datum::Reg(..), Datum::Text(_) | Datum::Reg(..)) => Ok(Datum::Text(format!(
                        "{}{}",
                        l.to_text().unwrap_or_default(),
                        r.to_text().unwrap_or_default()
                    ))),
                    _ => Ok(self.through_binder(whole, env)?.0),
                }
            }
            _ => Ok(self.through_binder(whole, env)?.0),
        }
    }

    fn regex(&self, left: &ast::Expr, op: &ast::BinaryOperator, right: &ast::Expr, env: &Env) -> Result<Datum> {
        use ast::BinaryOperator as B;
        let (l, r) = (self.eval(left, env)?, self.eval(right, env)?);
        let (Some(text), Some(pattern)) = (l.to_text(), r.to_text()) else {
            return Ok(Datum::Null);
        };
        let insensitive = matches!(op, B::PGRegexIMatch | B::PGRegexNotIMatch);
        let negated = matches!(op, B::PGRegexNotMatch | B::PGRegexNotIMatch);
        let key = format!("{}{pattern}", if insensitive { "(?i)" } else { "" });
        let matched = {
            let mut cache = self.regexes.borrow_mut();
            if !cache.contains_key(&key) {
                let re = regex::Regex::new(&key)
                    .map_err(|e| Error::Exec(ExecError::other("2201B", format!("invalid regular expression: {e}"))))?;
                cache.insert(key.clone(), re);
            }
            cache.get(&key).is_some_and(|re| re.is_match(&text))
        };
        Ok(Datum::Bool(matched != negated))
    }

    fn cast(&self, v: Datum, to: &ast::DataType) -> Result<Datum> {
        if v.is_null() {
            return Ok(Datum::Null);
        }
        if let Some(kind) = reg_kind(to) {
            return self.to_reg(kind, &v);
        }
        if let ast::DataType::Array(elem) = to {
            let elem = match elem {
                ast::ArrayElemTypeDef::SquareBracket(t, _)
                | ast::ArrayElemTypeDef::AngleBracket(t)
                | ast::ArrayElemTypeDef::Parenthesis(t)
                | ast::ArrayElemTypeDef::Qualified(t, _) => Some(t.as_ref()),
                ast::ArrayElemTypeDef::None => None,
            };
            let items = elements(&v).unwrap_or_default();
            return Ok(Datum::Array(
                items
                    .into_iter()
                    .map(|d| match elem {
                        Some(t) => self.cast(d, t),
                        None => Ok(d),
                    })
                    .collect::<Result<_>>()?,
            ));
        }
        if is_text_type(to) {
            // A reg value becomes its name; a boolean spells itself out, as its cast does.
            return Ok(match v {
                Datum::Bool(b) => Datum::text(if b { "true" } else { "false" }),
                other => Datum::Text(other.to_text().unwrap_or_default()),
            });
        }
        match custom_type(to).as_deref() {
            Some("oid") => v.as_int().map(Datum::Int).ok_or_else(|| invalid_input("oid", &v)),
            Some("char") => Ok(Datum::Text(v.to_text().unwrap_or_default().chars().take(1).collect())),
            Some("name" | "int2vector" | "oidvector") => Ok(Datum::Text(v.to_text().unwrap_or_default())),
            _ => {
                let e = ast::Expr::Cast {
                    kind: ast::CastKind::DoubleColon,
                    expr: Box::new(literal(&v, None)?),
                    data_type: to.clone(),
                    format: None,
                };
                let empty = Shape::default();
                Ok(self.through_binder(&e, &Env::new(&empty, &[], None))?.0)
            }
        }
    }

    /// A value as an OID of `kind`: a number stays itself, a name is looked up.
    fn to_reg(&self, kind: RegKind, v: &Datum) -> Result<Datum> {
        let map = self.src.map;
        if let Some(oid) = match v {
            Datum::Int(i) | Datum::Reg(i, _) => Some(*i),
            Datum::Text(t) => t.trim().parse::<i64>().ok(),
            _ => None,
        } {
            let name = match kind {
                RegKind::Class => rel_by_oid(map, oid)
                    .map(|(r, part)| match part {
                        RelPart::Index => r.index_name(),
                        _ => r.name,
                    })
                    .or_else(|| relations::catalog_rel_name(oid).map(|n| format!("pg_catalog.{n}"))),
                RegKind::Type => type_name(oid),
                RegKind::Namespace => namespace_name(oid).map(str::to_string),
                RegKind::Role => (oid == ROLE_OID).then(|| self.src.user.to_string()),
                RegKind::Proc => None,
            };
            return Ok(Datum::Reg(oid, name.unwrap_or_else(|| oid.to_string())));
        }
        let text = v.to_text().unwrap_or_default();
        let unquoted = |s: &str| -> String {
            let s = s.trim();
            match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(q) => q.replace("\"\"", "\""),
                None => s.to_ascii_lowercase(),
            }
        };
        let found = match kind {
            RegKind::Class => {
                let (schema, name) = match text.rsplit_once('.') {
                    Some((schema, n)) => (Some(unquoted(schema)), unquoted(n)),
                    None => (None, unquoted(&text)),
                };
                let user = match schema.as_deref() {
                    None | Some("public") => rel_oid_by_name(map, &name).map(|oid| (oid, name.clone())),
                    _ => None,
                };
                user.or_else(|| match schema.as_deref() {
                    None | Some("pg_catalog") => {
                        relations::catalog_rel_oid(&name).map(|oid| (oid, format!("pg_catalog.{name}")))
                    }
                    _ => None,
                })
            }
            RegKind::Type => type_oid(&text).map(|oid| (oid, type_name(oid).unwrap_or_else(|| text.clone()))),
            RegKind::Namespace => {
                let n = unquoted(&text);
                namespace_oid(&n).map(|oid| (oid, n))
            }
            RegKind::Role => (unquoted(&text) == self.src.user).then(|| (ROLE_OID, self.src.user.to_string())),
            RegKind::Proc => None,
        };
        match found {
            Some((oid, name)) => Ok(Datum::Reg(oid, name)),
            None => Err(match kind {
                RegKind::Class => Error::UndefinedTable(text),
                RegKind::Type => Error::Exec(ExecError::other("42704", format!("type \"{text}\" does not exist"))),
                RegKind::Namespace => {
                    Error::Exec(ExecError::other("3F000", format!("schema \"{text}\" does not exist")))
                }
                RegKind::Role => Error::Exec(ExecError::other("42704", format!("role \"{text}\" does not exist"))),
                RegKind::Proc => Error::UndefinedFunction(text),
            }),
        }
    }

    fn call(&self, f: &ast::Function, env: &Env) -> Result<Datum> {
        let name = object_parts(&f.name).last().cloned().unwrap_or_default();
        if f.over.is_some() {
            return Err(Error::Unsupported("window functions are not supported".into()));
        }
        if AGGREGATES.contains(&name.as_str()) {
            return self.aggregate(&name, f, env);
        }
        if name == "array" {
            if let ast::FunctionArguments::Subquery(q) = &f.args {
                let r = self.query(q, Some(env))?;
                return Ok(Datum::Array(
                    r.rows.into_iter().filter_map(|row| row.into_iter().next()).collect(),
                ));
            }
        }
        if !CATALOG_FUNCTIONS.contains(&name.as_str()) {
            return Ok(self.through_binder(&ast::Expr::Function(f.clone()), env)?.0);
        }
        let args = self.args(f)?;
        if name == "coalesce" {
            for a in args {
                let v = self.eval(a, env)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            return Ok(Datum::Null);
        }
        let values: Vec<Datum> = args.iter().map(|a| self.eval(a, env)).collect::<Result<_>>()?;
        self.function(&name, &values, env)
    }

    /// The plain argument expressions of a call.
    fn args<'f>(&self, f: &'f ast::Function) -> Result<Vec<&'f ast::Expr>> {
        match &f.args {
            ast::FunctionArguments::None => Ok(Vec::new()),
            ast::FunctionArguments::Subquery(_) => Err(Error::Unsupported(format!("{f} is not supported"))),
            ast::FunctionArguments::List(list) => list
                .args
                .iter()
                .map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))
                    | ast::FunctionArg::Named {
                        arg: ast::FunctionArgExpr::Expr(e),
                        ..
                    } => Ok(e),
                    other => Err(Error::Unsupported(format!("argument {other} is not supported"))),
                })
                .collect(),
        }
    }

    /// The catalog's own functions, on evaluated arguments.
    fn function(&self, name: &str, args: &[Datum], env: &Env) -> Result<Datum> {
        let map = self.src.map;
        let text = |s: String| Datum::Text(s);
        let null_in = args.iter().any(Datum::is_null);
        let oid = || int_arg(args, 0).unwrap_or(0);
        Ok(match name {
            "pg_get_userbyid" => {
                if oid() == ROLE_OID {
                    text(self.src.user.to_string())
                } else {
                    text(format!("unknown (OID={})", oid()))
                }
            }
            "pg_table_is_visible" => Datum::Bool(rel_by_oid(map, oid()).is_some()),
            "pg_type_is_visible" | "pg_function_is_visible" | "pg_collation_is_visible" | "pg_opclass_is_visible" => {
                Datum::Bool(true)
            }
            // There are no advisory locks to release: the call succeeds, returning void.
            "pg_advisory_unlock_all" => text(String::new()),
            "pg_get_expr" => args.first().cloned().unwrap_or(Datum::Null),
            "pg_get_partkeydef" => rel_by_oid(map, oid())
                .filter(|(r, part)| *part == RelPart::Relation && r.partitioned())
                .and_then(|(r, _)| relations::partition_key_def(r.table))
                .map_or(Datum::Null, text),
            "pg_get_partition_constraintdef" => match rel_by_oid(map, oid()) {
                Some((r, RelPart::Relation)) => relations::partition_constraint(&r).map_or(Datum::Null, text),
                _ => Datum::Null,
            },
            "pg_get_indexdef" => match rel_by_oid(map, oid()) {
                Some((r, RelPart::Index)) => {
                    let column = int_arg(args, 1).unwrap_or(0);
                    if column > 0 {
                        r.table
                            .primary_key
                            .get(column as usize - 1)
                            .map_or(Datum::Null, |&c| text(r.table.columns[c].name.clone()))
                    } else {
                        text(relations::index_def(&r))
                    }
                }
                _ => Datum::Null,
            },
            "pg_get_constraintdef" => match rel_by_oid(map, oid()) {
                Some((r, RelPart::Constraint)) => text(relations::constraint_def(&r)),
                _ => Datum::Null,
            },
            "pg_get_viewdef"
            | "pg_get_triggerdef"
            | "pg_get_ruledef"
            | "pg_get_statisticsobjdef_columns"
            | "pg_get_serial_sequence"
            | "obj_description"
            | "col_description"
            | "shobj_description"
            | "pg_tablespace_location"
            | "inet_server_addr"
            | "inet_server_port" => Datum::Null,
            "pg_get_function_result" | "pg_get_function_arguments" | "pg_get_function_identity_arguments" => {
                text(String::new())
            }
            "format_type" => {
                if args.first().is_none_or(Datum::is_null) {
                    Datum::Null
                } else {
                    let typmod = int_arg(args, 1).unwrap_or(-1);
                    format_type(oid(), typmod).map_or_else(|| text("???".into()), text)
                }
            }
            "pg_encoding_to_char" => text(if oid() == 6 { "UTF8" } else { "" }.into()),
            "pg_char_to_encoding" => Datum::Int(if text_arg(args, 0).is_some_and(|t| t.eq_ignore_ascii_case("utf8")) {
                6
            } else {
                -1
            }),
            "array_to_string" => match args.first().and_then(elements) {
                None => Datum::Null,
                Some(items) => {
                    let sep = text_arg(args, 1).unwrap_or_default();
                    let null_as = text_arg(args, 2);
                    let parts: Vec<String> = items
                        .iter()
                        .filter_map(|d| d.to_text().or_else(|| null_as.clone()))
                        .collect();
                    text(parts.join(&sep))
                }
            },
            "array_upper" | "array_length" | "cardinality" => match args.first().and_then(elements) {
                Some(items) if !items.is_empty() => Datum::Int(items.len() as i64),
                Some(_) if name == "cardinality" => Datum::Int(0),
                _ => Datum::Null,
            },
            "array_lower" => match args.first().and_then(elements) {
                Some(items) if !items.is_empty() => Datum::Int(1),
                _ => Datum::Null,
            },
            "current_schema" => text("public".into()),
            "current_schemas" => Datum::Array(vec![Datum::text("pg_catalog"), Datum::text("public")]),
            "current_database" | "current_catalog" => text(self.src.database.to_string()),
            "current_user" | "session_user" | "user" | "current_role" => text(self.src.user.to_string()),
            "version" => text(crate::server_version_string()),
            "pg_backend_pid" => Datum::Int(i64::from(std::process::id())),
            "current_setting" => {
                let setting = text_arg(args, 0).unwrap_or_default().to_ascii_lowercase();
                match self
                    .src
                    .settings
                    .iter()
                    .find(|(n, _)| n.to_ascii_lowercase() == setting)
                {
                    Some((_, v)) => text(v.clone()),
                    None if args.get(1).and_then(Datum::truth) == Some(true) => Datum::Null,
                    None => return Err(Error::UnknownSetting(setting)),
                }
            }
            "has_table_privilege"
            | "has_schema_privilege"
            | "has_database_privilege"
            | "has_column_privilege"
            | "has_any_column_privilege"
            | "has_function_privilege"
            | "has_sequence_privilege"
            | "pg_has_role"
            | "pg_relation_is_publishable" => {
                if null_in {
                    Datum::Null
                } else {
                    Datum::Bool(name != "pg_relation_is_publishable")
                }
            }
            "pg_total_relation_size" | "pg_relation_size" | "pg_table_size" | "pg_indexes_size" => {
                if null_in {
                    Datum::Null
                } else {
                    Datum::Int(0)
                }
            }
            "pg_size_pretty" => match int_arg(args, 0) {
                Some(n) => text(format!("{n} bytes")),
                None => Datum::Null,
            },
            "pg_is_in_recovery" => Datum::Bool(false),
            "to_regclass" | "to_regtype" | "to_regnamespace" => {
                let kind = match name {
                    "to_regclass" => RegKind::Class,
                    "to_regtype" => RegKind::Type,
                    _ => RegKind::Namespace,
                };
                match args.first() {
                    Some(d) if !d.is_null() => self.to_reg(kind, d).unwrap_or(Datum::Null),
                    _ => Datum::Null,
                }
            }
            "quote_ident" => match text_arg(args, 0) {
                Some(s) => {
                    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                        && s.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    text(if plain {
                        s
                    } else {
                        format!("\"{}\"", s.replace('"', "\"\""))
                    })
                }
                None => Datum::Null,
            },
            "txid_current" | "pg_current_xact_id" => Datum::Int(1),
            _ => {
                let _ = env;
                return Err(Error::UndefinedFunction(name.to_string()));
            }
        })
    }

    fn aggregate(&self, name: &str, f: &ast::Function, env: &Env) -> Result<Datum> {
        let Some(rows) = env.group else {
            return Err(Error::Grouping(format!(
                "aggregate function {name} is not allowed here"
            )));
        };
        let (star, distinct, arg_exprs, order) = match &f.args {
            ast::FunctionArguments::List(list) => {
                let star = list
                    .args
                    .iter()
                    .any(|a| matches!(a, ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)));
                let order = list.clauses.iter().find_map(|c| match c {
                    ast::FunctionArgumentClause::OrderBy(o) => Some(o.as_slice()),
                    _ => None,
                });
                let exprs = if star { Vec::new() } else { self.args(f)? };
                (
                    star,
                    matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct)),
                    exprs,
                    order,
                )
            }
            ast::FunctionArguments::None => (true, false, Vec::new(), None),
            ast::FunctionArguments::Subquery(_) => {
                return Err(Error::Unsupported(format!("{f} is not supported")));
            }
        };
        if star {
            return Ok(Datum::Int(rows.len() as i64));
        }
        let first = arg_exprs
            .first()
            .ok_or_else(|| Error::UndefinedFunction(format!("{name}()")))?;
        // (value, sort key) of every row of the group.
        let mut values: Vec<(Datum, Vec<Datum>)> = Vec::new();
        for row in rows {
            let row_env = Env {
                shape: env.shape,
                row,
                group: None,
                outer: env.outer,
            };
            let v = self.eval(first, &row_env)?;
            let keys = match order {
                Some(o) => o
                    .iter()
                    .map(|k| self.eval(&k.expr, &row_env))
                    .collect::<Result<Vec<_>>>()?,
                None => Vec::new(),
            };
            values.push((v, keys));
        }
        if let Some(o) = order {
            values.sort_by(|(_, a), (_, b)| {
                for (k, (x, y)) in o.iter().zip(a.iter().zip(b)) {
                    let c = x.sort_cmp(y);
                    let c = if matches!(k.options.sort, Some(ast::OrderBySort::Desc)) {
                        c.reverse()
                    } else {
                        c
                    };
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                Ordering::Equal
            });
        }
        let mut vals: Vec<Datum> = values.into_iter().map(|(v, _)| v).collect();
        if distinct {
            let mut unique: Vec<Datum> = Vec::new();
            for v in vals {
                if !unique.iter().any(|u| u.same(&v)) {
                    unique.push(v);
                }
            }
            vals = unique;
        }
        let non_null: Vec<&Datum> = vals.iter().filter(|v| !v.is_null()).collect();
        Ok(match name {
            "count" => Datum::Int(non_null.len() as i64),
            "min" => non_null
                .into_iter()
                .min_by(|a, b| a.sort_cmp(b))
                .cloned()
                .unwrap_or(Datum::Null),
            "max" => non_null
                .into_iter()
                .max_by(|a, b| a.sort_cmp(b))
                .cloned()
                .unwrap_or(Datum::Null),
            "sum" | "avg" if non_null.is_empty() => Datum::Null,
            "sum" => {
                if non_null.iter().all(|d| matches!(d, Datum::Int(_))) {
                    Datum::Int(non_null.iter().filter_map(|d| d.as_int()).sum())
                } else {
                    Datum::Float(non_null.iter().filter_map(|d| d.to_text()?.parse::<f64>().ok()).sum())
                }
            }
            "avg" => {
                let total: f64 = non_null.iter().filter_map(|d| d.to_text()?.parse::<f64>().ok()).sum();
                Datum::Float(total / non_null.len() as f64)
            }
            "string_agg" => {
                if non_null.is_empty() {
                    Datum::Null
                } else {
                    let sep = match arg_exprs.get(1) {
                        Some(s) => self.eval(s, env)?.to_text().unwrap_or_default(),
                        None => String::new(),
                    };
                    Datum::Text(
                        non_null
                            .iter()
                            .filter_map(|d| d.to_text())
                            .collect::<Vec<_>>()
                            .join(&sep),
                    )
                }
            }
            "array_agg" => {
                if vals.is_empty() {
                    Datum::Null
                } else {
                    Datum::Array(vals)
                }
            }
            "bool_and" | "every" => {
                if non_null.is_empty() {
                    Datum::Null
                } else {
                    Datum::Bool(non_null.iter().all(|d| d.truth() == Some(true)))
                }
            }
            "bool_or" => {
                if non_null.is_empty() {
                    Datum::Null
                } else {
                    Datum::Bool(non_null.iter().any(|d| d.truth() == Some(true)))
                }
            }
            other => return Err(Error::UndefinedFunction(other.to_string())),
        })
    }

    /// A function called in FROM, as a relation.
    pub(super) fn table_function(
        &self,
        name: &str,
        args: &[ast::FunctionArg],
        outer: Option<&Env>,
    ) -> Result<Relation> {
        let empty = Shape::default();
        let env = Env::new(&empty, &[], outer);
        let values: Vec<Datum> = args
            .iter()
            .map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => self.eval(e, &env),
                other => Err(Error::Unsupported(format!("argument {other} is not supported"))),
            })
            .collect::<Result<_>>()?;
        let column = |n: &str, ty: DataType| vec![(n.to_string(), ty)];
        Ok(match name {
            "generate_series" => {
                let (Some(from), Some(to)) = (int_arg(&values, 0), int_arg(&values, 1)) else {
                    return Ok(Relation {
                        columns: column("generate_series", DataType::Int4),
                        rows: Vec::new(),
                    });
                };
                let step = int_arg(&values, 2).unwrap_or(1);
                if step == 0 {
                    return Err(Error::Exec(ExecError::other("22023", "step size cannot equal zero")));
                }
                let mut rows = Vec::new();
                let mut i = from;
                while (step > 0 && i <= to) || (step < 0 && i >= to) {
                    rows.push(vec![Datum::Int(i)]);
                    if rows.len() > 10_000_000 {
                        return Err(Error::TooBig("generate_series produces too many rows here".into()));
                    }
                    i += step;
                }
                Relation {
                    columns: column("generate_series", DataType::Int4),
                    rows,
                }
            }
            "unnest" => Relation {
                columns: column("unnest", DataType::Text),
                rows: values
                    .first()
                    .and_then(elements)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| vec![d])
                    .collect(),
            },
            "_pg_expandarray" => Relation {
                columns: vec![("x".into(), DataType::Int4), ("n".into(), DataType::Int4)],
                rows: values
                    .first()
                    .and_then(elements)
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| vec![d, Datum::Int(i as i64 + 1)])
                    .collect(),
            },
            "pg_partition_ancestors" => {
                let oid = int_arg(&values, 0).unwrap_or(0);
                let mut rows = Vec::new();
                if let Some((r, RelPart::Relation)) = rel_by_oid(self.src.map, oid) {
                    rows.push(vec![Datum::Int(r.oid)]);
                    if let Some(p) = r.parent_oid() {
                        rows.push(vec![Datum::Int(p)]);
                    }
                }
                Relation {
                    columns: column("relid", DataType::Oid),
                    rows,
                }
            }
            "pg_get_keywords" => Relation {
                columns: vec![
                    ("word".into(), DataType::Text),
                    ("catcode".into(), DataType::Text),
                    ("catdesc".into(), DataType::Text),
                ],
                rows: Vec::new(),
            },
            "pg_options_to_table" => Relation {
                columns: vec![
                    ("option_name".into(), DataType::Text),
                    ("option_value".into(), DataType::Text),
                ],
                rows: Vec::new(),
            },
            other => return Err(Error::UndefinedFunction(other.to_string())),
        })
    }

    /// The type a result column computed by `e` has, from the query alone.
    pub(super) fn infer(&self, e: &ast::Expr, env: &Env) -> DataType {
        use ast::Expr as E;
        match e {
            E::Identifier(id) => match env.lookup(None, &ident(id)) {
                Ok((_, ty)) => ty,
                Err(_) => self.function_type(&ident(id), &[], env),
            },
            E::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let n = parts.len();
                env.lookup(Some(&ident(&parts[n - 2])), &ident(&parts[n - 1]))
                    .map_or(DataType::Text, |(_, ty)| ty)
            }
            E::Value(v) => match &v.value {
                ast::Value::Boolean(_) => DataType::Bool,
                ast::Value::Number(n, _) => match n.parse::<i64>() {
                    Ok(i) if i32::try_from(i).is_ok() => DataType::Int4,
                    Ok(_) => DataType::Int8,
                    Err(_) => DataType::Numeric(None),
                },
                ast::Value::Placeholder(_) => self.binder(e, env, true).map_or(DataType::Text, |(_, t)| t),
                _ => DataType::Text,
            },
            E::Nested(x) | E::Collate { expr: x, .. } => self.infer(x, env),
            E::UnaryOp {
                op: ast::UnaryOperator::Not,
                ..
            }
            | E::IsNull(_)
            | E::IsNotNull(_)
            | E::IsTrue(_)
            | E::IsNotTrue(_)
            | E::IsFalse(_)
            | E::IsNotFalse(_)
            | E::IsUnknown(_)
            | E::IsNotUnknown(_)
            | E::IsDistinctFrom(..)
            | E::IsNotDistinctFrom(..)
            | E::InList { .. }
            | E::InSubquery { .. }
            | E::Between { .. }
            | E::AnyOp { .. }
            | E::AllOp { .. }
            | E::Exists { .. }
            | E::Like { .. }
            | E::ILike { .. } => DataType::Bool,
            E::BinaryOp {
                op: ast::BinaryOperator::BitwiseAnd | ast::BinaryOperator::BitwiseOr | ast::BinaryOperator::PGBitwiseXor,
                left,
                ..
            } => self.infer(left, env),
            E::BinaryOp { op, .. } if self.evaluates_itself(e) || is_comparison(op) => DataType::Bool,
            E::BinaryOp {
                op: ast::BinaryOperator::And | ast::BinaryOperator::Or,
                ..
            } => DataType::Bool,
            E::BinaryOp {
                op: ast::BinaryOperator::StringConcat,
                left,
                right,
            } if self.infer(left, env) == DataType::Text && self.infer(right, env) == DataType::Text => DataType::Text,
            E::Cast { data_type, .. } if reg_kind(data_type).is_some() => DataType::Text,
            E::Cast {
                data_type: ast::DataType::Array(elem),
                ..
            } => {
                let elem = match elem {
                    ast::ArrayElemTypeDef::SquareBracket(t, _)
                    | ast::ArrayElemTypeDef::AngleBracket(t)
                    | ast::ArrayElemTypeDef::Parenthesis(t)
                    | ast::ArrayElemTypeDef::Qualified(t, _) => match custom_type(t).as_deref() {
                        Some("oid") => DataType::Oid,
                        Some("name") => DataType::Name,
                        _ => crate::sql::names::data_type(t).unwrap_or(DataType::Text),
                    },
                    ast::ArrayElemTypeDef::None => DataType::Text,
                };
                DataType::Array(ArrayElem::of(elem))
            }
            E::Cast { data_type, .. } if custom_type(data_type).as_deref() == Some("oid") => DataType::Oid,
            E::Cast { data_type, .. } if is_text_type(data_type) => DataType::Text,
            E::Cast { data_type, .. } if self.evaluates_itself(e) => match custom_type(data_type).as_deref() {
                Some("name") => DataType::Name,
                _ => DataType::Text,
            },
            E::Cast { data_type, .. } => crate::sql::names::data_type(data_type).unwrap_or(DataType::Text),
            E::Case {
                conditions,
                else_result,
                ..
            } => conditions
                .iter()
                .map(|w| &w.result)
                .chain(else_result.as_deref())
                .find(|r| !matches!(r, E::Value(v) if v.value == ast::Value::Null))
                .map_or(DataType::Text, |r| self.infer(r, env)),
            E::Subquery(q) => self
                .query(q, Some(env))
                .ok()
                .and_then(|r| r.columns.first().map(|c| c.1))
                .unwrap_or(DataType::Text),
            E::Array(a) => DataType::Array(ArrayElem::of(
                a.elem.first().map_or(DataType::Text, |x| self.infer(x, env)),
            )),
            E::CompoundFieldAccess { .. } => DataType::Text,
            E::Function(f) => {
                let name = object_parts(&f.name).last().cloned().unwrap_or_default();
                if !CATALOG_FUNCTIONS.contains(&name.as_str()) && !AGGREGATES.contains(&name.as_str()) {
                    return self.binder(e, env, true).map_or(DataType::Text, |(_, t)| t);
                }
                if name == "array" {
                    if let ast::FunctionArguments::Subquery(q) = &f.args {
                        let first = self
                            .query(q, Some(env))
                            .ok()
                            .and_then(|r| r.columns.first().map(|c| c.1));
                        return DataType::Array(ArrayElem::of(first.unwrap_or(DataType::Text)));
                    }
                }
                let args = self.args(f).unwrap_or_default();
                self.function_type(&name, &args, env)
            }
            _ => self.binder(e, env, true).map_or(DataType::Text, |(_, t)| t),
        }
    }

    fn function_type(&self, name: &str, args: &[&ast::Expr], env: &Env) -> DataType {
        match name {
            "count" => DataType::Int8,
            "sum" => match args.first().map(|a| self.infer(a, env)) {
                Some(DataType::Int2 | DataType::Int4) => DataType::Int8,
                Some(DataType::Float4 | DataType::Float8) => DataType::Float8,
                _ => DataType::Numeric(None),
            },
            "avg" => DataType::Float8,
            "min" | "max" | "coalesce" => args.first().map_or(DataType::Text, |a| self.infer(a, env)),
            "array_agg" => DataType::Array(ArrayElem::of(
                args.first().map_or(DataType::Text, |a| self.infer(a, env)),
            )),
            "current_schemas" => DataType::Array(ArrayElem::Name),
            "bool_and" | "bool_or" | "every" => DataType::Bool,
            "pg_table_is_visible"
            | "pg_type_is_visible"
            | "pg_function_is_visible"
            | "pg_collation_is_visible"
            | "pg_opclass_is_visible"
            | "pg_is_in_recovery"
            | "pg_relation_is_publishable" => DataType::Bool,
            n if n.starts_with("has_") || n == "pg_has_role" => DataType::Bool,
            "array_upper"
            | "array_lower"
            | "array_length"
            | "cardinality"
            | "pg_backend_pid"
            | "pg_char_to_encoding"
            | "inet_server_port" => DataType::Int4,
            "pg_total_relation_size"
            | "pg_relation_size"
            | "pg_table_size"
            | "pg_indexes_size"
            | "txid_current"
            | "pg_current_xact_id" => DataType::Int8,
            "current_schema" | "current_database" | "current_catalog" | "current_user" | "session_user" | "user"
            | "current_role" | "pg_get_userbyid" => DataType::Name,
            _ => DataType::Text,
        }
    }
}

fn is_comparison(op: &ast::BinaryOperator) -> bool {
    use ast::BinaryOperator as B;
    matches!(op, B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq)
}

/// `l op r` for a comparison operator; `None` is NULL.
fn compare_op(op: &ast::BinaryOperator, l: &Datum, r: &Datum) -> Option<bool> {
    use ast::BinaryOperator as B;
    let o = l.compare(r)?;
    Some(match op {
        B::Eq => o == Ordering::Equal,
        B::NotEq => o != Ordering::Equal,
        B::Lt => o == Ordering::Less,
        B::LtEq => o != Ordering::Greater,
        B::Gt => o == Ordering::Greater,
        B::GtEq => o != Ordering::Less,
        _ => return None,
    })
}

/// `v [NOT] IN (candidates)`, three-valued.
fn membership(v: &Datum, candidates: &[Datum], negated: bool) -> Datum {
    if v.is_null() {
        return Datum::Null;
    }
    let mut saw_null = false;
    for c in candidates {
        match v.compare(c) {
            Some(Ordering::Equal) => return Datum::Bool(!negated),
            Some(_) => {}
            None => saw_null = true,
        }
    }
    if saw_null {
        Datum::Null
    } else {
        Datum::Bool(negated)
    }
}

fn invalid_input(ty: &str, v: &Datum) -> Error {
    Error::Exec(ExecError::other(
        "22P02",
        format!(
            "invalid input syntax for type {ty}: \"{}\"",
            v.to_text().unwrap_or_default()
        ),
    ))
}
