#!/usr/bin/env python3
"""SQLAlchemy 2 (ORM, Core and reflection) with its psycopg 3 dialect against a Tessera router:
create_all of a declarative model with a column of every supported type, Session add, commit,
query, update and delete, transactions, IntegrityError with SQLSTATE 23505, inspection and
reflection of the table.

Run by tests/tests/driver_sqlalchemy.rs, which starts a cluster and passes the router's address
as TESSERA_ROUTER_ADDR=host:port; the Python comes from the virtualenv scripts/test.sh makes
(TESSERA_PYTHON). Every check raises on failure and the script exits non-zero, printing what
failed; it prints one line per section as it goes.

What SQLAlchemy sends besides the statements written here: on the first connection, SHOW and
SELECT queries about the server and a SAVEPOINT that probes for hstore; for create_all and
every inspection, queries on pg_catalog (pg_class, pg_attribute, pg_constraint, pg_index with
unnest, generate_subscripts and array_agg); every Session and Connection opens a transaction
with BEGIN on first use. Two things are avoided because Tessera does not support them:
Query.count() (it wraps the query in a subquery in FROM) and SAVEPOINT with writes after it
(begin_nested). Any PostgreSQL gives the answers checked here, so the script also runs against
PostgreSQL itself.
"""

import datetime as dt
import sys
import uuid
from decimal import Decimal
from typing import Optional

import psycopg
import sqlalchemy as sa
from sqlalchemy import (
    CHAR,
    DDL,
    REAL,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import driver_common
from driver_common import COLUMNS, SAMPLES, check, check_eq, finish, run_steps, section, setup_failed

TABLE, LOW, HIGH = driver_common.table_names("drv_sa")

# The model below has a column of every supported type, and driver_common's SAMPLES are rows of
# it with a value of each.

# What inspect(engine).get_columns() says of each column: its type as the dialect prints it,
# and whether it is nullable.
REFLECTED_COLUMNS = [
    ("id", "INTEGER", False),
    ("small", "SMALLINT", True),
    ("n", "INTEGER", True),
    ("big", "BIGINT", True),
    ("r", "REAL", True),
    ("f", "DOUBLE PRECISION", True),
    ("d", "NUMERIC(10, 2)", True),
    ("s", "TEXT", True),
    ("vc", "VARCHAR(20)", True),
    ("ch", "CHAR(5)", True),
    ("b", "BOOLEAN", True),
    ("day", "DATE", True),
    ("ts", "TIMESTAMP WITHOUT TIME ZONE", True),
    ("tstz", "TIMESTAMP WITH TIME ZONE", True),
    ("u", "UUID", True),
    ("raw", "BYTEA", True),
]


class Base(DeclarativeBase):
    pass


class Item(Base):
    """A column of every supported type; the table is range-partitioned on id into two shards."""

    __tablename__ = TABLE
    __table_args__ = {"postgresql_partition_by": "RANGE (id)"}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    small: Mapped[Optional[int]] = mapped_column(SmallInteger)
    n: Mapped[Optional[int]] = mapped_column(Integer)
    big: Mapped[Optional[int]] = mapped_column(BigInteger)
    r: Mapped[Optional[float]] = mapped_column(REAL)
    f: Mapped[Optional[float]] = mapped_column(Double)
    d: Mapped[Optional[Decimal]] = mapped_column(Numeric(10, 2))
    s: Mapped[Optional[str]] = mapped_column(Text)
    vc: Mapped[Optional[str]] = mapped_column(String(20))
    ch: Mapped[Optional[str]] = mapped_column(CHAR(5))
    b: Mapped[Optional[bool]] = mapped_column(Boolean)
    day: Mapped[Optional[dt.date]] = mapped_column(Date)
    ts: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=False))
    tstz: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True))
    u: Mapped[Optional[uuid.UUID]] = mapped_column(Uuid)
    raw: Mapped[Optional[bytes]] = mapped_column(LargeBinary)


