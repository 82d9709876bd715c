"""What the Python driver tests in this directory share: the supported types with a column and
test values for each, the DDL of the range-partitioned test table, where the router is, the
checks that raise CheckFailed, and the harness that runs the steps of a script and reports.

It is not a test: each X_test.py imports it as `driver_common`, which works because Python puts
a script's own directory first on sys.path and tests/src/script.rs runs every script as
`python -u tests/python/X_test.py`. It knows no driver, so it imports none: what differs from
one driver to another (how it connects, its error classes and where they keep the SQLSTATE,
what it reports of a column) stays in the scripts.
"""

import datetime as dt
import os
import sys
import traceback
import uuid
from decimal import Decimal

# The supported types, one column of each: (column, SQL type, the type's name in pg_type, which
# is what a driver learns from the server's Describe, the value in the low shard's sample row,
# the value in the high shard's one). The values are extreme and awkward: every REAL is exactly
# representable as a float4, the CHAR(5) values fill the column, so they come back unchanged,
# and the text holds quotes, a backslash and what each driver could take for a placeholder.
TYPES = [
    ("id", "INTEGER", "int4", 1, 150),
    ("small", "SMALLINT", "int2", 32767, -32768),
    ("n", "INTEGER", "int4", -(2**31), 2**31 - 1),
    ("big", "BIGINT", "int8", -(2**63), 2**63 - 1),
    ("r", "REAL", "float4", 3.25, -1048576.5),
    ("f", "DOUBLE PRECISION", "float8", -0.1, 0.1 + 0.2),
    ("d", "NUMERIC(10,2)", "numeric", Decimal("12345678.90"), Decimal("-0.01")),
    ("s", "TEXT", "text", "héllo, wörld ✓ 'quoted' \"double\" \\ back; -- %s %(x)s :x $1 not placeholders", ""),
    ("vc", "VARCHAR(20)", "varchar", "varchar value", "exactly twenty chars"),
    ("ch", "CHAR(5)", "bpchar", "abcde", "ü ✓ z"),
    ("b", "BOOLEAN", "bool", True, False),
    ("day", "DATE", "date", dt.date(2024, 2, 29), dt.date(1999, 12, 31)),
    ("ts", "TIMESTAMP", "timestamp", dt.datetime(2024, 2, 29, 13, 45, 10, 123456), dt.datetime(1970, 1, 1)),
    (
        "tstz",
        "TIMESTAMPTZ",
        "timestamptz",
        dt.datetime(2024, 2, 29, 13, 45, 10, 500000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(1969, 7, 20, 20, 17, 40, tzinfo=dt.timezone.utc),
    ),
    ("u", "UUID", "uuid", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), uuid.UUID(int=0)),
    ("raw", "BYTEA", "bytea", b"\x00\x01\\'\"\xfe\xff", b""),
]

COLUMNS = [column for column, *_ in TYPES]

# The SQL type of each column, in order: a cast to it gives back the value of the column's type.
SQL_TYPES = [sql_type for _, sql_type, *_ in TYPES]

# The name in pg_type of each column's type, in order.
TYPE_NAMES = [name for _, _, name, *_ in TYPES]

# One row in each shard (ids 1 and 150) and one of NULLs (id 2) but its id.
SAMPLES = [
    tuple(low for *_, low, _ in TYPES),
    tuple(high for *_, high in TYPES),
    (2,) + (None,) * (len(TYPES) - 1),
]

# The first id of the high shard.
SPLIT = 100


def samples(columns):
    """SAMPLES with only the columns `columns` (names from COLUMNS), in that order."""
    at = [COLUMNS.index(column) for column in columns]
    return [tuple(row[i] for i in at) for row in SAMPLES]


def table_names(prefix):
    """A new table name starting with prefix, so that a rerun against the same server does not
    collide with an earlier one, and the names of its two partitions: (table, low, high)."""
    table = f"{prefix}_{uuid.uuid4().hex[:8]}"
    return table, f"{table}_low", f"{table}_high"


def partitions_ddl(table):
    """The statements that create the two shards of `table`: {table}_low below SPLIT, and
    {table}_high from SPLIT on."""
    return [
        f"CREATE TABLE {table}_low PARTITION OF {table} FOR VALUES FROM (MINVALUE) TO ({SPLIT})",
        f"CREATE TABLE {table}_high PARTITION OF {table} FOR VALUES FROM ({SPLIT}) TO (MAXVALUE)",
    ]


def ddl(table, columns=COLUMNS):
    """The statements that create `table` with the columns `columns` of TYPES, its primary key
    id, range-partitioned on id into its two shards."""
    sql_type = dict(zip(COLUMNS, SQL_TYPES))
    definitions = ", ".join(f"{c} {sql_type[c]}" + (" PRIMARY KEY" if c == "id" else "") for c in columns)
    return [f"CREATE TABLE {table} ({definitions}) PARTITION BY RANGE (id)"] + partitions_ddl(table)


