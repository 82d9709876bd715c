//! SQLAlchemy 2 (Python, with its psycopg 3 dialect) against a Tessera cluster: create_all of a
//! declarative model with a column of every supported type on a range-partitioned table, the
//! ORM Session adding, committing, querying, updating and deleting rows, transactions,
//! IntegrityError with SQLSTATE 23505 and 25P02 after an error in a transaction, and the
//! catalog queries behind `inspect(engine)` (get_columns, get_pk_constraint) and table
//! reflection (`Table(name, MetaData(), autoload_with=engine)`), then Core through the
//! reflected table.
//!
//! The checks live in `tests/python/sqlalchemy_test.py`; this test starts a cluster, runs the
//! script with the router's address in `TESSERA_ROUTER_ADDR` and fails, printing the script's
//! output, when the script does (see [`tessera_tests::script`]). The Python is
//! `$TESSERA_PYTHON`, the virtualenv that scripts/test.sh creates with SQLAlchemy 2 and
//! psycopg 3 installed; without it the test fails and says so, it never skips.

use tessera_tests::script::run_python_script;

#[tokio::test(flavor = "multi_thread")]
async fn sqlalchemy_orm_transactions_errors_and_reflection() {
    run_python_script("sqlalchemy_test.py", &["sqlalchemy", "psycopg"]).await;
}
