//! What one statement did, captured through the simple query protocol in a form that can be
//! compared across servers: an error (compared by SQLSTATE only, since messages may be worded
//! differently) or, per statement of the query string, the column names, the rows as text and
//! the row count of the command tag.

use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::client::{describe_error, sqlstate};

/// How long one statement may run before it counts as failed.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The result of one statement of a query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultSet {
    /// Column names, if the statement returned a row description.
    pub columns: Option<Vec<String>>,
    /// The rows, each value in text format (`None` is NULL).
    pub rows: Vec<Vec<Option<String>>>,
    /// The number at the end of the command tag (`INSERT 0 3` → 3; 0 for tags without one).
    pub count: u64,
}

/// What sending one query string did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every statement succeeded.
    Ok(Vec<ResultSet>),
    /// The query string failed (any results before the error are dropped by the client).
    Error {
        /// The SQLSTATE, `None` if the error did not come from the server.
        code: Option<String>,
        /// Everything known about the error, for reports.
        message: String,
    },
}

impl Outcome {
    /// The SQLSTATE of a failure, `None` for success.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Outcome::Error { code, .. } => Some(code.as_deref().unwrap_or("(none)")),
            Outcome::Ok(_) => None,
        }
    }

    /// The same outcome with its rows sorted, for statements whose row order is undefined.
    pub fn with_sorted_rows(&self) -> Outcome {
        match self {
            Outcome::Ok(sets) => Outcome::Ok(
                sets.iter()
                    .map(|set| {
                        let mut set = set.clone();
                        set.rows.sort();
                        set
                    })
                    .collect(),
            ),
            error => error.clone(),
        }
    }

    /// Whether two outcomes agree: both failed with the same SQLSTATE, or both succeeded with
    /// the same results.
    pub fn agrees_with(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Ok(a), Outcome::Ok(b)) => a == b,
            (Outcome::Error { code: a, .. }, Outcome::Error { code: b, .. }) => a.is_some() && a == b,
            _ => false,
        }
    }

    /// The outcome as lines of text, for reports and diffs.
    pub fn render(&self) -> Vec<String> {
        match self {
            Outcome::Error { code: Some(_), message } => vec![format!("failed: {message}")],
            Outcome::Error { code: None, message } => {
                vec![format!("failed without SQLSTATE: {message}")]
            }
            Outcome::Ok(sets) => {
                let mut lines = Vec::new();
                for (i, set) in sets.iter().enumerate() {
                    if sets.len() > 1 {
                        lines.push(format!("result {}:", i + 1));
                    }
                    match &set.columns {
                        Some(columns) => lines.push(format!("columns: {}", columns.join(", "))),
                        None => lines.push("no columns".to_string()),
                    }
                    for row in &set.rows {
                        let values: Vec<String> = row.iter().map(render_value).collect();
                        lines.push(format!("row: {}", values.join(" | ")));
                    }
                    lines.push(format!("command tag count: {}", set.count));
                }
                lines
            }
        }
    }
}

fn render_value(value: &Option<String>) -> String {
    match value {
        None => "NULL".to_string(),
        Some(text) => format!("{text:?}"),
    }
}

/// Sends `sql` as one simple query and captures what happened. A statement that runs longer
/// than [`STATEMENT_TIMEOUT`] is a failure without SQLSTATE.
pub async fn run_statement(client: &Client, sql: &str) -> Outcome {
    match tokio::time::timeout(STATEMENT_TIMEOUT, client.simple_query(sql)).await {
        Ok(Ok(messages)) => Outcome::Ok(collect_results(&messages)),
        Ok(Err(e)) => Outcome::Error {
            code: sqlstate(&e).map(str::to_string),
            message: describe_error(&e),
        },
        Err(_) => Outcome::Error {
            code: None,
            message: format!("no answer within {STATEMENT_TIMEOUT:?}"),
        },
    }
}

/// Groups a simple query's messages into one result per statement.
fn collect_results(messages: &[SimpleQueryMessage]) -> Vec<ResultSet> {
    let mut sets = Vec::new();
    let mut current: Option<ResultSet> = None;
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(columns) => {
                let names = columns.iter().map(|c| c.name().to_string()).collect();
                current = Some(ResultSet {
                    columns: Some(names),
                    rows: Vec::new(),
                    count: 0,
                });
            }
            SimpleQueryMessage::Row(row) => {
                let set = current.get_or_insert_with(|| ResultSet {
                    columns: Some(row.columns().iter().map(|c| c.name().to_string()).collect()),
                    rows: Vec::new(),
                    count: 0,
                });
                set.rows
                    .push((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect());
            }
            SimpleQueryMessage::CommandComplete(count) => {
                let mut set = current.take().unwrap_or(ResultSet {
                    columns: None,
                    rows: Vec::new(),
                    count: 0,
                });
                set.count = *count;
                sets.push(set);
            }
            _ => {}
        }
    }
    sets.extend(current);
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rows: &[&[Option<&str>]]) -> ResultSet {
        ResultSet {
            columns: Some(vec!["a".into(), "b".into()]),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
                .collect(),
            count: rows.len() as u64,
        }
    }

    #[test]
    fn errors_agree_by_sqlstate_only() {
        let a = Outcome::Error {
            code: Some("23505".into()),
            message: "duplicate key".into(),
        };
        let b = Outcome::Error {
            code: Some("23505".into()),
            message: "another wording".into(),
        };
        let c = Outcome::Error {
            code: Some("23502".into()),
            message: "duplicate key".into(),
        };
        let none = Outcome::Error {
            code: None,
            message: "connection closed".into(),
        };
        assert!(a.agrees_with(&b));
        assert!(!a.agrees_with(&c));
        assert!(!none.agrees_with(&none.clone()));
        assert!(!a.agrees_with(&Outcome::Ok(vec![])));
    }

    #[test]
    fn unordered_results_compare_as_multisets() {
        let x = Outcome::Ok(vec![set(&[&[Some("1"), None], &[Some("2"), Some("b")]])]);
        let y = Outcome::Ok(vec![set(&[&[Some("2"), Some("b")], &[Some("1"), None]])]);
        let z = Outcome::Ok(vec![set(&[&[Some("2"), Some("b")], &[Some("2"), Some("b")]])]);
        assert!(!x.agrees_with(&y));
        assert!(x.with_sorted_rows().agrees_with(&y.with_sorted_rows()));
        assert!(!x.with_sorted_rows().agrees_with(&z.with_sorted_rows()));
    }

    #[test]
    fn null_and_the_text_null_render_differently() {
        let lines = Outcome::Ok(vec![set(&[&[None, Some("NULL")]])]).render();
        assert_eq!(
            lines,
            vec!["columns: a, b", "row: NULL | \"NULL\"", "command tag count: 1"]
        );
    }
}
