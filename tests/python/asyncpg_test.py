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
import sys
import uuid
from decimal import Decimal

import asyncpg

import driver_common
from driver_common import (
    COLUMNS,
    SAMPLES,
    SQL_TYPES,
    TYPE_NAMES,
    check,
    check_eq,
    check_error,
    run_checks,
    section,
    unexpected_success,
)

TABLE, LOW, HIGH = driver_common.table_names("drv_apg")

# A column of every supported type, and sample rows with a value of each (see driver_common).
DDL = driver_common.ddl(TABLE)

POOL_APPLICATION_NAME = "tessera-tests-asyncpg-pool"


async def expect_error(sqlstate, error_class, what, action):
    """Awaits action(), which must raise an asyncpg error of class error_class with sqlstate."""
    try:
        result = await action()
    except asyncpg.PostgresError as e:
        return check_error(e, sqlstate, error_class, what, e.sqlstate)
    raise unexpected_success(what, result, sqlstate)


def connect_args():
    return dict(**driver_common.router(), ssl=False, timeout=10, command_timeout=60)


async def connect():
    return await asyncpg.connect(**connect_args(), server_settings={"application_name": "tessera-tests-asyncpg"})


def rows(records):
    return [tuple(r) for r in records]


async def ids(conn, where="TRUE"):
    return [r["id"] for r in await conn.fetch(f"SELECT id FROM {TABLE} WHERE {where} ORDER BY id")]


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
    # The type asyncpg learns for each column, from the server's Describe.
    check_eq([a.type.name for a in select.get_attributes()], TYPE_NAMES, "column types of the SELECT")
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
            accepted = [[TYPE_NAMES[COLUMNS.index(column)]]]
            if column == "vc":
                # varchar has no = of its own: PostgreSQL resolves `vc = $1` as text = text.
                accepted.append(["text"])
            check(inferred in accepted, f"the type of $1 in WHERE {column} = $1 is {inferred}, not one of {accepted}")
            check_eq(await statement.fetchval(value), sample[0], f"the id with {column} = {value!r}")
    got = await conn.fetchval(f"SELECT id FROM {TABLE} WHERE s IS NULL AND raw IS NULL AND $1::uuid IS NULL", None)
    check_eq(got, 2, "the id of the row of NULLs")

    section("parameters echoed by SELECT")
    echo = "SELECT " + ", ".join(f"${i + 1}::{t}" for i, t in enumerate(SQL_TYPES))
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

    try:
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {HIGH} (id, s) VALUES ($1, $2)", 160, "abandoned")
            raise driver_common.Abandon()
    except driver_common.Abandon:
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


def create_pool(min_size, max_size):
    """A pool of min_size to max_size connections to the router, named POOL_APPLICATION_NAME."""
    return asyncpg.create_pool(
        **connect_args(),
        min_size=min_size,
        max_size=max_size,
        server_settings={"application_name": POOL_APPLICATION_NAME},
    )


async def pool_acquire_release_and_reset():
    section("a pool: acquire and release many times, concurrently")
    pool = await create_pool(2, 3)
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
    pool = await create_pool(1, 1)
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


def steps(conn, other):
    """The checks, in order: (name, coroutine function of no arguments)."""
    return [
        ("every type round-trips", lambda: every_type_round_trips(conn)),
        ("prepared statements and executemany", lambda: prepared_statements_and_executemany(conn)),
        ("transactions", lambda: transactions(conn, other)),
        ("errors keep the connection usable", lambda: errors_keep_the_connection_usable(conn)),
        ("a pool", pool_acquire_release_and_reset),
        ("DROP TABLE", lambda: drop_table(conn)),
    ]


async def reset(conn):
    """Leaves the connection as the next step expects it after a failed one: idle."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def main():
    print(f"asyncpg {asyncpg.__version__}", flush=True)
    # One event loop for the whole script, which runs each step to completion in turn.
    with asyncio.Runner() as runner:
        runner.get_loop().set_exception_handler(quiet_pool_reset_warning)
        return run_checks(
            "asyncpg", connect, create_table, steps, reset, closed=lambda conn: conn.is_closed(), run=runner.run
        )


if __name__ == "__main__":
    sys.exit(main())
