"""Storage: the engine, write transactions, the data versions and the schema (its setup and year partitions).

SQLAlchemy 2 Core only, so the same code runs on the embedded SQLite file and on PostgreSQL. Rows are written
by :mod:`analytics.data.bulk_write` and read back by :mod:`analytics.data.loads`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analytics.config import DEFAULT_SQLITE_PATH, database_url, server_settings
from analytics.data import kept, memory, schema


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never wait for an import, and see one version
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(server_settings().lock_wait_s * 1000)}")  # imports queue
            cur.close()

        return engine
    return _server_engine(url)


def _server_engine(url: str) -> Engine:
    """A pooled engine for a database server: connections checked before use (the app survives a
    database restart), a statement timeout so one runaway query cannot hold a connection, recycling."""
    settings = server_settings()
    connect_args = {}
    if url.startswith("postgresql"):
        connect_args["options"] = f"-c statement_timeout={int(settings.statement_timeout_s * 1000)}"
    return sa.create_engine(url, pool_pre_ping=True, pool_size=settings.pool_size, max_overflow=settings.max_overflow,
                            pool_recycle=1800, pool_timeout=settings.lock_wait_s, connect_args=connect_args)


# Imports are serialised on a server: one transaction-scoped advisory lock, taken before the first write.
IMPORT_LOCK_KEY = 0x551F


def serialise_writes(conn: Connection) -> None:
    """Wait for any other import to finish before this transaction writes (PostgreSQL advisory lock).

    SQLite allows one writer at a time by itself: the transaction begins at once as the writer
    (`BEGIN IMMEDIATE`; `busy_timeout` makes a second import wait instead of failing). Beginning it here
    also puts every statement after it inside the transaction: the driver would otherwise open one only at
    the first INSERT, UPDATE or DELETE and run a `DROP INDEX` before it on its own. The lock is released
    when the transaction commits or rolls back, also when the process dies.
    """
    if conn.dialect.name == "sqlite" and not conn.connection.driver_connection.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": IMPORT_LOCK_KEY})
        # A bulk COPY of a state-sized table outlasts the readers' statement timeout; this transaction only.
        timeout_ms = int(server_settings().write_timeout_s * 1000)
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {timeout_ms}")
        conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{WRITE_MAINTENANCE_MEM}'")


# PostgreSQL's sort memory for the indexes an import builds (a new year's partition, indexes set aside), this
# transaction only. With the default 64 MB a state's new year of metrics (1.31 M rows, 125 MB of index entries)
# sorted on disk and a build got one parallel worker (each process needs 32 MB); with this it sorts in memory
# and gets two. Measured on two busy cores: the same CPU time in one process, and a secondary index of that
# year built in 2.5 s with two workers against 4.4 s without.
WRITE_MAINTENANCE_MEM = "256MB"


# SQLite's page cache during a write transaction, KiB: room for every page the transaction dirties, so none is
# spilled to the WAL and read back while indexes grow (a 158,000-row metrics file: about 30 MiB).
WRITE_CACHE_KIB = 256 * 1024


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One all-or-nothing write transaction, serialised with other imports (:func:`serialise_writes`).

    On SQLite the connection's page cache is enlarged for the transaction and set back after it: with the
    default 2 MiB cache a large import spills dirty index pages to the WAL and reads them back again and
    again (measured: 158,000 metrics rows upserted into the three-index table in 57% of the CPU time). SQLite
    allocates cache pages only as they are used, and they are freed when the size is set back.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            previous = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
            conn.exec_driver_sql(f"PRAGMA cache_size = -{WRITE_CACHE_KIB}")
            conn.commit()  # the pragma opened no transaction worth keeping; the write's own begins below
        try:
            with conn.begin():
                serialise_writes(conn)
                yield conn
        finally:
            if sqlite:
                conn.exec_driver_sql(f"PRAGMA cache_size = {int(previous)}")
                conn.commit()
                memory.release_freed_memory()


class DataChanged(RuntimeError):
    """The data changed (an import landed) while a view was being read; the view must be read again."""


def read_at_version(engine: Engine, version: int, read, counter: int | None = None):
    """``read()`` if its result belongs to version ``version`` of ``counter`` (default :data:`CHANGES`), else
    :class:`DataChanged`.

    A write changes its rows and bumps its counters in one transaction, and each SELECT sees one committed
    state; so when the counter is still ``version`` after the reads, no read can have seen a write it counts.
    A result keyed on :data:`IMPORTS` is checked against that counter: a workspace edit meanwhile changed none
    of its rows. A version already replaced is not read at all (its result could never be used).
    """
    counter = CHANGES if counter is None else counter
    if data_version(engine, counter) != version:
        raise DataChanged(f"data version {version} was replaced before it was read")
    result = read()
    if data_version(engine, counter) != version:
        raise DataChanged(f"data version {version} was replaced while it was being read")
    return result


def get_engine(url: str | None = None) -> Engine:
    """The engine for `url` (default: `config.database_url()`), created once per URL."""
    return _engine_for(url or database_url())


def create_schema(engine: Engine) -> None:
    """Bring the schema to the latest migration (fresh, previous-release or current database alike)."""
    from analytics.data import migrations

    migrations.upgrade(engine)
    with engine.begin() as conn:
        made = set(conn.execute(sa.select(schema.data_version.c.id)).scalars())
        for counter in (CHANGES, IMPORTS):
            if counter not in made:
                conn.execute(sa.insert(schema.data_version).values(id=counter, version=0))


def is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(schema.schools)).scalar_one() == 0


def is_default_database(engine: Engine) -> bool:
    """True for the embedded file used when no database is configured (`data/ssif.db`)."""
    return engine.dialect.name == "sqlite" and os.path.abspath(engine.url.database or "") == str(DEFAULT_SQLITE_PATH)


def ensure_database(engine: Engine | None = None, *, seed_demo: bool = True) -> Engine:
    """Create the schema if needed and, on the empty default embedded file, load the demo district.

    A configured database (`DATABASE_URL` or secrets: PostgreSQL or a SQLite file of the operator's choosing)
    is never filled with demo data behind the operator's back; an empty one shows empty pages that say so.
    """
    engine = engine or get_engine()
    create_schema(engine)
    if seed_demo and is_default_database(engine) and is_empty(engine):
        from analytics.data.demo import load_demo

        load_demo(engine)
    return engine


# --- data version -------------------------------------------------------------------------------


# Rows of the `data_version` table, each a counter that caches key on. Every write bumps CHANGES; a write of
# imported data (the importer, the demo loader) bumps IMPORTS too, in the same transaction. A result read from
# imported tables alone is keyed on IMPORTS, so a saved plan, cycle or note leaves it cached (DESIGN §8).
CHANGES = 1
IMPORTS = 2


class Versions(NamedTuple):
    """Both counters as one read saw them: a script run reads both at one instant (:func:`versions`)."""

    changes: int
    imports: int


def data_version(engine: Engine, counter: int | None = None) -> int:
    """A counter (default :data:`CHANGES`, bumped by every write); caches key on it so a write shows at once."""
    counter = CHANGES if counter is None else counter
    with engine.connect() as conn:
        return int(conn.execute(sa.select(schema.data_version.c.version)
                                .where(schema.data_version.c.id == counter)).scalar_one_or_none() or 0)


def import_version(engine: Engine) -> int:
    """The counter bumped by writes of imported data only (:data:`IMPORTS`)."""
    return data_version(engine, IMPORTS)


def versions(engine: Engine) -> Versions:
    """Both counters in one SELECT, so they belong to one committed state."""
    with engine.connect() as conn:
        found = dict(conn.execute(sa.select(schema.data_version.c.id, schema.data_version.c.version)
                                  .where(schema.data_version.c.id.in_((CHANGES, IMPORTS)))).all())
    return Versions(int(found.get(CHANGES) or 0), int(found.get(IMPORTS) or 0))


def bump_version(conn: Connection, *, imported: bool = False) -> None:
    """Bump :data:`CHANGES`, and :data:`IMPORTS` too when the write changed imported data (``imported``)."""
    rows = (CHANGES, IMPORTS) if imported else (CHANGES,)
    conn.execute(
        sa.update(schema.data_version)
        .where(schema.data_version.c.id.in_(rows))
        .values(version=schema.data_version.c.version + 1)
    )
    # What was kept for the state this write replaces goes with it (nothing kept outlives its rows).
    kept.forget_before(conn, sa.select(schema.data_version.c.version)
                       .where(schema.data_version.c.id == CHANGES).scalar_subquery())


# --- year partitions ----------------------------------------------------------------------------


def partitioned_by_year(conn: Connection, table_name: str) -> bool:
    """True when the table is partitioned by year (migration 0008; a database migrated no further is not)."""
    kind = conn.execute(sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table_name})
    return kind.scalar() == "p"


def year_partitions(conn: Connection, table_name: str) -> dict[int, str]:
    """The school years a partitioned table has a partition for, with each partition's name."""
    rows = conn.execute(sa.text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c "
        "ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass)"), {"t": table_name}).all()
    return {int(bound.split("(", 1)[1].split(")", 1)[0]): name for name, bound in rows}
