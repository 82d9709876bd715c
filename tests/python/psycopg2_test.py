#!/usr/bin/env python3
"""psycopg2 against a Tessera router: a value of every supported type round-trips, executemany,
transactions, and errors that carry their SQLSTATE.

Run by tests/tests/driver_psycopg2.rs, which starts a cluster and passes the router's address as
TESSERA_ROUTER_ADDR=host:port; the Python comes from the virtualenv scripts/test.sh makes
(TESSERA_PYTHON). Every check raises on failure and the script exits non-zero, printing what
failed; it prints one line per section as it goes.

psycopg2 binds parameters on the client: it quotes each value into the SQL text, with a cast
for the types a bare literal would not give ('...'::date, '...'::timestamptz, '...'::uuid,
'\\x...'::bytea), and sends the result through the simple query protocol, so this is the test of
literals and casts; results come back as text. A connection that is not in autocommit sends
BEGIN before its first statement. Server-side (named) cursors, DECLARE and FETCH, are not
supported by Tessera and are not tested. Any PostgreSQL gives the answers checked here, so the
script also runs against PostgreSQL itself.
"""

import datetime as dt
import sys
import uuid
from decimal import Decimal

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

import driver_common
from driver_common import COLUMNS, SAMPLES, SQL_TYPES, check_eq, libpq_params, run_checks, section

# uuid columns as uuid.UUID (psycopg2 returns them as str otherwise), and UUID parameters.
psycopg2.extras.register_uuid()

TABLE, LOW, HIGH = driver_common.table_names("drv_pg2")

# A column of every supported type, and sample rows with a value of each (see driver_common).
DDL = driver_common.ddl(TABLE)

# What cursor.description says of each column: (type OID, internal_size, precision, scale).
# psycopg2 derives the last three from the type modifier, so they show that the modifiers of
# numeric(10,2), varchar(20) and char(5) reach the client.
DESCRIPTION = [
    (23, 4, None, None),
    (21, 2, None, None),
    (23, 4, None, None),
    (20, 8, None, None),
    (700, 4, None, None),
    (701, 8, None, None),
    (1700, 10, 10, 2),
    (25, -1, None, None),
    (1043, 20, None, None),
    (1042, 5, None, None),
    (16, 1, None, None),
    (1082, 4, None, None),
    (1114, 8, None, None),
    (1184, 8, None, None),
    (2950, 16, None, None),
    (17, -1, None, None),
]


def expect_error(sqlstate, error_class, what, action):
    """Runs action(), which must raise a psycopg2 error of class error_class with sqlstate."""
    e = driver_common.expect_error(sqlstate, error_class, what, action, psycopg2.Error, lambda e: e.pgcode)
    check_eq(e.diag.sqlstate, sqlstate, f"diag.sqlstate of {what}")
    return e


def connect():
    conn = psycopg2.connect(**libpq_params("tessera-tests-psycopg2"))
    conn.autocommit = True
    return conn


def normalized(row):
    """A result row with bytea values (memoryview in psycopg2) as bytes, so rows compare."""
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def fetch_all(conn, query, params=None):
    with conn.cursor() as cur:
        cur.execute(query, params)
        return [normalized(r) for r in cur.fetchall()]


def ids(conn, where="TRUE"):
    return [r[0] for r in fetch_all(conn, f"SELECT id FROM {TABLE} WHERE {where} ORDER BY id")]


def transaction_status(conn):
    return conn.info.transaction_status


def create_table(conn):
    section("create the range-partitioned table")
    with conn.cursor() as cur:
        for statement in DDL:
            cur.execute(statement)


