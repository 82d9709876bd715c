#!/usr/bin/env python3
"""psycopg 3 against a Tessera router (issue 2: "tokio-postgres, sqlx and psycopg 3 work,
prepared statements included").

Run by tests/tests/driver_psycopg.rs, which starts a cluster and passes the router's address as
TESSERA_ROUTER_ADDR=host:port; the Python comes from the virtualenv scripts/test.sh makes
(TESSERA_PYTHON). Every check raises on failure and the script exits non-zero, printing what
failed; it prints one line per section as it goes.

psycopg 3 binds parameters on the server: it sends Parse with a type OID per parameter that it
picks from the Python value (int2, int4, int8 or numeric for an int by its size, unknown for a
str in text format), text parameters by default and binary ones for %b placeholders, text
results by default and binary ones from cursor(binary=True); prepare=True (or a statement run
more than prepare_threshold times) makes a named server-side prepared statement; executemany
pipelines its statements; a query without parameters goes through the simple protocol, so it
may hold several statements; a connection that is not in autocommit opens a transaction with
BEGIN before its first statement. Any PostgreSQL gives the answers checked here, so the script
also runs against PostgreSQL itself (which is how it was checked).
"""

import datetime as dt
import sys
import uuid
from decimal import Decimal

import psycopg
from psycopg import errors
from psycopg.pq import TransactionStatus

import driver_common
from driver_common import check_eq, libpq_params, run_checks, section

# The columns of `t`: those of driver_common.TYPES but n (INTEGER, like id) and ch (CHAR(5)).
TABLE_COLUMNS = ["id", "small", "big", "r", "f", "d", "s", "vc", "b", "day", "ts", "tstz", "u", "raw"]

DDL = driver_common.ddl("t", TABLE_COLUMNS)

COLUMNS = ", ".join(TABLE_COLUMNS)

# The types PostgreSQL describes for the columns of `t`, in order, with their modifiers.
COLUMN_TYPES = [
    "int4",
    "int2",
    "int8",
    "float4",
    "float8",
    "numeric(10,2)",
    "text",
    "varchar(20)",
    "bool",
    "date",
    "timestamp",
    "timestamptz",
    "uuid",
    "bytea",
]

# One row in each shard with extreme and awkward values, and one of NULLs (see driver_common).
# Every REAL is exactly representable as a float4, so text and binary results give the same
# Python float.
SAMPLES = driver_common.samples(TABLE_COLUMNS)

# How each copy of the samples is inserted: (id offset, placeholder, prepare). Ids stay in the
# sample's shard.
INSERT_WAYS = [
    (0, "%s", False),  # text parameters, unnamed statement
    (10, "%s", True),  # text parameters, named prepared statement
    (20, "%b", False),  # binary parameters, unnamed statement
    (30, "%b", True),  # binary parameters, named prepared statement
]


def expect_error(sqlstate, error_class, what, action):
    """Runs action(), which must raise a psycopg error of class error_class with sqlstate."""
    return driver_common.expect_error(sqlstate, error_class, what, action, psycopg.Error)


def connect(autocommit=True):
    return psycopg.connect(**libpq_params("tessera-tests-psycopg"), autocommit=autocommit)


def with_id(row, new_id):
    return (new_id,) + tuple(row[1:])


def ids(conn):
    return [r[0] for r in conn.execute("SELECT id FROM t ORDER BY id").fetchall()]


def create_table(conn):
    section("create the range-partitioned table")
    for statement in DDL:
        conn.execute(statement)


