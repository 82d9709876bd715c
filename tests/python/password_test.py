#!/usr/bin/env python3
"""asyncpg (its own SCRAM and md5 code) and psycopg 3 (libpq) logging in with a password to
Tessera routers that check passwords.

Run by tests/tests/auth.rs, which starts a router with `--auth scram-sha-256` at
TESSERA_ROUTER_ADDR and one with `--auth md5` at TESSERA_MD5_ROUTER_ADDR (both host:port), and
passes a role that may log in as TESSERA_USER with its password in TESSERA_PASSWORD. On each
router, each driver must log in and run a query as that role, and a wrong password must be
refused with 28P01. Every check raises on failure and the script exits non-zero.
"""

import asyncio
import os
import sys

import asyncpg
import psycopg

USER = os.environ["TESSERA_USER"]
PASSWORD = os.environ["TESSERA_PASSWORD"]
ROUTERS = [
    ("scram-sha-256", os.environ["TESSERA_ROUTER_ADDR"]),
    ("md5", os.environ["TESSERA_MD5_ROUTER_ADDR"]),
]


def host_port(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


async def with_asyncpg(method, addr):
    host, port = host_port(addr)
    conn = await asyncpg.connect(host=host, port=port, user=USER, password=PASSWORD, database="tessera")
    try:
        who = await conn.fetchval("SELECT current_user")
        assert who == USER, f"asyncpg over {method}: current_user is {who!r}"
        assert await conn.fetchval("SELECT $1::int + 1", 41) == 42, f"asyncpg over {method}: a query"
    finally:
        await conn.close()
    try:
        await asyncpg.connect(host=host, port=port, user=USER, password="not it", database="tessera")
    except asyncpg.PostgresError as e:
        assert e.sqlstate == "28P01", f"asyncpg over {method}: a wrong password gave {e.sqlstate}: {e}"
    else:
        raise AssertionError(f"asyncpg over {method}: a wrong password was accepted")
    print(f"asyncpg over {method}: ok", flush=True)


def with_psycopg(method, addr):
    host, port = host_port(addr)
    with psycopg.connect(host=host, port=port, user=USER, password=PASSWORD, dbname="tessera") as conn:
        who = conn.execute("SELECT current_user").fetchone()[0]
        assert who == USER, f"psycopg over {method}: current_user is {who!r}"
        assert conn.execute("SELECT %s::int + 1", (41,)).fetchone()[0] == 42, f"psycopg over {method}: a query"
    try:
        psycopg.connect(host=host, port=port, user=USER, password="not it", dbname="tessera")
    except psycopg.OperationalError as e:
        assert "password authentication failed" in str(e), f"psycopg over {method}: {e}"
    else:
        raise AssertionError(f"psycopg over {method}: a wrong password was accepted")
    print(f"psycopg over {method}: ok", flush=True)


def main():
    for method, addr in ROUTERS:
        asyncio.run(with_asyncpg(method, addr))
        with_psycopg(method, addr)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the failure is printed and the exit code says it
        print(f"FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)
