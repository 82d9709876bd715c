//! PostgreSQL's text representation of values: how each type prints (output functions, with
//! PostgreSQL's exact float, numeric, date and timestamp formats) and how text is read back as a
//! value of a given type (input functions, with PostgreSQL's error messages).

use std::str::FromStr;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;

use crate::datatype::DataType;
use crate::error::{ExecError, ExecResult};
use crate::value::{Value, MICROS_PER_DAY, MICROS_PER_SECOND};

/// 2000-01-01, PostgreSQL's epoch for dates and timestamps.
pub fn pg_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("2000-01-01 is a valid date")
}

pub const DATE_POS_INFINITY: i32 = i32::MAX;
pub const DATE_NEG_INFINITY: i32 = i32::MIN;
pub const TS_POS_INFINITY: i64 = i64::MAX;
pub const TS_NEG_INFINITY: i64 = i64::MIN;

impl Value {
    /// The value in PostgreSQL's text format, `None` for NULL.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => if *b { "t" } else { "f" }.to_string(),
            Value::Int2(v) => v.to_string(),
            Value::Int4(v) => v.to_string(),
            Value::Int8(v) => v.to_string(),
            Value::Float4(v) => format_float(f64::from(*v), true),
            Value::Float8(v) => format_float(*v, false),
            Value::Numeric(d) => d.to_string(),
            Value::Text(s) => s.clone(),
            Value::Bytea(b) => {
                let mut s = String::with_capacity(2 + b.len() * 2);
                s.push_str("\\x");
                for byte in b {
                    s.push_str(&format!("{byte:02x}"));
                }
                s
            }
            Value::Date(d) => format_date(*d),
            Value::Timestamp(t) => format_timestamp(*t, None),
            Value::TimestampTz(t) => format_timestamp(*t, Some(0)),
            Value::Uuid(u) => uuid::Uuid::from_bytes(*u).hyphenated().to_string(),
        })
    }
}

