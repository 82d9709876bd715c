//! sqlx against a Tessera cluster (issue 2: "tokio-postgres, sqlx and psycopg 3 work, prepared
//! statements included").
//!
//! sqlx differs from tokio-postgres in ways a server can trip over: it sends the parameter
//! types in Parse (from the Rust types bound) instead of letting the server infer them, caches
//! named prepared statements per connection and reuses them, closes the unnamed portal after
//! each Execute, decodes every result in binary, sends a `&str` or `raw_sql` through the simple
//! query protocol (several statements in one string), and tracks the transaction status of
//! every ReadyForQuery. The tests use sqlx's runtime API (`sqlx::query(...).bind(...)`), never
//! the compile-time macros, over one connection each so that "the connection stays usable"
//! means something.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgRow, PgSslMode};
use sqlx::query::Query;
use sqlx::{Column, Connection, Executor, PgConnection, Postgres, Row, TypeInfo};
use tessera_tests::Cluster;
use uuid::Uuid;

/// How long one statement may take before the test gives up on it: a hung server must fail
/// the test, not hang it.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A table with a column of every supported type, range-partitioned on `id` into two shards.
const DDL: [&str; 3] = [
    "CREATE TABLE t (id INT PRIMARY KEY, small SMALLINT, big BIGINT, r REAL, f DOUBLE PRECISION, \
     d NUMERIC(10,2), s TEXT, vc VARCHAR(20), b BOOLEAN, day DATE, ts TIMESTAMP, tstz TIMESTAMPTZ, \
     u UUID, raw BYTEA) PARTITION BY RANGE (id)",
    "CREATE TABLE t_low PARTITION OF t FOR VALUES FROM (MINVALUE) TO (100)",
    "CREATE TABLE t_high PARTITION OF t FOR VALUES FROM (100) TO (MAXVALUE)",
];

/// Every column of `t`, in order.
const COLUMNS: &str = "id, small, big, r, f, d, s, vc, b, day, ts, tstz, u, raw";

/// The type names sqlx reports for `SELECT COLUMNS FROM t` (from the described OIDs).
const COLUMN_TYPE_NAMES: [&str; 14] = [
    "INT4",
    "INT2",
    "INT8",
    "FLOAT4",
    "FLOAT8",
    "NUMERIC",
    "TEXT",
    "VARCHAR",
    "BOOL",
    "DATE",
    "TIMESTAMP",
    "TIMESTAMPTZ",
    "UUID",
    "BYTEA",
];

/// One row of `t`, with the Rust type sqlx maps each column to.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    id: i32,
    small: Option<i16>,
    big: Option<i64>,
    r: Option<f32>,
    f: Option<f64>,
    d: Option<Decimal>,
    s: Option<String>,
    vc: Option<String>,
    b: Option<bool>,
    day: Option<NaiveDate>,
    ts: Option<NaiveDateTime>,
    tstz: Option<DateTime<Utc>>,
    u: Option<Uuid>,
    raw: Option<Vec<u8>>,
}

impl Sample {
    /// A row whose every column but the key is NULL.
    fn nulls(id: i32) -> Sample {
        Sample {
            id,
            small: None,
            big: None,
            r: None,
            f: None,
            d: None,
            s: None,
            vc: None,
            b: None,
            day: None,
            ts: None,
            tstz: None,
            u: None,
            raw: None,
        }
    }

    /// Binds every column but `id` to `query`, in column order.
    fn bind_values<'q>(&self, query: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(self.small)
            .bind(self.big)
            .bind(self.r)
            .bind(self.f)
            .bind(self.d)
            .bind(self.s.clone())
            .bind(self.vc.clone())
            .bind(self.b)
            .bind(self.day)
            .bind(self.ts)
            .bind(self.tstz)
            .bind(self.u)
            .bind(self.raw.clone())
    }

    /// Binds every column, `id` first.
    fn bind_all<'q>(&self, query: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        self.bind_values(query.bind(self.id))
    }

    fn from_row(row: &PgRow) -> Sample {
        Sample {
            id: column(row, "id"),
            small: column(row, "small"),
            big: column(row, "big"),
            r: column(row, "r"),
            f: column(row, "f"),
            d: column(row, "d"),
            s: column(row, "s"),
            vc: column(row, "vc"),
            b: column(row, "b"),
            day: column(row, "day"),
            ts: column(row, "ts"),
            tstz: column(row, "tstz"),
            u: column(row, "u"),
            raw: column(row, "raw"),
        }
    }
}

