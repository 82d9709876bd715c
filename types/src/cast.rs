//! Conversions between types, with PostgreSQL's rounding, range checks and error messages, and
//! the type modifiers (numeric precision and scale, string lengths) a column imposes.

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::datatype::DataType;
use crate::error::{ExecError, ExecResult};
use crate::text::{parse_text, TS_NEG_INFINITY, TS_POS_INFINITY};
use crate::value::{Value, MICROS_PER_DAY};

/// Converts `value` to type `to`. `explicit` is true for CAST and `::`, false for assignment
/// to a column (which refuses to truncate a too-long string).
pub fn cast(value: Value, to: DataType, explicit: bool) -> ExecResult<Value> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let from = value.data_type();
    let converted = match (to, value) {
        (DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Name | DataType::Unknown, v) => {
            match v {
                // The boolean-to-text cast spells the words out, unlike boolean output.
                Value::Bool(b) => Value::Text(if b { "true" } else { "false" }.into()),
                v => Value::Text(v.to_text().unwrap_or_default()),
            }
        }
        (_, Value::Text(s)) => parse_text(&s, to)?,
        (DataType::Bool, Value::Bool(b)) => Value::Bool(b),
        (DataType::Bool, Value::Int4(i)) => Value::Bool(i != 0),
        (DataType::Int4, Value::Bool(b)) => Value::Int4(i32::from(b)),
        (
            DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Oid,
            v @ (Value::Int2(_) | Value::Int4(_) | Value::Int8(_)),
        ) => int_to(v.as_i64().unwrap_or(0), to)?,
        (DataType::Int2 | DataType::Int4 | DataType::Int8, Value::Float4(f)) => float_to_int(f64::from(f), to)?,
        (DataType::Int2 | DataType::Int4 | DataType::Int8, Value::Float8(f)) => float_to_int(f, to)?,
        (DataType::Int2 | DataType::Int4 | DataType::Int8, Value::Numeric(d)) => {
            let r = d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
            int_to(r.to_i64().ok_or_else(|| ExecError::out_of_range(to.name()))?, to)?
        }
        (
            DataType::Float4,
            v @ (Value::Int2(_)
            | Value::Int4(_)
            | Value::Int8(_)
            | Value::Float8(_)
            | Value::Float4(_)
            | Value::Numeric(_)),
        ) => {
            let f = v.as_f64().unwrap_or(0.0);
            let r = f as f32;
            if r.is_infinite() && !f.is_infinite() {
                return Err(ExecError::out_of_range("real"));
            }
            Value::Float4(r)
        }
        (
            DataType::Float8,
            v @ (Value::Int2(_)
            | Value::Int4(_)
            | Value::Int8(_)
            | Value::Float4(_)
            | Value::Float8(_)
            | Value::Numeric(_)),
        ) => Value::Float8(v.as_f64().unwrap_or(0.0)),
        (DataType::Numeric(_), v @ (Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_))) => {
            Value::Numeric(v.as_decimal().unwrap_or_default())
        }
        (DataType::Numeric(_), Value::Float8(f)) => Value::Numeric(float_to_numeric(f, 15)?),
        (DataType::Numeric(_), Value::Float4(f)) => Value::Numeric(float_to_numeric(f64::from(f), 6)?),
        (DataType::Date, Value::Date(d)) => Value::Date(d),
        (DataType::Date, Value::Timestamp(t) | Value::TimestampTz(t)) => Value::Date(match t {
            TS_POS_INFINITY => i32::MAX,
            TS_NEG_INFINITY => i32::MIN,
            t => t.div_euclid(MICROS_PER_DAY) as i32,
        }),
        (DataType::Timestamp, Value::Date(d)) => Value::Timestamp(date_to_micros(d)),
        (DataType::TimestampTz, Value::Date(d)) => Value::TimestampTz(date_to_micros(d)),
        (DataType::Timestamp, Value::Timestamp(t) | Value::TimestampTz(t)) => Value::Timestamp(t),
        (DataType::TimestampTz, Value::Timestamp(t) | Value::TimestampTz(t)) => Value::TimestampTz(t),
        (DataType::Uuid, Value::Uuid(u)) => Value::Uuid(u),
        (DataType::Bytea, Value::Bytea(b)) => Value::Bytea(b),
        _ => {
            return Err(ExecError::CannotCast {
                from: from.name().into(),
                to: to.display_name(),
            })
        }
    };
    apply_typmod(converted, to, explicit)
}

fn date_to_micros(d: i32) -> i64 {
    match d {
        i32::MAX => TS_POS_INFINITY,
        i32::MIN => TS_NEG_INFINITY,
        d => i64::from(d) * MICROS_PER_DAY,
    }
}

fn int_to(v: i64, to: DataType) -> ExecResult<Value> {
    let err = || ExecError::out_of_range(to.name());
    Ok(match to {
        DataType::Int2 => Value::Int2(i16::try_from(v).map_err(|_| err())?),
        DataType::Int4 | DataType::Oid => Value::Int4(i32::try_from(v).map_err(|_| err())?),
        _ => Value::Int8(v),
    })
}

