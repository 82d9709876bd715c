//! Values to and from the wire: result column descriptions, data rows in text or binary
//! format (Tessera formats every value itself, with PostgreSQL's exact text output), and bound
//! parameters decoded by their types.

use bytes::{BufMut, BytesMut};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::messages::data::DataRow;
use tessera_types::binary::{decode_binary, encode_binary};
use tessera_types::cast::cast;
use tessera_types::text::parse_text;
use tessera_types::{DataType, Row, Value};

use crate::error::{Error, Result};
use crate::sql::OutputColumn;

pub fn pg_type(t: DataType) -> Type {
    Type::from_oid(t.oid()).unwrap_or(Type::TEXT)
}

/// Checks a client's result format codes against the column count.
pub fn check_formats(format: &Format, columns: usize) -> Result<()> {
    if let Format::Individual(codes) = format {
        if codes.len() != columns {
            return Err(Error::Protocol(format!(
                "bind message has {} result formats but query has {columns} columns",
                codes.len()
            )));
        }
        if codes.iter().any(|c| *c != 0 && *c != 1) {
            return Err(Error::Protocol(
                "result format code must be 0 (text) or 1 (binary)".into(),
            ));
        }
    }
    Ok(())
}

/// Column descriptions; `format` is `None` for Describe Statement (text).
pub fn fields(columns: &[OutputColumn], format: Option<&Format>) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let f = match format {
                Some(Format::Individual(codes)) if codes.len() != columns.len() => FieldFormat::Text,
                Some(fmt) => fmt.format_for(i),
                None => FieldFormat::Text,
            };
            FieldInfo::new(c.name.clone(), None, None, pg_type(c.ty), f)
                .with_type_size(c.ty.typlen())
                .with_type_modifier(c.ty.typmod())
        })
        .collect()
}

/// Encodes a row; each value is first brought to its column's type so the bytes match the
/// type the client was told.
pub fn data_row(row: &Row, columns: &[OutputColumn], binary: &[bool]) -> Result<DataRow> {
    let mut buf = BytesMut::with_capacity(16 * row.len());
    let mut scratch = Vec::new();
    for (i, v) in row.iter().enumerate() {
        if v.is_null() {
            buf.put_i32(-1);
            continue;
        }
        let ty = columns.get(i).map(|c| c.ty).unwrap_or(DataType::Text);
        let converted;
        let v = if v.data_type().oid() == ty.oid() || matches!(v, Value::Text(_)) && ty.is_string() {
            v
        } else {
            converted = cast(v.clone(), ty.without_modifiers(), true)?;
            &converted
        };
        if binary.get(i).copied().unwrap_or(false) {
            scratch.clear();
            match (ty, v) {
                (DataType::Array(elem), Value::Text(literal)) => {
                    tessera_types::binary::encode_binary_array(literal, elem, &mut scratch)?
                }
                _ => encode_binary(v, &mut scratch),
            }
            buf.put_i32(scratch.len() as i32);
            buf.put_slice(&scratch);
        } else {
            let text = v.to_text().unwrap_or_default();
            buf.put_i32(text.len() as i32);
            buf.put_slice(text.as_bytes());
        }
    }
    Ok(DataRow::new(buf, row.len() as i16))
}

/// Which result columns are binary.
pub fn binary_columns(format: Option<&Format>, columns: usize) -> Vec<bool> {
    (0..columns)
        .map(|i| match format {
            Some(Format::Individual(codes)) => codes.get(i).copied() == Some(1),
            Some(f) => f.is_binary(i),
            None => false,
        })
        .collect()
}

/// Decodes bound parameters by their types and format codes.
pub fn decode_params(
    raw: &[Option<bytes::Bytes>],
    format: &Format,
    types: &[DataType],
) -> Result<Vec<(Value, DataType)>> {
    if raw.len() != types.len() {
        return Err(Error::Protocol(format!(
            "bind message supplies {} parameters, but prepared statement requires {}",
            raw.len(),
            types.len()
        )));
    }
    if let Format::Individual(codes) = format {
        if codes.len() != raw.len() {
            return Err(Error::Protocol(format!(
                "bind message has {} parameter formats but {} parameters",
                codes.len(),
                raw.len()
            )));
        }
    }
    raw.iter()
        .enumerate()
        .map(|(i, p)| {
            let ty = types[i];
            let value = match p {
                None => Value::Null,
                Some(bytes) if format.is_binary(i) => decode_binary(bytes, ty)?,
                Some(bytes) => {
                    let s = std::str::from_utf8(bytes).map_err(|_| {
                        Error::Exec(tessera_types::ExecError::other(
                            "22021",
                            "invalid byte sequence for encoding \"UTF8\"",
                        ))
                    })?;
                    parse_text(s, ty)?
                }
            };
            Ok((value, ty))
        })
        .collect()
}
