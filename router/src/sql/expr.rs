//! The expression binder: resolves column names against a scope, types every node as
//! PostgreSQL would (untyped literals and parameters take the type their context needs,
//! numbers widen along smallint → integer → bigint → numeric → double precision), inserts the
//! implicit casts, infers parameter types, and folds constant sub-expressions.

use std::cell::RefCell;

use sqlparser::ast::{self, BinaryOperator, UnaryOperator};
use tessera_types::aggregate::result_type;
use tessera_types::cast::cast;
use tessera_types::expr::{BinaryOp, Func, UnaryOp};
use tessera_types::fragment::{AggCall, AggFunc};
use tessera_types::schema::{ClusterMap, ColumnDef};
use tessera_types::{DataType, Expr, Value};

use crate::error::{Error, Result};
use crate::sql::names::{data_type, ident, object_parts};

/// Column positions at or above this mark stand for aggregate results while a select list is
/// bound; they are rewritten once the aggregate row's layout is known.
pub const AGG_MARK: usize = 1 << 40;

/// Statement parameters (`$1`...).
pub enum Params {
    /// Describing a statement: parameter types are being inferred (given ones are fixed).
    Infer(std::sync::Mutex<Vec<Option<DataType>>>),
    /// Executing: the values, already of their final types.
    Values(Vec<(Value, DataType)>),
}

impl Params {
    pub fn none() -> Params {
        Params::Values(Vec::new())
    }

    fn is_infer(&self) -> bool {
        matches!(self, Params::Infer(_))
    }
}

/// What binding needs besides the statement.
pub struct Ctx<'a> {
    pub map: &'a ClusterMap,
    pub params: &'a Params,
    /// The transaction's start time (what `now()` returns), microseconds since 2000-01-01.
    pub now: i64,
    pub user: &'a str,
    /// Whether the session's role is a superuser.
    pub superuser: bool,
    pub database: &'a str,
    /// The session's settings (name, value), which catalog queries can read.
    pub settings: &'a [(String, String)],
}

/// A relation visible to expressions: the names it answers to and its columns, found at
/// `offset` in the row expressions read.
pub struct ScopeRel<'a> {
    pub names: Vec<String>,
    pub columns: &'a [ColumnDef],
    pub offset: usize,
}

#[derive(Default)]
pub struct Scope<'a> {
    pub rels: Vec<ScopeRel<'a>>,
}

impl<'a> Scope<'a> {
    pub fn empty() -> Scope<'a> {
        Scope { rels: Vec::new() }
    }

    pub fn single(names: Vec<String>, columns: &'a [ColumnDef]) -> Scope<'a> {
        Scope {
            rels: vec![ScopeRel {
                names,
                columns,
                offset: 0,
            }],
        }
    }

    fn resolve(&self, qualifier: Option<&str>, name: &str) -> Result<(usize, DataType)> {
        let mut found = None;
        for rel in &self.rels {
            if let Some(q) = qualifier {
                if !rel.names.iter().any(|n| n == q) {
                    continue;
                }
            }
            if let Some(i) = rel.columns.iter().position(|c| c.name == name) {
                if found.is_some() {
                    return Err(Error::AmbiguousColumn(name.to_string()));
                }
                found = Some((rel.offset + i, rel.columns[i].ty));
            }
        }
        match (found, qualifier) {
            (Some(f), _) => Ok(f),
            (None, Some(q)) if !self.rels.iter().any(|r| r.names.iter().any(|n| n == q)) => {
                Err(Error::MissingFrom(q.to_string()))
            }
            (None, Some(q)) => Err(Error::UndefinedColumn(format!("{q}.{name}"))),
            (None, None) => Err(Error::UndefinedColumn(name.to_string())),
        }
    }
}

/// A bound expression with its type. `param` is set for a bare parameter reference, whose
/// type may still be inferred from its context.
#[derive(Debug, Clone)]
pub struct TExpr {
    pub expr: Expr,
    pub ty: DataType,
    pub param: Option<usize>,
}

impl TExpr {
    pub fn new(expr: Expr, ty: DataType) -> TExpr {
        TExpr { expr, ty, param: None }
    }

    fn literal(v: Value, ty: DataType) -> TExpr {
        TExpr::new(Expr::Literal(v), ty)
    }

    fn is_unknown(&self) -> bool {
        self.ty == DataType::Unknown
    }
}

/// Where a conversion happens: implicit casts are the narrowest, assignment to a column also
/// narrows numbers, explicit casts allow everything the cast functions do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coercion {
    Implicit,
    Assignment,
    Explicit,
}

/// The type family PostgreSQL groups types by when choosing a common type.
fn category(t: DataType) -> u8 {
    match t {
        DataType::Int2
        | DataType::Int4
        | DataType::Int8
        | DataType::Numeric(_)
        | DataType::Float4
        | DataType::Float8
        | DataType::Oid => 1,
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Name => 2,
        DataType::Date | DataType::Timestamp | DataType::TimestampTz => 3,
        DataType::Bool => 4,
        DataType::Bytea => 5,
        DataType::Uuid => 6,
        DataType::Array(_) => 7,
        DataType::Unknown => 0,
    }
}

/// Whether `from` converts to `to` implicitly (or, for `Assignment`, on assignment).
fn castable(from: DataType, to: DataType, kind: Coercion) -> bool {
    if from.without_modifiers() == to.without_modifiers() || from == DataType::Unknown {
        return true;
    }
    match (category(from), category(to)) {
        (1, 1) => kind != Coercion::Implicit || from.numeric_rank().unwrap_or(0) <= to.numeric_rank().unwrap_or(0),
        (2, 2) => true,
        (3, 3) => {
            kind != Coercion::Implicit
                || matches!(
                    (from, to),
                    (DataType::Date, _) | (DataType::Timestamp, DataType::TimestampTz)
                )
        }
        _ => kind == Coercion::Explicit,
    }
}