/// PostgreSQL's float output (extra_float_digits = 1): the shortest digits that read back
/// exactly, in exponent form when the decimal exponent is below -4 or at least 15 (6 for real).
pub fn format_float(v: f64, single: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = if single {
        format!("{:e}", v as f32)
    } else {
        format!("{v:e}")
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let limit = if single { 6 } else { 15 };
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if exp < -4 || exp >= limit {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    pg_epoch().checked_add_signed(chrono::Duration::days(i64::from(days)))
}

pub fn days_from_date(date: NaiveDate) -> i32 {
    (date - pg_epoch()).num_days() as i32
}

fn format_year(year: i32) -> (String, bool) {
    if year <= 0 {
        (format!("{:04}", 1 - year), true)
    } else {
        (format!("{year:04}"), false)
    }
}

pub fn format_date(days: i32) -> String {
    match days {
        DATE_POS_INFINITY => return "infinity".into(),
        DATE_NEG_INFINITY => return "-infinity".into(),
        _ => {}
    }
    let Some(date) = date_from_days(days) else {
        return "infinity".into();
    };
    let (year, bc) = format_year(date.year());
    let mut s = format!("{year}-{:02}-{:02}", date.month(), date.day());
    if bc {
        s.push_str(" BC");
    }
    s
}

/// Formats microseconds since 2000-01-01; `offset_secs` is the session's UTC offset for a
/// timestamp with time zone, `None` for one without.
pub fn format_timestamp(micros: i64, offset_secs: Option<i32>) -> String {
    match micros {
        TS_POS_INFINITY => return "infinity".into(),
        TS_NEG_INFINITY => return "-infinity".into(),
        _ => {}
    }
    let local = micros + i64::from(offset_secs.unwrap_or(0)) * MICROS_PER_SECOND;
    let days = local.div_euclid(MICROS_PER_DAY);
    let time_us = local.rem_euclid(MICROS_PER_DAY);
    let Some(date) = date_from_days(days as i32) else {
        return "infinity".into();
    };
    let (year, bc) = format_year(date.year());
    let secs = time_us / MICROS_PER_SECOND;
    let frac = time_us % MICROS_PER_SECOND;
    let mut s = format!(
        "{year}-{:02}-{:02} {:02}:{:02}:{:02}",
        date.month(),
        date.day(),
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    if let Some(off) = offset_secs {
        let sign = if off < 0 { '-' } else { '+' };
        let off = off.abs();
        s.push(sign);
        s.push_str(&format!("{:02}", off / 3600));
        if off % 3600 != 0 {
            s.push_str(&format!(":{:02}", (off / 60) % 60));
        }
    }
    if bc {
        s.push_str(" BC");
    }
    s
}

/// Reads `input` as a value of type `ty`, as PostgreSQL's input function for that type does
/// (without applying length or precision modifiers; see `cast::apply_typmod`).
pub fn parse_text(input: &str, ty: DataType) -> ExecResult<Value> {
    let name = ty.name();
    let t = input.trim_matches(|c: char| c.is_ascii_whitespace());
    match ty {
        DataType::Bool => parse_bool(t)
            .map(Value::Bool)
            .ok_or_else(|| ExecError::invalid_text(name, input)),
        DataType::Int2 => {
            parse_int(t, input, name, i64::from(i16::MIN), i64::from(i16::MAX)).map(|v| Value::Int2(v as i16))
        }
        DataType::Int4 | DataType::Oid => {
            parse_int(t, input, name, i64::from(i32::MIN), i64::from(i32::MAX)).map(|v| Value::Int4(v as i32))
        }
        DataType::Int8 => parse_int(t, input, name, i64::MIN, i64::MAX).map(Value::Int8),
        DataType::Float4 => {
            let v = parse_float(t, input, name)?;
            let f = v as f32;
            if f.is_infinite() && !v.is_infinite() {
                return Err(ExecError::text_out_of_range(name, input));
            }
            Ok(Value::Float4(f))
        }
        DataType::Float8 => parse_float(t, input, name).map(Value::Float8),
        DataType::Numeric(_) => parse_numeric(t, input).map(Value::Numeric),
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Name | DataType::Unknown => {
            Ok(Value::Text(input.to_string()))
        }
        DataType::Bytea => parse_bytea(input).map(Value::Bytea),
        DataType::Date => parse_date(t).map(Value::Date).ok_or_else(|| date_error(name, input, t)),
        DataType::Timestamp => parse_timestamp(t, false)
            .map(Value::Timestamp)
            .ok_or_else(|| date_error(name, input, t)),
        DataType::TimestampTz => parse_timestamp(t, true)
            .map(Value::TimestampTz)
            .ok_or_else(|| date_error(name, input, t)),
        DataType::Uuid => uuid::Uuid::parse_str(t)
            .map(|u| Value::Uuid(*u.as_bytes()))
            .map_err(|_| ExecError::invalid_text(name, input)),
        DataType::Array(_) => match parse_array_literal(t) {
            Some(_) => Ok(Value::Text(t.to_string())),
            None => Err(ExecError::other(
                "22P02",
                format!("malformed array literal: \"{input}\""),
            )),
        },
    }
}

/// An array literal of these elements, quoting them where PostgreSQL's output would.
pub fn format_array_literal(items: &[Option<String>]) -> String {
    let element = |item: &Option<String>| match item {
        None => "NULL".to_string(),
        Some(t) => {
            let needs_quotes = t.is_empty()
                || t.eq_ignore_ascii_case("null")
                || t.chars()
                    .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
            if needs_quotes {
                format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                t.clone()
            }
        }
    };
    format!("{{{}}}", items.iter().map(element).collect::<Vec<_>>().join(","))
}

/// The elements of a one-dimensional array literal (`{a,"b c",NULL}`); `None` is NULL.
/// `None` overall when the text is not such a literal.
pub fn parse_array_literal(s: &str) -> Option<Vec<Option<String>>> {
    let body = s.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut items = Vec::new();
    if body.trim().is_empty() {
        return Some(items);
    }
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => item.push(chars.next()?),
                    '"' => break,
                    c => item.push(c),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' || c == '{' || c == '}' || c == '"' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            item = item.trim().to_string();
        }
        items.push((quoted || !item.eq_ignore_ascii_case("null")).then_some(item));
        match chars.next() {
            None => return Some(items),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

/// A date that reads as year-month-day but is not on the calendar is "out of range" (22008);
/// anything else is a syntax error (22007).
fn date_error(name: &str, input: &str, trimmed: &str) -> ExecError {
    let date_part = split_era(trimmed).0.split([' ', 'T']).next().unwrap_or("");
    let fields: Vec<&str> = date_part.split('-').collect();
    let looks_like_date = fields.len() == 3
        && fields
            .iter()
            .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    if looks_like_date {
        return ExecError::DatetimeOverflow(format!("date/time field value out of range: \"{input}\""));
    }
    ExecError::Other {
        code: "22007".into(),
        message: format!("invalid input syntax for type {name}: \"{input}\""),
    }
}

pub fn parse_bool(t: &str) -> Option<bool> {
    let s = t.to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    match s.as_str() {
        "1" => return Some(true),
        "0" => return Some(false),
        "on" => return Some(true),
        "of" | "off" => return Some(false),
        _ => {}
    }
    if "true".starts_with(&s) || "yes".starts_with(&s) {
        Some(true)
    } else if "false".starts_with(&s) || "no".starts_with(&s) {
        Some(false)
    } else {
        None
    }
}

fn parse_int(t: &str, input: &str, name: &str, min: i64, max: i64) -> ExecResult<i64> {
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ExecError::invalid_text(name, input));
    }
    let mut v: i128 = 0;
    for b in digits.bytes() {
        v = v * 10 + i128::from(b - b'0');
        if v > i128::from(i64::MAX) + 1 {
            return Err(ExecError::text_out_of_range(name, input));
        }
    }
    if neg {
        v = -v;
    }
    if v < i128::from(min) || v > i128::from(max) {
        return Err(ExecError::text_out_of_range(name, input));
    }
    Ok(v as i64)
}

fn parse_float(t: &str, input: &str, name: &str) -> ExecResult<f64> {
    let lower = t.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => return Ok(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => return Ok(f64::INFINITY),
        "-infinity" | "-inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let valid = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && t.bytes().any(|b| b.is_ascii_digit());
    if !valid {
        return Err(ExecError::invalid_text(name, input));
    }
    let v: f64 = t.parse().map_err(|_| ExecError::invalid_text(name, input))?;
    if v.is_infinite() {
        return Err(ExecError::text_out_of_range(name, input));
    }
    if v == 0.0 && t.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        // Underflow: a non-zero literal too small to represent.
        let mantissa_nonzero = t
            .split(['e', 'E'])
            .next()
            .map(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)))
            .unwrap_or(false);
        if mantissa_nonzero {
            return Err(ExecError::text_out_of_range(name, input));
        }
    }
    Ok(v)
}