# The two shards, created right after the partitioned table by create_all.
for statement in driver_common.partitions_ddl(TABLE):
    event.listen(Item.__table__, "after_create", DDL(statement))


def expect_error(sqlstate, sa_error_class, what, action):
    """Runs action(), which must raise sa_error_class wrapping a psycopg error with sqlstate."""
    return driver_common.expect_error(
        sqlstate, sa_error_class, what, action, sa.exc.DBAPIError, lambda e: getattr(e.orig, "sqlstate", None)
    )


def make_engine():
    where = driver_common.router()
    url = sa.URL.create(
        "postgresql+psycopg",
        username=where["user"],
        host=where["host"],
        port=where["port"],
        database=where["database"],
    )
    return sa.create_engine(
        url,
        connect_args={"connect_timeout": 10, "sslmode": "disable", "application_name": "tessera-tests-sqlalchemy"},
    )


def item_row(item):
    return tuple(getattr(item, c) for c in COLUMNS)


def ids(engine, *where):
    with Session(engine) as s:
        return list(s.scalars(select(Item.id).where(*where).order_by(Item.id)))


def create_all(engine):
    section("create_all makes the partitioned table and its shards; again it does nothing")
    Base.metadata.create_all(engine)
    inspector = inspect(engine)
    check(inspector.has_table(TABLE), f"has_table({TABLE}) is false after create_all")
    Base.metadata.create_all(engine)


def orm_round_trips(engine):
    section("Session.add and commit a row of every type, one transaction per shard")
    for sample in SAMPLES:
        with Session(engine) as s:
            s.add(Item(**dict(zip(COLUMNS, sample))))
            s.commit()

    section("Session.get, select() and query() read every value back")
    with Session(engine) as s:
        for sample in SAMPLES:
            item = s.get(Item, sample[0])
            check(item is not None, f"Session.get(Item, {sample[0]}) found nothing")
            check_eq(item_row(item), sample, f"row {sample[0]} by Session.get")
        got = [item_row(i) for i in s.scalars(select(Item).order_by(Item.id))]
        check_eq(got, sorted(SAMPLES), "every row by select(Item)")
        got = [i.id for i in s.query(Item).filter(Item.id < 100).order_by(Item.id.desc())]
        check_eq(got, [2, 1], "ids below 100 by query(Item)")
        check_eq(s.scalar(select(func.count()).select_from(Item)), len(SAMPLES), "count(*)")
        check_eq(
            [str(d) for d in s.scalars(select(Item.d).where(Item.d.is_not(None)).order_by(Item.id))],
            ["12345678.90", "-0.01"],
            "numeric(10,2) values, scale kept",
        )

    section("a parameter of every type in WHERE")
    with Session(engine) as s:
        for sample in SAMPLES[:2]:
            for column, value in zip(COLUMNS, sample):
                got = list(s.scalars(select(Item.id).where(getattr(Item, column) == value)))
                check_eq(got, [sample[0]], f"ids with {column} = {value!r}")
        got = list(s.scalars(select(Item.id).where(Item.s.is_(None), Item.raw.is_(None), Item.u.is_(None))))
        check_eq(got, [2], "ids with NULLs")


