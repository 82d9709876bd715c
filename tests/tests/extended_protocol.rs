//! The extended query protocol as tokio-postgres speaks it: Parse without parameter types,
//! Describe (the server infers every parameter's type), Bind with binary parameters and
//! binary results. Values of every supported type, NULLs included, must round-trip through
//! INSERT and SELECT exactly; errors must arrive as errors with their SQLSTATE, and the
//! connection must stay usable after them, as with PostgreSQL.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use tessera_tests::{describe_error, execute, Cluster};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};
use uuid::Uuid;

/// The table, range-partitioned so that rows go to two shards.
const TYPED_DDL: [&str; 3] = [
    "CREATE TABLE typed (id INT PRIMARY KEY, c_small SMALLINT, c_int INTEGER, c_big BIGINT, \
     c_real REAL, c_double DOUBLE PRECISION, c_num NUMERIC(12,4), c_text TEXT, \
     c_varchar VARCHAR(20), c_char CHAR(5), c_bool BOOLEAN, c_date DATE, c_ts TIMESTAMP, \
     c_tstz TIMESTAMPTZ, c_uuid UUID, c_bytea BYTEA) PARTITION BY RANGE (id)",
    "CREATE TABLE typed_low PARTITION OF typed FOR VALUES FROM (MINVALUE) TO (100)",
    "CREATE TABLE typed_high PARTITION OF typed FOR VALUES FROM (100) TO (MAXVALUE)",
];

/// The types of the table's columns, in order: what the server must infer for
/// `INSERT INTO typed VALUES ($1, ..., $16)` and describe for `SELECT *`.
const COLUMN_TYPES: [Type; 16] = [
    Type::INT4,
    Type::INT2,
    Type::INT4,
    Type::INT8,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::NUMERIC,
    Type::TEXT,
    Type::VARCHAR,
    Type::BPCHAR,
    Type::BOOL,
    Type::DATE,
    Type::TIMESTAMP,
    Type::TIMESTAMPTZ,
    Type::UUID,
    Type::BYTEA,
];

/// One row of `typed`, with the Rust type tokio-postgres maps each column to.
#[derive(Debug, Clone, PartialEq)]
struct TypedRow {
    id: i32,
    small: Option<i16>,
    int: Option<i32>,
    big: Option<i64>,
    real: Option<f32>,
    double: Option<f64>,
    num: Option<Decimal>,
    text: Option<String>,
    varchar: Option<String>,
    chars: Option<String>,
    flag: Option<bool>,
    date: Option<NaiveDate>,
    ts: Option<NaiveDateTime>,
    tstz: Option<DateTime<Utc>>,
    uuid: Option<Uuid>,
    bytes: Option<Vec<u8>>,
}

impl TypedRow {
    /// A row whose every column but the key is NULL.
    fn nulls(id: i32) -> TypedRow {
        TypedRow {
            id,
            small: None,
            int: None,
            big: None,
            real: None,
            double: None,
            num: None,
            text: None,
            varchar: None,
            chars: None,
            flag: None,
            date: None,
            ts: None,
            tstz: None,
            uuid: None,
            bytes: None,
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 16] {
        [
            &self.id,
            &self.small,
            &self.int,
            &self.big,
            &self.real,
            &self.double,
            &self.num,
            &self.text,
            &self.varchar,
            &self.chars,
            &self.flag,
            &self.date,
            &self.ts,
            &self.tstz,
            &self.uuid,
            &self.bytes,
        ]
    }

    fn from_row(row: &Row) -> TypedRow {
        TypedRow {
            id: column(row, "id"),
            small: column(row, "c_small"),
            int: column(row, "c_int"),
            big: column(row, "c_big"),
            real: column(row, "c_real"),
            double: column(row, "c_double"),
            num: column(row, "c_num"),
            text: column(row, "c_text"),
            varchar: column(row, "c_varchar"),
            chars: column(row, "c_char"),
            flag: column(row, "c_bool"),
            date: column(row, "c_date"),
            ts: column(row, "c_ts"),
            tstz: column(row, "c_tstz"),
            uuid: column(row, "c_uuid"),
            bytes: column(row, "c_bytea"),
        }
    }
}

/// Column `name` of `row` decoded from its binary format, with a clear panic if it cannot be.
fn column<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, name: &str) -> T {
    row.try_get(name)
        .unwrap_or_else(|e| panic!("column {name}: {e}: {e:?}"))
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}