/// The most significant digits a `numeric` holds exactly.
pub const MAX_NUMERIC_DIGITS: usize = 28;

/// How many digits a numeric literal needs to be held exactly: the larger of its digits after
/// the point and its significant digits, with the exponent applied and zeros that carry no
/// value (leading, and trailing after the point) left out.
fn significant_digits(t: &str) -> usize {
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (t, 0),
    };
    let mantissa = mantissa.trim_start_matches(['+', '-']);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    // digits[..point] is the integer part once the exponent moves the point.
    let point = (int.len() as i64).saturating_add(exponent);
    let (Some(first), Some(last)) = (
        digits.iter().position(|d| *d != b'0'),
        digits.iter().rposition(|d| *d != b'0'),
    ) else {
        return 0;
    };
    let (first, last) = (first as i64, last as i64);
    let scale = (last + 1).saturating_sub(point).max(0);
    let held = if first < point {
        point.saturating_sub(first).saturating_add(scale)
    } else {
        last + 1 - first
    };
    usize::try_from(held.max(scale)).unwrap_or(usize::MAX)
}

/// A literal in scientific notation written out as a plain decimal (`1.5e-3` is `0.0015`), or
/// `None` when its exponent is not a number. Parsing the mantissa first and then scaling would
/// round a long fraction away; this is only called on literals that passed the digits check,
/// so the text it makes stays short.
fn plain_decimal(t: &str) -> Option<String> {
    let i = t.find(['e', 'E'])?;
    let exponent: i64 = t[i + 1..].parse().ok()?;
    let mantissa = &t[..i];
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = int.chars().chain(frac.chars()).collect();
    if digits.bytes().all(|d| d == b'0') {
        return Some("0".into());
    }
    let point = (int.len() as i64).saturating_add(exponent);
    let (whole, fraction) = if point <= 0 {
        (String::new(), "0".repeat(point.unsigned_abs() as usize) + &digits)
    } else if point as usize >= digits.len() {
        (
            digits.clone() + &"0".repeat(point as usize - digits.len()),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    let whole = match whole.trim_start_matches('0') {
        "" => "0",
        w => w,
    };
    Some(match fraction.trim_end_matches('0') {
        "" => format!("{sign}{whole}"),
        f => format!("{sign}{whole}.{f}"),
    })
}

pub fn parse_numeric(t: &str, input: &str) -> ExecResult<Decimal> {
    let valid = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && t.bytes().any(|b| b.is_ascii_digit());
    if !valid {
        if t.eq_ignore_ascii_case("nan") || t.to_ascii_lowercase().contains("infinity") {
            return Err(ExecError::other("0A000", "numeric NaN and infinity are not supported"));
        }
        return Err(ExecError::invalid_text("numeric", input));
    }
    // More digits than the type holds would be rounded away silently: refuse them instead.
    let digits = significant_digits(t);
    if digits > MAX_NUMERIC_DIGITS {
        return Err(ExecError::NumericFieldOverflow {
            detail: format!(
                "\"{input}\" has {digits} digits; numeric values are limited to {MAX_NUMERIC_DIGITS} significant digits (and {MAX_NUMERIC_DIGITS} after the point) here"
            ),
        });
    }
    let parsed = if t.contains(['e', 'E']) {
        match plain_decimal(t) {
            Some(plain) => Decimal::from_str(&plain),
            None => return Err(ExecError::invalid_text("numeric", input)),
        }
    } else {
        Decimal::from_str(t)
    };
    parsed.map_err(|e| match e {
        rust_decimal::Error::ExceedsMaximumPossibleValue
        | rust_decimal::Error::LessThanMinimumPossibleValue
        | rust_decimal::Error::Underflow
        | rust_decimal::Error::ScaleExceedsMaximumPrecision(_) => ExecError::NumericFieldOverflow {
            detail: "numeric values are limited to 28 significant digits here".into(),
        },
        _ => ExecError::invalid_text("numeric", input),
    })
}

fn parse_bytea(input: &str) -> ExecResult<Vec<u8>> {
    if let Some(hex) = input.strip_prefix("\\x") {
        let hex: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if hex.len() % 2 != 0 {
            return Err(ExecError::other(
                "22023",
                "invalid hexadecimal data: odd number of digits",
            ));
        }
        let mut out = Vec::with_capacity(hex.len() / 2);
        for pair in hex.chunks(2) {
            let s = std::str::from_utf8(pair).unwrap_or("zz");
            let b = u8::from_str_radix(s, 16)
                .map_err(|_| ExecError::other("22023", format!("invalid hexadecimal digit: \"{}\"", &s[..1])))?;
            out.push(b);
        }
        return Ok(out);
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let v = (bytes[i + 1] - b'0') as u32 * 64 + (bytes[i + 2] - b'0') as u32 * 8 + (bytes[i + 3] - b'0') as u32;
            if v > 255 {
                return Err(ExecError::invalid_text("bytea", input));
            }
            out.push(v as u8);
            i += 4;
        } else {
            return Err(ExecError::invalid_text("bytea", input));
        }
    }
    Ok(out)
}

/// Splits a trailing " BC" / " AD" era marker off a date or timestamp string.
fn split_era(t: &str) -> (&str, bool) {
    let lower = t.to_ascii_lowercase();
    if lower.ends_with(" bc") {
        (t[..t.len() - 3].trim_end(), true)
    } else if lower.ends_with(" ad") {
        (t[..t.len() - 3].trim_end(), false)
    } else {
        (t, false)
    }
}

fn parse_ymd(s: &str, bc: bool) -> Option<NaiveDate> {
    let mut parts = s.splitn(3, '-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if y <= 0 {
        return None;
    }
    let y = if bc { 1 - y } else { y };
    NaiveDate::from_ymd_opt(y, m, d)
}

pub fn parse_date(t: &str) -> Option<i32> {
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Some(DATE_POS_INFINITY),
        "-infinity" => return Some(DATE_NEG_INFINITY),
        "epoch" => return Some(days_from_date(NaiveDate::from_ymd_opt(1970, 1, 1)?)),
        _ => {}
    }
    let (body, bc) = split_era(t);
    // A date given with a time ("2024-01-01 10:00") keeps only the date, as PostgreSQL does.
    let date_part = body.split([' ', 'T']).next()?;
    if date_part.len() == 8 && date_part.bytes().all(|b| b.is_ascii_digit()) {
        let y: i32 = date_part[..4].parse().ok()?;
        let m: u32 = date_part[4..6].parse().ok()?;
        let d: u32 = date_part[6..].parse().ok()?;
        return NaiveDate::from_ymd_opt(y, m, d).map(days_from_date);
    }
    parse_ymd(date_part, bc).map(days_from_date)
}