/// The rows the tests insert: one in each shard with extreme and awkward values, and one of
/// NULLs.
fn samples() -> Vec<Sample> {
    vec![
        Sample {
            id: 1,
            small: Some(i16::MAX),
            big: Some(i64::MIN),
            r: Some(3.25),
            f: Some(-0.1),
            d: Some(Decimal::from_str("12345678.90").unwrap()),
            s: Some("héllo, wörld ✓ 'quoted' \\ back; -- not a comment".into()),
            vc: Some("varchar value".into()),
            b: Some(true),
            day: Some(date(2024, 2, 29)),
            ts: Some(timestamp(2024, 2, 29, 13, 45, 10, 123_456)),
            tstz: Some(timestamp(2024, 2, 29, 11, 45, 10, 500_000).and_utc()),
            u: Some(Uuid::from_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap()),
            raw: Some(vec![0, 1, 0x5c, 0x27, 0xfe, 0xff]),
        },
        Sample {
            id: 150,
            small: Some(i16::MIN),
            big: Some(i64::MAX),
            r: Some(-1.0e-30),
            f: Some(1.5e300),
            d: Some(Decimal::from_str("-0.01").unwrap()),
            s: Some(String::new()),
            vc: Some("exactly twenty chars".into()),
            b: Some(false),
            day: Some(date(1999, 12, 31)),
            ts: Some(timestamp(1970, 1, 1, 0, 0, 0, 0)),
            tstz: Some(timestamp(1969, 7, 20, 20, 17, 40, 0).and_utc()),
            u: Some(Uuid::nil()),
            raw: Some(Vec::new()),
        },
        Sample::nulls(2),
    ]
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}

fn timestamp(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> NaiveDateTime {
    date(y, mo, d)
        .and_hms_micro_opt(h, mi, s, micros)
        .expect("a valid time")
}

/// Column `name` of `row`, with a clear panic if sqlx cannot decode it as `T`.
fn column<'r, T>(row: &'r PgRow, name: &str) -> T
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(name)
        .unwrap_or_else(|e| panic!("column {name}: {e} ({e:?})"))
}

/// A sqlx error with everything known about it: the server's message and SQLSTATE when the
/// server sent it.
fn describe(error: &sqlx::Error) -> String {
    match error.as_database_error() {
        Some(db) => format!(
            "server error: {} (SQLSTATE {})",
            db.message(),
            db.code().as_deref().unwrap_or("none")
        ),
        None => format!("{error} ({error:?})"),
    }
}

/// The SQLSTATE of a server error, if the error came from the server.
fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .map(|c| c.into_owned())
}

/// Awaits `step`, panicking with `what` and the full error if it fails or hangs.
async fn ok<T>(what: &str, step: impl Future<Output = Result<T, sqlx::Error>>) -> T {
    match tokio::time::timeout(STATEMENT_TIMEOUT, step).await {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => panic!("{what} failed: {}", describe(&e)),
        Err(_) => panic!("{what} got no answer within {STATEMENT_TIMEOUT:?}"),
    }
}

/// Awaits `step`, which must fail with a server error of SQLSTATE `code`.
async fn fails_with<T: std::fmt::Debug>(what: &str, code: &str, step: impl Future<Output = Result<T, sqlx::Error>>) {
    match tokio::time::timeout(STATEMENT_TIMEOUT, step).await {
        Ok(Ok(value)) => panic!("{what} succeeded ({value:?}) but must fail with SQLSTATE {code}"),
        Ok(Err(e)) => assert_eq!(
            sqlstate(&e).as_deref(),
            Some(code),
            "{what} failed with the wrong error: {}",
            describe(&e)
        ),
        Err(_) => panic!("{what} got no answer within {STATEMENT_TIMEOUT:?}"),
    }
}

/// A new sqlx connection to the cluster's router, as user `tessera` to database `tessera`,
/// without TLS.
async fn connect(cluster: &Cluster) -> PgConnection {
    let addr = cluster.router_addr();
    let options = PgConnectOptions::new()
        .host(&addr.ip().to_string())
        .port(addr.port())
        .username(tessera_tests::client::USER)
        .database(tessera_tests::client::DATABASE)
        .application_name("tessera-tests-sqlx")
        .ssl_mode(PgSslMode::Disable);
    ok(
        &format!("connecting with sqlx to {addr}"),
        PgConnection::connect_with(&options),
    )
    .await
}