def every_type_round_trips(conn):
    section("insert a value of every type, NULLs included, four ways")
    for offset, placeholder, prepare in INSERT_WAYS:
        query = f"INSERT INTO t ({COLUMNS}) VALUES ({', '.join([placeholder] * 14)})"
        for sample in SAMPLES:
            row = with_id(sample, sample[0] + offset)
            cur = conn.execute(query, row, prepare=prepare)
            check_eq(cur.rowcount, 1, f"rowcount of the INSERT of row {row[0]} ({placeholder}, prepare={prepare})")

    section("read every row back as text and as binary, unprepared and prepared")
    select = f"SELECT {COLUMNS} FROM t WHERE id = %s"
    for binary in (False, True):
        for prepare in (False, True):
            cur = conn.cursor(binary=binary)
            for offset, _, _ in INSERT_WAYS:
                for sample in SAMPLES:
                    row = with_id(sample, sample[0] + offset)
                    got = cur.execute(select, (row[0],), prepare=prepare).fetchall()
                    check_eq(got, [row], f"row {row[0]} read with binary={binary}, prepare={prepare}")
            types = [c.type_display for c in cur.description]
            check_eq(types, COLUMN_TYPES, f"described column types (binary={binary})")
    check_eq(
        ids(conn),
        sorted(s[0] + offset for s in SAMPLES for offset, _, _ in INSERT_WAYS),
        "every id",
    )

    section("numeric(10,2) keeps its scale and rounds")
    conn.execute("UPDATE t SET d = %s WHERE id = %s", (Decimal("2.345"), 2))
    conn.execute("UPDATE t SET d = %b WHERE id = %b", (Decimal("1234.5"), 12))
    for binary in (False, True):
        got = conn.cursor(binary=binary).execute("SELECT d FROM t WHERE id IN (1, 2, 12) ORDER BY id").fetchall()
        check_eq([str(r[0]) for r in got], ["12345678.90", "2.35", "1234.50"], f"numeric values (binary={binary})")
    conn.execute("UPDATE t SET d = NULL WHERE id IN (2, 12)")

    section("a parameter of every type in WHERE")
    where = (
        "SELECT id FROM t WHERE small = {p} AND big = {p} AND r = {p} AND f = {p} AND d = {p} "
        "AND s = {p} AND vc = {p} AND b = {p} AND day = {p} AND ts = {p} AND tstz = {p} "
        "AND u = {p} AND raw = {p} ORDER BY id"
    )
    for sample in SAMPLES[:2]:
        for placeholder in ("%s", "%b"):
            for prepare in (False, True):
                got = conn.execute(where.format(p=placeholder), sample[1:], prepare=prepare).fetchall()
                expected = [(sample[0] + offset,) for offset, _, _ in INSERT_WAYS]
                check_eq(got, expected, f"rows matching row {sample[0]} ({placeholder}, prepare={prepare})")

    section("ranges over both shards and IS NULL with parameters")
    got = conn.execute("SELECT id FROM t WHERE id BETWEEN %s AND %s ORDER BY id", (1, 150), prepare=True).fetchall()
    check_eq([r[0] for r in got], [1, 2, 11, 12, 21, 22, 31, 32, 150], "ids BETWEEN 1 AND 150")
    got = conn.execute(
        "SELECT count(*) FROM t WHERE s IS NULL AND raw IS NULL AND id < %s", (100,), prepare=True
    ).fetchone()
    check_eq(got, (4,), "count of NULL rows")

    section("parameters echoed by SELECT")
    echo = "SELECT " + ", ".join(["{p}"] * 14)
    for sample in SAMPLES:
        for placeholder in ("%s", "%b"):
            for binary in (False, True):
                got = conn.cursor(binary=binary).execute(echo.format(p=placeholder), sample).fetchone()
                check_eq(got, sample, f"echo of row {sample[0]} ({placeholder}, binary results={binary})")

    section("UPDATE, DELETE and RETURNING with parameters")
    row = conn.execute(
        "INSERT INTO t (id, s, u, small) VALUES (%s, %s, %s, %s) RETURNING id, s, u, small, big",
        (3, "returned", uuid.UUID(int=42), None),
        prepare=True,
    ).fetchone()
    check_eq(row, (3, "returned", uuid.UUID(int=42), None, None), "RETURNING")
    cur = conn.execute("UPDATE t SET s = %s, r = %s WHERE id = %s", (None, 2.5, 1))
    check_eq(cur.rowcount, 1, "rowcount of the UPDATE")
    check_eq(conn.execute("SELECT s, r FROM t WHERE id = 1").fetchone(), (None, 2.5), "row 1 after the UPDATE")
    cur = conn.execute("DELETE FROM t WHERE id = %b OR id = %b", (3, 150), prepare=True)
    check_eq(cur.rowcount, 2, "rowcount of the DELETE")


