//! The router's errors, and the one place where every error gets its SQLSTATE
//! (`error_fields`). Errors that data causes on a shard arrive as `ExecError`s inside RPC
//! replies and are mapped here too, so a client sees the code PostgreSQL would send.

use tessera_types::rpc::RpcError;
use tessera_types::ExecError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Syntax(String),
    #[error("relation \"{0}\" does not exist")]
    UndefinedTable(String),
    #[error("column \"{0}\" does not exist")]
    UndefinedColumn(String),
    #[error("missing FROM-clause entry for table \"{0}\"")]
    MissingFrom(String),
    #[error("column reference \"{0}\" is ambiguous")]
    AmbiguousColumn(String),
    #[error("function {0} does not exist")]
    UndefinedFunction(String),
    #[error("operator does not exist: {0}")]
    UndefinedOperator(String),
    #[error("{0}")]
    DatatypeMismatch(String),
    #[error("{0}")]
    Grouping(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("unrecognized configuration parameter \"{0}\"")]
    UnknownSetting(String),
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    InvalidColumnReference(String),
    #[error("there is no unique or exclusion constraint matching the ON CONFLICT specification")]
    NoConflictTarget,
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    TxnAborted,
    #[error("{0}")]
    TxnState(String),
    /// A transaction command outside a transaction block.
    #[error("{0}")]
    NoTxn(String),
    #[error("savepoint \"{0}\" does not exist")]
    NoSavepoint(String),
    #[error("canceling statement due to user request")]
    Cancelled,
    #[error("canceling statement due to statement timeout")]
    StatementTimeout,
    /// The shard a statement was planned against was split (its bounds changed) before the
    /// statement got an answer from it; `maybe_applied` when an earlier attempt may have been
    /// applied.
    #[error("shard \"{shard}\" was split while the statement ran: run it again")]
    MapChanged { shard: String, maybe_applied: bool },
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Rpc(RpcError),
    /// A statement nests expressions deeper than `statement::MAX_EXPRESSION_DEPTH`.
    #[error("stack depth limit exceeded: an expression nests more than {0} levels deep")]
    TooDeep(usize),
    /// A COPY stopped: why, and where (which line, what was written).
    #[error("{cause}")]
    CopyFailed { cause: Box<Error>, context: String },
    /// A value, row or statement is larger than a shard accepts in one write.
    #[error("{0}")]
    TooBig(String),
    #[error("{0}")]
    Internal(String),
}

impl From<RpcError> for Error {
    fn from(e: RpcError) -> Error {
        match e {
            RpcError::Exec(e) => Error::Exec(e),
            other => Error::Rpc(other),
        }
    }
}

/// What a client is told about an error.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorFields {
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

fn exec_code(e: &ExecError) -> &'static str {
    match e {
        ExecError::DivisionByZero => "22012",
        ExecError::OutOfRange { .. } => "22003",
        ExecError::InvalidText { .. } => "22P02",
        ExecError::TextOutOfRange { .. } => "22003",
        ExecError::NumericFieldOverflow { .. } => "22003",
        ExecError::StringTooLong { .. } => "22001",
        ExecError::UniqueViolation { .. } => "23505",
        ExecError::NotNullViolation { .. } => "23502",
        ExecError::NoPartition { .. } => "23514",
        ExecError::SerializationFailure => "40001",
        ExecError::CannotCast { .. } => "42846",
        ExecError::InvalidEscape => "22025",
        ExecError::InvalidParameter(_) => "22023",
        ExecError::DatetimeOverflow(_) => "22008",
        ExecError::Other { code, .. } => known_code(code),
    }
}

/// Interns a SQLSTATE received as a string (codes are five ASCII characters).
fn known_code(code: &str) -> &'static str {
    const CODES: &[&str] = &[
        "0A000", "21000", "22001", "22003", "22007", "22008", "22011", "22012", "22021", "22023", "22025", "2201F",
        "2201W", "2201X", "22P04", "25P01", "42725", "42P05", "54001", "57014", "2201B", "3F000", "22P02", "22P03",
        "23502", "23505", "23514", "25P02", "40001", "40003", "42601", "42701", "42703", "42704", "42803", "42804",
        "42809", "42846", "42883", "42P01", "42P07", "42P10", "42P16", "42P17", "53000", "54000", "57014", "57P03",
        "58030", "XX000", "42710", "42501", "55006", "28P01", "28000",
    ];
    CODES.iter().find(|c| **c == code).copied().unwrap_or("XX000")
}

