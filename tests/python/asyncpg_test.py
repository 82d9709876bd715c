#!/usr/bin/env python3
"""asyncpg against a Tessera router: a value of every supported type round-trips in binary,
prepared statements, fetch/fetchrow/fetchval/executemany, transactions, a connection pool
whose reset works, and errors that carry their SQLSTATE.

Run by tests/tests/driver_asyncpg.rs, which starts a cluster and passes the router's address as
TESSERA_ROUTER_ADDR=host:port; the Python comes from the virtualenv scripts/test.sh makes
(TESSERA_PYTHON). Every check raises on failure and the script exits non-zero, printing what
failed; it prints one line per section as it goes.

asyncpg uses the extended protocol only, and binary formats for every parameter and result of
the types here: it sends Parse with no parameter types, asks for Describe, and encodes each
parameter by the type the server describes (so a server that infers `$1` wrongly fails here),
caching a named prepared statement per query on each connection. Connection.transaction()
sends BEGIN and COMMIT or ROLLBACK. A pool resets a connection when it is released: ROLLBACK
if a transaction is open, then "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
ALL;". Any PostgreSQL gives the answers checked here, so the script also runs against
PostgreSQL itself.
"""

import asyncio
import datetime as dt
import os
import sys
import traceback
import uuid
from decimal import Decimal

import asyncpg

# Unique names, so that a rerun against the same server does not collide with an earlier one.
TABLE = f"drv_apg_{uuid.uuid4().hex[:8]}"
LOW, HIGH = f"{TABLE}_low", f"{TABLE}_high"

DDL = [
    f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, small SMALLINT, n INTEGER, big BIGINT, r REAL, "
    "f DOUBLE PRECISION, d NUMERIC(10,2), s TEXT, vc VARCHAR(20), ch CHAR(5), b BOOLEAN, day DATE, "
    "ts TIMESTAMP, tstz TIMESTAMPTZ, u UUID, raw BYTEA) PARTITION BY RANGE (id)",
    f"CREATE TABLE {LOW} PARTITION OF {TABLE} FOR VALUES FROM (MINVALUE) TO (100)",
    f"CREATE TABLE {HIGH} PARTITION OF {TABLE} FOR VALUES FROM (100) TO (MAXVALUE)",
]

COLUMNS = ["id", "small", "n", "big", "r", "f", "d", "s", "vc", "ch", "b", "day", "ts", "tstz", "u", "raw"]

# The type asyncpg learns for each column, from the server's Describe.
TYPES = [
    "int4",
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric",
    "text",
    "varchar",
    "bpchar",
    "bool",
    "date",
    "timestamp",
    "timestamptz",
    "uuid",
    "bytea",
]

# One row in each shard with extreme and awkward values, and one of NULLs. Every REAL is exactly
# representable as a float4. The CHAR(5) values fill the column, so they come back unchanged.
SAMPLES = [
    (
        1,
        32767,
        -(2**31),
        -(2**63),
        3.25,
        -0.1,
        Decimal("12345678.90"),
        "héllo, wörld ✓ 'quoted' \"double\" \\ back; -- %s $1 not placeholders",
        "varchar value",
        "abcde",
        True,
        dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 13, 45, 10, 123456),
        dt.datetime(2024, 2, 29, 13, 45, 10, 500000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        b"\x00\x01\\'\"\xfe\xff",
    ),
    (
        150,
        -32768,
        2**31 - 1,
        2**63 - 1,
        -1048576.5,
        0.1 + 0.2,
        Decimal("-0.01"),
        "",
        "exactly twenty chars",
        "ü ✓ z",
        False,
        dt.date(1999, 12, 31),
        dt.datetime(1970, 1, 1),
        dt.datetime(1969, 7, 20, 20, 17, 40, tzinfo=dt.timezone.utc),
        uuid.UUID(int=0),
        b"",
    ),
    (2,) + (None,) * 15,
]

POOL_APPLICATION_NAME = "tessera-tests-asyncpg-pool"


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def check_eq(got, expected, what):
    if got != expected:
        raise CheckFailed(f"{what}:\n  expected {expected!r}\n  got      {got!r}")