/// The common type of several expressions (PostgreSQL's `select_common_type`, simplified);
/// `what` names the construct in the error ("CASE", "COALESCE", "IN").
pub fn common_type(types: &[DataType], what: &str) -> Result<DataType> {
    let known: Vec<DataType> = types.iter().copied().filter(|t| *t != DataType::Unknown).collect();
    let Some(first) = known.first().copied() else {
        return Ok(DataType::Text);
    };
    let mut best = first.without_modifiers();
    for t in &known[1..] {
        let t = t.without_modifiers();
        if t == best {
            continue;
        }
        if category(t) != category(best) {
            return Err(Error::DatatypeMismatch(format!(
                "{what} types {} and {} cannot be matched",
                best.name(),
                t.name()
            )));
        }
        best = match category(t) {
            // real mixed with any other number is computed in double precision, as the
            // preferred type of the numeric category.
            1 if t == DataType::Float4 || best == DataType::Float4 => DataType::Float8,
            1 => {
                if t.numeric_rank() > best.numeric_rank() {
                    t
                } else {
                    best
                }
            }
            2 => DataType::Text,
            3 => {
                let rank = |d: DataType| match d {
                    DataType::Date => 0,
                    DataType::Timestamp => 1,
                    _ => 2,
                };
                if rank(t) > rank(best) {
                    t
                } else {
                    best
                }
            }
            _ => best,
        };
    }
    Ok(best)
}

pub struct ExprBinder<'a, 'b> {
    pub ctx: &'a Ctx<'a>,
    pub scope: &'a Scope<'b>,
    /// Aggregates found so far; `None` where aggregates are not allowed.
    pub aggs: Option<&'a RefCell<Vec<(AggCall, DataType)>>>,
    /// The clause being bound, for error messages ("WHERE").
    pub clause: &'static str,
}

