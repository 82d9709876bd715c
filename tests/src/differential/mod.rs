//! Differential testing: replay a SQL script statement by statement on Tessera and on a real
//! PostgreSQL, and require the same outcome from both, PostgreSQL being the reference.
//!
//! For each statement the runner compares success against failure (and for failures the
//! SQLSTATE), the column names, the rows as text (in order when the statement has `ORDER BY`,
//! as a multiset otherwise) and the row counts of the command tags. Every mismatch is reported
//! with the script's file and line, the statement, and a diff of both outcomes; all of a
//! script's mismatches are reported together.
//!
//! The script format is described in [`script`]; the scripts are `tests/sql/*.sql`, one test
//! each in `tests/tests/differential.rs`.

pub mod diff;
pub mod outcome;
pub mod script;

use std::path::PathBuf;

use tokio_postgres::Client;

use crate::cluster::Cluster;
use crate::postgres::Postgres;
use crate::process::indent;
use diff::line_diff;
use outcome::{run_statement, Outcome};
use script::{parse_script, Statement};

/// Number of nodes of the cluster a differential test runs on.
pub const DIFFERENTIAL_NODES: usize = 3;

/// Runs `script` on a fresh 3-node Tessera cluster and a fresh PostgreSQL and panics with a
/// report if they disagree on any statement.
pub async fn run_script_both(script: &str) {
    run_named_script("<inline script>", script).await;
}

/// Runs `tests/sql/<name>.sql` as [`run_script_both`] does.
pub async fn run_script_file(name: &str) {
    let path = sql_dir().join(format!("{name}.sql"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    run_named_script(&format!("tests/sql/{name}.sql"), &text).await;
}

/// The directory of the differential scripts, `tests/sql`.
pub fn sql_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sql")
}

/// The names (without `.sql`) of every script in `tests/sql`, sorted.
pub fn script_names() -> Vec<String> {
    let dir = sql_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".sql").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Reads and parses `tests/sql/<name>.sql`, panicking on a malformed script.
pub fn load_script(name: &str) -> Vec<Statement> {
    let path = sql_dir().join(format!("{name}.sql"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_script(&text).unwrap_or_else(|e| panic!("tests/sql/{name}.sql: {e}"))
}

async fn run_named_script(source: &str, text: &str) {
    let statements = parse_script(text).unwrap_or_else(|e| panic!("{source}: {e}"));
    let (cluster, postgres) = tokio::join!(Cluster::start(DIFFERENTIAL_NODES), Postgres::start());
    let tessera_client = cluster.client().await;
    let postgres_client = postgres.client().await;
    if let Err(report) = compare_script(&tessera_client, &postgres_client, &statements, source).await {
        panic!("{report}");
    }
    drop((cluster, postgres));
}

/// Runs every statement on both servers, PostgreSQL first. Fails at once if PostgreSQL does
/// not do what the script expects (a bug in the script); otherwise collects every statement
/// on which Tessera disagrees with PostgreSQL and returns them as one report.
pub async fn compare_script(
    tessera: &Client,
    postgres: &Client,
    statements: &[Statement],
    source: &str,
) -> Result<(), String> {
    let mut mismatches = Vec::new();
    for statement in statements {
        let expected = run_statement(postgres, &statement.sql).await;
        check_expectation(statement, &expected, source)?;
        let actual = run_statement(tessera, &statement.sql).await;
        let (expected, actual) = if statement.ordered {
            (expected, actual)
        } else {
            (expected.with_sorted_rows(), actual.with_sorted_rows())
        };
        if !actual.agrees_with(&expected) {
            mismatches.push(mismatch_report(statement, &expected, &actual, source));
        }
        if tessera.is_closed() {
            mismatches.push(format!(
                "{source}:{}: the connection to Tessera closed; the rest of the script was not run",
                statement.line
            ));
            break;
        }
    }
    if mismatches.is_empty() {
        return Ok(());
    }
    Err(format!(
        "Tessera disagrees with PostgreSQL on {} of the {} statements of {source} \
         (`-` lines: PostgreSQL, the reference; `+` lines: Tessera):\n\n{}",
        mismatches.len(),
        statements.len(),
        mismatches.join("\n\n")
    ))
}

/// Runs every statement on PostgreSQL alone and checks that each does what the script
/// expects, so the scripts themselves are known to be right before Tessera is judged by them.
pub async fn check_script_on_postgres(postgres: &Client, statements: &[Statement], source: &str) -> Result<(), String> {
    for statement in statements {
        let outcome = run_statement(postgres, &statement.sql).await;
        check_expectation(statement, &outcome, source)?;
    }
    Ok(())
}

/// `Ok` if PostgreSQL's outcome is what the script's annotation (or its absence) says.
fn check_expectation(statement: &Statement, outcome: &Outcome, source: &str) -> Result<(), String> {
    let problem = match (statement.expected_error.as_deref(), outcome.error_code()) {
        (None, None) => return Ok(()),
        (Some(wanted), Some(got)) if wanted == got => return Ok(()),
        (None, Some(_)) => "PostgreSQL rejected a statement the script expects to succeed \
                            (annotate it with `-- error SQLSTATE` if that is intended)"
            .to_string(),
        (Some(wanted), None) => {
            format!("PostgreSQL accepted a statement the script expects to fail with {wanted}")
        }
        (Some(wanted), Some(got)) => {
            format!("PostgreSQL failed with {got}, the script expects {wanted}")
        }
    };
    Err(format!(
        "bug in the script {source}:{}: {problem}\n{}\nPostgreSQL's outcome:\n{}",
        statement.line,
        indent(&statement.sql, "    "),
        indent(&outcome.render().join("\n"), "    ")
    ))
}

fn mismatch_report(statement: &Statement, expected: &Outcome, actual: &Outcome, source: &str) -> String {
    let order = if statement.ordered {
        "rows compared in order"
    } else {
        "rows compared as a multiset, shown sorted"
    };
    let diff = line_diff(&expected.render(), &actual.render());
    format!(
        "{source}:{} ({order}):\n{}\n--- postgres\n+++ tessera\n{}",
        statement.line,
        indent(&statement.sql, "    "),
        diff.join("\n")
    )
}