/// Splits a time-zone suffix ("Z", "+02", "-05:30", "+0530", " UTC") off a time string.
fn split_zone(time: &str) -> (&str, Option<i32>) {
    let lower = time.to_ascii_lowercase();
    for suffix in [" utc", " gmt", "utc", "z"] {
        if lower.ends_with(suffix) {
            return (time[..time.len() - suffix.len()].trim_end(), Some(0));
        }
    }
    if let Some(pos) = time.rfind(['+', '-']) {
        let (t, zone) = time.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let z = &zone[1..];
        let (h, m) = if let Some((h, m)) = z.split_once(':') {
            (h.parse::<i32>().ok(), m.parse::<i32>().ok())
        } else if z.len() == 4 {
            (z[..2].parse::<i32>().ok(), z[2..].parse::<i32>().ok())
        } else {
            (z.parse::<i32>().ok(), Some(0))
        };
        if let (Some(h), Some(m)) = (h, m) {
            return (t.trim_end(), Some(sign * (h * 3600 + m * 60)));
        }
    }
    (time, None)
}

/// A time of day as microseconds since midnight, up to and including 24:00:00 (rounding the
/// fraction may carry into the next day, as in PostgreSQL).
fn parse_time(s: &str) -> Option<i64> {
    let mut parts = s.split(':');
    let h: i64 = parts.next()?.trim().parse().ok()?;
    let m: i64 = parts.next().map(|m| m.parse().ok()).unwrap_or(Some(0))?;
    let (sec, micros) = match parts.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let whole: i64 = whole.parse().ok()?;
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // PostgreSQL reads the fraction as a double and rounds it to microseconds with
            // rint (half to even, on the double's value).
            let frac: f64 = if frac.is_empty() {
                0.0
            } else {
                format!("0.{frac}").parse().ok()?
            };
            (whole, (frac * 1_000_000.0).round_ties_even() as i64)
        }
    };
    let midnight_after = h == 24 && m == 0 && sec == 0 && micros == 0;
    if parts.next().is_some() || !((0..24).contains(&h) || midnight_after) {
        return None;
    }
    if !(0..60).contains(&m) || !(0..60).contains(&sec) {
        return None;
    }
    Some(((h * 60 + m) * 60 + sec) * MICROS_PER_SECOND + micros)
}

