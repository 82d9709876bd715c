//! The format of a differential SQL script (`tests/sql/*.sql`) and its parser.
//!
//! A script is a sequence of statements, each ending with `;` at the end of a line: one
//! statement per line, or a block of lines whose last line ends with `;`. The text sent is
//! everything from the statement's first line to that `;`, so one block may also hold several
//! statements (`INSERT ...; INSERT ...;` on one line), which are then sent as one query string.
//!
//! Lines starting with `--` are comments, except an annotation that applies to the statement
//! after it:
//!
//! - `-- error SQLSTATE [note]`: PostgreSQL must reject the statement with this SQLSTATE (and
//!   Tessera must too). A statement without it must succeed on PostgreSQL. This keeps the
//!   scripts honest: a typo that makes a statement fail on both systems is caught.
//!
//! A statement containing `ORDER BY` is compared row by row; any other statement's rows are
//! compared as a multiset, since their order is undefined.

/// One statement of a script, with what the script expects of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The 1-based line it starts on.
    pub line: usize,
    /// The text sent to the server.
    pub sql: String,
    /// The SQLSTATE PostgreSQL must answer with, if the statement is meant to fail.
    pub expected_error: Option<String>,
    /// Whether the order of the rows is defined (the statement contains `ORDER BY`).
    pub ordered: bool,
}

/// Splits a script into statements. Errors name the line at fault.
pub fn parse_script(text: &str) -> Result<Vec<Statement>, String> {
    let mut statements = Vec::new();
    let mut pending_error: Option<(usize, String)> = None;
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim();
        if let Some(comment) = trimmed.strip_prefix("--") {
            if let Some(code) = parse_error_annotation(comment, number)? {
                if current.is_some() {
                    return Err(format!("line {number}: an `-- error` annotation inside a statement"));
                }
                if let Some((previous, _)) = pending_error.replace((number, code)) {
                    return Err(format!(
                        "line {previous}: an `-- error` annotation not followed by a statement"
                    ));
                }
            }
            continue;
        }
        if trimmed.is_empty() && current.is_none() {
            continue;
        }
        let (_, lines) = current.get_or_insert_with(|| (number, Vec::new()));
        lines.push(line);
        if trimmed.ends_with(';') {
            let (start, lines) = current.take().expect("a statement is being read");
            let sql = lines.join("\n").trim().to_string();
            statements.push(Statement {
                line: start,
                ordered: has_order_by(&sql),
                expected_error: pending_error.take().map(|(_, code)| code),
                sql,
            });
        }
    }
    if let Some((start, _)) = current {
        return Err(format!(
            "line {start}: the statement starting here does not end with `;` at the end of a line"
        ));
    }
    if let Some((line, _)) = pending_error {
        return Err(format!(
            "line {line}: an `-- error` annotation not followed by a statement"
        ));
    }
    Ok(statements)
}

/// The SQLSTATE of an `-- error SQLSTATE [note]` annotation (given without its `--`), or
/// `None` for an ordinary comment.
fn parse_error_annotation(comment: &str, line: usize) -> Result<Option<String>, String> {
    let mut words = comment.split_whitespace();
    if words.next() != Some("error") {
        return Ok(None);
    }
    match words.next() {
        Some(code) if code.len() == 5 && code.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) => {
            Ok(Some(code.to_string()))
        }
        other => Err(format!(
            "line {line}: `-- error` must be followed by a five-character SQLSTATE, found {other:?}"
        )),
    }
}

/// Whether the statement says `ORDER BY` anywhere (so its rows come in a defined order).
fn has_order_by(sql: &str) -> bool {
    let words: Vec<String> = sql.split_whitespace().map(str::to_ascii_uppercase).collect();
    words.windows(2).any(|w| w[0] == "ORDER" && w[1] == "BY")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_blocks_and_annotations() {
        let script = "-- a comment\n\
                      SELECT 1;\n\
                      \n\
                      -- error 42P01 no such table\n\
                      SELECT *\n  FROM nosuch\n  ORDER BY 1;\n\
                      INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);\n";
        let statements = parse_script(script).unwrap();
        assert_eq!(statements.len(), 3);
        assert_eq!(
            statements[0],
            Statement {
                line: 2,
                sql: "SELECT 1;".into(),
                expected_error: None,
                ordered: false
            }
        );
        assert_eq!(statements[1].line, 5);
        assert_eq!(statements[1].sql, "SELECT *\n  FROM nosuch\n  ORDER BY 1;");
        assert_eq!(statements[1].expected_error.as_deref(), Some("42P01"));
        assert!(statements[1].ordered);
        assert_eq!(statements[2].sql, "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);");
        assert_eq!(statements[2].expected_error, None);
    }

    #[test]
    fn order_by_is_found_across_whitespace_and_case() {
        assert!(has_order_by("select a from t order\n   by a;"));
        assert!(!has_order_by("SELECT border, byte FROM t;"));
    }

    #[test]
    fn rejects_malformed_scripts() {
        assert!(parse_script("SELECT 1").unwrap_err().contains("line 1"));
        assert!(parse_script("-- error 42601\n").unwrap_err().contains("line 1"));
        assert!(parse_script("-- error 4260\nSELECT 1;")
            .unwrap_err()
            .contains("SQLSTATE"));
        assert!(parse_script("-- error 42601\n-- error 42601\nSELECT 1;").is_err());
        assert!(parse_script("SELECT\n-- error 42601\n1;").is_err());
    }
}