fn timestamp(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> NaiveDateTime {
    date(y, mo, d)
        .and_hms_micro_opt(h, mi, s, micros)
        .expect("a valid time")
}

/// The rows inserted, each as sent; [`as_stored`] gives what the server must return.
fn sample_rows() -> Vec<TypedRow> {
    vec![
        TypedRow {
            id: 1,
            small: Some(i16::MAX),
            int: Some(i32::MIN),
            big: Some(i64::MAX),
            real: Some(3.25),
            double: Some(-0.1),
            num: Some(Decimal::from_str("1234.5").unwrap()),
            text: Some("héllo, wörld ✓ 'quoted' \\ back".into()),
            varchar: Some("varchar value".into()),
            chars: Some("ab".into()),
            flag: Some(true),
            date: Some(date(2024, 2, 29)),
            ts: Some(timestamp(2024, 2, 29, 13, 45, 10, 123_456)),
            tstz: Some(timestamp(2024, 2, 29, 11, 45, 10, 500_000).and_utc()),
            uuid: Some(Uuid::from_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap()),
            bytes: Some(vec![0, 1, 0x5c, 0x27, 0xfe, 0xff]),
        },
        TypedRow {
            id: 150,
            small: Some(i16::MIN),
            int: Some(i32::MAX),
            big: Some(i64::MIN),
            real: Some(-1.0e-30),
            double: Some(1.5e300),
            num: Some(Decimal::from_str("-0.0001").unwrap()),
            text: Some(String::new()),
            varchar: Some("exactly twenty chars".into()),
            chars: Some("abcde".into()),
            flag: Some(false),
            date: Some(date(1999, 12, 31)),
            ts: Some(timestamp(1970, 1, 1, 0, 0, 0, 0)),
            tstz: Some(timestamp(1969, 7, 20, 20, 17, 40, 0).and_utc()),
            uuid: Some(Uuid::nil()),
            bytes: Some(Vec::new()),
        },
        TypedRow::nulls(2),
    ]
}

/// What the server stores for `row`: char(5) pads with spaces (numeric(12,4)'s scale is
/// checked separately, as `Decimal` equality ignores it).
fn as_stored(row: &TypedRow) -> TypedRow {
    let mut stored = row.clone();
    stored.chars = row.chars.as_ref().map(|c| format!("{c:<5}"));
    stored
}

async fn create_typed(client: &Client) {
    for statement in TYPED_DDL {
        execute(client, statement).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn values_of_every_type_round_trip_as_binary_parameters_and_results() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_typed(&client).await;

    // Parameter types are inferred from the target columns.
    let insert = client
        .prepare("INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)")
        .await
        .unwrap_or_else(|e| panic!("preparing the INSERT failed: {}", describe_error(&e)));
    assert_eq!(insert.params(), COLUMN_TYPES, "inferred parameter types of the INSERT");

    let rows = sample_rows();
    for row in &rows {
        let inserted = client
            .execute(&insert, &row.params())
            .await
            .unwrap_or_else(|e| panic!("inserting {row:?} failed: {}", describe_error(&e)));
        assert_eq!(inserted, 1, "INSERT of row {} should report 1 row", row.id);
    }

    // Results come back in binary and decode to the same values.
    let select = client
        .prepare("SELECT * FROM typed WHERE id = $1")
        .await
        .unwrap_or_else(|e| panic!("preparing the SELECT failed: {}", describe_error(&e)));
    assert_eq!(select.params(), [Type::INT4], "inferred parameter type of `id = $1`");
    let described: Vec<Type> = select.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(described, COLUMN_TYPES, "described result column types of SELECT *");
    for row in &rows {
        let read = client
            .query_one(&select, &[&row.id])
            .await
            .unwrap_or_else(|e| panic!("reading row {} failed: {}", row.id, describe_error(&e)));
        assert_eq!(
            TypedRow::from_row(&read),
            as_stored(row),
            "row {} after the round trip",
            row.id
        );
    }

    // numeric(12,4) keeps its scale: 1234.5 comes back as 1234.5000.
    let nums: Vec<String> = client
        .query("SELECT c_num FROM typed WHERE c_num IS NOT NULL ORDER BY id", &[])
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)))
        .iter()
        .map(|r| column::<Decimal>(r, "c_num").to_string())
        .collect();
    assert_eq!(nums, ["1234.5000", "-0.0001"]);

    // Parameters of every type in WHERE clauses.
    let first = &rows[0];
    let found = client
        .query(
            "SELECT id FROM typed WHERE c_small = $1 AND c_int = $2 AND c_big = $3 AND c_real = $4 \
             AND c_double = $5 AND c_num = $6 AND c_text = $7 AND c_varchar = $8 AND c_char = $9 \
             AND c_bool = $10 AND c_date = $11 AND c_ts = $12 AND c_tstz = $13 AND c_uuid = $14 \
             AND c_bytea = $15",
            &first.params()[1..],
        )
        .await
        .unwrap_or_else(|e| panic!("the WHERE with 15 parameters failed: {}", describe_error(&e)));
    let ids: Vec<i32> = found.iter().map(|r| column(r, "id")).collect();
    assert_eq!(ids, [1], "rows matching every column of row 1");

    let between: Vec<i32> = client
        .query(
            "SELECT id FROM typed WHERE id BETWEEN $1 AND $2 ORDER BY id",
            &[&0i32, &1000i32],
        )
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)))
        .iter()
        .map(|r| column(r, "id"))
        .collect();
    assert_eq!(between, [1, 2, 150]);

    let limited: Vec<i32> = client
        .query("SELECT id FROM typed ORDER BY id DESC LIMIT $1", &[&2i64])
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)))
        .iter()
        .map(|r| column(r, "id"))
        .collect();
    assert_eq!(limited, [150, 2]);

    let nulls: i64 = column(
        &client
            .query_one(
                "SELECT count(*) FROM typed WHERE c_text IS NULL AND c_bytea IS NULL",
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{}", describe_error(&e))),
        "count",
    );
    assert_eq!(nulls, 1);

    // Parameters in expressions, with their types given by casts.
    let row = client
        .query_one(
            "SELECT $1::int + 1 AS n, $2::text || '!' AS s, upper($3) AS u",
            &[&41i32, &"hi", &"abc"],
        )
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_eq!(column::<i32>(&row, "n"), 42);
    assert_eq!(column::<String>(&row, "s"), "hi!");
    assert_eq!(column::<String>(&row, "u"), "ABC");

    // UPDATE, DELETE and RETURNING with parameters, including NULL ones.
    let updated = client
        .execute(
            "UPDATE typed SET c_text = $1, c_real = $2 WHERE id = $3",
            &[&None::<String>, &Some(2.5f32), &1i32],
        )
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_eq!(updated, 1);
    let returned = client
        .query_one(
            "INSERT INTO typed (id, c_text, c_uuid) VALUES ($1, $2, $3) RETURNING id, c_text, c_uuid, c_int",
            &[&3i32, &"returned", &Uuid::from_u128(42)],
        )
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_eq!(column::<i32>(&returned, "id"), 3);
    assert_eq!(column::<String>(&returned, "c_text"), "returned");
    assert_eq!(column::<Uuid>(&returned, "c_uuid"), Uuid::from_u128(42));
    assert_eq!(column::<Option<i32>>(&returned, "c_int"), None);
    let read = client
        .query_one(&select, &[&1i32])
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_eq!(column::<Option<String>>(&read, "c_text"), None);
    assert_eq!(column::<Option<f32>>(&read, "c_real"), Some(2.5));
    let deleted = client
        .execute("DELETE FROM typed WHERE id = $1 OR id = $2", &[&3i32, &150i32])
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_eq!(deleted, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_arrive_as_errors_and_the_connection_stays_usable() {
    let cluster = Cluster::start(3).await;
    let mut client = cluster.client().await;
    execute(&client, "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT NOT NULL)").await;
    let insert = client
        .prepare("INSERT INTO kv VALUES ($1, $2)")
        .await
        .unwrap_or_else(|e| panic!("preparing the INSERT failed: {}", describe_error(&e)));
    client
        .execute(&insert, &[&1i32, &"one"])
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));

    /// Asserts that `result` is a server error with SQLSTATE `code`.
    fn assert_sqlstate<T: std::fmt::Debug>(what: &str, result: Result<T, tokio_postgres::Error>, code: &str) {
        match result {
            Ok(value) => panic!("{what} succeeded ({value:?}) but must fail with SQLSTATE {code}"),
            Err(e) => assert_eq!(
                tessera_tests::sqlstate(&e),
                Some(code),
                "{what}: {}",
                describe_error(&e)
            ),
        }
    }

    // Errors at Parse: syntax, unknown table, unknown column.
    assert_sqlstate("prepare `SELEC 1`", client.prepare("SELEC 1").await, "42601");
    assert_sqlstate(
        "prepare on a missing table",
        client.prepare("SELECT * FROM nosuch WHERE k = $1").await,
        "42P01",
    );
    assert_sqlstate(
        "prepare with a missing column",
        client.prepare("SELECT nosuch FROM kv").await,
        "42703",
    );
    // Errors at Execute.
    assert_sqlstate(
        "a duplicate key",
        client.execute(&insert, &[&1i32, &"again"]).await,
        "23505",
    );
    assert_sqlstate(
        "a NULL into NOT NULL",
        client.execute(&insert, &[&2i32, &None::<String>]).await,
        "23502",
    );
    assert_sqlstate(
        "a division by zero",
        client.query("SELECT 10 / $1::int", &[&0i32]).await,
        "22012",
    );
    assert_sqlstate(
        "a bad cast",
        client.query("SELECT $1::text::int", &[&"twelve"]).await,
        "22P02",
    );

    // The connection and the prepared statement still work.
    assert!(!client.is_closed(), "the connection closed after errors");
    let inserted = client
        .execute(&insert, &[&2i32, &"two"])
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_eq!(inserted, 1);
    let v: String = client
        .query_one("SELECT v FROM kv WHERE k = $1", &[&2i32])
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)))
        .get(0);
    assert_eq!(v, "two");

    // An error inside a transaction aborts it; ROLLBACK returns the connection to normal.
    let transaction = client
        .transaction()
        .await
        .unwrap_or_else(|e| panic!("BEGIN failed: {}", describe_error(&e)));
    transaction
        .execute(&insert, &[&3i32, &"three"])
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_sqlstate(
        "a duplicate key in a transaction",
        transaction.execute(&insert, &[&3i32, &"dup"]).await,
        "23505",
    );
    assert_sqlstate(
        "a query in an aborted transaction",
        transaction.query("SELECT 1", &[]).await,
        "25P02",
    );
    transaction
        .rollback()
        .await
        .unwrap_or_else(|e| panic!("ROLLBACK failed: {}", describe_error(&e)));
    let keys: Vec<i32> = client
        .query("SELECT k FROM kv ORDER BY k", &[])
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)))
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys, [1, 2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn now_is_the_current_time_and_stable_within_a_transaction() {
    let cluster = Cluster::start(3).await;
    let mut client = cluster.client().await;

    let statement = client
        .prepare("SELECT now()")
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_eq!(statement.columns()[0].name(), "now");
    assert_eq!(statement.columns()[0].type_(), &Type::TIMESTAMPTZ);
    let before = Utc::now();
    let now: DateTime<Utc> = column(
        &client
            .query_one(&statement, &[])
            .await
            .unwrap_or_else(|e| panic!("{}", describe_error(&e))),
        "now",
    );
    let after = Utc::now();
    let slack = chrono::Duration::seconds(5);
    assert!(
        before - slack <= now && now <= after + slack,
        "now() = {now}, but the test ran from {before} to {after}"
    );

    // now() is the start time of the transaction: the same for every statement in it.
    let transaction = client
        .transaction()
        .await
        .unwrap_or_else(|e| panic!("BEGIN failed: {}", describe_error(&e)));
    let first: DateTime<Utc> = column(
        &transaction
            .query_one("SELECT now()", &[])
            .await
            .unwrap_or_else(|e| panic!("{}", describe_error(&e))),
        "now",
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second: DateTime<Utc> = column(
        &transaction
            .query_one("SELECT now()", &[])
            .await
            .unwrap_or_else(|e| panic!("{}", describe_error(&e))),
        "now",
    );
    transaction
        .commit()
        .await
        .unwrap_or_else(|e| panic!("COMMIT failed: {}", describe_error(&e)));
    assert_eq!(first, second, "now() changed within one transaction");
}

/// An Execute's answer is sent when the client asks for it, with Flush or Sync, as PostgreSQL
/// does: after Flush it arrives without ReadyForQuery; without either it is held (only the
/// ParseComplete that Parse flushes arrives), and Sync then brings it with ReadyForQuery.
#[tokio::test(flavor = "multi_thread")]
async fn an_execute_answers_at_flush_or_sync() {
    use tessera_tests::wire::{message, read_message, start};
    use tokio::io::AsyncWriteExt;

    async fn read(stream: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
        read_message(stream).await.expect("read a message")
    }

    let cluster = Cluster::start(1).await;
    let client = cluster.client().await;
    execute(&client, "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT)").await;
    execute(&client, "INSERT INTO kv VALUES (1, 'one')").await;

    let mut stream = start(cluster.router_addr(), "tessera").await.expect("connect");
    while read(&mut stream).await.0 != b'Z' {}
    let parse = message(b'P', b"\0SELECT v FROM kv WHERE k = 1\0\0\0");
    let bind = message(b'B', b"\0\0\0\0\0\0\0\0");
    let execute_all = message(b'E', b"\0\0\0\0\0");
    let statement = [parse, bind, execute_all].concat();

    stream
        .write_all(&[statement.clone(), message(b'H', b"")].concat())
        .await
        .expect("write");
    let mut kinds = Vec::new();
    loop {
        let (kind, body) = read(&mut stream).await;
        kinds.push(kind);
        if kind == b'D' {
            assert!(body.ends_with(b"one"), "the row: {body:?}");
        }
        if kind == b'C' || kind == b'E' {
            break;
        }
    }
    assert_eq!(
        kinds, b"12DC",
        "after Flush: ParseComplete, BindComplete, DataRow, CommandComplete"
    );
    stream.write_all(&message(b'S', b"")).await.expect("write");
    assert_eq!(read(&mut stream).await.0, b'Z', "Sync answers ReadyForQuery");

    stream.write_all(&statement).await.expect("write");
    assert_eq!(read(&mut stream).await.0, b'1', "Parse is answered at once");
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), read(&mut stream)).await;
    assert!(early.is_err(), "nothing more before Flush or Sync: {early:?}");
    stream.write_all(&message(b'S', b"")).await.expect("write");
    let mut kinds = Vec::new();
    while kinds.last() != Some(&b'Z') {
        kinds.push(read(&mut stream).await.0);
    }
    assert_eq!(kinds, b"2DCZ", "Sync brings the held answer and ReadyForQuery");
}
