//! asyncpg (Python) against a Tessera cluster: a value of every supported type round-trips in
//! binary (asyncpg's only format for these types, with parameter types taken from the server's
//! Describe), prepared statements with fetch, fetchrow, fetchval and executemany, transactions,
//! a connection pool acquired and released many times whose reset on release (ROLLBACK, then
//! `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`) works and undoes what
//! a borrower changed, and errors that arrive with their SQLSTATE (23505, 25P02 until ROLLBACK).
//!
//! The checks live in `tests/python/asyncpg_test.py`; this test starts a cluster, runs the
//! script with the router's address in `TESSERA_ROUTER_ADDR` and fails, printing the script's
//! output, when the script does (see [`tessera_tests::script`]). The Python is
//! `$TESSERA_PYTHON`, the virtualenv that scripts/test.sh creates with asyncpg installed;
//! without it the test fails and says so, it never skips.

use tessera_tests::script::run_python_script;

#[tokio::test(flavor = "multi_thread")]
async fn asyncpg_binary_prepared_statements_pool_and_errors() {
    run_python_script("asyncpg_test.py", &["asyncpg"]).await;
}
