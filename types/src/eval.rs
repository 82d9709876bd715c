//! Evaluation of bound expressions against a row, with SQL's three-valued logic and
//! PostgreSQL's arithmetic: checked integer overflow, integer division that truncates, numeric
//! division at PostgreSQL's result scale, and the same error messages.

use std::cmp::Ordering;

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::MathematicalOps;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::cast::cast;
use crate::datatype::DataType;
use crate::error::{ExecError, ExecResult};
use crate::expr::{BinaryOp, Expr, Func, UnaryOp};
use crate::text::timestamp_fields;
use crate::value::{Value, MICROS_PER_DAY};

impl Expr {
    /// Evaluates the expression over `row`.
    pub fn eval(&self, row: &[Value]) -> ExecResult<Value> {
        match self {
            Expr::Column(i) => row
                .get(*i)
                .cloned()
                .ok_or_else(|| ExecError::other("XX000", format!("column {i} is missing from the row"))),
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Unary(op, e) => unary(*op, e.eval(row)?),
            Expr::Binary(BinaryOp::And, l, r) => {
                let l = truth(&l.eval(row)?)?;
                if l == Some(false) {
                    return Ok(Value::Bool(false));
                }
                let r = truth(&r.eval(row)?)?;
                Ok(match (l, r) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                })
            }
            Expr::Binary(BinaryOp::Or, l, r) => {
                let l = truth(&l.eval(row)?)?;
                if l == Some(true) {
                    return Ok(Value::Bool(true));
                }
                let r = truth(&r.eval(row)?)?;
                Ok(match (l, r) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                })
            }
            Expr::Binary(op, l, r) => binary(*op, l.eval(row)?, r.eval(row)?),
            Expr::IsNull { expr, negated } => Ok(Value::Bool(expr.eval(row)?.is_null() != *negated)),
            Expr::IsBool { expr, value, negated } => {
                let t = truth(&expr.eval(row)?)?;
                Ok(Value::Bool((t == Some(*value)) != *negated))
            }
            Expr::IsDistinct { left, right, negated } => {
                let (l, r) = (left.eval(row)?, right.eval(row)?);
                let distinct = match (l.is_null(), r.is_null()) {
                    (true, true) => false,
                    (true, false) | (false, true) => true,
                    _ => compare(&l, &r)? != Ordering::Equal,
                };
                Ok(Value::Bool(distinct != *negated))
            }
            Expr::InList { expr, list, negated } => {
                let v = expr.eval(row)?;
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for item in list {
                    let item = item.eval(row)?;
                    if item.is_null() {
                        saw_null = true;
                    } else if compare(&v, &item)? == Ordering::Equal {
                        return Ok(Value::Bool(!*negated));
                    }
                }
                Ok(if saw_null { Value::Null } else { Value::Bool(*negated) })
            }
            Expr::Like {
                expr,
                pattern,
                escape,
                case_insensitive,
                negated,
            } => {
                let (v, p) = (expr.eval(row)?, pattern.eval(row)?);
                let (Some(v), Some(p)) = (text_of(&v), text_of(&p)) else {
                    return Ok(Value::Null);
                };
                let matched = if *case_insensitive {
                    like(&v.to_lowercase(), &p.to_lowercase(), *escape)?
                } else {
                    like(&v, &p, *escape)?
                };
                Ok(Value::Bool(matched != *negated))
            }
            Expr::Case { whens, otherwise } => {
                for (cond, result) in whens {
                    if truth(&cond.eval(row)?)? == Some(true) {
                        return result.eval(row);
                    }
                }
                match otherwise {
                    Some(o) => o.eval(row),
                    None => Ok(Value::Null),
                }
            }
            Expr::Cast { expr, to, explicit } => cast(expr.eval(row)?, *to, *explicit),
            Expr::Call { func, args } => call(*func, args, row),
        }
    }

    /// Evaluates a predicate: true only when the result is TRUE (NULL filters a row out).
    pub fn eval_predicate(&self, row: &[Value]) -> ExecResult<bool> {
        Ok(truth(&self.eval(row)?)? == Some(true))
    }
}

