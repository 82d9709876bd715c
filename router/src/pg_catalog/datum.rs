//! The values catalog queries compute with: scalars, OIDs shown by name (`regclass` and its
//! kin) and arrays, dynamically typed, with PostgreSQL's comparison and text-output rules for
//! the kinds catalog queries use. Converting to the wire's `Value` of a column's type happens
//! once, at the end (`Datum::into_value`).

use std::cmp::Ordering;

use tessera_types::{DataType, Value};

/// Which `reg*` type an OID was cast to: it compares as the number and prints as the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegKind {
    Class,
    Type,
    Namespace,
    Proc,
    Role,
}

#[derive(Debug, Clone)]
pub enum Datum {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// An OID of the kind, with the name it prints as.
    Reg(i64, String),
    Array(Vec<Datum>),
    /// A composite value (what `_pg_expandarray` returns): named fields.
    Record(Vec<(String, Datum)>),
    /// Any other value (dates, numerics...), as the distributed engine computes it.
    Other(Value),
}

impl Datum {
    pub fn text(s: impl Into<String>) -> Datum {
        Datum::Text(s.into())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null) || matches!(self, Datum::Other(Value::Null))
    }

    /// Three-valued truth: `None` is NULL.
    pub fn truth(&self) -> Option<bool> {
        match self {
            Datum::Bool(b) => Some(*b),
            Datum::Text(s) => tessera_types::text::parse_bool(s),
            Datum::Int(i) => Some(*i != 0),
            Datum::Other(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Datum::Int(i) | Datum::Reg(i, _) => Some(*i),
            Datum::Bool(b) => Some(i64::from(*b)),
            Datum::Float(f) => Some(f.round() as i64),
            Datum::Text(s) => s.trim().parse().ok(),
            Datum::Other(v) => v.as_i64(),
            _ => None,
        }
    }

    fn as_float(&self) -> Option<f64> {
        match self {
            Datum::Float(f) => Some(*f),
            Datum::Other(v) => v.as_f64(),
            Datum::Text(s) => s.trim().parse().ok(),
            other => other.as_int().map(|i| i as f64),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Datum::Int(_) | Datum::Float(_) | Datum::Reg(..))
            || matches!(self, Datum::Other(v) if v.as_f64().is_some())
    }

    /// PostgreSQL's text output of the value (`t`/`f` for booleans, `{a,b}` for arrays).
    pub fn to_text(&self) -> Option<String> {
        match self {
            Datum::Null => None,
            Datum::Bool(b) => Some(if *b { "t" } else { "f" }.into()),
            Datum::Int(i) => Some(i.to_string()),
            Datum::Float(f) => Some(tessera_types::text::format_float(*f, false)),
            Datum::Text(s) => Some(s.clone()),
            Datum::Reg(_, name) => Some(name.clone()),
            Datum::Array(items) => Some(array_text(items)),
            Datum::Record(fields) => Some(format!(
                "({})",
                fields
                    .iter()
                    .map(|(_, d)| d.to_text().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            Datum::Other(v) => v.to_text(),
        }
    }

    /// Compares two values as SQL does: `None` when either is NULL. Text meeting a number or
    /// a boolean is read as one (an untyped literal takes the other side's type).
    pub fn compare(&self, other: &Datum) -> Option<Ordering> {
        if self.is_null() || other.is_null() {
            return None;
        }
        match (self, other) {
            (Datum::Text(a), Datum::Text(b)) => Some(a.cmp(b)),
            (Datum::Bool(_), _) | (_, Datum::Bool(_)) => Some(self.truth()?.cmp(&other.truth()?)),
            (Datum::Array(a), Datum::Array(b)) => {
                for (x, y) in a.iter().zip(b) {
                    match x.compare(y) {
                        Some(Ordering::Equal) => continue,
                        o => return o,
                    }
                }
                Some(a.len().cmp(&b.len()))
            }
            (Datum::Array(_), Datum::Text(t)) => self.compare(&parse_array(t)),
            (Datum::Text(t), Datum::Array(_)) => parse_array(t).compare(other),
            // A name compared with a reg value (`'studt'::regclass` already resolved aside).
            (Datum::Reg(_, name), Datum::Text(t)) if t.trim().parse::<i64>().is_err() => Some(name.as_str().cmp(t)),
            (Datum::Text(t), Datum::Reg(_, name)) if t.trim().parse::<i64>().is_err() => Some(t.as_str().cmp(name)),
            _ if self.is_numeric() || other.is_numeric() => {
                let floats = matches!(self, Datum::Float(_)) || matches!(other, Datum::Float(_));
                match (self.as_int(), other.as_int()) {
                    (Some(a), Some(b)) if !floats => Some(a.cmp(&b)),
                    _ => self.as_float()?.partial_cmp(&other.as_float()?),
                }
            }
            _ => Some(self.to_text()?.cmp(&other.to_text()?)),
        }
    }

    /// The total order of ORDER BY: NULLs last.
    pub fn sort_cmp(&self, other: &Datum) -> Ordering {
        match (self.is_null(), other.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => self.compare(other).unwrap_or(Ordering::Equal),
        }
    }

    /// Equality for DISTINCT, UNION and GROUP BY: NULLs are equal to each other.
    pub fn same(&self, other: &Datum) -> bool {
        match (self.is_null(), other.is_null()) {
            (true, true) => true,
            (false, false) => self.compare(other) == Some(Ordering::Equal),
            _ => false,
        }
    }

    /// The value of a result column of type `ty` (as `static_type` inferred it). Values that
    /// do not fit the type are sent as their text, which only text columns may hold.
    pub fn into_value(self, ty: DataType) -> Value {
        if self.is_null() {
            return Value::Null;
        }
        match ty {
            DataType::Bool => self.truth().map_or(Value::Null, Value::Bool),
            DataType::Int2 => self.as_int().map_or(Value::Null, |i| Value::Int2(i as i16)),
            DataType::Int4 | DataType::Oid => self.as_int().map_or(Value::Null, |i| Value::Int4(i as i32)),
            DataType::Int8 => self.as_int().map_or(Value::Null, Value::Int8),
            DataType::Float4 => self.as_float().map_or(Value::Null, |f| Value::Float4(f as f32)),
            DataType::Float8 => self.as_float().map_or(Value::Null, Value::Float8),
            DataType::Text
            | DataType::Name
            | DataType::Varchar(_)
            | DataType::Char(_)
            | DataType::Unknown
            | DataType::Array(_) => self.to_text().map_or(Value::Null, Value::Text),
            other => match self {
                Datum::Other(v) if v.data_type().without_modifiers() == other.without_modifiers() => v,
                d => d
                    .to_text()
                    .and_then(|t| tessera_types::text::parse_text(&t, other).ok())
                    .unwrap_or(Value::Null),
            },
        }
    }

    /// A value of the distributed engine as a datum.
    pub fn from_value(v: Value) -> Datum {
        match v {
            Value::Null => Datum::Null,
            Value::Bool(b) => Datum::Bool(b),
            Value::Int2(i) => Datum::Int(i64::from(i)),
            Value::Int4(i) => Datum::Int(i64::from(i)),
            Value::Int8(i) => Datum::Int(i),
            Value::Float4(f) => Datum::Float(f64::from(f)),
            Value::Float8(f) => Datum::Float(f),
            Value::Text(s) => Datum::Text(s),
            other => Datum::Other(other),
        }
    }
}

/// An array's text (`{a,"b c",NULL}`).
pub fn array_text(items: &[Datum]) -> String {
    let texts: Vec<Option<String>> = items.iter().map(Datum::to_text).collect();
    tessera_types::text::format_array_literal(&texts)
}

/// Reads a one-dimensional array literal (`{a,"b c",NULL}`); elements are text. Anything
/// else reads as a one-element array.
pub fn parse_array(s: &str) -> Datum {
    match tessera_types::text::parse_array_literal(s) {
        Some(items) => Datum::Array(items.into_iter().map(|i| i.map_or(Datum::Null, Datum::Text)).collect()),
        None => Datum::Array(vec![Datum::text(s.trim())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_round_trip_through_text() {
        let a = parse_array(r#"{a,"b c",NULL,"x\"y"}"#);
        let Datum::Array(items) = &a else {
            panic!("not an array")
        };
        assert_eq!(items.len(), 4);
        assert!(items[2].is_null());
        assert_eq!(a.to_text().unwrap(), r#"{a,"b c",NULL,"x\"y"}"#);
        assert_eq!(parse_array("{}").to_text().unwrap(), "{}");
    }

    #[test]
    fn untyped_text_compares_as_the_other_side() {
        assert_eq!(Datum::Int(16384).compare(&Datum::text("16384")), Some(Ordering::Equal));
        assert_eq!(Datum::Int(2).compare(&Datum::text("10")), Some(Ordering::Less));
        assert_eq!(Datum::Bool(true).compare(&Datum::text("t")), Some(Ordering::Equal));
        assert_eq!(Datum::Null.compare(&Datum::Int(1)), None);
        let reg = Datum::Reg(16384, "studt".into());
        assert_eq!(reg.compare(&Datum::Int(16384)), Some(Ordering::Equal));
    }
}
