//! Differential tests: each script of `tests/sql/` runs statement by statement on a fresh
//! 3-node Tessera cluster and on a fresh PostgreSQL, and every statement must have the same
//! outcome on both (see `tessera_tests::differential`). One test per script, named after it:
//! `cargo test -p tessera-tests --test differential select` runs `tests/sql/select.sql`.
//!
//! Two more tests keep the scripts honest: every script has its test, and every script does on
//! PostgreSQL alone exactly what its `-- error` annotations say, so a mistake in a script shows
//! up as a script bug and not as a Tessera bug.

use tessera_tests::differential::{check_script_on_postgres, load_script, run_script_file, script_names};
use tessera_tests::Postgres;

/// Defines one test per script and the list of the scripts that have one.
macro_rules! differential_tests {
    ($($script:ident),* $(,)?) => {
        /// The scripts in `tests/sql/` that have a test here.
        const SCRIPTS: &[&str] = &[$(stringify!($script)),*];

        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $script() {
                run_script_file(stringify!($script)).await;
            }
        )*
    };
}

differential_tests!(
    aggregates,
    ddl,
    errors,
    insert,
    select,
    transactions,
    types,
    update_delete
);

#[test]
fn every_script_has_a_test() {
    assert_eq!(
        script_names(),
        SCRIPTS,
        "tests/sql/*.sql and the differential_tests! list in tests/tests/differential.rs must name the same scripts"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_do_what_their_annotations_say_on_postgres() {
    let postgres = Postgres::start().await;
    for name in SCRIPTS {
        let database = format!("script_{name}");
        postgres.create_database(&database).await;
        let client = postgres.client_for(&database).await;
        let statements = load_script(name);
        assert!(!statements.is_empty(), "tests/sql/{name}.sql has no statements");
        if let Err(report) = check_script_on_postgres(&client, &statements, &format!("tests/sql/{name}.sql")).await {
            panic!("{report}");
        }
    }
}