def limit_and_offset(conn):
    section("LIMIT and OFFSET as parameters (psycopg sends a small int as int2 or int4)")
    got = conn.execute("SELECT id FROM t ORDER BY id DESC LIMIT %b", (3,)).fetchall()
    check_eq([r[0] for r in got], [180, 170, 160], "ids with LIMIT 3 (binary int2 parameter)")
    got = conn.execute("SELECT id FROM t ORDER BY id LIMIT %s OFFSET %s", (2, 1), prepare=True).fetchall()
    check_eq([r[0] for r in got], [2, 11], "ids with LIMIT 2 OFFSET 1 (text int2 parameters)")
    got = conn.execute("SELECT id FROM t WHERE id < %s ORDER BY id LIMIT %s", (100, 100000)).fetchall()
    check_eq([r[0] for r in got], [1, 2, 11, 12, 21, 22, 31, 32], "ids with LIMIT 100000 (int4 parameter)")


def repeated_statements_get_prepared(conn):
    section("statements prepared automatically after prepare_threshold runs, and executemany")
    conn.execute("CREATE TABLE kv (k INT PRIMARY KEY, v TEXT NOT NULL) PARTITION BY RANGE (k)")
    conn.execute("CREATE TABLE kv_low PARTITION OF kv FOR VALUES FROM (MINVALUE) TO (1000)")
    conn.execute("CREATE TABLE kv_high PARTITION OF kv FOR VALUES FROM (1000) TO (MAXVALUE)")
    conn.prepare_threshold = 2
    for k in range(10):
        conn.execute("INSERT INTO kv VALUES (%s, %s)", (k * 200, f"v{k}"))
    for k in range(10):
        got = conn.execute("SELECT v FROM kv WHERE k = %b", (k * 200,)).fetchone()
        check_eq(got, (f"v{k}",), f"kv row {k * 200}")
    cur = conn.cursor()
    cur.executemany("INSERT INTO kv VALUES (%s, %s)", [(k, f"many {k}") for k in range(5000, 5010)])
    cur.executemany(
        "UPDATE kv SET v = %b WHERE k = %b",
        [(f"updated {k}", k) for k in range(5000, 5010, 2)],
    )
    got = conn.execute("SELECT k, v FROM kv WHERE k >= %s ORDER BY k", (5000,)).fetchall()
    check_eq(
        got,
        [(k, f"updated {k}" if k % 2 == 0 else f"many {k}") for k in range(5000, 5010)],
        "rows written by executemany",
    )
    got = cur.executemany(
        "SELECT v FROM kv WHERE k = %s",
        [(0,), (1800,)],
        returning=True,
    )
    results = []
    while True:
        results.append(cur.fetchall())
        if not cur.nextset():
            break
    check_eq(results, [[("v0",)], [("v9",)]], "results of executemany with returning=True")
    conn.prepare_threshold = 5


def multi_statement_strings(conn):
    section("several statements in one string (simple protocol)")
    cur = conn.cursor()
    cur.execute(
        "INSERT INTO t (id, s, d, day) VALUES (50, 'fifty', 50.5, '2024-01-02'); "
        "UPDATE t SET big = 5 WHERE id = 50; "
        "SELECT id, s, d, day, big FROM t WHERE id = 50; "
        "SELECT count(*) FROM t WHERE id BETWEEN 160 AND 180"
    )
    results = []
    while True:
        results.append(cur.fetchall() if cur.description else cur.rowcount)
        if not cur.nextset():
            break
    check_eq(
        results,
        [1, 1, [(50, "fifty", Decimal("50.50"), dt.date(2024, 1, 2), 5)], [(3,)]],
        "results of a string of four statements",
    )

    # A failing statement stops the string, and the implicit transaction around the string
    # undoes the statements before it (all in one shard).
    expect_error(
        "23505",
        errors.UniqueViolation,
        "a string whose second INSERT repeats a key",
        lambda: conn.execute(
            "INSERT INTO t (id, s) VALUES (51, 'x'); INSERT INTO t (id, s) VALUES (50, 'dup'); "
            "INSERT INTO t (id, s) VALUES (52, 'y')"
        ),
    )
    check_eq(conn.info.transaction_status, TransactionStatus.IDLE, "transaction status after the failed string")
    got = conn.execute("SELECT id FROM t WHERE id BETWEEN 50 AND 59").fetchall()
    check_eq(got, [(50,)], "rows after the failed string")
    conn.execute("DELETE FROM t WHERE id = 50")


