//! Two-phase aggregation: shards fold their rows into partial states, the router merges the
//! states of all shards and finishes them, with PostgreSQL's result types (SUM of integers is
//! bigint, SUM of bigint and AVG of integers are numeric, COUNT is bigint).

use rust_decimal::Decimal;

use crate::datatype::DataType;
use crate::error::{ExecError, ExecResult};
use crate::eval::{binary, numeric_div};
use crate::expr::BinaryOp;
use crate::fragment::{AggFunc, AggState};
use crate::value::Value;

/// The type an aggregate returns for an argument of type `arg`.
pub fn result_type(func: AggFunc, arg: DataType) -> DataType {
    match func {
        AggFunc::CountStar | AggFunc::Count | AggFunc::CountDistinct => DataType::Int8,
        AggFunc::Sum => match arg {
            DataType::Int2 | DataType::Int4 => DataType::Int8,
            DataType::Int8 | DataType::Numeric(_) => DataType::Numeric(None),
            DataType::Float4 => DataType::Float4,
            _ => DataType::Float8,
        },
        AggFunc::Avg => match arg {
            DataType::Float4 | DataType::Float8 => DataType::Float8,
            _ => DataType::Numeric(None),
        },
        AggFunc::Min | AggFunc::Max => arg.without_modifiers(),
        AggFunc::BoolAnd | AggFunc::BoolOr => DataType::Bool,
    }
}

impl AggState {
    pub fn new(func: AggFunc) -> AggState {
        match func {
            AggFunc::CountStar | AggFunc::Count => AggState::Count(0),
            AggFunc::CountDistinct => AggState::Distinct(Vec::new()),
            AggFunc::Sum => AggState::Sum(None),
            AggFunc::Avg => AggState::Avg { sum: None, count: 0 },
            AggFunc::Min | AggFunc::Max => AggState::Extreme(None),
            AggFunc::BoolAnd | AggFunc::BoolOr => AggState::Bool(None),
        }
    }

    /// Folds one input value in (`value` is ignored for COUNT(*)).
    pub fn update(&mut self, func: AggFunc, value: Value) -> ExecResult<()> {
        if func == AggFunc::CountStar {
            if let AggState::Count(n) = self {
                *n += 1;
            }
            return Ok(());
        }
        if value.is_null() {
            return Ok(());
        }
        match self {
            AggState::Count(n) => *n += 1,
            AggState::Distinct(values) => values.push(value),
            AggState::Sum(sum) => *sum = Some(add_sum(sum.take(), value)?),
            AggState::Avg { sum, count } => {
                *sum = Some(add_sum(sum.take(), value)?);
                *count += 1;
            }
            AggState::Extreme(best) => {
                let replace = match best {
                    None => true,
                    Some(b) => {
                        let ord = value.total_cmp(b);
                        if func == AggFunc::Max {
                            ord == std::cmp::Ordering::Greater
                        } else {
                            ord == std::cmp::Ordering::Less
                        }
                    }
                };
                if replace {
                    *best = Some(value);
                }
            }
            AggState::Bool(acc) => {
                let b = value.as_bool().unwrap_or(false);
                *acc = Some(match (*acc, func) {
                    (None, _) => b,
                    (Some(a), AggFunc::BoolAnd) => a && b,
                    (Some(a), _) => a || b,
                });
            }
        }
        Ok(())
    }

    /// Merges another partial state of the same aggregate into this one.
    pub fn merge(&mut self, func: AggFunc, other: AggState) -> ExecResult<()> {
        match (self, other) {
            (AggState::Count(a), AggState::Count(b)) => *a += b,
            (AggState::Distinct(a), AggState::Distinct(b)) => a.extend(b),
            (AggState::Sum(a), AggState::Sum(b)) => {
                if let Some(b) = b {
                    *a = Some(match a.take() {
                        None => b,
                        Some(x) => binary(BinaryOp::Add, x, b)?,
                    });
                }
            }
            (AggState::Avg { sum: a, count: ca }, AggState::Avg { sum: b, count: cb }) => {
                if let Some(b) = b {
                    *a = Some(match a.take() {
                        None => b,
                        Some(x) => binary(BinaryOp::Add, x, b)?,
                    });
                }
                *ca += cb;
            }
            (state @ AggState::Extreme(_), AggState::Extreme(Some(b))) => state.update(func, b)?,
            (AggState::Extreme(_), AggState::Extreme(None)) => {}
            (state @ AggState::Bool(_), AggState::Bool(Some(b))) => state.update(func, Value::Bool(b))?,
            (AggState::Bool(_), AggState::Bool(None)) => {}
            _ => return Err(ExecError::other("XX000", "mismatched partial aggregate states")),
        }
        Ok(())
    }