/// The truth value of a boolean (None for NULL).
fn truth(v: &Value) -> ExecResult<Option<bool>> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => Err(ExecError::other(
            "42804",
            format!("argument of type {} must be type boolean", other.data_type().name()),
        )),
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Text(s) => Some(s.clone()),
        other => other.to_text(),
    }
}

fn compare(l: &Value, r: &Value) -> ExecResult<Ordering> {
    l.sql_cmp(r).ok_or_else(|| {
        ExecError::other(
            "42883",
            format!(
                "operator does not exist: {} = {}",
                l.data_type().name(),
                r.data_type().name()
            ),
        )
    })
}

fn unary(op: UnaryOp, v: Value) -> ExecResult<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match (op, v) {
        (UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
        (UnaryOp::Neg, Value::Int2(i)) => i
            .checked_neg()
            .map(Value::Int2)
            .ok_or_else(|| ExecError::out_of_range("smallint")),
        (UnaryOp::Neg, Value::Int4(i)) => i
            .checked_neg()
            .map(Value::Int4)
            .ok_or_else(|| ExecError::out_of_range("integer")),
        (UnaryOp::Neg, Value::Int8(i)) => i
            .checked_neg()
            .map(Value::Int8)
            .ok_or_else(|| ExecError::out_of_range("bigint")),
        (UnaryOp::Neg, Value::Float4(f)) => Ok(Value::Float4(-f)),
        (UnaryOp::Neg, Value::Float8(f)) => Ok(Value::Float8(-f)),
        (UnaryOp::Neg, Value::Numeric(d)) => Ok(Value::Numeric(-d)),
        (op, v) => Err(ExecError::other(
            "42883",
            format!(
                "operator does not exist: {} {}",
                if op == UnaryOp::Neg { "-" } else { "NOT" },
                v.data_type().name()
            ),
        )),
    }
}

/// The common numeric type two operands are computed in.
fn promote(l: &Value, r: &Value) -> Option<DataType> {
    let (lt, rt) = (l.data_type(), r.data_type());
    let rank = lt.numeric_rank()?.max(rt.numeric_rank()?);
    Some(match rank {
        1 => DataType::Int2,
        2 => DataType::Int4,
        3 => DataType::Int8,
        4 => DataType::Numeric(None),
        5 if lt == rt => DataType::Float4,
        _ => DataType::Float8,
    })
}

fn no_operator(op: BinaryOp, l: &Value, r: &Value) -> ExecError {
    ExecError::other(
        "42883",
        format!(
            "operator does not exist: {} {} {}",
            l.data_type().name(),
            op.symbol(),
            r.data_type().name()
        ),
    )
}