def router():
    """Where the router is and whom to connect as: host, port, user and database.

    The Rust test that runs the script passes the router's address as TESSERA_ROUTER_ADDR=host:port;
    TESSERA_USER and TESSERA_DATABASE may change the user and database, both `tessera` by default.
    """
    addr = os.environ.get("TESSERA_ROUTER_ADDR")
    check(addr, "TESSERA_ROUTER_ADDR (host:port of the router) is not set")
    host, port = addr.rsplit(":", 1)
    return dict(
        host=host,
        port=int(port),
        user=os.environ.get("TESSERA_USER", "tessera"),
        database=os.environ.get("TESSERA_DATABASE", "tessera"),
    )


def libpq_params(application_name):
    """The keyword arguments of a libpq connection (psycopg 3, psycopg2) to the router."""
    where = router()
    return dict(
        host=where["host"],
        port=where["port"],
        user=where["user"],
        dbname=where["database"],
        sslmode="disable",
        connect_timeout=10,
        application_name=application_name,
    )


class CheckFailed(Exception):
    pass


class Abandon(Exception):
    """Raised inside a transaction block to leave it by an exception, so that it rolls back."""


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def check_eq(got, expected, what):
    if got != expected:
        raise CheckFailed(f"{what}:\n  expected {expected!r}\n  got      {got!r}")


def check_error(error, sqlstate, error_class, what, got_sqlstate):
    """Checks that error, which `what` raised and whose SQLSTATE is got_sqlstate, has SQLSTATE
    sqlstate and is an error_class; returns it."""
    check_eq(got_sqlstate, sqlstate, f"SQLSTATE of {what} ({type(error).__name__}: {error})")
    check(
        isinstance(error, error_class),
        f"{what} raised {type(error).__name__}, expected {error_class.__name__}: {error}",
    )
    return error


def unexpected_success(what, result, sqlstate):
    """The failure of `what`, which had to fail with SQLSTATE sqlstate, succeeding with result."""
    return CheckFailed(f"{what} succeeded ({result!r}) but must fail with SQLSTATE {sqlstate}")


def expect_error(sqlstate, error_class, what, action, catch=Exception, sqlstate_of=lambda e: e.sqlstate):
    """Runs action(), which must raise an error_class whose SQLSTATE, sqlstate_of(error), is
    sqlstate; returns the error. catch is the driver's base class of the errors of the server:
    action() raising anything else is not caught."""
    try:
        result = action()
    except catch as e:
        return check_error(e, sqlstate, error_class, what, sqlstate_of(e))
    raise unexpected_success(what, result, sqlstate)


def section(name):
    print(f"== {name}", flush=True)


def setup_failed():
    """Reports, from an `except` block, that the script cannot connect and create its table, and
    returns the exit status."""
    print("FAILED: cannot connect and create the table", flush=True)
    traceback.print_exc()
    return 1


def run_steps(steps, reset=None):
    """Runs each step of steps, (name, function of no arguments), and returns the names of those
    that failed. A failure is printed with its traceback, then reset(), when given, leaves the
    connection as the next step expects it.

    Each step runs even when one before it failed, so that one run shows every problem; a step
    after a failed one may fail only because of what the failed one left behind.
    """
    failed = []
    for name, step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            failed.append(name)
            kind = "" if isinstance(e, CheckFailed) else f"an unexpected {type(e).__name__}: "
            print(f"FAILED ({name}): {kind}{e}", flush=True)
            traceback.print_exc()
            sys.stderr.flush()
            if reset is not None:
                try:
                    reset()
                except Exception as cleanup:  # noqa: BLE001
                    print(f"(cannot reset the connection: {cleanup})", flush=True)
    return failed


def rollback(conn):
    """Leaves a DB-API connection (psycopg 3, psycopg2) as the step after a failed one expects it:
    idle (a rollback when it is idle already does nothing), in autocommit."""
    conn.rollback()
    conn.autocommit = True


def run_checks(driver, connect, create_table, steps, reset=rollback, closed=lambda conn: conn.closed, run=None):
    """The whole of a script that checks `driver` through two connections; returns the exit status.

    It makes the connections, conn and other, with connect(), creates the table with
    create_table(conn), runs the steps of steps(conn, other) with run_steps, reset(conn) after a
    failure, checks that neither connection closed (closed(conn) is false), closes both and
    reports. The defaults of reset and closed suit a DB-API connection. With run, for an asyncio
    driver, each of connect(), create_table(conn), a step, reset(conn) and conn.close() returns
    an awaitable, which run() runs to completion.
    """
    done = run or (lambda result: result)
    try:
        conn = done(connect())
        other = done(connect())
        done(create_table(conn))
    except Exception:  # noqa: BLE001 - reported, and nothing else can run
        return setup_failed()
    failed = run_steps(
        [(name, lambda step=step: done(step())) for name, step in steps(conn, other)],
        lambda: done(reset(conn)),
    )
    if closed(conn) or closed(other):
        failed.append("connections stay open")
        print("FAILED: a connection closed", flush=True)
    done(conn.close())
    done(other.close())
    return finish(driver, failed)


def finish(driver, failed):
    """Reports whether the checks of `driver` passed (failed is empty) and returns the exit status."""
    if failed:
        print(f"{driver} checks FAILED in: {', '.join(failed)}", flush=True)
        return 1
    print(f"{driver} checks passed", flush=True)
    return 0
