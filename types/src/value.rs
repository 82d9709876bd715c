//! SQL values: one enum whose variants match the data types, with the comparisons SQL needs
//! (three-valued, where NULL compares as unknown) and the total order sorting needs.
//!
//! Dates and timestamps are kept the way PostgreSQL keeps them: days, or microseconds, since
//! 2000-01-01, so the binary wire format is a copy and every value round-trips exactly.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::datatype::DataType;

/// One SQL value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Numeric(#[serde(with = "decimal_bytes")] Decimal),
    /// text, varchar, char (stored blank-padded) and name.
    Text(String),
    Bytea(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Days since 2000-01-01.
    Date(i32),
    /// Microseconds since 2000-01-01 00:00:00.
    Timestamp(i64),
    /// Microseconds since 2000-01-01 00:00:00 UTC.
    TimestampTz(i64),
    Uuid([u8; 16]),
}

/// A row: one value per column, in the order of the table or of the output.
pub type Row = Vec<Value>;

mod decimal_bytes {
    use rust_decimal::Decimal;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&d.serialize())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let bytes: Vec<u8> = serde_bytes::deserialize(d)?;
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a numeric value must be 16 bytes"))?;
        Ok(Decimal::deserialize(arr))
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The type of this value, `Unknown` for NULL.
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null => DataType::Unknown,
            Value::Bool(_) => DataType::Bool,
            Value::Int2(_) => DataType::Int2,
            Value::Int4(_) => DataType::Int4,
            Value::Int8(_) => DataType::Int8,
            Value::Float4(_) => DataType::Float4,
            Value::Float8(_) => DataType::Float8,
            Value::Numeric(_) => DataType::Numeric(None),
            Value::Text(_) => DataType::Text,
            Value::Bytea(_) => DataType::Bytea,
            Value::Date(_) => DataType::Date,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::TimestampTz(_) => DataType::TimestampTz,
            Value::Uuid(_) => DataType::Uuid,
        }
    }

    /// An integer value widened to i64, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int2(v) => Some(i64::from(*v)),
            Value::Int4(v) => Some(i64::from(*v)),
            Value::Int8(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int2(v) => Some(f64::from(*v)),
            Value::Int4(v) => Some(f64::from(*v)),
            Value::Int8(v) => Some(*v as f64),
            Value::Float4(v) => Some(f64::from(*v)),
            Value::Float8(v) => Some(*v),
            Value::Numeric(d) => rust_decimal::prelude::ToPrimitive::to_f64(d),
            _ => None,
        }
    }

    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Int2(v) => Some(Decimal::from(*v)),
            Value::Int4(v) => Some(Decimal::from(*v)),
            Value::Int8(v) => Some(Decimal::from(*v)),
            Value::Numeric(d) => Some(*d),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// SQL comparison: `None` when either side is NULL (the result is unknown) or the values
    /// cannot be compared.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        if self.is_null() || other.is_null() {
            return None;
        }
        compare_non_null(self, other)
    }

    /// The total order used for sorting, grouping and keys: NULL sorts after every value
    /// (PostgreSQL's default for ascending order), NaN after every other float.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        match (self.is_null(), other.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => compare_non_null(self, other).unwrap_or_else(|| {
                // Values of unrelated types never meet in a well-typed plan; order them by
                // type so that sorting stays total.
                self.data_type().oid().cmp(&other.data_type().oid())
            }),
        }
    }
}

fn float_cmp(a: f64, b: f64) -> Ordering {
    // PostgreSQL: NaN equals NaN and is greater than every other value.
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn compare_non_null(a: &Value, b: &Value) -> Option<Ordering> {
    use Value::*;
    Some(match (a, b) {
        (Bool(x), Bool(y)) => x.cmp(y),
        (Text(x), Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Bytea(x), Bytea(y)) => x.cmp(y),
        (Date(x), Date(y)) => x.cmp(y),
        (Timestamp(x), Timestamp(y)) | (TimestampTz(x), TimestampTz(y)) => x.cmp(y),
        (Date(x), Timestamp(y)) | (Date(x), TimestampTz(y)) => (i64::from(*x) * MICROS_PER_DAY).cmp(y),
        (Timestamp(x), Date(y)) | (TimestampTz(x), Date(y)) => x.cmp(&(i64::from(*y) * MICROS_PER_DAY)),
        (Timestamp(x), TimestampTz(y)) | (TimestampTz(x), Timestamp(y)) => x.cmp(y),
        (Uuid(x), Uuid(y)) => x.cmp(y),
        (Float4(_) | Float8(_), _) | (_, Float4(_) | Float8(_)) => float_cmp(a.as_f64()?, b.as_f64()?),
        (Numeric(_), _) | (_, Numeric(_)) => a.as_decimal()?.cmp(&b.as_decimal()?),
        _ => a.as_i64()?.cmp(&b.as_i64()?),
    })
}

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Values are equal for grouping and DISTINCT when the total order says so: NULLs group
/// together, as do all NaNs, and 1.0 groups with 1.00.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.total_cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        self.total_cmp(other)
    }
}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Equal values must hash alike across the integer, numeric and float types they may be
        // compared as, so numbers hash by their value as f64 when it is exact, else by decimal.
        match self {
            Value::Null => 0u8.hash(state),
            Value::Bool(b) => b.hash(state),
            Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Float4(_) | Value::Float8(_) => {
                let f = self.as_f64().unwrap_or(0.0);
                let f = if f == 0.0 { 0.0 } else { f };
                if f.is_nan() {
                    u64::MAX.hash(state)
                } else {
                    f.to_bits().hash(state)
                }
            }
            Value::Numeric(d) => {
                let f = rust_decimal::prelude::ToPrimitive::to_f64(d).unwrap_or(0.0);
                let f = if f == 0.0 { 0.0 } else { f };
                f.to_bits().hash(state)
            }
            Value::Text(s) => s.hash(state),
            Value::Bytea(b) => b.hash(state),
            Value::Date(d) => (i64::from(*d) * MICROS_PER_DAY).hash(state),
            Value::Timestamp(t) | Value::TimestampTz(t) => t.hash(state),
            Value::Uuid(u) => u.hash(state),
        }
    }
}
