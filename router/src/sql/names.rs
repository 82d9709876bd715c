//! Names: identifiers folded to lower case unless quoted (as PostgreSQL does), SQL type names
//! mapped to Tessera's types, and the column names PostgreSQL gives unaliased expressions.

use sqlparser::ast::{self, CharacterLength, ExactNumberInfo, Ident, ObjectName, ObjectNamePart, TimezoneInfo};
use tessera_types::DataType;

use crate::error::{Error, Result};

pub fn ident(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_ascii_lowercase()
    }
}

/// The parts of a qualified name, normalized.
pub fn object_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => ident(i),
            other => other.to_string(),
        })
        .collect()
}

/// A table name: `t`, `public.t` or `tessera.t` (the schema is checked by the caller).
pub fn table_name(name: &ObjectName) -> Result<(Option<String>, String)> {
    let mut parts = object_parts(name);
    match parts.len() {
        1 => Ok((None, parts.remove(0))),
        2 => {
            let table = parts.remove(1);
            Ok((Some(parts.remove(0)), table))
        }
        _ => Err(Error::Unsupported(format!(
            "cross-database references are not implemented: {name}"
        ))),
    }
}

/// Maps a SQL type to Tessera's, refusing (with SQLSTATE 0A000) types it does not store.
pub fn data_type(t: &ast::DataType) -> Result<DataType> {
    use ast::DataType as T;
    let len = |l: &Option<CharacterLength>| -> Result<Option<u32>> {
        match l {
            None | Some(CharacterLength::Max) => Ok(None),
            Some(CharacterLength::IntegerLength { length, .. }) => {
                if *length == 0 || *length > 10_485_760 {
                    return Err(Error::InvalidParameter(format!(
                        "length for type varchar must be between 1 and 10485760, not {length}"
                    )));
                }
                Ok(Some(*length as u32))
            }
        }
    };
    Ok(match t {
        T::SmallInt(_) | T::Int2(_) => DataType::Int2,
        T::Int(_) | T::Integer(_) | T::Int4(_) => DataType::Int4,
        T::BigInt(_) | T::Int8(_) => DataType::Int8,
        T::Real | T::Float4 => DataType::Float4,
        T::DoublePrecision | T::Float8 | T::Double(_) => DataType::Float8,
        T::Float(info) => match info {
            ExactNumberInfo::Precision(p) if *p <= 24 => DataType::Float4,
            _ => DataType::Float8,
        },
        T::Numeric(info) | T::Decimal(info) | T::Dec(info) => match info {
            ExactNumberInfo::None => DataType::Numeric(None),
            ExactNumberInfo::Precision(p) => DataType::Numeric(Some((numeric_precision(*p)?, 0))),
            ExactNumberInfo::PrecisionAndScale(p, s) => {
                let p = numeric_precision(*p)?;
                if *s < 0 || *s as u64 > u64::from(p) {
                    return Err(Error::InvalidParameter(format!("NUMERIC scale {s} must be between 0 and precision {p}")));
                }
                DataType::Numeric(Some((p, *s as u16)))
            }
        },
        T::Text | T::String(_) => DataType::Text,
        T::Varchar(l) | T::CharacterVarying(l) | T::CharVarying(l) => DataType::Varchar(len(l)?),
        T::Char(l) | T::Character(l) => DataType::Char(Some(len(l)?.unwrap_or(1))),
        T::Boolean | T::Bool => DataType::Bool,
        T::Date => DataType::Date,
        T::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => DataType::Timestamp,
        T::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => DataType::TimestampTz,
        T::Uuid => DataType::Uuid,
        T::Bytea => DataType::Bytea,
        T::Custom(name, mods) if mods.is_empty() => match object_parts(name).last().map(String::as_str) {
            Some("bpchar") => DataType::Char(None),
            Some("name") => DataType::Name,
            // Built-in types spelled by their internal names (`pg_catalog.text`, `int4`).
            Some(n) if builtin_by_internal_name(n).is_some() => builtin_by_internal_name(n).unwrap_or(DataType::Text),
            Some("oid" | "regclass" | "regtype" | "regproc") => DataType::Oid,
            Some(s @ ("serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2")) => {
                return Err(Error::Unsupported(format!(
                    "type {s} is not supported yet: sequences are not implemented; use an integer key and supply its values"
                )))
            }
            _ => return Err(Error::Unsupported(format!("type {name} is not supported"))),
        },
        T::Regclass => DataType::Oid,
        other => return Err(Error::Unsupported(format!("type {other} is not supported"))),
    })
}