    /// The aggregate's final value. `result` is the type the aggregate returns.
    pub fn finish(self, result: DataType) -> ExecResult<Value> {
        Ok(match self {
            AggState::Count(n) => Value::Int8(n),
            AggState::Distinct(mut values) => {
                values.sort();
                values.dedup();
                Value::Int8(values.len() as i64)
            }
            AggState::Sum(sum) => match sum {
                None => Value::Null,
                Some(v) => crate::cast::cast(v, result, true)?,
            },
            AggState::Avg { sum, count } => match sum {
                None => Value::Null,
                Some(_) if count == 0 => Value::Null,
                Some(s) => match result {
                    DataType::Float8 => Value::Float8(s.as_f64().unwrap_or(0.0) / count as f64),
                    _ => Value::Numeric(numeric_div(s.as_decimal().unwrap_or_default(), Decimal::from(count))?),
                },
            },
            AggState::Extreme(v) => v.unwrap_or(Value::Null),
            AggState::Bool(b) => b.map(Value::Bool).unwrap_or(Value::Null),
        })
    }
}

/// Adds a value to a running sum, widening as PostgreSQL does (integers into bigint, bigint
/// into numeric, real and double precision into double precision).
fn add_sum(sum: Option<Value>, value: Value) -> ExecResult<Value> {
    let widened = match value {
        Value::Int2(_) | Value::Int4(_) => Value::Int8(value.as_i64().unwrap_or(0)),
        Value::Int8(i) => Value::Numeric(Decimal::from(i)),
        Value::Float4(f) => Value::Float8(f64::from(f)),
        other => other,
    };
    match sum {
        None => Ok(widened),
        Some(s) => binary(BinaryOp::Add, s, widened),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avg_of_integers_is_numeric_with_postgres_scale() {
        let mut a = AggState::new(AggFunc::Avg);
        for v in [1, 2] {
            a.update(AggFunc::Avg, Value::Int4(v)).unwrap();
        }
        let mut b = AggState::new(AggFunc::Avg);
        b.update(AggFunc::Avg, Value::Int4(3)).unwrap();
        b.update(AggFunc::Avg, Value::Null).unwrap();
        a.merge(AggFunc::Avg, b).unwrap();
        let v = a.finish(result_type(AggFunc::Avg, DataType::Int4)).unwrap();
        assert_eq!(v.to_text().unwrap(), "2.0000000000000000");
    }

    #[test]
    fn sum_of_nothing_is_null_and_count_is_zero() {
        assert!(AggState::new(AggFunc::Sum).finish(DataType::Int8).unwrap().is_null());
        assert_eq!(
            AggState::new(AggFunc::Count).finish(DataType::Int8).unwrap(),
            Value::Int8(0)
        );
    }

    #[test]
    fn count_distinct_merges_across_shards() {
        let mut a = AggState::new(AggFunc::CountDistinct);
        let mut b = AggState::new(AggFunc::CountDistinct);
        for v in [1, 2, 2] {
            a.update(AggFunc::CountDistinct, Value::Int4(v)).unwrap();
        }
        for v in [2, 3] {
            b.update(AggFunc::CountDistinct, Value::Int4(v)).unwrap();
        }
        a.merge(AggFunc::CountDistinct, b).unwrap();
        assert_eq!(a.finish(DataType::Int8).unwrap(), Value::Int8(3));
    }
}