async def expect_error(sqlstate, error_class, what, action):
    """Awaits action(), which must raise an asyncpg error of class error_class with sqlstate."""
    try:
        result = await action()
    except asyncpg.PostgresError as e:
        check_eq(e.sqlstate, sqlstate, f"SQLSTATE of {what} ({type(e).__name__}: {e})")
        check(
            isinstance(e, error_class),
            f"{what} raised {type(e).__name__}, expected {error_class.__name__}: {e}",
        )
        return e
    raise CheckFailed(f"{what} succeeded ({result!r}) but must fail with SQLSTATE {sqlstate}")


def connect_args():
    addr = os.environ.get("TESSERA_ROUTER_ADDR")
    check(addr, "TESSERA_ROUTER_ADDR (host:port of the router) is not set")
    host, port = addr.rsplit(":", 1)
    return dict(
        host=host,
        port=int(port),
        user=os.environ.get("TESSERA_USER", "tessera"),
        database=os.environ.get("TESSERA_DATABASE", "tessera"),
        ssl=False,
        timeout=10,
        command_timeout=60,
    )


async def connect():
    return await asyncpg.connect(**connect_args(), server_settings={"application_name": "tessera-tests-asyncpg"})


def rows(records):
    return [tuple(r) for r in records]


async def ids(conn, where="TRUE"):
    return [r["id"] for r in await conn.fetch(f"SELECT id FROM {TABLE} WHERE {where} ORDER BY id")]


def section(name):
    print(f"== {name}", flush=True)


async def create_table(conn):
    section("create the range-partitioned table")
    for statement in DDL:
        check_eq(await conn.execute(statement), "CREATE TABLE", f"status of {statement[:40]}...")