fn numeric_precision(p: u64) -> Result<u16> {
    if p == 0 || p > u64::from(tessera_types::datatype::MAX_NUMERIC_PRECISION) {
        return Err(Error::InvalidParameter(format!(
            "NUMERIC precision {p} must be between 1 and {}",
            tessera_types::datatype::MAX_NUMERIC_PRECISION
        )));
    }
    Ok(p as u16)
}

/// The type whose internal name (`internal_type_name`) is `name`.
fn builtin_by_internal_name(name: &str) -> Option<DataType> {
    [
        DataType::Bool,
        DataType::Int2,
        DataType::Int4,
        DataType::Int8,
        DataType::Float4,
        DataType::Float8,
        DataType::Numeric(None),
        DataType::Text,
        DataType::Varchar(None),
        DataType::Bytea,
        DataType::Date,
        DataType::Timestamp,
        DataType::TimestampTz,
        DataType::Uuid,
    ]
    .into_iter()
    .find(|t| internal_type_name(*t) == name)
}

/// The name PostgreSQL gives the internal type in column headers (`int4`, `text`...).
pub fn internal_type_name(t: DataType) -> &'static str {
    match t {
        DataType::Bool => "bool",
        DataType::Int2 => "int2",
        DataType::Int4 => "int4",
        DataType::Int8 => "int8",
        DataType::Float4 => "float4",
        DataType::Float8 => "float8",
        DataType::Numeric(_) => "numeric",
        DataType::Text => "text",
        DataType::Varchar(_) => "varchar",
        DataType::Char(_) => "bpchar",
        DataType::Bytea => "bytea",
        DataType::Date => "date",
        DataType::Timestamp => "timestamp",
        DataType::TimestampTz => "timestamptz",
        DataType::Uuid => "uuid",
        DataType::Oid => "oid",
        DataType::Name => "name",
        DataType::Unknown => "unknown",
        DataType::Array(e) => match e {
            tessera_types::datatype::ArrayElem::Bool => "_bool",
            tessera_types::datatype::ArrayElem::Int2 => "_int2",
            tessera_types::datatype::ArrayElem::Int4 => "_int4",
            tessera_types::datatype::ArrayElem::Int8 => "_int8",
            tessera_types::datatype::ArrayElem::Oid => "_oid",
            tessera_types::datatype::ArrayElem::Text => "_text",
            tessera_types::datatype::ArrayElem::Name => "_name",
        },
    }
}

/// The column name PostgreSQL gives an unaliased select-list expression.
pub fn column_name(e: &ast::Expr, resolved_type: impl Fn(&ast::DataType) -> Option<DataType>) -> String {
    fn inner(e: &ast::Expr, ty: &dyn Fn(&ast::DataType) -> Option<DataType>) -> Option<String> {
        use ast::Expr as E;
        match e {
            E::Identifier(i) => Some(ident(i)),
            E::CompoundIdentifier(parts) => parts.last().map(ident),
            E::Nested(e) => inner(e, ty),
            E::Function(f) => object_parts(&f.name).last().cloned(),
            E::Cast { expr, data_type, .. } => {
                inner(expr, ty).or_else(|| ty(data_type).map(|t| internal_type_name(t).to_string()))
            }
            E::TypedString(ts) => ty(&ts.data_type).map(|t| internal_type_name(t).to_string()),
            E::Case { .. } => Some("case".into()),
            E::Substring { shorthand: true, .. } => Some("substr".into()),
            E::Substring { .. } => Some("substring".into()),
            E::Trim { trim_where, .. } => Some(
                match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                }
                .into(),
            ),
            E::Position { .. } => Some("position".into()),
            E::Ceil { .. } => Some("ceil".into()),
            E::Floor { .. } => Some("floor".into()),
            E::Extract { .. } => Some("extract".into()),
            _ => None,
        }
    }
    inner(e, &resolved_type).unwrap_or_else(|| "?column?".to_string())
}