pub fn binary(op: BinaryOp, l: Value, r: Value) -> ExecResult<Value> {
    if l.is_null() || r.is_null() {
        return Ok(Value::Null);
    }
    if op.is_comparison() {
        let ord = compare(&l, &r)?;
        return Ok(Value::Bool(match op {
            BinaryOp::Eq => ord == Ordering::Equal,
            BinaryOp::NotEq => ord != Ordering::Equal,
            BinaryOp::Lt => ord == Ordering::Less,
            BinaryOp::LtEq => ord != Ordering::Greater,
            BinaryOp::Gt => ord == Ordering::Greater,
            _ => ord != Ordering::Less,
        }));
    }
    if op == BinaryOp::Concat {
        let (Some(a), Some(b)) = (text_of(&l), text_of(&r)) else {
            return Ok(Value::Null);
        };
        return Ok(Value::Text(a + &b));
    }
    // Date arithmetic: date ± integer days, date - date.
    match (&l, &r, op) {
        (Value::Date(d), i, BinaryOp::Add | BinaryOp::Sub) if i.as_i64().is_some() => {
            let days = i.as_i64().unwrap_or(0);
            let days = if op == BinaryOp::Sub { -days } else { days };
            return i64::from(*d)
                .checked_add(days)
                .and_then(|v| i32::try_from(v).ok())
                .map(Value::Date)
                .ok_or_else(|| ExecError::DatetimeOverflow("date out of range".into()));
        }
        (i, Value::Date(d), BinaryOp::Add) if i.as_i64().is_some() => {
            return binary(BinaryOp::Add, Value::Date(*d), i.clone());
        }
        (Value::Date(a), Value::Date(b), BinaryOp::Sub) => return Ok(Value::Int4(a - b)),
        _ => {}
    }
    let Some(ty) = promote(&l, &r) else {
        return Err(no_operator(op, &l, &r));
    };
    match ty {
        DataType::Int2 | DataType::Int4 | DataType::Int8 => {
            let (a, b) = (l.as_i64().unwrap_or(0), r.as_i64().unwrap_or(0));
            let v = int_arith(op, a, b, ty)?;
            let err = || ExecError::out_of_range(ty.name());
            Ok(match ty {
                DataType::Int2 => Value::Int2(i16::try_from(v).map_err(|_| err())?),
                DataType::Int4 => Value::Int4(i32::try_from(v).map_err(|_| err())?),
                _ => Value::Int8(v),
            })
        }
        DataType::Numeric(_) => {
            let (a, b) = (l.as_decimal().unwrap_or_default(), r.as_decimal().unwrap_or_default());
            numeric_arith(op, a, b).map(Value::Numeric)
        }
        _ => {
            let (a, b) = (l.as_f64().unwrap_or(0.0), r.as_f64().unwrap_or(0.0));
            let v = match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div => {
                    if b == 0.0 {
                        return Err(ExecError::DivisionByZero);
                    }
                    a / b
                }
                BinaryOp::Pow => a.powf(b),
                _ => return Err(no_operator(op, &l, &r)),
            };
            let single = ty == DataType::Float4;
            if v.is_infinite() && a.is_finite() && b.is_finite() {
                return Err(ExecError::other("22003", "value out of range: overflow"));
            }
            Ok(if single {
                Value::Float4(v as f32)
            } else {
                Value::Float8(v)
            })
        }
    }
}

fn int_arith(op: BinaryOp, a: i64, b: i64, ty: DataType) -> ExecResult<i64> {
    let err = || ExecError::out_of_range(ty.name());
    match op {
        BinaryOp::Add => a.checked_add(b).ok_or_else(err),
        BinaryOp::Sub => a.checked_sub(b).ok_or_else(err),
        BinaryOp::Mul => a.checked_mul(b).ok_or_else(err),
        BinaryOp::Div => {
            if b == 0 {
                return Err(ExecError::DivisionByZero);
            }
            a.checked_div(b).ok_or_else(err)
        }
        BinaryOp::Mod => {
            if b == 0 {
                return Err(ExecError::DivisionByZero);
            }
            Ok(a.checked_rem(b).unwrap_or(0))
        }
        BinaryOp::Pow => {
            // integer ^ integer is computed in double precision in PostgreSQL; the binder
            // casts, so this only runs for values already promoted.
            Ok((a as f64).powf(b as f64) as i64)
        }
        _ => Err(ExecError::other(
            "42883",
            format!("operator does not exist: {} {} {}", ty.name(), op.symbol(), ty.name()),
        )),
    }
}

fn numeric_overflow() -> ExecError {
    ExecError::NumericFieldOverflow {
        detail: "numeric values are limited to 28 significant digits here".into(),
    }
}

fn numeric_arith(op: BinaryOp, a: Decimal, b: Decimal) -> ExecResult<Decimal> {
    match op {
        BinaryOp::Add => a.checked_add(b).ok_or_else(numeric_overflow),
        BinaryOp::Sub => a.checked_sub(b).ok_or_else(numeric_overflow),
        BinaryOp::Mul => a.checked_mul(b).ok_or_else(numeric_overflow),
        BinaryOp::Div => numeric_div(a, b),
        BinaryOp::Mod => {
            if b.is_zero() {
                return Err(ExecError::DivisionByZero);
            }
            a.checked_rem(b).ok_or_else(numeric_overflow)
        }
        BinaryOp::Pow => {
            let (fa, fb) = (a.to_f64().unwrap_or(0.0), b.to_f64().unwrap_or(0.0));
            Decimal::from_f64(fa.powf(fb)).ok_or_else(numeric_overflow)
        }
        _ => Err(ExecError::other(
            "42883",
            format!("operator does not exist: numeric {} numeric", op.symbol()),
        )),
    }
}