def orm_update_and_delete(engine):
    section("add_all, then update by attribute and delete through the Session")
    with Session(engine) as s:
        s.add_all([Item(id=i, s=f"many {i}", big=i * 1000) for i in range(10, 20)])
        s.commit()
    check_eq(ids(engine, Item.id.between(10, 19)), list(range(10, 20)), "ids added by add_all")
    with Session(engine) as s:
        item = s.get(Item, 10)
        item.s = "changed"
        item.d = Decimal("2.345")
        item.ch = "ab"
        s.delete(s.get(Item, 11))
        s.commit()
    with Session(engine) as s:
        item = s.get(Item, 10)
        check_eq((item.s, str(item.d), item.ch), ("changed", "2.35", "ab   "), "row 10 after the update")
        check_eq(s.get(Item, 11), None, "row 11 after the delete")

    section("bulk update() and delete() through the Session")
    with Session(engine) as s:
        result = s.execute(update(Item).where(Item.id.between(12, 14)).values(s="bulk", b=True))
        check_eq(result.rowcount, 3, "rowcount of the bulk update")
        result = s.execute(delete(Item).where(Item.id >= 15, Item.id < 20))
        check_eq(result.rowcount, 5, "rowcount of the bulk delete")
        s.commit()
    check_eq(ids(engine, Item.s == "bulk", Item.b.is_(True)), [12, 13, 14], "ids updated in bulk")
    check_eq(ids(engine, Item.id.between(10, 19)), [10, 12, 13, 14], "ids left")


def transactions(engine):
    section("transactions: commit keeps the rows, and only then do others see them")
    with Session(engine) as s, engine.connect() as other:
        s.add_all([Item(id=40, s="committed"), Item(id=41, s="committed")])
        s.flush()
        check_eq(list(s.scalars(select(Item.id).where(Item.id.in_([40, 41])))), [40, 41], "own writes")
        got = other.execute(select(Item.id).where(Item.id.in_([40, 41]))).all()
        check_eq(got, [], "another session before commit")
        other.rollback()
        s.commit()
        got = other.execute(select(Item.id, Item.s).where(Item.id.in_([40, 41])).order_by(Item.id)).all()
        check_eq([tuple(r) for r in got], [(40, "committed"), (41, "committed")], "another session after commit")

    section("transactions: rollback, explicit and by an exception, discards the rows")
    with Session(engine) as s:
        s.add(Item(id=42, s="rolled back"))
        s.delete(s.get(Item, 40))
        s.flush()
        check_eq(list(s.scalars(select(Item.id).where(Item.id.in_([40, 42])))), [42], "own writes before rollback")
        s.rollback()
    check_eq(ids(engine, Item.id.in_([40, 42])), [40], "ids after rollback")

    with Session(engine) as s:
        try:
            with s.begin():
                s.add(Item(id=160, s="abandoned"))
                s.flush()
                raise driver_common.Abandon()
        except driver_common.Abandon:
            pass
        with s.begin():
            s.add(Item(id=161, s="kept"))
    check_eq(ids(engine, Item.id.in_([160, 161])), [161], "ids after Session.begin() blocks")


def errors_keep_the_connection_usable(engine):
    section("a duplicate key is an IntegrityError with SQLSTATE 23505, and the Session stays usable")
    with Session(engine) as s:

        def add_duplicate():
            s.add(Item(id=1, s="again"))
            s.commit()

        e = expect_error("23505", sa.exc.IntegrityError, "a duplicate key", add_duplicate)
        check(isinstance(e.orig, psycopg.errors.UniqueViolation), f"the error is a {type(e.orig).__name__}")
        s.rollback()
        check_eq(s.get(Item, 1).s, SAMPLES[0][7], "row 1 after the error")
        s.add(Item(id=5, s="five"))
        s.commit()
    check_eq(ids(engine, Item.id == 5), [5], "row 5 added after the error")

    section("an error inside a transaction fails every statement with 25P02 until rollback")
    table = Item.__table__
    with engine.connect() as c:
        c.execute(insert(table).values(id=6, s="six"))
        expect_error(
            "23505",
            sa.exc.IntegrityError,
            "a duplicate key in a transaction",
            lambda: c.execute(insert(table).values(id=6, s="dup")),
        )
        expect_error(
            "25P02",
            sa.exc.InternalError,
            "a SELECT in the aborted transaction",
            lambda: c.execute(select(table.c.id).where(table.c.id == 1)),
        )
        expect_error(
            "25P02",
            sa.exc.InternalError,
            "an INSERT in the aborted transaction",
            lambda: c.execute(insert(table).values(id=7, s="seven")),
        )
        c.rollback()
        check_eq(
            c.execute(select(func.count()).select_from(table).where(table.c.id.in_([5, 6, 7]))).scalar(), 1, "rows"
        )
    check_eq(ids(engine, Item.id.in_([5, 6, 7])), [5], "ids after rollback")


