//! PostgreSQL's binary wire format for values, used when a client asks for binary parameters
//! or results in the extended query protocol (tokio-postgres, asyncpg and JDBC do).

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::datatype::{ArrayElem, DataType};
use crate::error::{ExecError, ExecResult};
use crate::value::Value;

/// Encodes a non-NULL value in the binary format of its type.
pub fn encode_binary(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Int2(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Int4(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Int8(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Float4(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Float8(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Numeric(d) => encode_numeric(d, out),
        Value::Text(s) => out.extend_from_slice(s.as_bytes()),
        Value::Bytea(b) => out.extend_from_slice(b),
        Value::Date(d) => out.extend_from_slice(&d.to_be_bytes()),
        Value::Timestamp(t) | Value::TimestampTz(t) => out.extend_from_slice(&t.to_be_bytes()),
        Value::Uuid(u) => out.extend_from_slice(u),
    }
}

fn bad_binary(ty: DataType) -> ExecError {
    ExecError::other("22P03", format!("incorrect binary data format for type {}", ty.name()))
}

fn fixed<const N: usize>(bytes: &[u8], ty: DataType) -> ExecResult<[u8; N]> {
    bytes.try_into().map_err(|_| bad_binary(ty))
}

/// Decodes a value of type `ty` from its binary format.
pub fn decode_binary(bytes: &[u8], ty: DataType) -> ExecResult<Value> {
    Ok(match ty {
        DataType::Bool => Value::Bool(fixed::<1>(bytes, ty)?[0] != 0),
        DataType::Int2 => Value::Int2(i16::from_be_bytes(fixed(bytes, ty)?)),
        DataType::Int4 | DataType::Oid => Value::Int4(i32::from_be_bytes(fixed(bytes, ty)?)),
        DataType::Int8 => Value::Int8(i64::from_be_bytes(fixed(bytes, ty)?)),
        DataType::Float4 => Value::Float4(f32::from_be_bytes(fixed(bytes, ty)?)),
        DataType::Float8 => Value::Float8(f64::from_be_bytes(fixed(bytes, ty)?)),
        DataType::Numeric(_) => Value::Numeric(decode_numeric(bytes).ok_or_else(|| bad_binary(ty))?),
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Name | DataType::Unknown => Value::Text(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| ExecError::other("22021", "invalid byte sequence for encoding \"UTF8\""))?,
        ),
        DataType::Bytea => Value::Bytea(bytes.to_vec()),
        DataType::Date => Value::Date(i32::from_be_bytes(fixed(bytes, ty)?)),
        DataType::Timestamp => Value::Timestamp(i64::from_be_bytes(fixed(bytes, ty)?)),
        DataType::TimestampTz => Value::TimestampTz(i64::from_be_bytes(fixed(bytes, ty)?)),
        DataType::Uuid => Value::Uuid(fixed(bytes, ty)?),
        DataType::Array(elem) => decode_array(bytes, elem).ok_or_else(|| bad_binary(ty))??,
    })
}

/// An array in PostgreSQL's binary format (one dimension), as its text literal.
fn decode_array(bytes: &[u8], elem: ArrayElem) -> Option<ExecResult<Value>> {
    let int = |at: usize| -> Option<i32> { Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?)) };
    let ndim = int(0)?;
    if ndim == 0 {
        return Some(Ok(Value::Text("{}".into())));
    }
    if ndim != 1 {
        return Some(Err(ExecError::other(
            "0A000",
            "only one-dimensional arrays are supported",
        )));
    }
    let len = usize::try_from(int(12)?).ok()?;
    let mut at = 20;
    let mut items = Vec::with_capacity(len);
    for _ in 0..len {
        let n = int(at)?;
        at += 4;
        if n < 0 {
            items.push(None);
            continue;
        }
        let raw = bytes.get(at..at + n as usize)?;
        at += n as usize;
        items.push(match decode_binary(raw, elem.data_type()) {
            Ok(v) => v.to_text(),
            Err(e) => return Some(Err(e)),
        });
    }
    Some(Ok(Value::Text(crate::text::format_array_literal(&items))))
}

/// Encodes an array literal (`{1,2}`) of `elem`s in PostgreSQL's binary array format.
pub fn encode_binary_array(literal: &str, elem: ArrayElem, out: &mut Vec<u8>) -> ExecResult<()> {
    let items = crate::text::parse_array_literal(literal)
        .ok_or_else(|| ExecError::other("22P02", format!("malformed array literal: \"{literal}\"")))?;
    let ty = elem.data_type();
    out.extend_from_slice(&i32::from(!items.is_empty()).to_be_bytes());
    out.extend_from_slice(&i32::from(items.iter().any(Option::is_none)).to_be_bytes());
    out.extend_from_slice(&ty.oid().to_be_bytes());
    if !items.is_empty() {
        out.extend_from_slice(&(items.len() as i32).to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    let mut scratch = Vec::new();
    for item in &items {
        match item {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(text) => {
                let v = crate::text::parse_text(text, ty)?;
                scratch.clear();
                encode_binary(&v, &mut scratch);
                out.extend_from_slice(&(scratch.len() as i32).to_be_bytes());
                out.extend_from_slice(&scratch);
            }
        }
    }
    Ok(())
}

/// PostgreSQL's numeric binary format: digit count, weight, sign, display scale, then digits
/// in base 10000, the decimal point on a digit boundary.
fn encode_numeric(d: &Decimal, out: &mut Vec<u8>) {
    let scale = d.scale() as usize;
    let text = d.abs().to_string();
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    let int_part = int_part.trim_start_matches('0');
    let mut int_digits = String::new();
    for _ in 0..(4 - int_part.len() % 4) % 4 {
        int_digits.push('0');
    }
    int_digits.push_str(int_part);
    let mut frac_digits = frac_part.to_string();
    while frac_digits.len() % 4 != 0 {
        frac_digits.push('0');
    }
    let mut groups: Vec<i16> = Vec::new();
    for chunk in int_digits.as_bytes().chunks(4).chain(frac_digits.as_bytes().chunks(4)) {
        let s = std::str::from_utf8(chunk).unwrap_or("0");
        groups.push(s.parse().unwrap_or(0));
    }
    let mut weight = (int_digits.len() / 4) as i16 - 1;
    let mut start = 0;
    while start < groups.len() && groups[start] == 0 {
        start += 1;
        weight -= 1;
    }
    let mut end = groups.len();
    while end > start && groups[end - 1] == 0 {
        end -= 1;
    }
    let digits = &groups[start..end];
    if digits.is_empty() {
        weight = 0;
    }
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    let sign: u16 = if d.is_sign_negative() && !d.is_zero() {
        0x4000
    } else {
        0
    };
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale as i16).to_be_bytes());
    for g in digits {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

fn decode_numeric(bytes: &[u8]) -> Option<Decimal> {
    let word = |i: usize| -> Option<i16> { Some(i16::from_be_bytes(bytes.get(i..i + 2)?.try_into().ok()?)) };
    let ndigits = word(0)?;
    let weight = word(2)?;
    let sign = word(4)? as u16;
    let dscale = word(6)?;
    if sign == 0xC000 || ndigits < 0 || dscale < 0 || bytes.len() != 8 + 2 * ndigits as usize {
        return None;
    }
    let digits: Vec<i16> = (0..ndigits as usize).map(|i| word(8 + 2 * i)).collect::<Option<_>>()?;
    let mut int_part = String::new();
    let mut frac_part = String::new();
    // Digit i has weight (weight - i): positions >= 0 are integer groups.
    let first = weight.min(0) as i32;
    let last_pos = i32::from(weight) - (ndigits as i32) + 1;
    for pos in (last_pos.min(first)..=i32::from(weight).max(0)).rev() {
        let idx = i32::from(weight) - pos;
        let g = if idx >= 0 && (idx as usize) < digits.len() {
            digits[idx as usize]
        } else {
            0
        };
        if pos >= 0 {
            int_part.push_str(&format!("{g:04}"));
        } else {
            frac_part.push_str(&format!("{g:04}"));
        }
    }
    let text = format!(
        "{}{}.{}",
        if sign == 0x4000 { "-" } else { "" },
        if int_part.is_empty() { "0" } else { &int_part },
        if frac_part.is_empty() { "0" } else { &frac_part }
    );
    let mut d = Decimal::from_str(&text).ok()?;
    d.rescale(dscale as u32);
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) {
        let d = Decimal::from_str(s).unwrap();
        let mut buf = Vec::new();
        encode_numeric(&d, &mut buf);
        let back = decode_numeric(&buf).unwrap();
        assert_eq!(back.to_string(), d.to_string(), "{s}");
    }

    #[test]
    fn numerics_round_trip_through_binary() {
        for s in [
            "0",
            "0.00",
            "1",
            "-1",
            "12345.678",
            "10000",
            "0.0001",
            "-99999999.99",
            "123456789012345678.5",
        ] {
            round_trip(s);
        }
    }

    #[test]
    fn numeric_binary_layout_matches_postgres() {
        let mut buf = Vec::new();
        encode_numeric(&Decimal::from_str("12345.678").unwrap(), &mut buf);
        // ndigits 3, weight 1, sign +, dscale 3, digits 1 2345 6780
        assert_eq!(buf, vec![0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]);
    }
}