/// The SQLSTATE, message, detail and hint for an error.
pub fn error_fields(e: &Error) -> ErrorFields {
    if let Error::CopyFailed { cause, context } = e {
        let mut f = error_fields(cause);
        f.detail = Some(match f.detail {
            Some(d) => format!("{d} {context}"),
            None => context.clone(),
        });
        return f;
    }
    let mut detail = None;
    let mut hint = None;
    let code = match e {
        Error::Syntax(_) => "42601",
        Error::UndefinedTable(_) | Error::MissingFrom(_) => "42P01",
        Error::UndefinedColumn(_) => "42703",
        Error::AmbiguousColumn(_) => "42702",
        Error::UndefinedFunction(_) => {
            hint = Some(
                "No function matches the given name and argument types. You might need to add explicit type casts."
                    .into(),
            );
            "42883"
        }
        Error::UndefinedOperator(_) => {
            hint = Some(
                "No operator matches the given name and argument types. You might need to add explicit type casts."
                    .into(),
            );
            "42883"
        }
        Error::DatatypeMismatch(_) => "42804",
        Error::Grouping(_) => "42803",
        Error::Unsupported(_) => "0A000",
        Error::InvalidParameter(_) => "22023",
        Error::UnknownSetting(_) => "42704",
        Error::Protocol(_) => "08P01",
        Error::InvalidColumnReference(_) => "42P10",
        Error::NoConflictTarget => "42P10",
        Error::TxnAborted => "25P02",
        Error::TxnState(_) => "25000",
        Error::NoTxn(_) => "25P01",
        Error::NoSavepoint(_) => "3B001",
        Error::Cancelled | Error::StatementTimeout => "57014",
        Error::MapChanged { .. } => "40001",
        Error::Exec(x) => {
            match x {
                ExecError::UniqueViolation { detail: d, .. }
                | ExecError::NoPartition { detail: d, .. }
                | ExecError::NumericFieldOverflow { detail: d } => detail = Some(d.clone()),
                _ => {}
            }
            exec_code(x)
        }
        Error::Rpc(r) => match r {
            RpcError::Exec(x) => exec_code(x),
            RpcError::OutcomeUnknown(_) => "40003",
            RpcError::Unavailable { .. }
            | RpcError::Disconnected { .. }
            | RpcError::NotLeader { .. }
            | RpcError::Timeout(_) => "57P03",
            RpcError::TxnGone { .. } => "40001",
            _ => "XX000",
        },
        Error::CopyFailed { .. } => "XX000",
        Error::TooDeep(_) => {
            hint = Some("Write a long chain of OR-ed equalities as IN (...), or split the statement.".into());
            "54001"
        }
        Error::TooBig(_) => {
            hint = Some("Split the statement into smaller ones, or store large values outside the database.".into());
            "54000"
        }
        Error::Internal(_) => "XX000",
    };
    let message = match e {
        Error::Rpc(RpcError::Unavailable { addr, reason }) => {
            format!("a shard is unavailable ({addr}: {reason}); retry the statement")
        }
        Error::Rpc(RpcError::OutcomeUnknown(why)) => {
            format!("the write may or may not have been applied: {why}")
        }
        other => other.to_string(),
    };
    ErrorFields {
        code,
        message,
        detail,
        hint,
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_keep_postgres_codes() {
        assert_eq!(error_fields(&Error::Exec(ExecError::DivisionByZero)).code, "22012");
        assert_eq!(
            error_fields(&Error::from(RpcError::Exec(ExecError::SerializationFailure))).code,
            "40001"
        );
        let e = ExecError::UniqueViolation {
            constraint: "t_pkey".into(),
            detail: "Key (id)=(1) already exists.".into(),
        };
        let f = error_fields(&Error::Exec(e));
        assert_eq!(
            (f.code, f.detail.as_deref()),
            ("23505", Some("Key (id)=(1) already exists."))
        );
        assert_eq!(error_fields(&Error::Exec(ExecError::other("42P17", "x"))).code, "42P17");
    }
}