def inspection(engine):
    section("inspect(engine): table names, columns and primary key")
    inspector = inspect(engine)
    names = set(inspector.get_table_names())
    check({TABLE, LOW, HIGH} <= names, f"get_table_names() lacks some of {TABLE}, {LOW}, {HIGH}: {sorted(names)}")
    columns = inspector.get_columns(TABLE)
    check_eq(
        [(c["name"], str(c["type"].compile(dialect=engine.dialect)), c["nullable"]) for c in columns],
        REFLECTED_COLUMNS,
        "get_columns(): names, types and nullability",
    )
    numeric = next(c["type"] for c in columns if c["name"] == "d")
    check_eq((numeric.precision, numeric.scale), (10, 2), "precision and scale of numeric(10,2)")
    check_eq([c["default"] for c in columns], [None] * len(COLUMNS), "column defaults")
    pk = inspector.get_pk_constraint(TABLE)
    check_eq(
        (pk.get("name"), pk.get("constrained_columns")),
        (f"{TABLE}_pkey", ["id"]),
        f"get_pk_constraint() (all of it: {pk!r})",
    )


def reflection(engine):
    section("Table(name, MetaData(), autoload_with=engine), then Core through the reflected table")
    table = Table(TABLE, MetaData(), autoload_with=engine)
    check_eq([c.name for c in table.columns], COLUMNS, "reflected column names")
    with engine.connect() as c:
        for sample in SAMPLES:
            got = c.execute(select(table).where(table.c.id == sample[0])).all()
            check_eq([tuple(r) for r in got], [sample], f"row {sample[0]} through the reflected table")
        got = c.execute(select(table.c.id).where(table.c.u == SAMPLES[1][14], table.c.tstz == SAMPLES[1][13])).all()
        check_eq([tuple(r) for r in got], [(150,)], "ids by uuid and timestamptz through the reflected table")
        c.commit()
        rows = [{"id": i, "vc": f"core {i}", "day": dt.date(2020, 1, i - 60)} for i in (70, 71)]
        c.execute(insert(table), rows)
        c.commit()
        got = c.execute(select(table.c.id, table.c.vc, table.c.day).where(table.c.id >= 70, table.c.id < 100)).all()
        check_eq(
            sorted(tuple(r) for r in got),
            [(70, "core 70", dt.date(2020, 1, 10)), (71, "core 71", dt.date(2020, 1, 11))],
            "rows inserted through the reflected table",
        )
    check_eq([c.name for c in table.primary_key], ["id"], "reflected primary key")


def drop_all(engine):
    section("drop_all drops the table and its shards")
    Base.metadata.drop_all(engine)
    names = set(inspect(engine).get_table_names())
    check(not ({TABLE, LOW, HIGH} & names), f"tables left after drop_all: {sorted({TABLE, LOW, HIGH} & names)}")


def main():
    print(f"SQLAlchemy {sa.__version__}, psycopg {psycopg.__version__}", flush=True)
    try:
        engine = make_engine()
        create_all(engine)
    except Exception:  # noqa: BLE001 - reported, and nothing else can run
        return setup_failed()
    steps = [
        ("ORM round trips", orm_round_trips),
        ("ORM update and delete", orm_update_and_delete),
        ("transactions", transactions),
        ("errors keep the connection usable", errors_keep_the_connection_usable),
        ("inspection", inspection),
        ("reflection", reflection),
        ("drop_all", drop_all),
    ]
    failed = run_steps([(name, lambda step=step: step(engine)) for name, step in steps])
    engine.dispose()
    return finish("SQLAlchemy", failed)


if __name__ == "__main__":
    sys.exit(main())