pub fn parse_timestamp(t: &str, with_zone: bool) -> Option<i64> {
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Some(TS_POS_INFINITY),
        "-infinity" => return Some(TS_NEG_INFINITY),
        "epoch" => return Some(-946_684_800 * MICROS_PER_SECOND),
        _ => {}
    }
    let (body, bc) = split_era(t);
    let (date_part, time_part) = match body.find([' ', 'T', 't']) {
        Some(pos) => (&body[..pos], body[pos + 1..].trim()),
        None => (body, ""),
    };
    let date = parse_ymd(date_part, bc).or_else(|| {
        parse_date(date_part).and_then(|d| {
            if d == DATE_POS_INFINITY || d == DATE_NEG_INFINITY {
                None
            } else {
                date_from_days(d)
            }
        })
    })?;
    let (time_str, zone) = if time_part.is_empty() {
        ("", None)
    } else {
        split_zone(time_part)
    };
    let time = if time_str.is_empty() { 0 } else { parse_time(time_str)? };
    let midnight = NaiveDateTime::new(date, NaiveTime::MIN);
    let micros = (midnight - NaiveDateTime::new(pg_epoch(), NaiveTime::MIN))
        .num_microseconds()?
        .checked_add(time)?;
    if with_zone {
        Some(micros - i64::from(zone.unwrap_or(0)) * MICROS_PER_SECOND)
    } else {
        Some(micros)
    }
}

/// Microseconds since 2000-01-01 of a chrono UTC time.
pub fn micros_from_datetime(dt: chrono::DateTime<chrono::Utc>) -> i64 {
    let naive = dt.naive_utc();
    (naive - NaiveDateTime::new(pg_epoch(), NaiveTime::MIN))
        .num_microseconds()
        .unwrap_or(TS_POS_INFINITY)
}

