//! psycopg2 (Python) against a Tessera cluster: a value of every supported type round-trips
//! through parameters that psycopg2 quotes into the SQL text on the client (so through the
//! simple query protocol, literals and casts), executemany and execute_values, transactions
//! that commit and roll back, and errors that arrive with their SQLSTATE (23505 for a duplicate
//! key, 25P02 for every statement after an error in a transaction) on a connection that stays
//! usable. Server-side cursors (DECLARE/FETCH) are not supported by Tessera and not tested.
//!
//! The checks live in `tests/python/psycopg2_test.py`; this test starts a cluster, runs the
//! script with the router's address in `TESSERA_ROUTER_ADDR` and fails, printing the script's
//! output, when the script does (see [`tessera_tests::script`]). The Python is
//! `$TESSERA_PYTHON`, the virtualenv that scripts/test.sh creates with psycopg2-binary
//! installed; without it the test fails and says so, it never skips.

use tessera_tests::script::run_python_script;

#[tokio::test(flavor = "multi_thread")]
async fn psycopg2_every_type_executemany_transactions_and_errors() {
    run_python_script("psycopg2_test.py", &["psycopg2"]).await;
}