/// Base-10000 weight and leading base-10000 digit of a decimal, as PostgreSQL's numeric
/// representation has them (zero for zero).
fn weight_and_first_digit(d: &Decimal) -> (i32, i64) {
    if d.is_zero() {
        return (0, 0);
    }
    let mantissa = d.mantissa().unsigned_abs().to_string();
    let exponent = mantissa.len() as i32 - 1 - d.scale() as i32; // position of leading digit
    let weight = exponent.div_euclid(4);
    let lead_len = (exponent - 4 * weight + 1) as usize;
    let mut lead: String = mantissa.chars().take(lead_len).collect();
    while lead.len() < lead_len {
        lead.push('0');
    }
    (weight, lead.parse().unwrap_or(0))
}

/// PostgreSQL's numeric division: the result scale gives at least 16 significant digits and
/// never less than either input's scale (`select_div_scale` in numeric.c).
pub fn numeric_div(a: Decimal, b: Decimal) -> ExecResult<Decimal> {
    if b.is_zero() {
        return Err(ExecError::DivisionByZero);
    }
    let (w1, f1) = weight_and_first_digit(&a);
    let (w2, f2) = weight_and_first_digit(&b);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let rscale = (16 - qweight * 4)
        .max(a.scale() as i32)
        .max(b.scale() as i32)
        .clamp(0, 28) as u32;
    let q = a.checked_div(b).ok_or_else(numeric_overflow)?;
    let mut q = q.round_dp_with_strategy(rscale, RoundingStrategy::MidpointAwayFromZero);
    q.rescale(rscale);
    Ok(q)
}

/// SQL LIKE: `%` matches any run of characters, `_` one character, `escape` (default `\`)
/// makes the next character literal.
pub fn like(value: &str, pattern: &str, escape: Option<char>) -> ExecResult<bool> {
    let esc = escape.unwrap_or('\\');
    let mut tokens: Vec<LikeToken> = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == esc {
            match chars.next() {
                Some(n) => tokens.push(LikeToken::Char(n)),
                None => {
                    return Err(ExecError::other(
                        "22025",
                        "LIKE pattern must not end with escape character",
                    ));
                }
            }
        } else if c == '%' {
            tokens.push(LikeToken::Any);
        } else if c == '_' {
            tokens.push(LikeToken::One);
        } else {
            tokens.push(LikeToken::Char(c));
        }
    }
    let text: Vec<char> = value.chars().collect();
    Ok(like_match(&text, &tokens))
}

enum LikeToken {
    Char(char),
    One,
    Any,
}

fn like_match(text: &[char], pat: &[LikeToken]) -> bool {
    // Iterative matcher with backtracking to the last `%`.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(LikeToken::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(LikeToken::One) => {
                t += 1;
                p += 1;
            }
            Some(LikeToken::Any) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|tok| matches!(tok, LikeToken::Any))
}

fn arg_text(args: &[Value], i: usize) -> Option<String> {
    args.get(i).and_then(text_of)
}

fn arg_int(args: &[Value], i: usize) -> ExecResult<Option<i64>> {
    match args.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| {
            ExecError::other(
                "42883",
                format!("expected an integer argument, got {}", v.data_type().name()),
            )
        }),
    }
}

