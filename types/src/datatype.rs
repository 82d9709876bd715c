//! SQL data types: the ones a column can have, their PostgreSQL type OIDs and names, and the
//! modifiers (numeric precision and scale, string lengths) that constrain their values.

use serde::{Deserialize, Serialize};

/// A SQL type as Tessera knows it. Every variant corresponds to one PostgreSQL built-in type,
/// so clients see the OIDs and names they expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric(precision, scale)`; `None` means unconstrained.
    Numeric(Option<(u16, u16)>),
    Text,
    /// `varchar(n)`; `None` means unlimited.
    Varchar(Option<u32>),
    /// `char(n)` (PostgreSQL's bpchar), blank-padded to n.
    Char(Option<u32>),
    Bytea,
    Date,
    Timestamp,
    TimestampTz,
    Uuid,
    /// Internal catalog types that only appear in answers to `pg_catalog` queries.
    Oid,
    Name,
    /// The type of an untyped literal ('abc' or NULL) before context decides.
    Unknown,
    /// A one-dimensional array, which only answers to `pg_catalog` queries carry. Its values
    /// travel as array literals (`{a,b}`) in `Value::Text`.
    Array(ArrayElem),
}

/// The element types an array may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArrayElem {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Text,
    Name,
}

impl ArrayElem {
    /// The element's own type.
    pub fn data_type(self) -> DataType {
        match self {
            ArrayElem::Bool => DataType::Bool,
            ArrayElem::Int2 => DataType::Int2,
            ArrayElem::Int4 => DataType::Int4,
            ArrayElem::Int8 => DataType::Int8,
            ArrayElem::Oid => DataType::Oid,
            ArrayElem::Text => DataType::Text,
            ArrayElem::Name => DataType::Name,
        }
    }

    /// The element type for values of type `t` (text for every string type).
    pub fn of(t: DataType) -> ArrayElem {
        match t {
            DataType::Bool => ArrayElem::Bool,
            DataType::Int2 => ArrayElem::Int2,
            DataType::Int4 => ArrayElem::Int4,
            DataType::Int8 => ArrayElem::Int8,
            DataType::Oid => ArrayElem::Oid,
            DataType::Name => ArrayElem::Name,
            _ => ArrayElem::Text,
        }
    }

    /// The OID of the array type.
    fn array_oid(self) -> u32 {
        match self {
            ArrayElem::Bool => 1000,
            ArrayElem::Int2 => 1005,
            ArrayElem::Int4 => 1007,
            ArrayElem::Int8 => 1016,
            ArrayElem::Oid => 1028,
            ArrayElem::Text => 1009,
            ArrayElem::Name => 1003,
        }
    }
}

/// The largest precision `numeric` supports here (rust_decimal holds 28 digits).
pub const MAX_NUMERIC_PRECISION: u16 = 28;

impl DataType {
    /// The PostgreSQL type OID.
    pub fn oid(&self) -> u32 {
        match self {
            DataType::Bool => 16,
            DataType::Bytea => 17,
            DataType::Name => 19,
            DataType::Int8 => 20,
            DataType::Int2 => 21,
            DataType::Int4 => 23,
            DataType::Text => 25,
            DataType::Oid => 26,
            DataType::Float4 => 700,
            DataType::Float8 => 701,
            DataType::Unknown => 705,
            DataType::Char(_) => 1042,
            DataType::Varchar(_) => 1043,
            DataType::Date => 1082,
            DataType::Timestamp => 1114,
            DataType::TimestampTz => 1184,
            DataType::Numeric(_) => 1700,
            DataType::Uuid => 2950,
            DataType::Array(e) => e.array_oid(),
        }
    }

    /// The type with a given OID, without modifiers.
    pub fn from_oid(oid: u32) -> Option<DataType> {
        Some(match oid {
            16 => DataType::Bool,
            17 => DataType::Bytea,
            19 => DataType::Name,
            20 => DataType::Int8,
            21 => DataType::Int2,
            23 => DataType::Int4,
            25 => DataType::Text,
            26 => DataType::Oid,
            700 => DataType::Float4,
            701 => DataType::Float8,
            705 => DataType::Unknown,
            1042 => DataType::Char(None),
            1043 => DataType::Varchar(None),
            1082 => DataType::Date,
            1114 => DataType::Timestamp,
            1184 => DataType::TimestampTz,
            1700 => DataType::Numeric(None),
            2950 => DataType::Uuid,
            1000 => DataType::Array(ArrayElem::Bool),
            1005 => DataType::Array(ArrayElem::Int2),
            1007 => DataType::Array(ArrayElem::Int4),
            1016 => DataType::Array(ArrayElem::Int8),
            1028 => DataType::Array(ArrayElem::Oid),
            1009 => DataType::Array(ArrayElem::Text),
            1003 => DataType::Array(ArrayElem::Name),
            _ => return None,
        })
    }