fn number_literal(s: &str) -> Result<TExpr> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    let digits = clean.strip_prefix('-').unwrap_or(&clean);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = clean.parse::<i32>() {
            return Ok(TExpr::literal(Value::Int4(v), DataType::Int4));
        }
        if let Ok(v) = clean.parse::<i64>() {
            return Ok(TExpr::literal(Value::Int8(v), DataType::Int8));
        }
    }
    match tessera_types::text::parse_numeric(&clean, s) {
        Ok(d) => Ok(TExpr::literal(Value::Numeric(d), DataType::Numeric(None))),
        // Beyond what numeric holds here (28 digits): keep the value as a double, so it can
        // still be stored in a real or double precision column.
        Err(tessera_types::ExecError::NumericFieldOverflow { .. })
            if clean.parse::<f64>().is_ok_and(f64::is_finite) =>
        {
            Ok(TExpr::literal(
                Value::Float8(clean.parse::<f64>().unwrap_or_default()),
                DataType::Float8,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn string_value(v: &ast::Value) -> Option<&str> {
    match v {
        ast::Value::SingleQuotedString(s)
        | ast::Value::EscapedStringLiteral(s)
        | ast::Value::UnicodeStringLiteral(s)
        | ast::Value::NationalStringLiteral(s) => Some(s),
        ast::Value::DollarQuotedString(d) => Some(&d.value),
        _ => None,
    }
}

impl<'a, 'b> ExprBinder<'a, 'b> {
    pub fn new(ctx: &'a Ctx<'a>, scope: &'a Scope<'b>, clause: &'static str) -> Self {
        ExprBinder {
            ctx,
            scope,
            aggs: None,
            clause,
        }
    }

    /// Evaluates constant expressions now (not while only describing a statement, when
    /// parameters have no values). One whose evaluation fails is left as it is: it may never
    /// be evaluated (`CASE WHEN true THEN 1 ELSE 1/0 END`), and if it is, it fails then.
    fn fold(&self, te: TExpr) -> Result<TExpr> {
        if self.ctx.params.is_infer() || matches!(te.expr, Expr::Literal(_)) || te.expr.references_columns() {
            return Ok(te);
        }
        let Ok(v) = te.expr.eval(&[]) else {
            return Ok(te);
        };
        Ok(TExpr {
            expr: Expr::Literal(v),
            ty: te.ty,
            param: None,
        })
    }

    /// Converts `te` to `target`, recording the type of a parameter whose type was open.
    pub fn coerce(&self, te: TExpr, target: DataType, kind: Coercion) -> Result<TExpr> {
        if let (Some(i), Params::Infer(types)) = (te.param, self.ctx.params) {
            let mut types = types.lock().unwrap_or_else(|p| p.into_inner());
            if types[i].is_none() && target != DataType::Unknown {
                types[i] = Some(target.without_modifiers());
            }
            return Ok(TExpr::new(te.expr, target));
        }
        if target == DataType::Unknown {
            return Ok(te);
        }
        let same = te.ty == target;
        let needs_typmod = kind != Coercion::Implicit && target.typmod() >= 0;
        if same && !needs_typmod {
            return Ok(te);
        }
        if !castable(te.ty, target, kind) {
            return Err(match kind {
                Coercion::Assignment => Error::DatatypeMismatch(format!(
                    "column is of type {} but expression is of type {}",
                    target.display_name(),
                    te.ty.display_name()
                )),
                _ => Error::Exec(tessera_types::ExecError::CannotCast {
                    from: te.ty.name().into(),
                    to: target.display_name(),
                }),
            });
        }
        if matches!(te.ty, DataType::Char(_))
            && matches!(target, DataType::Text | DataType::Varchar(_) | DataType::Name)
        {
            // Like PostgreSQL, char(n) loses its trailing blanks on the way to a varying type.
            let trimmed = TExpr::new(
                Expr::Call {
                    func: Func::Rtrim,
                    args: vec![te.expr],
                },
                DataType::Text,
            );
            return self.coerce(self.fold(trimmed)?, target, kind);
        }
        if te.ty.without_modifiers() == target.without_modifiers() && !needs_typmod {
            return Ok(TExpr::new(te.expr, target));
        }
        let explicit = kind == Coercion::Explicit;
        match te.expr {
            Expr::Literal(v) if !self.ctx.params.is_infer() => Ok(TExpr::literal(cast(v, target, explicit)?, target)),
            expr => Ok(TExpr::new(
                Expr::Cast {
                    expr: Box::new(expr),
                    to: target,
                    explicit,
                },
                target,
            )),
        }
    }

    /// Binds a predicate (WHERE, HAVING, CASE WHEN...): its type must be boolean.
    pub fn bind_bool(&mut self, e: &ast::Expr) -> Result<Expr> {
        let te = self.bind(e)?;
        if te.ty != DataType::Bool && te.ty != DataType::Unknown {
            return Err(Error::DatatypeMismatch(format!(
                "argument of {} must be type boolean, not type {}",
                self.clause,
                te.ty.name()
            )));
        }
        Ok(self.coerce(te, DataType::Bool, Coercion::Implicit)?.expr)
    }

    pub fn bind(&mut self, e: &ast::Expr) -> Result<TExpr> {
        use ast::Expr as E;
        match e {
            E::Identifier(id) => {
                let name = ident(id);
                match self.scope.resolve(None, &name) {
                    Ok((i, ty)) => Ok(TExpr::new(Expr::Column(i), ty)),
                    Err(Error::UndefinedColumn(_)) if id.quote_style.is_none() => self.bind_keyword_value(&name),
                    Err(err) => Err(err),
                }
            }
            E::CompoundIdentifier(parts) => {
                let parts: Vec<String> = parts.iter().map(ident).collect();
                let (qualifier, name) = match parts.as_slice() {
                    [q, n] => (q.as_str(), n.as_str()),
                    [_, q, n] => (q.as_str(), n.as_str()),
                    _ => return Err(Error::Unsupported(format!("name {} is not supported", parts.join(".")))),
                };
                let (i, ty) = self.scope.resolve(Some(qualifier), name)?;
                Ok(TExpr::new(Expr::Column(i), ty))
            }
            E::Value(v) => self.bind_value(&v.value),
            E::TypedString(ts) => {
                let ty = data_type(&ts.data_type)?;
                let Some(s) = string_value(&ts.value.value) else {
                    return Err(Error::Syntax(format!("a typed literal needs a string: {e}")));
                };
                self.coerce(
                    TExpr::literal(Value::Text(s.to_string()), DataType::Unknown),
                    ty,
                    Coercion::Explicit,
                )
            }
            E::Nested(inner) => self.bind(inner),
            E::UnaryOp { op, expr } => self.bind_unary(*op, expr),
            E::BinaryOp { left, op, right } => self.bind_binary(left, op, right),
            E::IsNull(x) | E::IsNotNull(x) => {
                let te = self.bind(x)?;
                let negated = matches!(e, E::IsNotNull(_));
                self.fold(TExpr::new(
                    Expr::IsNull {
                        expr: Box::new(te.expr),
                        negated,
                    },
                    DataType::Bool,
                ))
            }
            E::IsTrue(x)
            | E::IsNotTrue(x)
            | E::IsFalse(x)
            | E::IsNotFalse(x)
            | E::IsUnknown(x)
            | E::IsNotUnknown(x) => {
                let inner = self.bind_bool(x)?;
                let expr = match e {
                    E::IsTrue(_) => Expr::IsBool {
                        expr: Box::new(inner),
                        value: true,
                        negated: false,
                    },
                    E::IsNotTrue(_) => Expr::IsBool {
                        expr: Box::new(inner),
                        value: true,
                        negated: true,
                    },
                    E::IsFalse(_) => Expr::IsBool {
                        expr: Box::new(inner),
                        value: false,
                        negated: false,
                    },
                    E::IsNotFalse(_) => Expr::IsBool {
                        expr: Box::new(inner),
                        value: false,
                        negated: true,
                    },
                    E::IsUnknown(_) => Expr::IsNull {
                        expr: Box::new(inner),
                        negated: false,
                    },
                    _ => Expr::IsNull {
                        expr: Box::new(inner),
                        negated: true,
                    },
                };
                self.fold(TExpr::new(expr, DataType::Bool))
            }
            E::IsDistinctFrom(a, b) | E::IsNotDistinctFrom(a, b) => {
                let (a, b) = self.bind_comparable(a, b)?;
                let negated = matches!(e, E::IsNotDistinctFrom(..));
                self.fold(TExpr::new(
                    Expr::IsDistinct {
                        left: Box::new(a.expr),
                        right: Box::new(b.expr),
                        negated,
                    },
                    DataType::Bool,
                ))
            }
            E::InList { expr, list, negated } => {
                let mut items = vec![self.bind(expr)?];
                for item in list {
                    items.push(self.bind(item)?);
                }
                let ty = common_type(&items.iter().map(|t| t.ty).collect::<Vec<_>>(), "IN")
                    .map_err(|_| self.operator_error("=", &items))?;
                let mut items = items
                    .into_iter()
                    .map(|t| self.coerce(t, ty, Coercion::Implicit))
                    .collect::<Result<Vec<_>>>()?;
                let first = items.remove(0);
                let (first, list) =
                    self.trim_char_operands(ty, first.expr, items.into_iter().map(|t| t.expr).collect());
                self.fold(TExpr::new(
                    Expr::InList {
                        expr: Box::new(first),
                        list,
                        negated: *negated,
                    },
                    DataType::Bool,
                ))
            }
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let lower = self.comparison(BinaryOp::GtEq, expr, low)?;
                let upper = self.comparison(BinaryOp::LtEq, expr, high)?;
                let both = Expr::binary(BinaryOp::And, lower.expr, upper.expr);
                let result = if *negated {
                    Expr::Unary(UnaryOp::Not, Box::new(both))
                } else {
                    both
                };
                self.fold(TExpr::new(result, DataType::Bool))
            }
            E::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | E::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(Error::Unsupported("LIKE ANY is not supported".into()));
                }
                let case_insensitive = matches!(e, E::ILike { .. });
                self.bind_like(expr, pattern, escape_char.as_deref(), case_insensitive, *negated)
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.bind_case(operand.as_deref(), conditions, else_result.as_deref()),
            E::Cast {
                expr, data_type: dt, ..
            } => {
                let target = data_type(dt)?;
                let te = self.bind(expr)?;
                let out = self.coerce(te, target, Coercion::Explicit)?;
                self.fold(out)
            }
            E::Function(f) => self.bind_function(f),
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.bind(expr)?];
                args.push(match substring_from {
                    Some(f) => self.bind(f)?,
                    None => TExpr::literal(Value::Int4(1), DataType::Int4),
                });
                if let Some(f) = substring_for {
                    args.push(self.bind(f)?);
                }
                self.call(Func::Substr, args)
            }
            E::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                let func = match trim_where {
                    Some(ast::TrimWhereField::Leading) => Func::Ltrim,
                    Some(ast::TrimWhereField::Trailing) => Func::Rtrim,
                    _ => Func::Btrim,
                };
                let mut args = vec![self.bind(expr)?];
                if let Some(w) = trim_what {
                    args.push(self.bind(w)?);
                } else if let Some(chars) = trim_characters.as_ref().and_then(|c| c.first()) {
                    args.push(self.bind(chars)?);
                }
                self.call(func, args)
            }
            E::Position { expr, r#in } => {
                let args = vec![self.bind(r#in)?, self.bind(expr)?];
                self.call(Func::Strpos, args)
            }
            E::Ceil { expr, .. } => {
                let args = vec![self.bind(expr)?];
                self.call(Func::Ceil, args)
            }
            E::Floor { expr, .. } => {
                let args = vec![self.bind(expr)?];
                self.call(Func::Floor, args)
            }
            E::Extract { field, expr, .. } => {
                let field = field.to_string().to_ascii_lowercase();
                let args = vec![TExpr::literal(Value::Text(field), DataType::Text), self.bind(expr)?];
                let part = self.call(Func::DatePart, args)?;
                self.coerce(part, DataType::Numeric(None), Coercion::Explicit)
            }
            E::Interval(_) => Err(Error::Unsupported("the interval type is not supported yet".into())),
            E::Subquery(_) | E::Exists { .. } | E::InSubquery { .. } => {
                Err(Error::Unsupported("subqueries are not supported yet".into()))
            }
            E::AnyOp { .. } | E::AllOp { .. } => {
                Err(Error::Unsupported("ANY/ALL comparisons are not supported yet".into()))
            }
            E::AtTimeZone { .. } => Err(Error::Unsupported("AT TIME ZONE is not supported yet".into())),
            E::Collate { expr, .. } => self.bind(expr),
            other => Err(Error::Unsupported(format!("expression {other} is not supported"))),
        }
    }

    /// Words PostgreSQL accepts without parentheses (`CURRENT_USER`...).
    fn bind_keyword_value(&self, name: &str) -> Result<TExpr> {
        self.special_function(name, &[])
            .and_then(|v| v.ok_or_else(|| Error::UndefinedColumn(name.to_string())))
    }

    fn bind_value(&mut self, v: &ast::Value) -> Result<TExpr> {
        match v {
            ast::Value::Number(s, _) => number_literal(s),
            ast::Value::Boolean(b) => Ok(TExpr::literal(Value::Bool(*b), DataType::Bool)),
            ast::Value::Null => Ok(TExpr::literal(Value::Null, DataType::Unknown)),
            ast::Value::Placeholder(p) => {
                let n: usize = p
                    .trim_start_matches('$')
                    .parse()
                    .map_err(|_| Error::Syntax(format!("syntax error at or near \"{p}\"")))?;
                if n == 0 {
                    return Err(Error::Syntax(format!("syntax error at or near \"{p}\"")));
                }
                let i = n - 1;
                match self.ctx.params {
                    Params::Infer(types) => {
                        let mut types = types.lock().unwrap_or_else(|p| p.into_inner());
                        if types.len() <= i {
                            types.resize(i + 1, None);
                        }
                        let ty = types[i].unwrap_or(DataType::Unknown);
                        Ok(TExpr {
                            expr: Expr::Literal(Value::Null),
                            ty,
                            param: if ty == DataType::Unknown { Some(i) } else { None },
                        })
                    }
                    Params::Values(values) => match values.get(i) {
                        Some((v, ty)) => Ok(TExpr::literal(v.clone(), *ty)),
                        None => Err(Error::Protocol(format!("there is no parameter ${n}"))),
                    },
                }
            }
            ast::Value::HexStringLiteral(h) => {
                let bytes = tessera_types::text::parse_text(&format!("\\x{h}"), DataType::Bytea)?;
                Ok(TExpr::literal(bytes, DataType::Bytea))
            }
            other => match string_value(other) {
                Some(s) => Ok(TExpr::literal(Value::Text(s.to_string()), DataType::Unknown)),
                None => Err(Error::Unsupported(format!("literal {other} is not supported"))),
            },
        }
    }

    fn bind_unary(&mut self, op: UnaryOperator, expr: &ast::Expr) -> Result<TExpr> {
        match op {
            UnaryOperator::Not => {
                let inner = self.bind_bool(expr)?;
                self.fold(TExpr::new(Expr::Unary(UnaryOp::Not, Box::new(inner)), DataType::Bool))
            }
            UnaryOperator::Plus => self.bind(expr),
            UnaryOperator::Minus => {
                // A negated literal is a literal (so -2147483648 is an integer).
                if let ast::Expr::Value(v) = expr {
                    if let ast::Value::Number(s, _) = &v.value {
                        return number_literal(&format!("-{s}")).or_else(|_| {
                            let t = number_literal(s)?;
                            self.fold(TExpr::new(Expr::Unary(UnaryOp::Neg, Box::new(t.expr)), t.ty))
                        });
                    }
                }
                let te = self.bind(expr)?;
                let te = if te.is_unknown() {
                    self.coerce(te, DataType::Numeric(None), Coercion::Implicit)?
                } else {
                    te
                };
                if category(te.ty) != 1 {
                    return Err(Error::UndefinedOperator(format!("- {}", te.ty.name())));
                }
                self.fold(TExpr::new(Expr::Unary(UnaryOp::Neg, Box::new(te.expr)), te.ty))
            }
            other => Err(Error::Unsupported(format!("operator {other} is not supported"))),
        }
    }

    fn operator_error(&self, op: &str, operands: &[TExpr]) -> Error {
        let names: Vec<&str> = operands.iter().map(|t| t.ty.name()).collect();
        Error::UndefinedOperator(format!(
            "{} {op} {}",
            names.first().unwrap_or(&"unknown"),
            names.get(1).unwrap_or(&"unknown")
        ))
    }

    /// Binds both sides of a comparison to their common type.
    fn bind_comparable(&mut self, a: &ast::Expr, b: &ast::Expr) -> Result<(TExpr, TExpr)> {
        let (a, b) = (self.bind(a)?, self.bind(b)?);
        self.unify(a, b, "=")
    }

    fn unify(&self, a: TExpr, b: TExpr, op: &str) -> Result<(TExpr, TExpr)> {
        let ty = if a.is_unknown() && !b.is_unknown() {
            b.ty
        } else if b.is_unknown() && !a.is_unknown() {
            a.ty
        } else {
            common_type(&[a.ty, b.ty], op).map_err(|_| self.operator_error(op, &[a.clone(), b.clone()]))?
        };
        let ty = ty.without_modifiers();
        Ok((
            self.coerce(a, ty, Coercion::Implicit)?,
            self.coerce(b, ty, Coercion::Implicit)?,
        ))
    }

    /// char(n) values compare without their trailing blanks.
    fn trim_char_operands(&self, ty: DataType, a: Expr, rest: Vec<Expr>) -> (Expr, Vec<Expr>) {
        if !matches!(ty, DataType::Char(_)) {
            return (a, rest);
        }
        let trim = |e: Expr| Expr::Call {
            func: Func::Rtrim,
            args: vec![e],
        };
        (trim(a), rest.into_iter().map(trim).collect())
    }

    fn comparison(&mut self, op: BinaryOp, left: &ast::Expr, right: &ast::Expr) -> Result<TExpr> {
        let (l, r) = (self.bind(left)?, self.bind(right)?);
        let (l, r) = self.unify(l, r, op.symbol())?;
        let (l, mut rest) = self.trim_char_operands(l.ty, l.expr, vec![r.expr]);
        let r = rest.pop().unwrap_or(Expr::Literal(Value::Null));
        self.fold(TExpr::new(Expr::binary(op, l, r), DataType::Bool))
    }

    fn bind_binary(&mut self, left: &ast::Expr, op: &BinaryOperator, right: &ast::Expr) -> Result<TExpr> {
        let cmp = match op {
            BinaryOperator::Eq => Some(BinaryOp::Eq),
            BinaryOperator::NotEq => Some(BinaryOp::NotEq),
            BinaryOperator::Lt => Some(BinaryOp::Lt),
            BinaryOperator::LtEq => Some(BinaryOp::LtEq),
            BinaryOperator::Gt => Some(BinaryOp::Gt),
            BinaryOperator::GtEq => Some(BinaryOp::GtEq),
            _ => None,
        };
        if let Some(op) = cmp {
            return self.comparison(op, left, right);
        }
        match op {
            BinaryOperator::And | BinaryOperator::Or => {
                let l = self.bind_bool(left)?;
                let r = self.bind_bool(right)?;
                let op = if *op == BinaryOperator::And {
                    BinaryOp::And
                } else {
                    BinaryOp::Or
                };
                self.fold(TExpr::new(Expr::binary(op, l, r), DataType::Bool))
            }
            BinaryOperator::StringConcat => {
                let (l, r) = (self.bind(left)?, self.bind(right)?);
                if !(l.ty.is_string() || r.ty.is_string()) {
                    return Err(self.operator_error("||", &[l, r]));
                }
                let l = self.to_text(l)?;
                let r = self.to_text(r)?;
                self.fold(TExpr::new(Expr::binary(BinaryOp::Concat, l, r), DataType::Text))
            }
            BinaryOperator::PGLikeMatch
            | BinaryOperator::PGILikeMatch
            | BinaryOperator::PGNotLikeMatch
            | BinaryOperator::PGNotILikeMatch => {
                let ci = matches!(op, BinaryOperator::PGILikeMatch | BinaryOperator::PGNotILikeMatch);
                let negated = matches!(op, BinaryOperator::PGNotLikeMatch | BinaryOperator::PGNotILikeMatch);
                self.bind_like(left, right, None, ci, negated)
            }
            BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo
            | BinaryOperator::PGExp => {
                let bop = match op {
                    BinaryOperator::Plus => BinaryOp::Add,
                    BinaryOperator::Minus => BinaryOp::Sub,
                    BinaryOperator::Multiply => BinaryOp::Mul,
                    BinaryOperator::Divide => BinaryOp::Div,
                    BinaryOperator::Modulo => BinaryOp::Mod,
                    _ => BinaryOp::Pow,
                };
                let (l, r) = (self.bind(left)?, self.bind(right)?);
                self.arithmetic(bop, l, r)
            }
            other => Err(Error::Unsupported(format!("operator {other} is not supported"))),
        }
    }

    fn arithmetic(&mut self, op: BinaryOp, l: TExpr, r: TExpr) -> Result<TExpr> {
        // Date arithmetic: date ± integer, date - date.
        if l.ty == DataType::Date
            && (r.ty.is_integer() || r.is_unknown())
            && matches!(op, BinaryOp::Add | BinaryOp::Sub)
        {
            let r = self.coerce(r, DataType::Int4, Coercion::Implicit)?;
            return self.fold(TExpr::new(Expr::binary(op, l.expr, r.expr), DataType::Date));
        }
        if l.ty == DataType::Date && r.ty == DataType::Date && op == BinaryOp::Sub {
            return self.fold(TExpr::new(Expr::binary(op, l.expr, r.expr), DataType::Int4));
        }
        let unknown_default = if op == BinaryOp::Pow {
            DataType::Float8
        } else {
            DataType::Numeric(None)
        };
        let lt = if l.is_unknown() {
            if r.is_unknown() {
                unknown_default
            } else {
                r.ty
            }
        } else {
            l.ty
        };
        let rt = if r.is_unknown() { lt } else { r.ty };
        if category(lt) != 1 || category(rt) != 1 {
            return Err(self.operator_error(op.symbol(), &[l, r]));
        }
        let mut ty = common_type(&[lt, rt], op.symbol())?;
        if op == BinaryOp::Pow && ty != DataType::Numeric(None) {
            ty = DataType::Float8;
        }
        if matches!(ty, DataType::Float4 | DataType::Float8) && op == BinaryOp::Mod {
            return Err(self.operator_error("%", &[l, r]));
        }
        let l = self.coerce(l, ty, Coercion::Implicit)?;
        let r = self.coerce(r, ty, Coercion::Implicit)?;
        self.fold(TExpr::new(Expr::binary(op, l.expr, r.expr), ty))
    }

    fn to_text(&self, te: TExpr) -> Result<Expr> {
        if te.ty.is_string() {
            return Ok(self.coerce(te, DataType::Text, Coercion::Implicit)?.expr);
        }
        Ok(self.coerce(te, DataType::Text, Coercion::Explicit)?.expr)
    }

    fn bind_like(
        &mut self,
        expr: &ast::Expr,
        pattern: &ast::Expr,
        escape: Option<&ast::Expr>,
        case_insensitive: bool,
        negated: bool,
    ) -> Result<TExpr> {
        let (v, p) = (self.bind(expr)?, self.bind(pattern)?);
        if !(v.ty.is_string() && p.ty.is_string()) {
            return Err(self.operator_error(if case_insensitive { "~~*" } else { "~~" }, &[v, p]));
        }
        let escape = match escape {
            None => None,
            Some(e) => match self.bind(e)?.expr {
                Expr::Literal(Value::Text(s)) if s.chars().count() == 1 => s.chars().next(),
                Expr::Literal(Value::Text(s)) if s.is_empty() => Some('\u{0}'),
                _ => return Err(Error::Exec(tessera_types::ExecError::InvalidEscape)),
            },
        };
        let v = self.coerce(v, DataType::Text, Coercion::Implicit)?;
        let p = self.coerce(p, DataType::Text, Coercion::Implicit)?;
        self.fold(TExpr::new(
            Expr::Like {
                expr: Box::new(v.expr),
                pattern: Box::new(p.expr),
                escape,
                case_insensitive,
                negated,
            },
            DataType::Bool,
        ))
    }

    fn bind_case(
        &mut self,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        otherwise: Option<&ast::Expr>,
    ) -> Result<TExpr> {
        let mut whens = Vec::new();
        let mut results = Vec::new();
        for cw in conditions {
            let cond = match operand {
                Some(op) => self.comparison(BinaryOp::Eq, op, &cw.condition)?.expr,
                None => self.bind_bool(&cw.condition)?,
            };
            whens.push(cond);
            results.push(self.bind(&cw.result)?);
        }
        let otherwise = match otherwise {
            Some(e) => Some(self.bind(e)?),
            None => None,
        };
        let mut types: Vec<DataType> = results.iter().map(|t| t.ty).collect();
        if let Some(o) = &otherwise {
            types.push(o.ty);
        }
        let ty = common_type(&types, "CASE")?;
        let mut pairs = Vec::new();
        for (c, r) in whens.into_iter().zip(results) {
            pairs.push((c, self.coerce(r, ty, Coercion::Implicit)?.expr));
        }
        let otherwise = match otherwise {
            Some(o) => Some(Box::new(self.coerce(o, ty, Coercion::Implicit)?.expr)),
            None => None,
        };
        self.fold(TExpr::new(
            Expr::Case {
                whens: pairs,
                otherwise,
            },
            ty,
        ))
    }

    fn func_args(&mut self, f: &ast::Function) -> Result<(Vec<TExpr>, bool, bool)> {
        let mut out = Vec::new();
        let mut star = false;
        let mut distinct = false;
        match &f.args {
            ast::FunctionArguments::None => {}
            ast::FunctionArguments::Subquery(_) => {
                return Err(Error::Unsupported("subqueries are not supported yet".into()))
            }
            ast::FunctionArguments::List(list) => {
                distinct = matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
                if !list.clauses.is_empty() {
                    return Err(Error::Unsupported(format!(
                        "function call clauses are not supported: {f}"
                    )));
                }
                for arg in &list.args {
                    match arg {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => out.push(self.bind(e)?),
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        other => {
                            return Err(Error::Unsupported(format!(
                                "function argument {other} is not supported"
                            )))
                        }
                    }
                }
            }
        }
        Ok((out, star, distinct))
    }

    fn bind_function(&mut self, f: &ast::Function) -> Result<TExpr> {
        let parts = object_parts(&f.name);
        let name = parts.last().cloned().unwrap_or_default();
        if parts.len() > 1 && parts[0] != "pg_catalog" {
            return Err(Error::UndefinedFunction(format!("{}()", parts.join("."))));
        }
        if f.over.is_some() {
            return Err(Error::Unsupported("window functions are not supported yet".into()));
        }
        if let Some(func) = agg_func(&name) {
            return self.bind_aggregate(f, func, &name);
        }
        if f.filter.is_some() {
            return Err(Error::Unsupported(
                "FILTER is only allowed with aggregate functions".into(),
            ));
        }
        let (args, star, _) = {
            // Aggregates inside a scalar call's arguments are allowed where aggregates are.
            self.func_args(f)?
        };
        if star {
            return Err(Error::Syntax(format!(
                "{name}(*) specified, but {name} is not an aggregate function"
            )));
        }
        if let Some(v) = self.special_function(&name, &args)? {
            return Ok(v);
        }
        let func = match name.as_str() {
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "length" | "char_length" | "character_length" => Func::Length,
            "octet_length" => Func::OctetLength,
            "substr" | "substring" => Func::Substr,
            "btrim" | "trim" => Func::Btrim,
            "ltrim" => Func::Ltrim,
            "rtrim" => Func::Rtrim,
            "abs" => Func::Abs,
            "round" => Func::Round,
            "trunc" => Func::Trunc,
            "ceil" | "ceiling" => Func::Ceil,
            "floor" => Func::Floor,
            "sign" => Func::Sign,
            "sqrt" => Func::Sqrt,
            "coalesce" => Func::Coalesce,
            "nullif" => Func::Nullif,
            "greatest" => Func::Greatest,
            "least" => Func::Least,
            "concat" => Func::Concat,
            "concat_ws" => Func::ConcatWs,
            "replace" => Func::Replace,
            "strpos" => Func::Strpos,
            "left" => Func::Left,
            "right" => Func::Right,
            "repeat" => Func::Repeat,
            "reverse" => Func::Reverse,
            "lpad" => Func::Lpad,
            "rpad" => Func::Rpad,
            "md5" => Func::Md5,
            "date_part" => Func::DatePart,
            "date_trunc" => Func::DateTrunc,
            "mod" => {
                let [a, b] = <[TExpr; 2]>::try_from(args).map_err(|_| Error::UndefinedFunction("mod".into()))?;
                return self.arithmetic(BinaryOp::Mod, a, b);
            }
            "power" | "pow" => {
                let [a, b] = <[TExpr; 2]>::try_from(args).map_err(|_| Error::UndefinedFunction("power".into()))?;
                return self.arithmetic(BinaryOp::Pow, a, b);
            }
            _ => {
                let types: Vec<&str> = args.iter().map(|a| a.ty.name()).collect();
                return Err(Error::UndefinedFunction(format!("{name}({})", types.join(", "))));
            }
        };
        self.call(func, args)
    }

    /// Functions whose value the router knows at bind time (time, session and server info).
    fn special_function(&self, name: &str, args: &[TExpr]) -> Result<Option<TExpr>> {
        if !args.is_empty() {
            return Ok(None);
        }
        let text = |s: &str| TExpr::literal(Value::Text(s.to_string()), DataType::Text);
        Ok(Some(match name {
            "now"
            | "current_timestamp"
            | "transaction_timestamp"
            | "statement_timestamp"
            | "clock_timestamp"
            | "localtimestamp" => {
                let ty = if name == "localtimestamp" {
                    DataType::Timestamp
                } else {
                    DataType::TimestampTz
                };
                let v = if ty == DataType::Timestamp {
                    Value::Timestamp(self.ctx.now)
                } else {
                    Value::TimestampTz(self.ctx.now)
                };
                TExpr::literal(v, ty)
            }
            "current_date" => TExpr::literal(
                Value::Date(self.ctx.now.div_euclid(tessera_types::value::MICROS_PER_DAY) as i32),
                DataType::Date,
            ),
            "current_user" | "session_user" | "user" | "current_role" => {
                TExpr::literal(Value::Text(self.ctx.user.into()), DataType::Name)
            }
            "current_database" | "current_catalog" => {
                TExpr::literal(Value::Text(self.ctx.database.into()), DataType::Name)
            }
            "current_schema" => TExpr::literal(Value::Text("public".into()), DataType::Name),
            "version" => text(&crate::server_version_string()),
            "pg_backend_pid" => TExpr::literal(Value::Int4(std::process::id() as i32), DataType::Int4),
            "gen_random_uuid" => TExpr::literal(Value::Uuid(uuid::Uuid::new_v4().into_bytes()), DataType::Uuid),
            _ => return Ok(None),
        }))
    }

    /// Types and builds a call of a scalar function.
    fn call(&mut self, func: Func, args: Vec<TExpr>) -> Result<TExpr> {
        let wrong = |args: &[TExpr]| {
            let types: Vec<&str> = args.iter().map(|a| a.ty.name()).collect();
            Error::UndefinedFunction(format!("{}({})", func.name().to_lowercase(), types.join(", ")))
        };
        let n = args.len();
        let text_args = |b: &Self, args: Vec<TExpr>, ints: &[usize]| -> Result<Vec<Expr>> {
            args.into_iter()
                .enumerate()
                .map(|(i, a)| {
                    if ints.contains(&i) {
                        if !(a.ty.is_integer() || a.is_unknown()) {
                            return Err(Error::UndefinedFunction(format!(
                                "{}(..., {}, ...)",
                                func.name(),
                                a.ty.name()
                            )));
                        }
                        Ok(b.coerce(a, DataType::Int4, Coercion::Implicit)?.expr)
                    } else {
                        if !(a.ty.is_string()) {
                            return Err(Error::UndefinedFunction(format!(
                                "{}({}, ...)",
                                func.name(),
                                a.ty.name()
                            )));
                        }
                        Ok(b.coerce(a, DataType::Text, Coercion::Implicit)?.expr)
                    }
                })
                .collect()
        };
        let (exprs, ty) = match func {
            Func::Lower | Func::Upper | Func::Reverse | Func::Md5 if n == 1 => {
                (text_args(self, args, &[])?, DataType::Text)
            }
            Func::Length | Func::OctetLength if n == 1 => {
                if args[0].ty == DataType::Bytea {
                    (vec![args[0].expr.clone()], DataType::Int4)
                } else if matches!(args[0].ty, DataType::Char(_)) && func == Func::Length {
                    // char(n) values do not count their padding.
                    let padded = text_args(self, args, &[])?;
                    (
                        vec![Expr::Call {
                            func: Func::Rtrim,
                            args: padded,
                        }],
                        DataType::Int4,
                    )
                } else {
                    (text_args(self, args, &[])?, DataType::Int4)
                }
            }
            Func::Substr if n == 2 || n == 3 => (text_args(self, args, &[1, 2])?, DataType::Text),
            Func::Btrim | Func::Ltrim | Func::Rtrim if n == 1 || n == 2 => {
                (text_args(self, args, &[])?, DataType::Text)
            }
            Func::Replace if n == 3 => (text_args(self, args, &[])?, DataType::Text),
            Func::Strpos if n == 2 => (text_args(self, args, &[])?, DataType::Int4),
            Func::Left | Func::Right | Func::Repeat if n == 2 => (text_args(self, args, &[1])?, DataType::Text),
            Func::Lpad | Func::Rpad if n == 2 || n == 3 => (text_args(self, args, &[1])?, DataType::Text),
            Func::Concat | Func::ConcatWs if n >= 1 => {
                let exprs = args.into_iter().map(|a| self.to_text(a)).collect::<Result<Vec<_>>>()?;
                (exprs, DataType::Text)
            }
            Func::Abs if n == 1 => {
                let a = args.into_iter().next().ok_or_else(|| wrong(&[]))?;
                let a = if a.is_unknown() {
                    self.coerce(a, DataType::Float8, Coercion::Implicit)?
                } else {
                    a
                };
                if category(a.ty) != 1 {
                    return Err(wrong(&[a]));
                }
                let ty = a.ty.without_modifiers();
                (vec![a.expr], ty)
            }
            Func::Round | Func::Trunc if n == 1 || n == 2 => {
                let mut it = args.into_iter();
                let a = it.next().ok_or_else(|| wrong(&[]))?;
                if category(a.ty) != 1 && !a.is_unknown() {
                    return Err(wrong(&[a]));
                }
                // round(x) keeps double precision for floats and integers; round(x, n) is numeric.
                let float = n == 1
                    && (a.is_unknown()
                        || matches!(
                            a.ty,
                            DataType::Float4 | DataType::Float8 | DataType::Int2 | DataType::Int4 | DataType::Int8
                        ));
                let target = if float {
                    DataType::Float8
                } else {
                    DataType::Numeric(None)
                };
                let a = self.coerce(a, target, Coercion::Implicit)?;
                let mut exprs = vec![a.expr];
                if let Some(p) = it.next() {
                    exprs.push(self.coerce(p, DataType::Int4, Coercion::Implicit)?.expr);
                }
                (exprs, target)
            }
            Func::Ceil | Func::Floor | Func::Sign | Func::Sqrt if n == 1 => {
                let a = args.into_iter().next().ok_or_else(|| wrong(&[]))?;
                if category(a.ty) != 1 && !a.is_unknown() {
                    return Err(wrong(&[a]));
                }
                let target = if matches!(a.ty, DataType::Numeric(_)) {
                    DataType::Numeric(None)
                } else {
                    DataType::Float8
                };
                (vec![self.coerce(a, target, Coercion::Implicit)?.expr], target)
            }
            Func::Coalesce | Func::Greatest | Func::Least if n >= 1 => {
                let what = func.name();
                let ty = common_type(&args.iter().map(|a| a.ty).collect::<Vec<_>>(), what)?;
                let exprs = args
                    .into_iter()
                    .map(|a| Ok(self.coerce(a, ty, Coercion::Implicit)?.expr))
                    .collect::<Result<Vec<_>>>()?;
                (exprs, ty)
            }
            Func::Nullif if n == 2 => {
                let mut it = args.into_iter();
                let (a, b) = (
                    it.next().ok_or_else(|| wrong(&[]))?,
                    it.next().ok_or_else(|| wrong(&[]))?,
                );
                let ty = if a.is_unknown() { DataType::Text } else { a.ty };
                let (a, b) = self.unify(a, b, "=")?;
                (vec![a.expr, b.expr], ty)
            }
            Func::DatePart | Func::DateTrunc if n == 2 => {
                let mut it = args.into_iter();
                let field = it.next().ok_or_else(|| wrong(&[]))?;
                let src = it.next().ok_or_else(|| wrong(&[]))?;
                let src = if src.is_unknown() {
                    self.coerce(src, DataType::TimestampTz, Coercion::Implicit)?
                } else {
                    src
                };
                if category(src.ty) != 3 {
                    return Err(wrong(&[field, src]));
                }
                let ty = if func == Func::DatePart {
                    DataType::Float8
                } else if src.ty == DataType::Date {
                    DataType::TimestampTz
                } else {
                    src.ty
                };
                (
                    vec![self.coerce(field, DataType::Text, Coercion::Implicit)?.expr, src.expr],
                    ty,
                )
            }
            _ => return Err(wrong(&args)),
        };
        self.fold(TExpr::new(Expr::Call { func, args: exprs }, ty))
    }

    fn bind_aggregate(&mut self, f: &ast::Function, func: AggFunc, name: &str) -> Result<TExpr> {
        let Some(aggs) = self.aggs else {
            return Err(Error::Grouping(format!(
                "aggregate functions are not allowed in {}",
                self.clause
            )));
        };
        if f.filter.is_some() {
            return Err(Error::Unsupported("aggregate FILTER is not supported yet".into()));
        }
        // The argument is evaluated per input row: aggregates may not nest.
        let mut inner = ExprBinder {
            ctx: self.ctx,
            scope: self.scope,
            aggs: None,
            clause: "aggregate function calls",
        };
        let (args, star, distinct) = inner.func_args(f).map_err(|e| match e {
            Error::Grouping(_) => Error::Grouping("aggregate function calls cannot be nested".into()),
            other => other,
        })?;
        let (func, arg, arg_ty) = match (func, star, args.len()) {
            (AggFunc::Count, true, 0) => (AggFunc::CountStar, Expr::Literal(Value::Null), DataType::Int8),
            (_, true, _) => {
                return Err(Error::Syntax(format!(
                    "{name}(*) specified, but {name} is not an aggregate function without arguments"
                )))
            }
            (_, false, 1) => {
                let a = args
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::UndefinedFunction(format!("{name}()")))?;
                let a = if a.is_unknown() {
                    let t = if matches!(func, AggFunc::Sum | AggFunc::Avg) {
                        DataType::Numeric(None)
                    } else {
                        DataType::Text
                    };
                    self.coerce(a, t, Coercion::Implicit)?
                } else {
                    a
                };
                let ok = match func {
                    AggFunc::Sum | AggFunc::Avg => category(a.ty) == 1,
                    AggFunc::BoolAnd | AggFunc::BoolOr => a.ty == DataType::Bool,
                    AggFunc::Min | AggFunc::Max => a.ty != DataType::Unknown,
                    _ => true,
                };
                if !ok {
                    return Err(Error::UndefinedFunction(format!("{name}({})", a.ty.name())));
                }
                let func = match (func, distinct) {
                    (AggFunc::Count, true) => AggFunc::CountDistinct,
                    (AggFunc::Min | AggFunc::Max | AggFunc::BoolAnd | AggFunc::BoolOr, true) => func,
                    (_, true) => {
                        return Err(Error::Unsupported(format!(
                            "{name}(DISTINCT ...) is not supported yet; only count(DISTINCT ...) is"
                        )))
                    }
                    (f, false) => f,
                };
                (func, a.expr, a.ty)
            }
            _ => {
                return Err(Error::UndefinedFunction(format!(
                    "{name}() with {} arguments",
                    args.len()
                )))
            }
        };
        let ty = result_type(func, arg_ty);
        let call = AggCall { func, arg };
        let mut list = aggs.borrow_mut();
        let index = match list.iter().position(|(c, _)| *c == call) {
            Some(i) => i,
            None => {
                list.push((call, ty));
                list.len() - 1
            }
        };
        Ok(TExpr::new(Expr::Column(AGG_MARK + index), ty))
    }
}

fn agg_func(name: &str) -> Option<AggFunc> {
    Some(match name {
        "count" => AggFunc::Count,
        "sum" => AggFunc::Sum,
        "avg" => AggFunc::Avg,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "bool_and" | "every" => AggFunc::BoolAnd,
        "bool_or" => AggFunc::BoolOr,
        _ => return None,
    })
}