def client_side_binding(conn):
    section("client-side binding (ClientCursor): literals of every type")
    cur = psycopg.ClientCursor(conn)
    for sample in SAMPLES:
        row = with_id(sample, sample[0] + 60)
        cur.execute(f"INSERT INTO t ({COLUMNS}) VALUES ({', '.join(['%s'] * 14)})", row)
        got = conn.execute(f"SELECT {COLUMNS} FROM t WHERE id = %s", (row[0],)).fetchall()
        check_eq(got, [row], f"row {row[0]} inserted with literals")
        got = cur.execute(f"SELECT {COLUMNS} FROM t WHERE id = %s", (row[0],)).fetchall()
        check_eq(got, [row], f"row {row[0]} read with literals")
    conn.execute("DELETE FROM t WHERE id IN (61, 62, 210)")


def transactions(conn, other):
    section("transactions: COMMIT in one shard")
    check_eq(conn.info.transaction_status, TransactionStatus.IDLE, "status before the transaction")
    with conn.transaction():
        conn.execute("INSERT INTO t (id, s, big) VALUES (%s, %s, %s)", (40, "forty", 40), prepare=True)
        conn.execute("UPDATE t SET big = big + %s WHERE id = %s", (1, 40))
        check_eq(
            conn.execute("SELECT big FROM t WHERE id = %s", (40,)).fetchone(),
            (41,),
            "the transaction reads its own write",
        )
        check_eq(
            conn.info.transaction_status,
            TransactionStatus.INTRANS,
            "status inside the transaction",
        )
        check_eq(
            other.execute("SELECT count(*) FROM t WHERE id = 40").fetchone(),
            (0,),
            "another session before COMMIT",
        )
    check_eq(conn.info.transaction_status, TransactionStatus.IDLE, "status after COMMIT")
    check_eq(
        other.execute("SELECT big FROM t WHERE id = 40").fetchone(),
        (41,),
        "another session after COMMIT",
    )

    section("transactions: ROLLBACK, explicit and by an exception")
    conn.autocommit = False
    conn.execute("INSERT INTO t (id, s) VALUES (%s, %s)", (200, "gone"))
    conn.execute("UPDATE t SET s = %s WHERE id = %s", ("changed", 150 + 10))
    check_eq(conn.info.transaction_status, TransactionStatus.INTRANS, "status after the implicit BEGIN")
    check_eq(conn.execute("SELECT s FROM t WHERE id = 200").fetchone(), ("gone",), "own write before ROLLBACK")
    conn.rollback()
    check_eq(conn.info.transaction_status, TransactionStatus.IDLE, "status after ROLLBACK")
    check_eq(conn.execute("SELECT count(*) FROM t WHERE id = 200").fetchone(), (0,), "row 200 after ROLLBACK")
    check_eq(
        conn.execute("SELECT s FROM t WHERE id = 160").fetchone(),
        (SAMPLES[1][6],),
        "row 160 after ROLLBACK",
    )
    conn.commit()

    try:
        with conn.transaction():
            conn.execute("DELETE FROM t WHERE id = %b", (40,), prepare=True)
            raise driver_common.Abandon()
    except driver_common.Abandon:
        pass
    check_eq(conn.execute("SELECT count(*) FROM t WHERE id = 40").fetchone(), (1,), "row 40 after the rollback")
    conn.commit()
    conn.autocommit = True


