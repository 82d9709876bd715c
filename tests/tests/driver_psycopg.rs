//! psycopg 3 (Python) against a Tessera cluster (issue 2: "tokio-postgres, sqlx and psycopg 3
//! work, prepared statements included").
//!
//! The checks live in `tests/python/psycopg_test.py`, which asserts in Python and exits non-zero
//! on the first failure; this test starts a cluster, runs the script with the router's address in
//! `TESSERA_ROUTER_ADDR` and fails, printing the script's output, when the script does (see
//! [`tessera_tests::script`]). The Python is `$TESSERA_PYTHON`: the virtualenv
//! `target/python-venv` that scripts/test.sh creates with `psycopg[binary]` installed. Without
//! it the test fails and says so; it never skips.

use tessera_tests::script::run_python_script;

#[tokio::test(flavor = "multi_thread")]
async fn psycopg_prepared_binary_transactions_and_errors() {
    run_python_script("psycopg_test.py", &["psycopg"]).await;
}