/// The calendar date and time of a timestamp (for `EXTRACT` and `date_part`).
pub fn timestamp_fields(micros: i64) -> Option<NaiveDateTime> {
    let epoch = NaiveDateTime::new(pg_epoch(), NaiveTime::MIN);
    epoch.checked_add_signed(chrono::Duration::microseconds(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_beyond_28_digits_are_refused_not_rounded() {
        for ok in [
            "12345678901234567890123456.78",
            "-0.1234567890123456789012345678",
            "1.50000000000000000000000000000000",
            "1e20",
            "0.00000000000000000000000000000012e20",
            "1.0e-28",
            "1.50e-27",
        ] {
            assert!(parse_numeric(ok, ok).is_ok(), "{ok}: {:?}", parse_numeric(ok, ok));
        }
        assert_eq!(
            parse_numeric("0.00000000000000000000000000000012e20", "").map(|d| d.to_string()),
            Ok("0.000000000012".to_string())
        );
        for lossy in [
            "12345678901234567890123456789.5",
            "1234567890123456789012345678901234",
            "0.1234567890123456789012345678901234",
            "0.00000000000000000000000000000001",
            "1.5e-29",
            "1e30",
        ] {
            assert!(
                matches!(parse_numeric(lossy, lossy), Err(ExecError::NumericFieldOverflow { .. })),
                "{lossy}: {:?}",
                parse_numeric(lossy, lossy)
            );
        }
    }

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(format_float(1.5, false), "1.5");
        assert_eq!(format_float(0.1, false), "0.1");
        assert_eq!(format_float(1e15, false), "1e+15");
        assert_eq!(format_float(123456789012345.0, false), "123456789012345");
        assert_eq!(format_float(0.0001, false), "0.0001");
        assert_eq!(format_float(0.00001, false), "1e-05");
        assert_eq!(format_float(-2.5e-10, false), "-2.5e-10");
        assert_eq!(format_float(100.0, false), "100");
        assert_eq!(format_float(1e6, true), "1e+06");
        assert_eq!(format_float(123456.0, true), "123456");
        assert_eq!(format_float(f64::from(0.1f32), true), "0.1");
        assert_eq!(format_float(1.0 / 3.0, false), "0.3333333333333333");
    }

    #[test]
    fn dates_and_timestamps_round_trip() {
        let d = parse_date("2024-02-29").unwrap();
        assert_eq!(format_date(d), "2024-02-29");
        assert_eq!(format_date(0), "2000-01-01");
        let t = parse_timestamp("2024-01-02 03:04:05.25", false).unwrap();
        assert_eq!(format_timestamp(t, None), "2024-01-02 03:04:05.25");
        let tz = parse_timestamp("2024-01-02 03:04:05+02", true).unwrap();
        assert_eq!(format_timestamp(tz, Some(0)), "2024-01-02 01:04:05+00");
        assert!(parse_date("2024-02-30").is_none());
    }

    #[test]
    fn fractional_seconds_round_as_postgres_does() {
        let ts = |t: &str| format_timestamp(parse_timestamp(t, false).unwrap(), None);
        // Rounding may carry into the next day.
        assert_eq!(ts("2024-12-31 23:59:59.9999999"), "2025-01-01 00:00:00");
        // Half to even on the double's value, which for .1234565 lies just below the half.
        assert_eq!(ts("2024-01-01 00:00:00.1234565"), "2024-01-01 00:00:00.123456");
        assert_eq!(ts("2024-01-01 00:00:00.0000005"), "2024-01-01 00:00:00");
        assert_eq!(ts("2024-01-01 24:00:00"), "2024-01-02 00:00:00");
        assert!(parse_timestamp("2024-01-01 24:00:01", false).is_none());
        assert!(parse_timestamp("2024-01-01 12:60:00", false).is_none());
    }

    #[test]
    fn integers_check_range() {
        assert!(matches!(
            parse_text("99999999999", DataType::Int4),
            Err(ExecError::TextOutOfRange { .. })
        ));
        assert!(matches!(
            parse_text("12a", DataType::Int4),
            Err(ExecError::InvalidText { .. })
        ));
        assert_eq!(parse_text(" 42 ", DataType::Int4).unwrap(), Value::Int4(42));
    }

    #[test]
    fn booleans_accept_postgres_spellings() {
        for t in ["t", "TRUE", "yes", "on", "1", "tr"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["f", "false", "no", "off", "0"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("o"), None);
    }
}