async def every_type_round_trips(conn):
    section("insert a value of every type, NULLs included, as binary parameters")
    insert = (
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))})"
    )
    for sample in SAMPLES:
        check_eq(await conn.execute(insert, *sample), "INSERT 0 1", f"status of the INSERT of row {sample[0]}")

    section("a prepared statement describes its parameters and columns, and reads every row back")
    select = await conn.prepare(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE id = $1")
    check_eq([t.name for t in select.get_parameters()], ["int4"], "parameter types of the SELECT")
    check_eq([a.name for a in select.get_attributes()], COLUMNS, "column names of the SELECT")
    check_eq([a.type.name for a in select.get_attributes()], TYPES, "column types of the SELECT")
    for sample in SAMPLES:
        check_eq(rows(await select.fetch(sample[0])), [sample], f"row {sample[0]} by fetch")
        check_eq(tuple(await select.fetchrow(sample[0])), sample, f"row {sample[0]} by fetchrow")
        check_eq(tuple(await conn.fetchrow(select.get_query(), sample[0])), sample, f"row {sample[0]} unprepared")
    check_eq(await select.fetchrow(-1), None, "fetchrow of no row")
    check_eq(await ids(conn), sorted(s[0] for s in SAMPLES), "every id")
    check_eq(
        [str(r["d"]) for r in await conn.fetch(f"SELECT d FROM {TABLE} WHERE d IS NOT NULL ORDER BY id")],
        ["12345678.90", "-0.01"],
        "numeric(10,2) values, scale kept",
    )

    section("a parameter of every type in WHERE, its type inferred by the server")
    for sample in SAMPLES[:2]:
        for column, value in zip(COLUMNS, sample):
            statement = await conn.prepare(f"SELECT id FROM {TABLE} WHERE {column} = $1")
            inferred = [t.name for t in statement.get_parameters()]
            accepted = [[TYPES[COLUMNS.index(column)]]]
            if column == "vc":
                # varchar has no = of its own: PostgreSQL resolves `vc = $1` as text = text.
                accepted.append(["text"])
            check(inferred in accepted, f"the type of $1 in WHERE {column} = $1 is {inferred}, not one of {accepted}")
            check_eq(await statement.fetchval(value), sample[0], f"the id with {column} = {value!r}")
    got = await conn.fetchval(f"SELECT id FROM {TABLE} WHERE s IS NULL AND raw IS NULL AND $1::uuid IS NULL", None)
    check_eq(got, 2, "the id of the row of NULLs")

    section("parameters echoed by SELECT")
    casts = ["int", "smallint", "int", "bigint", "real", "float8", "numeric(10,2)", "text", "varchar(20)"]
    casts += ["char(5)", "boolean", "date", "timestamp", "timestamptz", "uuid", "bytea"]
    echo = "SELECT " + ", ".join(f"${i + 1}::{t}" for i, t in enumerate(casts))
    for sample in SAMPLES:
        check_eq(tuple(await conn.fetchrow(echo, *sample)), sample, f"echo of row {sample[0]}")

    section("numeric(10,2) rounds to its scale; char(5) pads")
    status = await conn.execute(f"UPDATE {TABLE} SET d = $1, ch = $2 WHERE id = $3", Decimal("2.345"), "ab", 2)
    check_eq(status, "UPDATE 1", "status of the UPDATE")
    got = await conn.fetchrow(f"SELECT d, ch, length(ch) AS len FROM {TABLE} WHERE id = $1", 2)
    check_eq((str(got["d"]), got["ch"], got["len"]), ("2.35", "ab   ", 2), "row 2 after the UPDATE")


async def prepared_statements_and_executemany(conn):
    section("executemany, on the connection and on a prepared statement")
    data = [(i, f"many {i}", i * 1.5) for i in range(10, 20)]
    check_eq(
        await conn.executemany(f"INSERT INTO {TABLE} (id, s, f) VALUES ($1, $2, $3)", data[:5]),
        None,
        "result of Connection.executemany",
    )
    insert = await conn.prepare(f"INSERT INTO {TABLE} (id, s, f) VALUES ($1, $2, $3)")
    await insert.executemany(data[5:])
    got = rows(await conn.fetch(f"SELECT id, s, f FROM {TABLE} WHERE id BETWEEN $1 AND $2 ORDER BY id", 10, 19))
    check_eq(got, data, "rows inserted by executemany")

    section("one prepared statement run many times with different parameters")
    by_range = await conn.prepare(f"SELECT id, s FROM {TABLE} WHERE id >= $1 AND id < $2 ORDER BY id")
    for low in range(10, 20):
        got = rows(await by_range.fetch(low, low + 3))
        check_eq(got, [(i, f"many {i}") for i in range(low, min(low + 3, 20))], f"ids from {low} to {low + 3}")
    check_eq(await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE id >= $1", 10), 11, "count of ids >= 10")
    check_eq(await conn.fetchval(f"SELECT max(id) FROM {TABLE} WHERE id < $1", 100), 19, "max id below 100")

    section("UPDATE and DELETE statuses, and RETURNING")
    check_eq(
        await conn.execute(f"UPDATE {TABLE} SET s = $1 WHERE id IN ($2, $3)", "updated", 10, 11),
        "UPDATE 2",
        "status of the UPDATE",
    )
    check_eq(
        await conn.execute(f"DELETE FROM {TABLE} WHERE id >= $1 AND id < $2", 15, 20),
        "DELETE 5",
        "status of the DELETE",
    )
    got = await conn.fetchrow(
        f"INSERT INTO {TABLE} (id, u, tstz) VALUES ($1, $2, $3) RETURNING id, u, tstz, s",
        170,
        uuid.UUID(int=170),
        dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
    )
    check_eq(tuple(got), (170, uuid.UUID(int=170), dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), None), "RETURNING")
    check_eq(await ids(conn, "id >= 10 AND id < 100"), [10, 11, 12, 13, 14], "ids left")

    section("a prepared statement on an unknown table fails with 42P01")
    await expect_error(
        "42P01",
        asyncpg.UndefinedTableError,
        "preparing a SELECT from an unknown table",
        lambda: conn.prepare("SELECT * FROM drv_apg_no_such_table WHERE id = $1"),
    )


async def transactions(conn, other):
    section("transactions: COMMIT keeps the rows, and only then do others see them")
    async with conn.transaction():
        check(conn.is_in_transaction(), "not in a transaction inside `async with conn.transaction()`")
        await conn.execute(f"INSERT INTO {TABLE} (id, s) VALUES ($1, $2)", 40, "committed")
        await conn.execute(f"INSERT INTO {TABLE} (id, s) VALUES ($1, $2)", 41, "committed")
        await conn.execute(f"UPDATE {TABLE} SET s = $1 WHERE id = $2", "committed too", 41)
        check_eq(await ids(conn, "id IN (40, 41)"), [40, 41], "own writes before COMMIT")
        check_eq(await ids(other, "id IN (40, 41)"), [], "another session before COMMIT")
    check(not conn.is_in_transaction(), "still in a transaction after COMMIT")
    got = rows(await other.fetch(f"SELECT id, s FROM {TABLE} WHERE id IN (40, 41) ORDER BY id"))
    check_eq(got, [(40, "committed"), (41, "committed too")], "another session after COMMIT")

    section("transactions: ROLLBACK, explicit and by an exception, discards the rows")
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute(f"INSERT INTO {TABLE} (id, s) VALUES ($1, $2)", 42, "rolled back")
    await conn.execute(f"DELETE FROM {TABLE} WHERE id = $1", 40)
    check_eq(await ids(conn, "id IN (40, 42)"), [42], "own writes before ROLLBACK")
    await transaction.rollback()
    check(not conn.is_in_transaction(), "still in a transaction after ROLLBACK")
    check_eq(await ids(conn, "id IN (40, 42)"), [40], "ids after ROLLBACK")

    class Abandon(Exception):
        pass

    try:
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {HIGH} (id, s) VALUES ($1, $2)", 160, "abandoned")
            raise Abandon()
    except Abandon:
        pass
    check_eq(await ids(other, "id = 160"), [], "row 160 after the abandoned transaction")


async def errors_keep_the_connection_usable(conn):
    section("a duplicate key is SQLSTATE 23505 and the connection stays usable")
    insert = f"INSERT INTO {TABLE} (id, s) VALUES ($1, $2)"
    await expect_error(
        "23505", asyncpg.UniqueViolationError, "a duplicate key", lambda: conn.execute(insert, 1, "again")
    )
    prepared = await conn.prepare(insert)
    await expect_error(
        "23505",
        asyncpg.UniqueViolationError,
        "a duplicate key through a prepared statement, in the high shard",
        lambda: prepared.fetch(150, "again"),
    )
    check(not conn.is_closed(), "the connection closed after the errors")
    check(not conn.is_in_transaction(), "in a transaction after the errors")
    check_eq(await conn.fetchval("SELECT $1::int + 1", 41), 42, "a query after the errors")
    check_eq(await conn.fetchval(f"SELECT s FROM {TABLE} WHERE id = $1", 150), SAMPLES[1][7], "row 150 is unchanged")
    await expect_error("42601", asyncpg.PostgresSyntaxError, "a syntax error", lambda: conn.execute("SELEC 1"))
    await prepared.fetch(5, "five")
    check_eq(await conn.fetchval(f"SELECT s FROM {TABLE} WHERE id = $1", 5), "five", "row 5")

    section("an error inside a transaction fails every statement with 25P02 until ROLLBACK")
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute(insert, 6, "six")
    await expect_error(
        "23505",
        asyncpg.UniqueViolationError,
        "a duplicate key in a transaction",
        lambda: conn.execute(insert, 6, "dup"),
    )
    check(conn.is_in_transaction(), "the failed transaction is no longer open")
    await expect_error(
        "25P02",
        asyncpg.InFailedSQLTransactionError,
        "a SELECT in the aborted transaction",
        lambda: conn.fetchval("SELECT 1"),
    )
    await expect_error(
        "25P02",
        asyncpg.InFailedSQLTransactionError,
        "a prepared SELECT in the aborted transaction",
        lambda: conn.fetch(f"SELECT id FROM {TABLE} WHERE id = $1", 1),
    )
    await expect_error(
        "25P02",
        asyncpg.InFailedSQLTransactionError,
        "an INSERT in the aborted transaction",
        lambda: conn.execute(insert, 7, "seven"),
    )
    await transaction.rollback()
    check(not conn.is_in_transaction(), "still in a transaction after ROLLBACK")
    check_eq(await ids(conn, "id IN (5, 6, 7)"), [5], "ids after ROLLBACK")


async def pool_acquire_release_and_reset():
    section("a pool: acquire and release many times, concurrently")
    pool = await asyncpg.create_pool(
        **connect_args(),
        min_size=2,
        max_size=3,
        server_settings={"application_name": POOL_APPLICATION_NAME},
    )
    try:
        for i in range(10):
            async with pool.acquire() as conn:
                check_eq(await conn.fetchval("SELECT $1::int * 2", i), i * 2, f"acquisition {i}")
        conn = await pool.acquire()
        try:
            got = await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE id BETWEEN $1 AND $2", 10, 19)
            check_eq(got, 5, "count through the pool")
        finally:
            await pool.release(conn)
        got = await asyncio.gather(*(pool.fetchval(f"SELECT s FROM {TABLE} WHERE id = $1", i) for i in range(10, 15)))
        check_eq(got, ["updated", "updated", "many 12", "many 13", "many 14"], "concurrent fetches through the pool")
        check_eq(
            await pool.execute(f"INSERT INTO {TABLE} (id, s) VALUES ($1, $2)", 60, "pool"),
            "INSERT 0 1",
            "INSERT through the pool",
        )
    finally:
        await asyncio.wait_for(pool.close(), 30)

    section("a pool resets what a released connection changed: settings and an open transaction")
    # One connection, so every acquisition gets the one released before.
    pool = await asyncpg.create_pool(
        **connect_args(),
        min_size=1,
        max_size=1,
        server_settings={"application_name": POOL_APPLICATION_NAME},
    )
    try:
        async with pool.acquire() as conn:
            check_eq(await conn.fetchval("SHOW application_name"), POOL_APPLICATION_NAME, "application_name")
            await conn.execute("SET application_name = 'changed by a borrower'")
            check_eq(
                await conn.fetchval("SHOW application_name"), "changed by a borrower", "application_name after SET"
            )
        async with pool.acquire() as conn:
            check_eq(
                await conn.fetchval("SHOW application_name"),
                POOL_APPLICATION_NAME,
                "application_name after the release (RESET ALL)",
            )
            # Released with a transaction open: the pool rolls it back (and asyncpg reports it
            # to the event loop's exception handler, which main() quiets for this message).
            await conn.execute("BEGIN")
            await conn.execute(f"INSERT INTO {TABLE} (id, s) VALUES ($1, $2)", 61, "never committed")
        async with pool.acquire() as conn:
            check(not conn.is_in_transaction(), "a connection from the pool is in a transaction")
            check_eq(await ids(conn, "id IN (60, 61)"), [60], "ids after releasing an open transaction")
    finally:
        await asyncio.wait_for(pool.close(), 30)


async def drop_table(conn):
    section("DROP TABLE drops the partitions too")
    check_eq(await conn.execute(f"DROP TABLE {TABLE}"), "DROP TABLE", "status of DROP TABLE")
    for name in (TABLE, LOW, HIGH):
        await expect_error(
            "42P01",
            asyncpg.UndefinedTableError,
            f"a SELECT from {name} after DROP TABLE",
            lambda: conn.fetch(f"SELECT * FROM {name}"),
        )


def quiet_pool_reset_warning(loop, context):
    if str(context.get("message", "")).startswith("Resetting connection with an active transaction"):
        return
    loop.default_exception_handler(context)


async def main():
    print(f"asyncpg {asyncpg.__version__}", flush=True)
    asyncio.get_running_loop().set_exception_handler(quiet_pool_reset_warning)
    try:
        conn = await connect()
        other = await connect()
        await create_table(conn)
    except Exception:  # noqa: BLE001 - reported, and nothing else can run
        print("FAILED: cannot connect and create the table", flush=True)
        traceback.print_exc()
        return 1
    # Each step runs even when one before it failed, so that one run shows every problem; a
    # step after a failed one may fail only because of what the failed one left behind.
    steps = [
        ("every type round-trips", lambda: every_type_round_trips(conn)),
        ("prepared statements and executemany", lambda: prepared_statements_and_executemany(conn)),
        ("transactions", lambda: transactions(conn, other)),
        ("errors keep the connection usable", lambda: errors_keep_the_connection_usable(conn)),
        ("a pool", pool_acquire_release_and_reset),
        ("DROP TABLE", lambda: drop_table(conn)),
    ]
    failed = []
    for name, step in steps:
        try:
            await step()
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            failed.append(name)
            kind = "" if isinstance(e, CheckFailed) else f"an unexpected {type(e).__name__}: "
            print(f"FAILED ({name}): {kind}{e}", flush=True)
            traceback.print_exc()
            sys.stderr.flush()
            # Leave the connection as the next step expects it: idle.
            try:
                if conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
            except Exception as cleanup:  # noqa: BLE001
                print(f"(cannot reset the connection: {cleanup})", flush=True)
    if conn.is_closed() or other.is_closed():
        failed.append("connections stay open")
        print("FAILED: a connection closed", flush=True)
    await conn.close()
    await other.close()
    if failed:
        print(f"asyncpg checks FAILED in: {', '.join(failed)}", flush=True)
        return 1
    print("asyncpg checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
