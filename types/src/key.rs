//! Order-preserving key encoding: a row's primary key becomes bytes whose byte order is the
//! key's SQL order, so a shard keeps rows in one ordered B-tree and a key-range read is one
//! ordered scan. Composite keys are the concatenation of their columns' encodings.

use std::ops::Bound;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::value::Value;

/// Appends the order-preserving encoding of one non-NULL value.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(0x00),
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => {
            let i = v.as_i64().unwrap_or(0);
            out.extend_from_slice(&((i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Float4(f) => encode_f64(f64::from(*f), out),
        Value::Float8(f) => encode_f64(*f, out),
        Value::Numeric(d) => encode_decimal(d, out),
        Value::Text(s) => encode_bytes(s.as_bytes(), out),
        Value::Bytea(b) => encode_bytes(b, out),
        Value::Date(d) => out.extend_from_slice(&((i64::from(*d) as u64) ^ (1 << 63)).to_be_bytes()),
        Value::Timestamp(t) | Value::TimestampTz(t) => out.extend_from_slice(&((*t as u64) ^ (1 << 63)).to_be_bytes()),
        Value::Uuid(u) => out.extend_from_slice(u),
    }
}

/// Encodes a key made of several values.
pub fn encode_key(values: &[&Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * values.len());
    for v in values {
        encode_value(v, &mut out);
    }
    out
}

fn encode_f64(f: f64, out: &mut Vec<u8>) {
    let f = if f == 0.0 { 0.0 } else { f }; // -0 sorts with 0
    let f = if f.is_nan() { f64::NAN } else { f };
    let bits = f.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits ^ (1 << 63) };
    out.extend_from_slice(&ordered.to_be_bytes());
}

/// Strings: bytes with 0x00 escaped as 0x00 0xFF, ended by 0x00 0x01, so that a prefix sorts
/// before its extensions and no encoding is a prefix of another.
fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    for &byte in b {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Decimals: a sign byte, then for positive values the decimal exponent and the significant
/// digits (one per byte, terminated), inverted for negative values.
fn encode_decimal(d: &Decimal, out: &mut Vec<u8>) {
    if d.is_zero() {
        out.push(0x02);
        return;
    }
    let digits = d.mantissa().unsigned_abs().to_string();
    let digits = digits.trim_end_matches('0');
    let exponent = d.mantissa().unsigned_abs().to_string().len() as i32 - d.scale() as i32;
    let mut body = Vec::with_capacity(digits.len() + 6);
    body.extend_from_slice(&((exponent as u32) ^ (1 << 31)).to_be_bytes());
    for c in digits.bytes() {
        body.push(c - b'0' + 1);
    }
    body.push(0x00);
    if d.is_sign_negative() {
        out.push(0x01);
        out.extend(body.iter().map(|b| !b));
    } else {
        out.push(0x03);
        out.extend(body);
    }
}

/// The smallest byte string greater than every string that starts with `prefix` (`None` when
/// there is none: the prefix is all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A range of encoded keys a scan reads, in key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    pub fn all() -> KeyRange {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    pub fn is_all(&self) -> bool {
        matches!((&self.start, &self.end), (Bound::Unbounded, Bound::Unbounded))
    }

    /// The keys whose leading column equals `v` exactly.
    pub fn prefix(v: &Value) -> KeyRange {
        let mut p = Vec::new();
        encode_value(v, &mut p);
        KeyRange::prefix_bytes(p)
    }

    pub fn prefix_bytes(p: Vec<u8>) -> KeyRange {
        let end = match prefix_end(&p) {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        KeyRange {
            start: Bound::Included(p),
            end,
        }
    }

    /// Keys whose leading column lies between `low` and `high` (either may be open).
    pub fn between(low: Bound<&Value>, high: Bound<&Value>) -> KeyRange {
        let enc = |v: &Value| {
            let mut p = Vec::new();
            encode_value(v, &mut p);
            p
        };
        let start = match low {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(v) => Bound::Included(enc(v)),
            // Every key whose leading column is `v` comes before the prefix end.
            Bound::Excluded(v) => match prefix_end(&enc(v)) {
                Some(e) => Bound::Included(e),
                None => return KeyRange::empty(),
            },
        };
        let end = match high {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Excluded(v) => Bound::Excluded(enc(v)),
            Bound::Included(v) => match prefix_end(&enc(v)) {
                Some(e) => Bound::Excluded(e),
                None => Bound::Unbounded,
            },
        };
        KeyRange { start, end }
    }

    pub fn empty() -> KeyRange {
        KeyRange {
            start: Bound::Excluded(vec![]),
            end: Bound::Excluded(vec![]),
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Unbounded => true,
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
        };
        let before_end = match &self.end {
            Bound::Unbounded => true,
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
        };
        after_start && before_end
    }

    /// Whether no key can fall in the range.
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn enc(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(&v, &mut out);
        out
    }

    #[test]
    fn integers_sort_by_value() {
        let vals = [i64::MIN, -5, -1, 0, 1, 4096, i64::MAX];
        for w in vals.windows(2) {
            assert!(enc(Value::Int8(w[0])) < enc(Value::Int8(w[1])));
        }
        assert_eq!(enc(Value::Int4(7)), enc(Value::Int8(7)));
    }

    #[test]
    fn strings_sort_with_prefixes_first() {
        assert!(enc(Value::Text("ab".into())) < enc(Value::Text("abc".into())));
        assert!(enc(Value::Text("ab".into())) < enc(Value::Text("b".into())));
        assert!(enc(Value::Text("a\0".into())) > enc(Value::Text("a".into())));
    }

    #[test]
    fn decimals_sort_by_value() {
        let vals = [
            "-100.5", "-10", "-1.25", "-1.2", "0", "0.001", "0.5", "1", "1.5", "10", "99.99", "100",
        ];
        for w in vals.windows(2) {
            let a = enc(Value::Numeric(Decimal::from_str(w[0]).unwrap()));
            let b = enc(Value::Numeric(Decimal::from_str(w[1]).unwrap()));
            assert!(a < b, "{} < {}", w[0], w[1]);
        }
        assert_eq!(
            enc(Value::Numeric(Decimal::from_str("1.50").unwrap())),
            enc(Value::Numeric(Decimal::from_str("1.5").unwrap()))
        );
    }

    #[test]
    fn floats_sort_by_value() {
        let vals = [f64::NEG_INFINITY, -2.5, -0.0, 0.5, 3.0, f64::INFINITY, f64::NAN];
        for w in vals.windows(2) {
            assert!(enc(Value::Float8(w[0])) <= enc(Value::Float8(w[1])));
        }
    }

    #[test]
    fn ranges_cover_inclusive_bounds() {
        let r = KeyRange::between(Bound::Included(&Value::Int4(10)), Bound::Included(&Value::Int4(20)));
        let key = |i: i32, suffix: &str| {
            let mut k = enc(Value::Int4(i));
            k.extend(enc(Value::Text(suffix.into())));
            k
        };
        assert!(r.contains(&key(10, "a")));
        assert!(r.contains(&key(20, "zzz")));
        assert!(!r.contains(&key(21, "")));
        assert!(!r.contains(&key(9, "zzz")));
    }
}