fn float_to_int(f: f64, to: DataType) -> ExecResult<Value> {
    // PostgreSQL rounds half to even (rint) when converting floats to integers.
    let r = f.round_ties_even();
    if !r.is_finite() || r < i64::MIN as f64 || r >= i64::MAX as f64 {
        return Err(ExecError::out_of_range(to.name()));
    }
    int_to(r as i64, to)
}

/// Converts a float with `digits` significant digits, as PostgreSQL's float-to-numeric cast
/// does (so 0.1::float8::numeric is 0.1, not the binary expansion).
fn float_to_numeric(f: f64, digits: usize) -> ExecResult<Decimal> {
    if !f.is_finite() {
        return Err(ExecError::other("0A000", "cannot convert NaN or infinity to numeric"));
    }
    let s = format!("{:.*e}", digits - 1, f);
    let d = Decimal::from_scientific(&s)
        .ok()
        .or_else(|| Decimal::from_f64(f))
        .ok_or_else(|| ExecError::NumericFieldOverflow {
            detail: "the value is too large for numeric".into(),
        })?;
    Ok(d.normalize())
}

/// Applies a column's type modifier: rounds numerics to their scale and checks precision, pads
/// `char(n)`, and checks (or, for explicit casts, truncates) the length of strings.
pub fn apply_typmod(value: Value, to: DataType, explicit: bool) -> ExecResult<Value> {
    match (to, value) {
        (DataType::Numeric(Some((p, s))), Value::Numeric(d)) => {
            let r = d.round_dp_with_strategy(u32::from(s), RoundingStrategy::MidpointAwayFromZero);
            let mut r = r;
            r.rescale(u32::from(s));
            let int_digits = {
                let t = r.abs().trunc();
                if t.is_zero() {
                    0
                } else {
                    t.to_string().len() as u16
                }
            };
            if int_digits > p.saturating_sub(s) {
                return Err(ExecError::NumericFieldOverflow {
                    detail: format!(
                        "A field with precision {p}, scale {s} must round to an absolute value less than {}.",
                        if p == s {
                            "1".to_string()
                        } else {
                            format!("10^{}", p - s)
                        }
                    ),
                });
            }
            Ok(Value::Numeric(r))
        }
        (DataType::Varchar(Some(n)), Value::Text(s)) => fit_length(s, n, to, explicit, false),
        (DataType::Char(Some(n)), Value::Text(s)) => fit_length(s, n, to, explicit, true),
        (DataType::Char(None), Value::Text(s)) => Ok(Value::Text(s)),
        (_, v) => Ok(v),
    }
}

fn fit_length(s: String, n: u32, to: DataType, explicit: bool, pad: bool) -> ExecResult<Value> {
    let n = n as usize;
    let len = s.chars().count();
    if len > n {
        let keep: String = s.chars().take(n).collect();
        let rest_is_spaces = s.chars().skip(n).all(|c| c == ' ');
        if !explicit && !rest_is_spaces {
            return Err(ExecError::StringTooLong {
                type_name: to.display_name(),
            });
        }
        return Ok(Value::Text(keep));
    }
    if pad && len < n {
        let mut padded = s;
        padded.extend(std::iter::repeat_n(' ', n - len));
        return Ok(Value::Text(padded));
    }
    Ok(Value::Text(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn numeric_typmod_rounds_and_checks_precision() {
        let v = cast(
            Value::Numeric(Decimal::from_str("123.456").unwrap()),
            DataType::Numeric(Some((5, 2))),
            false,
        )
        .unwrap();
        assert_eq!(v.to_text().unwrap(), "123.46");
        let err = cast(
            Value::Numeric(Decimal::from_str("1234.5").unwrap()),
            DataType::Numeric(Some((5, 2))),
            false,
        );
        assert!(matches!(err, Err(ExecError::NumericFieldOverflow { .. })));
        let v = cast(Value::Int4(7), DataType::Numeric(Some((5, 2))), false).unwrap();
        assert_eq!(v.to_text().unwrap(), "7.00");
    }

    #[test]
    fn varchar_length_is_enforced_on_assignment_only() {
        assert!(cast(Value::Text("abcdef".into()), DataType::Varchar(Some(3)), false).is_err());
        assert_eq!(
            cast(Value::Text("abcdef".into()), DataType::Varchar(Some(3)), true).unwrap(),
            Value::Text("abc".into())
        );
        assert_eq!(
            cast(Value::Text("ab".into()), DataType::Char(Some(4)), false).unwrap(),
            Value::Text("ab  ".into())
        );
    }

    #[test]
    fn float_to_int_rounds_half_even() {
        assert_eq!(cast(Value::Float8(2.5), DataType::Int4, true).unwrap(), Value::Int4(2));
        assert_eq!(cast(Value::Float8(3.5), DataType::Int4, true).unwrap(), Value::Int4(4));
        assert_eq!(
            cast(Value::Numeric(Decimal::from_str("2.5").unwrap()), DataType::Int4, true).unwrap(),
            Value::Int4(3)
        );
        assert_eq!(
            cast(Value::Float8(0.1), DataType::Numeric(None), true)
                .unwrap()
                .to_text()
                .unwrap(),
            "0.1"
        );
    }
}