def every_type_round_trips(conn):
    section("insert a value of every type, NULLs included, as parameters")
    insert = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    with conn.cursor() as cur:
        for sample in SAMPLES:
            cur.execute(insert, sample)
            check_eq(cur.rowcount, 1, f"rowcount of the INSERT of row {sample[0]}")

    section("read every row back")
    with conn.cursor() as cur:
        for sample in SAMPLES:
            cur.execute(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE id = %s", (sample[0],))
            check_eq([normalized(r) for r in cur.fetchall()], [sample], f"row {sample[0]}")
        check_eq([d.name for d in cur.description], COLUMNS, "column names")
        check_eq(
            [(d.type_code, d.internal_size, d.precision, d.scale) for d in cur.description],
            DESCRIPTION,
            "column types and modifiers",
        )
    check_eq(ids(conn), sorted(s[0] for s in SAMPLES), "every id")
    check_eq(
        [str(r[0]) for r in fetch_all(conn, f"SELECT d FROM {TABLE} WHERE d IS NOT NULL ORDER BY id")],
        ["12345678.90", "-0.01"],
        "numeric(10,2) values as text, scale kept",
    )

    section("a parameter of every type in WHERE")
    for sample in SAMPLES[:2]:
        for column, value in zip(COLUMNS, sample):
            got = fetch_all(conn, f"SELECT id FROM {TABLE} WHERE {column} = %s", (value,))
            check_eq(got, [(sample[0],)], f"rows with {column} = {value!r}")
    got = fetch_all(
        conn,
        f"SELECT id FROM {TABLE} WHERE s IS NULL AND raw IS NULL AND u IS NULL AND %s IS NULL",
        (None,),
    )
    check_eq(got, [(2,)], "rows with NULLs")

    section("parameters echoed by SELECT")
    # CAST, not ::, which would bind tighter than the minus of a negative literal.
    echo = "SELECT " + ", ".join(f"CAST(%s AS {t})" for t in SQL_TYPES)
    for sample in SAMPLES:
        check_eq(fetch_all(conn, echo, sample), [sample], f"echo of row {sample[0]}")

    section("numeric(10,2) rounds to its scale; char(5) pads")
    with conn.cursor() as cur:
        cur.execute(f"UPDATE {TABLE} SET d = %s, ch = %s WHERE id = %s", (Decimal("2.345"), "ab", 2))
        check_eq(cur.rowcount, 1, "rowcount of the UPDATE")
    got = fetch_all(conn, f"SELECT d, ch, length(ch) FROM {TABLE} WHERE id = %s", (2,))
    check_eq([(str(d), ch, n) for d, ch, n in got], [("2.35", "ab   ", 2)], "row 2 after the UPDATE")
    check_eq(ids(conn, "ch = 'ab'"), [2], "ids with ch = 'ab' (trailing blanks do not count)")


def executemany_and_batches(conn):
    section("executemany, execute_values, UPDATE and DELETE rowcounts")
    with conn.cursor() as cur:
        rows = [(i, f"many {i}", i * 10) for i in range(10, 20)]
        cur.executemany(f"INSERT INTO {TABLE} (id, s, big) VALUES (%s, %s, %s)", rows)
        check_eq(cur.rowcount, len(rows), "rowcount of executemany (the sum over the statements)")
        got = fetch_all(conn, f"SELECT id, s, big FROM {TABLE} WHERE id BETWEEN %s AND %s ORDER BY id", (10, 19))
        check_eq(got, rows, "rows inserted by executemany")

        # One multi-row INSERT ... VALUES, every row in the high shard.
        values = [(i, uuid.UUID(int=i), dt.date(2000, 1, 1) + dt.timedelta(days=i)) for i in range(200, 205)]
        psycopg2.extras.execute_values(cur, f"INSERT INTO {TABLE} (id, u, day) VALUES %s", values)
        check_eq(cur.rowcount, len(values), "rowcount of execute_values")
        got = fetch_all(conn, f"SELECT id, u, day FROM {TABLE} WHERE id >= %s ORDER BY id", (200,))
        check_eq(got, values, "rows inserted by execute_values")

        cur.executemany(f"UPDATE {TABLE} SET s = %s WHERE id = %s", [("updated", 10), ("updated", 11)])
        check_eq(cur.rowcount, 2, "rowcount of executemany UPDATE")
        cur.execute(f"DELETE FROM {TABLE} WHERE id >= %s AND id < %s", (15, 20))
        check_eq(cur.rowcount, 5, "rowcount of the DELETE")
        cur.execute(f"DELETE FROM {TABLE} WHERE id >= %s", (200,))
        check_eq(cur.rowcount, 5, "rowcount of the DELETE in the high shard")
    check_eq(ids(conn, "id >= 10 AND id < 100"), [10, 11, 12, 13, 14], "ids left")
    check_eq(ids(conn, "s = 'updated'"), [10, 11], "updated ids")


def transactions(conn, other):
    section("transactions: COMMIT keeps the rows, and only then do others see them")
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {TABLE} (id, s) VALUES (%s, %s)", (40, "committed"))
        cur.execute(f"INSERT INTO {TABLE} (id, s) VALUES (%s, %s)", (41, "committed"))
        cur.execute(f"UPDATE {TABLE} SET s = %s WHERE id = %s", ("committed too", 41))
    check_eq(
        transaction_status(conn),
        psycopg2.extensions.TRANSACTION_STATUS_INTRANS,
        "status inside the transaction",
    )
    check_eq(ids(conn, "id IN (40, 41)"), [40, 41], "own writes before COMMIT")
    check_eq(ids(other, "id IN (40, 41)"), [], "another session before COMMIT")
    conn.commit()
    check_eq(transaction_status(conn), psycopg2.extensions.TRANSACTION_STATUS_IDLE, "status after COMMIT")
    check_eq(
        fetch_all(other, f"SELECT id, s FROM {TABLE} WHERE id IN (40, 41) ORDER BY id"),
        [(40, "committed"), (41, "committed too")],
        "another session after COMMIT",
    )

    section("transactions: ROLLBACK discards the rows")
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {TABLE} (id, s) VALUES (%s, %s)", (42, "rolled back"))
        cur.execute(f"DELETE FROM {TABLE} WHERE id = %s", (40,))
    check_eq(ids(conn, "id IN (40, 42)"), [42], "own writes before ROLLBACK")
    conn.rollback()
    check_eq(transaction_status(conn), psycopg2.extensions.TRANSACTION_STATUS_IDLE, "status after ROLLBACK")
    check_eq(ids(conn, "id IN (40, 42)"), [40], "ids after ROLLBACK")
    conn.commit()

    section("transactions: `with conn` commits on success and rolls back on an exception")
    with conn:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {TABLE} (id, s) VALUES (%s, %s)", (160, "with block"))
    check_eq(ids(other, "id = 160"), [160], "row 160 after the `with` block")
    try:
        with conn:
            with conn.cursor() as cur:
                cur.execute(f"DELETE FROM {TABLE} WHERE id = %s", (160,))
                raise driver_common.Abandon()
    except driver_common.Abandon:
        pass
    check_eq(ids(other, "id = 160"), [160], "row 160 after the abandoned `with` block")
    conn.autocommit = True


def errors_keep_the_connection_usable(conn):
    section("a duplicate key is SQLSTATE 23505 and the connection stays usable")
    insert = f"INSERT INTO {TABLE} (id, s) VALUES (%s, %s)"

    def run(query, params=None):
        with conn.cursor() as cur:
            cur.execute(query, params)

    expect_error("23505", psycopg2.errors.UniqueViolation, "a duplicate key", lambda: run(insert, (1, "again")))
    expect_error(
        "23505",
        psycopg2.errors.UniqueViolation,
        "a duplicate key in the high shard",
        lambda: run(insert, (150, "again")),
    )
    check_eq(conn.closed, 0, "connection closed after the errors")
    check_eq(transaction_status(conn), psycopg2.extensions.TRANSACTION_STATUS_IDLE, "status after the errors")
    check_eq(fetch_all(conn, "SELECT %s + 1", (41,)), [(42,)], "a query after the errors")
    check_eq(
        fetch_all(conn, f"SELECT s FROM {TABLE} WHERE id = %s", (150,)),
        [(SAMPLES[1][7],)],
        "row 150 is unchanged",
    )
    expect_error(
        "42P01",
        psycopg2.errors.UndefinedTable,
        "an unknown table",
        lambda: run("SELECT * FROM drv_pg2_no_such_table WHERE id = %s", (1,)),
    )
    expect_error("42601", psycopg2.errors.SyntaxError, "a syntax error", lambda: run("SELEC 1"))
    run(insert, (5, "five"))
    check_eq(fetch_all(conn, f"SELECT s FROM {TABLE} WHERE id = %s", (5,)), [("five",)], "row 5")

    section("an error inside a transaction fails every statement with 25P02 until ROLLBACK")
    conn.autocommit = False
    run(insert, (6, "six"))
    expect_error(
        "23505", psycopg2.errors.UniqueViolation, "a duplicate key in a transaction", lambda: run(insert, (6, "dup"))
    )
    check_eq(
        transaction_status(conn),
        psycopg2.extensions.TRANSACTION_STATUS_INERROR,
        "status after the error",
    )
    for what, query, params in [
        ("a SELECT", "SELECT 1", None),
        ("a SELECT with a parameter", f"SELECT id FROM {TABLE} WHERE id = %s", (1,)),
        ("an INSERT", insert, (7, "seven")),
    ]:
        expect_error(
            "25P02",
            psycopg2.errors.InFailedSqlTransaction,
            f"{what} in the aborted transaction",
            lambda: run(query, params),
        )
    conn.rollback()
    check_eq(transaction_status(conn), psycopg2.extensions.TRANSACTION_STATUS_IDLE, "status after ROLLBACK")
    conn.autocommit = True
    check_eq(ids(conn, "id IN (5, 6, 7)"), [5], "ids after ROLLBACK")


def drop_table(conn):
    section("DROP TABLE drops the partitions too")
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE {TABLE}")
    for name in (TABLE, LOW, HIGH):
        expect_error(
            "42P01",
            psycopg2.errors.UndefinedTable,
            f"a SELECT from {name} after DROP TABLE",
            lambda: fetch_all(conn, f"SELECT * FROM {name}"),
        )


def steps(conn, other):
    """The checks, in order: (name, function of no arguments)."""
    return [
        ("every type round-trips", lambda: every_type_round_trips(conn)),
        ("executemany and batches", lambda: executemany_and_batches(conn)),
        ("transactions", lambda: transactions(conn, other)),
        ("errors keep the connection usable", lambda: errors_keep_the_connection_usable(conn)),
        ("DROP TABLE", lambda: drop_table(conn)),
    ]


def main():
    print(f"psycopg2 {psycopg2.__version__} (libpq {psycopg2.extensions.libpq_version()})", flush=True)
    return run_checks("psycopg2", connect, create_table, steps)


if __name__ == "__main__":
    sys.exit(main())