    /// The type's name as `format_type` prints it without modifiers, also used in error
    /// messages ("invalid input syntax for type integer").
    pub fn name(&self) -> &'static str {
        match self {
            DataType::Bool => "boolean",
            DataType::Int2 => "smallint",
            DataType::Int4 => "integer",
            DataType::Int8 => "bigint",
            DataType::Float4 => "real",
            DataType::Float8 => "double precision",
            DataType::Numeric(_) => "numeric",
            DataType::Text => "text",
            DataType::Varchar(_) => "character varying",
            DataType::Char(_) => "character",
            DataType::Bytea => "bytea",
            DataType::Date => "date",
            DataType::Timestamp => "timestamp without time zone",
            DataType::TimestampTz => "timestamp with time zone",
            DataType::Uuid => "uuid",
            DataType::Oid => "oid",
            DataType::Name => "name",
            DataType::Unknown => "unknown",
            DataType::Array(e) => match e {
                ArrayElem::Bool => "boolean[]",
                ArrayElem::Int2 => "smallint[]",
                ArrayElem::Int4 => "integer[]",
                ArrayElem::Int8 => "bigint[]",
                ArrayElem::Oid => "oid[]",
                ArrayElem::Text => "text[]",
                ArrayElem::Name => "name[]",
            },
        }
    }

    /// The full type name with modifiers, as `format_type(oid, typmod)` prints it.
    pub fn display_name(&self) -> String {
        match self {
            DataType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            DataType::Varchar(Some(n)) => format!("character varying({n})"),
            DataType::Char(Some(n)) => format!("character({n})"),
            other => other.name().to_string(),
        }
    }

    /// The type modifier PostgreSQL reports (atttypmod), -1 when there is none.
    pub fn typmod(&self) -> i32 {
        match self {
            DataType::Numeric(Some((p, s))) => ((i32::from(*p) << 16) | i32::from(*s)) + 4,
            DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => *n as i32 + 4,
            _ => -1,
        }
    }

    /// The size PostgreSQL reports for the type (typlen), -1 for variable length.
    pub fn typlen(&self) -> i16 {
        match self {
            DataType::Bool => 1,
            DataType::Int2 => 2,
            DataType::Int4 | DataType::Float4 | DataType::Date | DataType::Oid => 4,
            DataType::Int8 | DataType::Float8 | DataType::Timestamp | DataType::TimestampTz => 8,
            DataType::Uuid => 16,
            DataType::Name => 64,
            _ => -1,
        }
    }

    pub fn is_integer(&self) -> bool {
        matches!(self, DataType::Int2 | DataType::Int4 | DataType::Int8)
    }

    pub fn is_numeric_family(&self) -> bool {
        matches!(
            self,
            DataType::Int2
                | DataType::Int4
                | DataType::Int8
                | DataType::Float4
                | DataType::Float8
                | DataType::Numeric(_)
                | DataType::Oid
        )
    }

    pub fn is_string(&self) -> bool {
        matches!(
            self,
            DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Name | DataType::Unknown
        )
    }

    pub fn is_datetime(&self) -> bool {
        matches!(self, DataType::Date | DataType::Timestamp | DataType::TimestampTz)
    }

    /// The same type without modifiers (what an expression of this type produces).
    pub fn without_modifiers(&self) -> DataType {
        match self {
            DataType::Numeric(_) => DataType::Numeric(None),
            DataType::Varchar(_) => DataType::Varchar(None),
            DataType::Char(_) => DataType::Char(None),
            other => *other,
        }
    }

    /// Rank in the numeric promotion order (smallint < integer < bigint < numeric < real <
    /// double precision), as PostgreSQL's implicit casts go.
    pub fn numeric_rank(&self) -> Option<u8> {
        Some(match self {
            DataType::Int2 => 1,
            DataType::Int4 | DataType::Oid => 2,
            DataType::Int8 => 3,
            DataType::Numeric(_) => 4,
            DataType::Float4 => 5,
            DataType::Float8 => 6,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display_name())
    }
}
