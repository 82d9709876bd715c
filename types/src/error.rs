//! Errors that data itself can cause: evaluating an expression, converting a value, violating a
//! constraint. They travel from shard nodes to the router inside RPC replies, so they are plain
//! serializable data. This module does not decide SQLSTATEs: the router maps every error to its
//! SQLSTATE in one place (`router/src/error.rs`).

use serde::{Deserialize, Serialize};

/// An error caused by the values a statement works on.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ExecError {
    #[error("division by zero")]
    DivisionByZero,
    /// Arithmetic overflow, e.g. "integer out of range".
    #[error("{type_name} out of range")]
    OutOfRange { type_name: String },
    #[error("invalid input syntax for type {type_name}: \"{input}\"")]
    InvalidText { type_name: String, input: String },
    #[error("value \"{input}\" is out of range for type {type_name}")]
    TextOutOfRange { type_name: String, input: String },
    #[error("numeric field overflow")]
    NumericFieldOverflow { detail: String },
    #[error("value too long for type {type_name}")]
    StringTooLong { type_name: String },
    #[error("duplicate key value violates unique constraint \"{constraint}\"")]
    UniqueViolation { constraint: String, detail: String },
    #[error("null value in column \"{column}\" of relation \"{table}\" violates not-null constraint")]
    NotNullViolation { table: String, column: String },
    #[error("no partition of relation \"{table}\" found for row")]
    NoPartition { table: String, detail: String },
    #[error("could not serialize access due to concurrent update")]
    SerializationFailure,
    #[error("cannot cast type {from} to {to}")]
    CannotCast { from: String, to: String },
    #[error("invalid escape string")]
    InvalidEscape,
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    DatetimeOverflow(String),
    /// Anything the above do not name, with the SQLSTATE it must carry.
    #[error("{message}")]
    Other { code: String, message: String },
}

impl ExecError {
    pub fn out_of_range(type_name: &str) -> Self {
        ExecError::OutOfRange {
            type_name: type_name.to_string(),
        }
    }

    pub fn invalid_text(type_name: &str, input: &str) -> Self {
        ExecError::InvalidText {
            type_name: type_name.to_string(),
            input: input.to_string(),
        }
    }

    pub fn text_out_of_range(type_name: &str, input: &str) -> Self {
        ExecError::TextOutOfRange {
            type_name: type_name.to_string(),
            input: input.to_string(),
        }
    }

    pub fn other(code: &str, message: impl Into<String>) -> Self {
        ExecError::Other {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

pub type ExecResult<T> = Result<T, ExecError>;