def errors_keep_the_connection_usable(conn):
    section("errors carry their SQLSTATE and the connection stays usable")
    insert = "INSERT INTO t (id, s) VALUES (%s, %s)"
    expect_error("23505", errors.UniqueViolation, "a duplicate key", lambda: conn.execute(insert, (1, "again")))
    expect_error(
        "23505",
        errors.UniqueViolation,
        "a duplicate key, prepared, binary",
        lambda: conn.execute(insert.replace("%s", "%b"), (160, "again"), prepare=True),
    )
    expect_error(
        "42P01",
        errors.UndefinedTable,
        "an unknown table",
        lambda: conn.execute("SELECT * FROM nosuch WHERE id = %s", (1,)),
    )
    expect_error(
        "42P01",
        errors.UndefinedTable,
        "an unknown table, prepared",
        lambda: conn.execute("SELECT * FROM nosuch WHERE id = %s", (1,), prepare=True),
    )
    expect_error(
        "42P01",
        errors.UndefinedTable,
        "an unknown table, simple protocol",
        lambda: conn.execute("SELECT * FROM nosuch"),
    )
    expect_error(
        "42703",
        errors.UndefinedColumn,
        "an unknown column",
        lambda: conn.execute("SELECT nosuch FROM t WHERE id = %s", (1,)),
    )
    expect_error("42601", errors.SyntaxError, "a syntax error", lambda: conn.execute("SELEC 1"))
    expect_error(
        "22P02",
        errors.InvalidTextRepresentation,
        "a bad uuid",
        lambda: conn.execute("INSERT INTO t (id, u) VALUES (%s, %s)", (5, "not-a-uuid")),
    )
    expect_error(
        "22001",
        errors.StringDataRightTruncation,
        "a value too long for varchar(20)",
        lambda: conn.execute("INSERT INTO t (id, vc) VALUES (%s, %s)", (5, "twenty-one characters")),
    )
    expect_error(
        "22012",
        errors.DivisionByZero,
        "a division by zero, binary",
        lambda: conn.cursor(binary=True).execute("SELECT 10 / %b", (0,)),
    )
    check_eq(conn.info.transaction_status, TransactionStatus.IDLE, "status after the errors")
    check_eq(conn.execute("SELECT %s::int + 1", (41,)).fetchone(), (42,), "a query after the errors")
    conn.execute(insert, (5, "five"), prepare=True)
    check_eq(conn.execute("SELECT s FROM t WHERE id = %b", (5,)).fetchone(), ("five",), "row 5")

    section("an error inside a transaction aborts it until ROLLBACK")
    conn.autocommit = False
    conn.execute(insert, (6, "six"), prepare=True)
    expect_error(
        "23505",
        errors.UniqueViolation,
        "a duplicate key in a transaction",
        lambda: conn.execute(insert, (6, "dup"), prepare=True),
    )
    check_eq(conn.info.transaction_status, TransactionStatus.INERROR, "status after the error")
    expect_error(
        "25P02",
        errors.InFailedSqlTransaction,
        "a statement in an aborted transaction",
        lambda: conn.execute("SELECT 1"),
    )
    conn.rollback()
    check_eq(conn.info.transaction_status, TransactionStatus.IDLE, "status after ROLLBACK")
    check_eq(conn.execute("SELECT count(*) FROM t WHERE id = 6").fetchone(), (0,), "row 6 after ROLLBACK")
    conn.commit()
    conn.autocommit = True
    check_eq(conn.execute("SELECT s FROM t WHERE id = %s", (5,), prepare=True).fetchone(), ("five",), "row 5")


def steps(conn, other):
    """The checks, in order: (name, function of no arguments)."""
    return [
        ("every type round-trips", lambda: every_type_round_trips(conn)),
        ("LIMIT and OFFSET as parameters", lambda: limit_and_offset(conn)),
        ("repeated statements get prepared", lambda: repeated_statements_get_prepared(conn)),
        ("multi-statement strings", lambda: multi_statement_strings(conn)),
        ("client-side binding", lambda: client_side_binding(conn)),
        ("transactions", lambda: transactions(conn, other)),
        ("errors keep the connection usable", lambda: errors_keep_the_connection_usable(conn)),
    ]


def main():
    print(f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__}, libpq {psycopg.pq.version()})", flush=True)
    return run_checks("psycopg", connect, create_table, steps)


if __name__ == "__main__":
    sys.exit(main())