/// Creates `t` through the simple query protocol.
async fn create_table(conn: &mut PgConnection) {
    for statement in DDL {
        ok(statement, conn.execute(statement)).await;
    }
}

/// The ids in `t`, in order, read with a prepared statement.
async fn ids(conn: &mut PgConnection) -> Vec<i32> {
    let rows = ok(
        "SELECT id FROM t ORDER BY id",
        sqlx::query("SELECT id FROM t ORDER BY id").fetch_all(&mut *conn),
    )
    .await;
    rows.iter().map(|r| column(r, "id")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn values_of_every_type_round_trip_through_prepared_statements() {
    let cluster = Cluster::start(3).await;
    let mut conn = connect(&cluster).await;
    create_table(&mut conn).await;

    // INSERT with a parameter of every type, NULLs included. sqlx prepares the statement once
    // (Parse with the bound types) and reuses it for the next rows.
    let insert =
        format!("INSERT INTO t ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)");
    let rows = samples();
    for row in &rows {
        let done = ok(
            &format!("inserting row {}", row.id),
            row.bind_all(sqlx::query(&insert)).execute(&mut conn),
        )
        .await;
        assert_eq!(done.rows_affected(), 1, "INSERT of row {}", row.id);
    }
    assert_eq!(
        conn.cached_statements_size(),
        1,
        "sqlx should have prepared the INSERT once as a named statement and reused it"
    );

    // SELECT by key: every value comes back equal, decoded from binary.
    let select = format!("SELECT {COLUMNS} FROM t WHERE id = $1");
    for row in &rows {
        let read = ok(
            &format!("reading row {}", row.id),
            sqlx::query(&select).bind(row.id).fetch_one(&mut conn),
        )
        .await;
        let types: Vec<&str> = read.columns().iter().map(|c| c.type_info().name()).collect();
        assert_eq!(types, COLUMN_TYPE_NAMES, "described column types of `{select}`");
        assert_eq!(Sample::from_row(&read), *row, "row {} after the round trip", row.id);
    }

    // numeric(10,2) keeps its scale (12345678.90 and -0.01 are already at scale 2) and
    // rounds a value with more digits; 1234.5 comes back as 1234.50.
    ok(
        "UPDATE t SET d = $1 WHERE id = $2",
        sqlx::query("UPDATE t SET d = $1 WHERE id = $2")
            .bind(Decimal::from_str("1234.5").unwrap())
            .bind(150)
            .execute(&mut conn),
    )
    .await;
    ok(
        "UPDATE t SET d = $1 WHERE id = $2",
        sqlx::query("UPDATE t SET d = $1 WHERE id = $2")
            .bind(Decimal::from_str("2.345").unwrap())
            .bind(2)
            .execute(&mut conn),
    )
    .await;
    let nums: Vec<String> = ok(
        "SELECT d FROM t ORDER BY id",
        sqlx::query("SELECT d FROM t ORDER BY id").fetch_all(&mut conn),
    )
    .await
    .iter()
    .map(|r| column::<Decimal>(r, "d").to_string())
    .collect();
    assert_eq!(nums, ["12345678.90", "2.35", "1234.50"], "numeric(10,2) values");
    ok(
        "UPDATE t SET d = $1 WHERE id = $2",
        sqlx::query("UPDATE t SET d = $1 WHERE id = $2")
            .bind(None::<Decimal>)
            .bind(2)
            .execute(&mut conn),
    )
    .await;
    ok(
        "UPDATE t SET d = $1 WHERE id = $2",
        sqlx::query("UPDATE t SET d = $1 WHERE id = $2")
            .bind(rows[1].d)
            .bind(150)
            .execute(&mut conn),
    )
    .await;

    // A parameter of every type in a WHERE clause.
    let first = &rows[0];
    let found = ok(
        "SELECT with a parameter of every type in WHERE",
        first
            .bind_values(sqlx::query(
                "SELECT id FROM t WHERE small = $1 AND big = $2 AND r = $3 AND f = $4 AND d = $5 \
                 AND s = $6 AND vc = $7 AND b = $8 AND day = $9 AND ts = $10 AND tstz = $11 \
                 AND u = $12 AND raw = $13",
            ))
            .fetch_all(&mut conn),
    )
    .await;
    let found: Vec<i32> = found.iter().map(|r| column(r, "id")).collect();
    assert_eq!(found, [1], "rows matching every column of row 1");

    // Ranges over both shards, LIMIT as a parameter, NULL tests.
    let between: Vec<i32> = ok(
        "SELECT id FROM t WHERE id BETWEEN $1 AND $2",
        sqlx::query("SELECT id FROM t WHERE id BETWEEN $1 AND $2 ORDER BY id")
            .bind(0)
            .bind(1000)
            .fetch_all(&mut conn),
    )
    .await
    .iter()
    .map(|r| column(r, "id"))
    .collect();
    assert_eq!(between, [1, 2, 150]);
    let limited: Vec<i32> = ok(
        "SELECT id FROM t ORDER BY id DESC LIMIT $1",
        sqlx::query("SELECT id FROM t ORDER BY id DESC LIMIT $1")
            .bind(2i64)
            .fetch_all(&mut conn),
    )
    .await
    .iter()
    .map(|r| column(r, "id"))
    .collect();
    assert_eq!(limited, [150, 2]);
    let null_rows: i64 = column(
        &ok(
            "count of NULL rows",
            sqlx::query("SELECT count(*) AS n FROM t WHERE s IS NULL AND raw IS NULL AND u IS NULL")
                .fetch_one(&mut conn),
        )
        .await,
        "n",
    );
    assert_eq!(null_rows, 1);

    // Parameters echoed back: the types sqlx sends in Parse are the parameters' types, and so
    // the result columns' types, as in PostgreSQL.
    let echo = ok(
        "SELECT of 14 typed parameters",
        rows[0]
            .bind_all(sqlx::query(
                "SELECT $1 AS id, $2 AS small, $3 AS big, $4 AS r, $5 AS f, $6 AS d, $7 AS s, \
                 $8 AS vc, $9 AS b, $10 AS day, $11 AS ts, $12 AS tstz, $13 AS u, $14 AS raw",
            ))
            .fetch_one(&mut conn),
    )
    .await;
    let mut expected_echo = rows[0].clone();
    expected_echo.d = Some(Decimal::from_str("12345678.90").unwrap());
    assert_eq!(Sample::from_row(&echo), expected_echo, "parameters echoed by SELECT $n");
    let echo_nulls = ok(
        "SELECT of 14 NULL parameters",
        Sample::nulls(7)
            .bind_all(sqlx::query(
                "SELECT $1 AS id, $2 AS small, $3 AS big, $4 AS r, $5 AS f, $6 AS d, $7 AS s, \
                 $8 AS vc, $9 AS b, $10 AS day, $11 AS ts, $12 AS tstz, $13 AS u, $14 AS raw",
            ))
            .fetch_one(&mut conn),
    )
    .await;
    assert_eq!(
        Sample::from_row(&echo_nulls),
        Sample::nulls(7),
        "NULL parameters echoed"
    );

    // A statement sqlx does not cache (an unnamed statement), with RETURNING.
    let returned = ok(
        "INSERT ... RETURNING as an unnamed statement",
        sqlx::query("INSERT INTO t (id, s, u, small) VALUES ($1, $2, $3, $4) RETURNING id, s, u, small, big")
            .bind(3)
            .bind("returned")
            .bind(Uuid::from_u128(42))
            .bind(None::<i16>)
            .persistent(false)
            .fetch_one(&mut conn),
    )
    .await;
    assert_eq!(column::<i32>(&returned, "id"), 3);
    assert_eq!(column::<String>(&returned, "s"), "returned");
    assert_eq!(column::<Uuid>(&returned, "u"), Uuid::from_u128(42));
    assert_eq!(column::<Option<i16>>(&returned, "small"), None);
    assert_eq!(column::<Option<i64>>(&returned, "big"), None);

    // UPDATE and DELETE with NULL and non-NULL parameters.
    let updated = ok(
        "UPDATE t SET s = $1, r = $2 WHERE id = $3",
        sqlx::query("UPDATE t SET s = $1, r = $2 WHERE id = $3")
            .bind(None::<String>)
            .bind(Some(2.5f32))
            .bind(1)
            .execute(&mut conn),
    )
    .await;
    assert_eq!(updated.rows_affected(), 1);
    let read = ok("reading row 1", sqlx::query(&select).bind(1).fetch_one(&mut conn)).await;
    assert_eq!(column::<Option<String>>(&read, "s"), None);
    assert_eq!(column::<Option<f32>>(&read, "r"), Some(2.5));
    let deleted = ok(
        "DELETE FROM t WHERE id = $1 OR id = $2",
        sqlx::query("DELETE FROM t WHERE id = $1 OR id = $2")
            .bind(3)
            .bind(150)
            .execute(&mut conn),
    )
    .await;
    assert_eq!(deleted.rows_affected(), 2);
    assert_eq!(ids(&mut conn).await, [1, 2]);

    // LIMIT and OFFSET bound as i32: int4 parameters, which PostgreSQL takes as it takes int8.
    let page: Vec<i32> = ok(
        "SELECT id FROM t ORDER BY id LIMIT $1 OFFSET $2 with i32 parameters",
        sqlx::query("SELECT id FROM t ORDER BY id LIMIT $1 OFFSET $2")
            .bind(1i32)
            .bind(1i32)
            .fetch_all(&mut conn),
    )
    .await
    .iter()
    .map(|r| column(r, "id"))
    .collect();
    assert_eq!(page, [2], "LIMIT 1 OFFSET 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_statement_strings_run_through_the_simple_protocol() {
    let cluster = Cluster::start(3).await;
    let mut conn = connect(&cluster).await;
    create_table(&mut conn).await;

    // `raw_sql`: several statements in one Query message, with a literal of every type; the
    // rows affected add up. (The statements of one string run in one implicit transaction,
    // which may write to one shard only, so each string stays in one shard.)
    let done = ok(
        "raw_sql INSERT and UPDATE in the first shard",
        sqlx::raw_sql(
            "INSERT INTO t (id, small, big, r, f, d, s, vc, b, day, ts, tstz, u, raw) VALUES \
             (10, -7, 8999999999, 0.5, 2.25, 10.5, 'ten', 'vc ten', true, '2024-01-02', \
             '2024-01-02 03:04:05.678', '2024-01-02 03:04:05+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', \
             '\\x00ff'); \
             UPDATE t SET big = big + 1 WHERE id = 10",
        )
        .execute(&mut conn),
    )
    .await;
    assert_eq!(done.rows_affected(), 2, "rows affected by the INSERT and the UPDATE");
    let done = ok(
        "raw_sql INSERT and UPDATE in the second shard",
        sqlx::raw_sql(
            "INSERT INTO t (id, s, d, b) VALUES (110, 'one hundred ten', -3, false), (120, NULL, NULL, NULL); \
             UPDATE t SET big = 7 WHERE id >= 100",
        )
        .execute(&mut conn),
    )
    .await;
    assert_eq!(done.rows_affected(), 4, "rows affected by the INSERT and the UPDATE");

    // Rows of several SELECTs in one string arrive one after the other, as text.
    let rows = ok(
        "raw_sql with two SELECTs",
        sqlx::raw_sql("SELECT id, s FROM t WHERE id < 100; SELECT id, s FROM t WHERE id >= 100 ORDER BY id")
            .fetch_all(&mut conn),
    )
    .await;
    let read: Vec<(i32, Option<String>)> = rows.iter().map(|r| (column(r, "id"), column(r, "s"))).collect();
    assert_eq!(
        read,
        [
            (10, Some("ten".to_string())),
            (110, Some("one hundred ten".to_string())),
            (120, None)
        ]
    );

    // The literals were stored as their types say: read as text (simple protocol) and as
    // binary (a prepared statement).
    let expected = Sample {
        id: 10,
        small: Some(-7),
        big: Some(9_000_000_000),
        r: Some(0.5),
        f: Some(2.25),
        d: Some(Decimal::from_str("10.50").unwrap()),
        s: Some("ten".into()),
        vc: Some("vc ten".into()),
        b: Some(true),
        day: Some(date(2024, 1, 2)),
        ts: Some(timestamp(2024, 1, 2, 3, 4, 5, 678_000)),
        tstz: Some(timestamp(2024, 1, 2, 1, 4, 5, 0).and_utc()),
        u: Some(Uuid::from_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap()),
        raw: Some(vec![0, 0xff]),
    };
    let as_text = ok(
        "raw_sql SELECT of every type",
        sqlx::raw_sql(&format!("SELECT {COLUMNS} FROM t WHERE id = 10")).fetch_one(&mut conn),
    )
    .await;
    assert_eq!(Sample::from_row(&as_text), expected, "row 10 read as text");
    let as_binary = ok(
        "prepared SELECT of every type",
        sqlx::query(&format!("SELECT {COLUMNS} FROM t WHERE id = $1"))
            .bind(10)
            .fetch_one(&mut conn),
    )
    .await;
    assert_eq!(Sample::from_row(&as_binary), expected, "row 10 read as binary");

    // `execute` of a `&str` also goes through the simple protocol; here with an explicit
    // transaction in the string.
    let done = ok(
        "execute of BEGIN; INSERT; UPDATE; COMMIT",
        conn.execute(
            "BEGIN; INSERT INTO t (id, s) VALUES (11, 'eleven'); UPDATE t SET s = 'TEN' WHERE id = 10; COMMIT",
        ),
    )
    .await;
    assert_eq!(done.rows_affected(), 2);
    let names: Vec<String> = ok(
        "SELECT s FROM t WHERE id < $1",
        sqlx::query("SELECT s FROM t WHERE id < $1 ORDER BY id")
            .bind(100)
            .fetch_all(&mut conn),
    )
    .await
    .iter()
    .map(|r| column(r, "s"))
    .collect();
    assert_eq!(names, ["TEN", "eleven"]);

    // A failing statement in a string of several stops the string, and the implicit
    // transaction around the string undoes the statements before it in the same shard.
    fails_with(
        "raw_sql whose second INSERT repeats a key",
        "23505",
        sqlx::raw_sql(
            "INSERT INTO t (id, s) VALUES (12, 'twelve'); INSERT INTO t (id, s) VALUES (10, 'dup'); \
             INSERT INTO t (id, s) VALUES (13, 'thirteen')",
        )
        .execute(&mut conn),
    )
    .await;
    assert!(
        !conn.is_in_transaction(),
        "the failed string should leave no transaction open"
    );
    assert_eq!(
        ids(&mut conn).await,
        [10, 11, 110, 120],
        "nothing of the failed string stays"
    );
    fails_with(
        "raw_sql naming an unknown table",
        "42P01",
        sqlx::raw_sql("SELECT 1; SELECT * FROM nosuch").fetch_all(&mut conn),
    )
    .await;

    // The connection still serves prepared and simple statements.
    ok(
        "INSERT after the errors",
        sqlx::query("INSERT INTO t (id, s) VALUES ($1, $2)")
            .bind(12)
            .bind("twelve")
            .execute(&mut conn),
    )
    .await;
    ok(
        "raw_sql after the errors",
        sqlx::raw_sql("DELETE FROM t WHERE id = 11").execute(&mut conn),
    )
    .await;
    assert_eq!(ids(&mut conn).await, [10, 12, 110, 120]);
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_commit_and_roll_back_and_errors_keep_the_connection_usable() {
    let cluster = Cluster::start(3).await;
    let mut conn = connect(&cluster).await;
    create_table(&mut conn).await;
    let insert = "INSERT INTO t (id, s, big) VALUES ($1, $2, $3)";
    ok(
        "INSERT of row 1",
        sqlx::query(insert).bind(1).bind("one").bind(1i64).execute(&mut conn),
    )
    .await;

    // COMMIT: a transaction in one shard sees its own writes; another session sees them only
    // after COMMIT.
    let mut other = connect(&cluster).await;
    {
        let mut tx = ok("BEGIN", conn.begin()).await;
        ok(
            "INSERT of row 2 in a transaction",
            sqlx::query(insert).bind(2).bind("two").bind(2i64).execute(&mut *tx),
        )
        .await;
        ok(
            "UPDATE of row 1 in a transaction",
            sqlx::query("UPDATE t SET big = big + $1 WHERE id = $2")
                .bind(10i64)
                .bind(1)
                .execute(&mut *tx),
        )
        .await;
        let inside: Vec<(i32, i64)> = ok(
            "SELECT in the transaction",
            sqlx::query("SELECT id, big FROM t WHERE id < $1 ORDER BY id")
                .bind(100)
                .fetch_all(&mut *tx),
        )
        .await
        .iter()
        .map(|r| (column(r, "id"), column(r, "big")))
        .collect();
        assert_eq!(inside, [(1, 11), (2, 2)], "the transaction reads its own writes");
        assert_eq!(ids(&mut other).await, [1], "another session sees nothing before COMMIT");
        ok("COMMIT", tx.commit()).await;
    }
    assert!(!conn.is_in_transaction(), "COMMIT should end the transaction");
    assert_eq!(
        ids(&mut other).await,
        [1, 2],
        "another session sees the rows after COMMIT"
    );

    // ROLLBACK, explicitly and by dropping the transaction, in the other shard.
    {
        let mut tx = ok("BEGIN", conn.begin()).await;
        ok(
            "INSERT of row 200 in a transaction",
            sqlx::query(insert)
                .bind(200)
                .bind("gone")
                .bind(None::<i64>)
                .execute(&mut *tx),
        )
        .await;
        assert_eq!(ids(&mut tx).await, [1, 2, 200]);
        ok("ROLLBACK", tx.rollback()).await;
    }
    assert_eq!(ids(&mut conn).await, [1, 2], "ROLLBACK discards the INSERT");
    {
        let mut tx = ok("BEGIN", conn.begin()).await;
        ok(
            "DELETE in a transaction dropped without COMMIT",
            sqlx::query("DELETE FROM t WHERE id = $1").bind(2).execute(&mut *tx),
        )
        .await;
    }
    assert_eq!(ids(&mut conn).await, [1, 2], "a dropped transaction rolls back");
    assert!(!conn.is_in_transaction());

    // Errors, each with its SQLSTATE, on prepared statements.
    fails_with(
        "a duplicate key",
        "23505",
        sqlx::query(insert).bind(1).bind("again").bind(0i64).execute(&mut conn),
    )
    .await;
    fails_with(
        "a SELECT from an unknown table",
        "42P01",
        sqlx::query("SELECT * FROM nosuch WHERE id = $1")
            .bind(1)
            .fetch_all(&mut conn),
    )
    .await;
    fails_with(
        "an unknown column",
        "42703",
        sqlx::query("SELECT nosuch FROM t WHERE id = $1")
            .bind(1)
            .fetch_all(&mut conn),
    )
    .await;
    fails_with(
        "a syntax error",
        "42601",
        sqlx::query("SELEC id FROM t").fetch_all(&mut conn),
    )
    .await;
    fails_with(
        "a value too long for varchar(20)",
        "22001",
        sqlx::query("INSERT INTO t (id, vc) VALUES ($1, $2)")
            .bind(3)
            .bind("twenty-one characters")
            .execute(&mut conn),
    )
    .await;
    // As in PostgreSQL, a row is routed to its partition before NOT NULL is checked, and a
    // NULL key fits no range partition.
    fails_with(
        "a NULL partition key",
        "23514",
        sqlx::query(insert)
            .bind(None::<i32>)
            .bind("no key")
            .bind(0i64)
            .execute(&mut conn),
    )
    .await;
    fails_with(
        "a division by zero",
        "22012",
        sqlx::query("SELECT 10 / $1 AS q").bind(0).fetch_one(&mut conn),
    )
    .await;

    // The connection and its cached statements still work.
    ok(
        "INSERT after the errors",
        sqlx::query(insert).bind(3).bind("three").bind(3i64).execute(&mut conn),
    )
    .await;
    assert_eq!(ids(&mut conn).await, [1, 2, 3]);

    // An error inside a transaction aborts it until ROLLBACK; the connection recovers.
    {
        let mut tx = ok("BEGIN", conn.begin()).await;
        ok(
            "INSERT of row 4 in a transaction",
            sqlx::query(insert).bind(4).bind("four").bind(4i64).execute(&mut *tx),
        )
        .await;
        fails_with(
            "a duplicate key in a transaction",
            "23505",
            sqlx::query(insert).bind(4).bind("dup").bind(0i64).execute(&mut *tx),
        )
        .await;
        fails_with(
            "a statement in an aborted transaction",
            "25P02",
            sqlx::query("SELECT id FROM t WHERE id = $1")
                .bind(1)
                .fetch_all(&mut *tx),
        )
        .await;
        ok("ROLLBACK of the aborted transaction", tx.rollback()).await;
    }
    assert!(!conn.is_in_transaction());
    assert_eq!(ids(&mut conn).await, [1, 2, 3], "the aborted transaction left nothing");
    let one: (i32, String, i64) = ok(
        "SELECT after the aborted transaction",
        sqlx::query_as("SELECT id, s, big FROM t WHERE id = $1")
            .bind(1)
            .fetch_one(&mut conn),
    )
    .await;
    assert_eq!(one, (1, "one".to_string(), 11));
    ok("closing the connection", conn.close()).await;
    ok("closing the other connection", other.close()).await;
}