fn call(func: Func, arg_exprs: &[Expr], row: &[Value]) -> ExecResult<Value> {
    // COALESCE evaluates lazily; every other function takes evaluated arguments.
    if func == Func::Coalesce {
        for e in arg_exprs {
            let v = e.eval(row)?;
            if !v.is_null() {
                return Ok(v);
            }
        }
        return Ok(Value::Null);
    }
    let args: Vec<Value> = arg_exprs.iter().map(|e| e.eval(row)).collect::<ExecResult<_>>()?;
    // Functions that are not strict (they handle NULL arguments themselves).
    match func {
        Func::Nullif => {
            let (a, b) = (args[0].clone(), args.get(1).cloned().unwrap_or(Value::Null));
            if !a.is_null() && !b.is_null() && compare(&a, &b)? == Ordering::Equal {
                return Ok(Value::Null);
            }
            return Ok(a);
        }
        Func::Greatest | Func::Least => {
            let mut best: Option<Value> = None;
            for v in args.into_iter().filter(|v| !v.is_null()) {
                best = Some(match best {
                    None => v,
                    Some(b) => {
                        let ord = compare(&v, &b)?;
                        let take = if func == Func::Greatest {
                            ord == Ordering::Greater
                        } else {
                            ord == Ordering::Less
                        };
                        if take {
                            v
                        } else {
                            b
                        }
                    }
                });
            }
            return Ok(best.unwrap_or(Value::Null));
        }
        Func::Concat => {
            return Ok(Value::Text(
                args.iter().filter_map(text_of).collect::<Vec<_>>().concat(),
            ));
        }
        Func::ConcatWs => {
            let Some(sep) = arg_text(&args, 0) else {
                return Ok(Value::Null);
            };
            return Ok(Value::Text(
                args[1..].iter().filter_map(text_of).collect::<Vec<_>>().join(&sep),
            ));
        }
        _ => {}
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let s0 = || arg_text(&args, 0).unwrap_or_default();
    Ok(match func {
        Func::Lower => Value::Text(s0().to_lowercase()),
        Func::Upper => Value::Text(s0().to_uppercase()),
        Func::Length => match &args[0] {
            Value::Bytea(b) => Value::Int4(b.len() as i32),
            _ => Value::Int4(s0().chars().count() as i32),
        },
        Func::OctetLength => match &args[0] {
            Value::Bytea(b) => Value::Int4(b.len() as i32),
            _ => Value::Int4(s0().len() as i32),
        },
        Func::Substr => {
            let s: Vec<char> = s0().chars().collect();
            let start = arg_int(&args, 1)?.unwrap_or(1);
            let count = arg_int(&args, 2)?;
            if let Some(c) = count {
                if c < 0 {
                    return Err(ExecError::other("22011", "negative substring length not allowed"));
                }
            }
            // PostgreSQL: characters from position `start` (1-based, may be <= 0) for `count`.
            let end = count.map(|c| start.saturating_add(c)).unwrap_or(i64::MAX);
            let from = start.max(1);
            let to = end.min(s.len() as i64 + 1);
            if to <= from {
                Value::Text(String::new())
            } else {
                Value::Text(s[(from - 1) as usize..(to - 1) as usize].iter().collect())
            }
        }
        Func::Btrim | Func::Ltrim | Func::Rtrim => {
            let s = s0();
            let set: Vec<char> = arg_text(&args, 1).unwrap_or_else(|| " ".into()).chars().collect();
            let trimmed = match func {
                Func::Btrim => s.trim_matches(|c| set.contains(&c)),
                Func::Ltrim => s.trim_start_matches(|c| set.contains(&c)),
                _ => s.trim_end_matches(|c| set.contains(&c)),
            };
            Value::Text(trimmed.to_string())
        }
        Func::Abs => match &args[0] {
            Value::Int2(v) => Value::Int2(v.checked_abs().ok_or_else(|| ExecError::out_of_range("smallint"))?),
            Value::Int4(v) => Value::Int4(v.checked_abs().ok_or_else(|| ExecError::out_of_range("integer"))?),
            Value::Int8(v) => Value::Int8(v.checked_abs().ok_or_else(|| ExecError::out_of_range("bigint"))?),
            Value::Float4(v) => Value::Float4(v.abs()),
            Value::Float8(v) => Value::Float8(v.abs()),
            Value::Numeric(d) => Value::Numeric(d.abs()),
            v => return Err(bad_arg(func, v)),
        },
        Func::Round | Func::Trunc => {
            let places = arg_int(&args, 1)?.unwrap_or(0);
            match &args[0] {
                Value::Float8(f) if args.len() == 1 => Value::Float8(if func == Func::Round {
                    f.round_ties_even()
                } else {
                    f.trunc()
                }),
                Value::Float4(f) if args.len() == 1 => Value::Float4(if func == Func::Round {
                    f.round_ties_even()
                } else {
                    f.trunc()
                }),
                v => {
                    let d = v.as_decimal().ok_or_else(|| bad_arg(func, v))?;
                    Value::Numeric(round_decimal(d, places, func == Func::Trunc))
                }
            }
        }
        Func::Ceil | Func::Floor => match &args[0] {
            Value::Float8(f) => Value::Float8(if func == Func::Ceil { f.ceil() } else { f.floor() }),
            Value::Float4(f) => Value::Float8(f64::from(if func == Func::Ceil { f.ceil() } else { f.floor() })),
            v => {
                let d = v.as_decimal().ok_or_else(|| bad_arg(func, v))?;
                Value::Numeric(if func == Func::Ceil { d.ceil() } else { d.floor() })
            }
        },
        Func::Sign => match &args[0] {
            Value::Float8(f) => Value::Float8(if *f > 0.0 {
                1.0
            } else if *f < 0.0 {
                -1.0
            } else {
                0.0
            }),
            v => {
                let d = v.as_decimal().ok_or_else(|| bad_arg(func, v))?;
                Value::Numeric(Decimal::from(d.cmp(&Decimal::ZERO) as i32))
            }
        },
        Func::Sqrt => match &args[0] {
            Value::Numeric(d) => {
                if d.is_sign_negative() && !d.is_zero() {
                    return Err(ExecError::other(
                        "2201F",
                        "cannot take square root of a negative number",
                    ));
                }
                Value::Numeric(d.sqrt().ok_or_else(numeric_overflow)?)
            }
            v => {
                let f = v.as_f64().ok_or_else(|| bad_arg(func, v))?;
                if f < 0.0 {
                    return Err(ExecError::other(
                        "2201F",
                        "cannot take square root of a negative number",
                    ));
                }
                Value::Float8(f.sqrt())
            }
        },
        Func::Replace => {
            let (from, to) = (
                arg_text(&args, 1).unwrap_or_default(),
                arg_text(&args, 2).unwrap_or_default(),
            );
            if from.is_empty() {
                Value::Text(s0())
            } else {
                Value::Text(s0().replace(&from, &to))
            }
        }
        Func::Strpos => {
            let s = s0();
            let sub = arg_text(&args, 1).unwrap_or_default();
            Value::Int4(
                s.find(&sub)
                    .map(|byte| s[..byte].chars().count() as i32 + 1)
                    .unwrap_or(0),
            )
        }
        Func::Left | Func::Right => {
            let s: Vec<char> = s0().chars().collect();
            let n = arg_int(&args, 1)?.unwrap_or(0);
            let len = s.len() as i64;
            let take = if n >= 0 { n.min(len) } else { (len + n).max(0) };
            let slice = if func == Func::Left {
                &s[..take as usize]
            } else {
                &s[(len - take) as usize..]
            };
            Value::Text(slice.iter().collect())
        }
        Func::Repeat => {
            let n = arg_int(&args, 1)?.unwrap_or(0).max(0) as usize;
            if n.saturating_mul(s0().len()) > 1 << 30 {
                return Err(ExecError::other("54000", "requested length too large"));
            }
            Value::Text(s0().repeat(n))
        }
        Func::Reverse => Value::Text(s0().chars().rev().collect()),
        Func::Lpad | Func::Rpad => {
            let s: Vec<char> = s0().chars().collect();
            let n = arg_int(&args, 1)?.unwrap_or(0).clamp(0, 1 << 28) as usize;
            let fill: Vec<char> = arg_text(&args, 2).unwrap_or_else(|| " ".into()).chars().collect();
            if s.len() >= n || fill.is_empty() {
                Value::Text(s[..n.min(s.len())].iter().collect())
            } else {
                let pad: String = fill.iter().cycle().take(n - s.len()).collect();
                let body: String = s.iter().collect();
                Value::Text(if func == Func::Lpad { pad + &body } else { body + &pad })
            }
        }
        Func::Md5 => Value::Text(md5_hex(s0().as_bytes())),
        Func::DatePart => date_part(&arg_text(&args, 0).unwrap_or_default(), &args[1])?,
        Func::DateTrunc => date_trunc(&arg_text(&args, 0).unwrap_or_default(), &args[1])?,
        Func::Coalesce | Func::Nullif | Func::Greatest | Func::Least | Func::Concat | Func::ConcatWs => Value::Null,
    })
}

fn bad_arg(func: Func, v: &Value) -> ExecError {
    ExecError::other(
        "42883",
        format!("function {}({}) does not exist", func.name(), v.data_type().name()),
    )
}

fn round_decimal(d: Decimal, places: i64, truncate: bool) -> Decimal {
    let strategy = if truncate {
        RoundingStrategy::ToZero
    } else {
        RoundingStrategy::MidpointAwayFromZero
    };
    if places >= 0 {
        let places = places.min(28) as u32;
        let mut r = d.round_dp_with_strategy(places, strategy);
        r.rescale(places);
        r
    } else {
        let factor = Decimal::from(10i64.pow((-places).min(18) as u32));
        let mut r = (d / factor).round_dp_with_strategy(0, strategy) * factor;
        r.rescale(0);
        r
    }
}

fn date_part(field: &str, v: &Value) -> ExecResult<Value> {
    let micros = match v {
        Value::Date(d) => i64::from(*d) * MICROS_PER_DAY,
        Value::Timestamp(t) | Value::TimestampTz(t) => *t,
        other => {
            return Err(ExecError::other(
                "42883",
                format!("function date_part(text, {}) does not exist", other.data_type().name()),
            ))
        }
    };
    let dt = timestamp_fields(micros).ok_or_else(|| ExecError::DatetimeOverflow("timestamp out of range".into()))?;
    use chrono::{Datelike, Timelike};
    let f = match field.to_ascii_lowercase().as_str() {
        "year" => f64::from(dt.year()),
        "month" => f64::from(dt.month()),
        "day" => f64::from(dt.day()),
        "hour" => f64::from(dt.hour()),
        "minute" => f64::from(dt.minute()),
        "second" => f64::from(dt.second()) + f64::from(dt.nanosecond() / 1000) / 1e6,
        "dow" => f64::from(dt.weekday().num_days_from_sunday()),
        "doy" => f64::from(dt.ordinal()),
        "quarter" => f64::from((dt.month() - 1) / 3 + 1),
        "epoch" => (micros as f64) / 1e6 + 946_684_800.0,
        other => {
            return Err(ExecError::other(
                "22023",
                format!("unit \"{other}\" not recognized for type timestamp"),
            ));
        }
    };
    Ok(Value::Float8(f))
}

fn date_trunc(field: &str, v: &Value) -> ExecResult<Value> {
    let (micros, tz) = match v {
        Value::Timestamp(t) => (*t, false),
        Value::TimestampTz(t) => (*t, true),
        Value::Date(d) => (i64::from(*d) * MICROS_PER_DAY, true),
        other => {
            return Err(ExecError::other(
                "42883",
                format!("function date_trunc(text, {}) does not exist", other.data_type().name()),
            ))
        }
    };
    let unit = match field.to_ascii_lowercase().as_str() {
        "microseconds" => 1,
        "milliseconds" => 1_000,
        "second" => 1_000_000,
        "minute" => 60_000_000,
        "hour" => 3_600_000_000,
        "day" => MICROS_PER_DAY,
        other => {
            let dt =
                timestamp_fields(micros).ok_or_else(|| ExecError::DatetimeOverflow("timestamp out of range".into()))?;
            use chrono::Datelike;
            let (y, m) = match other {
                "month" => (dt.year(), dt.month()),
                "quarter" => (dt.year(), (dt.month() - 1) / 3 * 3 + 1),
                "year" => (dt.year(), 1),
                _ => {
                    return Err(ExecError::other(
                        "22023",
                        format!("unit \"{other}\" not recognized for type timestamp"),
                    ))
                }
            };
            let date = chrono::NaiveDate::from_ymd_opt(y, m, 1)
                .ok_or_else(|| ExecError::DatetimeOverflow("timestamp out of range".into()))?;
            let t = i64::from(crate::text::days_from_date(date)) * MICROS_PER_DAY;
            return Ok(if tz { Value::TimestampTz(t) } else { Value::Timestamp(t) });
        }
    };
    let t = micros.div_euclid(unit) * unit;
    Ok(if tz { Value::TimestampTz(t) } else { Value::Timestamp(t) })
}

/// MD5 as lowercase hex (RFC 1321), for the `md5()` SQL function.
fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14,
        20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6,
        10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let (mut a0, mut b0, mut c0, mut d0) = (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn num(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn numeric_division_uses_postgres_scale() {
        assert_eq!(
            numeric_div(num("3"), num("2")).unwrap().to_string(),
            "1.5000000000000000"
        );
        assert_eq!(
            numeric_div(num("1"), num("3")).unwrap().to_string(),
            "0.33333333333333333333"
        );
        assert_eq!(
            numeric_div(num("10"), num("4")).unwrap().to_string(),
            "2.5000000000000000"
        );
        assert_eq!(
            numeric_div(num("100000"), num("3")).unwrap().to_string(),
            "33333.333333333333"
        );
    }

    #[test]
    fn integer_arithmetic_checks_overflow_and_zero() {
        assert_eq!(
            binary(BinaryOp::Div, Value::Int4(7), Value::Int4(2)).unwrap(),
            Value::Int4(3)
        );
        assert_eq!(
            binary(BinaryOp::Mod, Value::Int4(-7), Value::Int4(2)).unwrap(),
            Value::Int4(-1)
        );
        assert!(matches!(
            binary(BinaryOp::Div, Value::Int4(1), Value::Int4(0)),
            Err(ExecError::DivisionByZero)
        ));
        assert!(matches!(
            binary(BinaryOp::Add, Value::Int4(i32::MAX), Value::Int4(1)),
            Err(ExecError::OutOfRange { .. })
        ));
        assert_eq!(
            binary(BinaryOp::Add, Value::Int4(i32::MAX), Value::Int8(1)).unwrap(),
            Value::Int8(i64::from(i32::MAX) + 1)
        );
    }

    #[test]
    fn like_patterns() {
        assert!(like("hello", "h%o", None).unwrap());
        assert!(like("hello", "h_llo", None).unwrap());
        assert!(!like("hello", "h_lo", None).unwrap());
        assert!(like("50%", "50\\%", None).unwrap());
        assert!(like("", "%", None).unwrap());
        assert!(like("abcabc", "%bc%bc", None).unwrap());
    }

    #[test]
    fn three_valued_logic() {
        let null_and_false = Expr::binary(BinaryOp::And, Expr::lit(Value::Null), Expr::lit(Value::Bool(false)));
        assert_eq!(null_and_false.eval(&[]).unwrap(), Value::Bool(false));
        let null_or_true = Expr::binary(BinaryOp::Or, Expr::lit(Value::Null), Expr::lit(Value::Bool(true)));
        assert_eq!(null_or_true.eval(&[]).unwrap(), Value::Bool(true));
        let in_with_null = Expr::InList {
            expr: Box::new(Expr::lit(Value::Int4(1))),
            list: vec![Expr::lit(Value::Null), Expr::lit(Value::Int4(2))],
            negated: false,
        };
        assert!(in_with_null.eval(&[]).unwrap().is_null());
    }

    #[test]
    fn md5_matches_reference() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn round_numeric_half_away_from_zero() {
        assert_eq!(round_decimal(num("2.5"), 0, false).to_string(), "3");
        assert_eq!(round_decimal(num("-2.345"), 2, false).to_string(), "-2.35");
        assert_eq!(round_decimal(num("1234"), -2, false).to_string(), "1200");
    }
}
