"""Storage: the engine, schema creation, the data version, upserts and filtered loaders.

SQLAlchemy 2 Core only, so the same code runs on the embedded SQLite file and on PostgreSQL.
Loaders filter in SQL on indexed keys and return typed DataFrames (missing counts are NaN,
never zero).
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from analytics.config import DEFAULT_SQLITE_PATH, database_url, server_settings
from analytics.data import kept, schema
from analytics.outputs.labels import counted

if TYPE_CHECKING:
    from analytics.data.readers import CsvLines


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
                release_freed_memory()


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


# --- writes -------------------------------------------------------------------------------------


def _records(df: pd.DataFrame) -> list[dict]:
    """DataFrame rows as dicts with NaN/NaT turned into None (SQL NULL)."""
    clean = df.astype(object).where(df.notna(), None)
    return clean.to_dict("records")


def _tuples(df: pd.DataFrame) -> list[tuple]:
    """DataFrame rows as tuples of plain Python values, NaN/NaT/NA as None, for DBAPI executemany.

    Built column by column (one vectorised conversion each, then `zip`): about half the time of
    converting the whole frame to objects and iterating its rows.
    """
    columns = [col.astype(object).where(col.notna(), None).tolist() for _, col in df.items()]
    return list(zip(*columns, strict=True))


# A write smaller than this never sets indexes aside (rebuilding them only pays off in bulk).
DIRECT_MIN_ROWS = 20_000
# PostgreSQL: a frame of a new school year with at least this many rows is copied straight into its table.
# Measured with a new year's discipline file (2,507 rows, 200 schools): 55 ms straight in, 65 ms through the
# staging table (created, filled, merged from and dropped); at 200 rows the year probe and the savepoint cost
# more than the staging table (29 ms against 24).
DIRECT_COPY_MIN_ROWS = 1_000


def upsert(conn: Connection, table_name: str, df: pd.DataFrame, lines: CsvLines | None = None) -> int:
    """Insert rows, replacing existing ones with the same natural key. Returns rows written.

    All inside the caller's transaction: nothing is visible until it commits, and a failure (or a killed
    process) leaves the table as it was.

    Rows go in sorted by key (on PostgreSQL in the order of its columns there, :func:`schema.key_order`): the
    unique index is then walked once from end to end, not at random (on a state-sized table whose indexes outgrow
    the database's cache, the difference is several-fold). A new year's partition is filled in that order too
    (:func:`_in_partition_order`), and SQLite's indexed metrics table metric by metric (:data:`SQLITE_WRITE_ORDER`).

    - SQLite: one prepared `INSERT ... ON CONFLICT DO UPDATE` run with executemany. (A temporary staging
      table first, then one merge, wrote every row twice and measured slower.)
    - PostgreSQL: in a table partitioned by year (`metrics`, `discipline`), the rows of each school year it
      holds none of become a partition of their own, built apart and attached (:func:`_new_years_as_partitions`);
      in another table, rows whose school years are all new to it are `COPY`-ed straight in. The rest are
      `COPY`-ed into an unindexed temporary staging table and moved in with one
      `INSERT ... SELECT ... ON CONFLICT DO UPDATE`. The direct writes run under a savepoint, so a key the
      year check did not foresee falls back to the merge instead of failing.

    Rows of unmanaged tables that an import sends again unchanged are left alone (no dead tuples, no index
    churn); a re-imported workspace record is a new version of it, changed or not.

    A bulk write at least as large as the table it goes into (a first load, a table emptied and filled
    again) sets the table's secondary indexes aside and builds them once after (:func:`_indexes_set_aside`).

    ``lines``: the file's own CSV lines of these rows (:class:`readers.CsvLines`), which PostgreSQL's `COPY` is sent
    instead of text written from the frame.
    """
    if df.empty:
        return 0
    table = schema.DATA_TABLES[table_name]
    cols = [c for c in df.columns if c in table.c]
    if conn.dialect.name == "postgresql":
        _upsert_postgresql(conn, table_name, df[cols], lines)
    else:
        _upsert_sqlite(conn, table_name, df[cols])
    return len(df)


# SQLite: the order rows are written in when a table's secondary indexes stay in place, when not the key's.
# Metrics go metric by metric, then by key: each metric's rows reach the unique key (school first) in runs of a
# school's years and groups, the year-first index (year, metric) in one run, and the metric-first index (metric,
# group, year) among 13 places instead of 156. Measured on a new year's 263,000 rows into 1.3 M (2,000 schools):
# 1.10-1.17 s of CPU in the INSERT against 1.25-1.30 s in key order. When the indexes are set aside only the
# unique key is written, and key order appends to it.
SQLITE_WRITE_ORDER = {"metrics": ("metric", "school_id", "school_year", "student_group")}


def _in_write_order(table_name: str, frame: pd.DataFrame, order: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows in the order they are written: sorted by ``order`` (SQLite's metrics by
    :data:`SQLITE_WRITE_ORDER`, not their key), by default the table's key, stably."""
    if len(frame) < 2:
        return frame
    try:
        return frame.sort_values(list(order or schema.TABLES[table_name].key), kind="stable")
    except TypeError:  # a key column of mixed Python types (an edited record): order does not matter for it
        return frame


def _upsert_sqlite(conn: Connection, table_name: str, frame: pd.DataFrame) -> None:
    quote = conn.dialect.identifier_preparer.quote
    cols = list(frame.columns)
    values = ", ".join(["?"] * len(cols))
    sql = (f"INSERT INTO {quote(table_name)} ({', '.join(quote(c) for c in cols)}) VALUES ({values}) "
           f"{_conflict_clause(conn, table_name, cols)}")
    aside = _outweighs_table(conn, table_name, len(frame))
    rows = _tuples(_in_write_order(table_name, frame, None if aside else SQLITE_WRITE_ORDER.get(table_name)))
    # The unique key stays: ON CONFLICT needs it, and it is written in its own order.
    with _indexes_set_aside(conn, table_name, unique=False, when=aside):
        for start in range(0, len(rows), 100_000):
            conn.exec_driver_sql(sql, rows[start : start + 100_000])


def _upsert_postgresql(conn: Connection, table_name: str, frame: pd.DataFrame, lines: CsvLines | None = None) -> None:
    quote = conn.dialect.identifier_preparer.quote
    col_list = ", ".join(quote(c) for c in frame.columns)
    partitioned = table_name in schema.YEAR_PARTITIONED and _partitioned(conn, table_name)
    if partitioned:
        frame = _new_years_as_partitions(conn, table_name, frame, col_list, lines)
        if frame.empty:
            return
    frame = _in_write_order(table_name, frame, schema.key_order(table_name, "postgresql"))
    if not partitioned and _years_all_new(conn, table_name, frame):
        savepoint = conn.begin_nested()
        try:
            # A key collision surfaces from the COPY, or from rebuilding the unique key set aside for it.
            with _indexes_set_aside(conn, table_name, unique=True,
                                    when=_outweighs_table(conn, table_name, len(frame))):
                _copy_rows(conn, quote(table_name), col_list, frame, table_name, lines)
            savepoint.commit()
            return
        except sa.exc.IntegrityError:
            savepoint.rollback()
    staging = quote(f"staging_{table_name}")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {staging}")
    conn.exec_driver_sql(f"CREATE TEMP TABLE {staging} AS SELECT {col_list} FROM {quote(table_name)} LIMIT 0")
    _copy_rows(conn, staging, col_list, frame, table_name, lines)
    conn.exec_driver_sql(f"INSERT INTO {quote(table_name)} ({col_list}) "
                         f"{_rows_to_merge(conn, table_name, staging, frame)} "
                         f"{_conflict_clause(conn, table_name, list(frame.columns))}")
    conn.exec_driver_sql(f"DROP TABLE {staging}")


def _rows_to_merge(conn: Connection, table_name: str, staging: str, frame: pd.DataFrame) -> str:
    """The SELECT of the staged rows the merge is to write (PostgreSQL): of an unmanaged table, those not stored
    already with every value the same.

    `ON CONFLICT ... DO UPDATE ... WHERE` leaves an unchanged row alone too (:func:`_conflict_clause`), but only
    after probing the unique key for each row sent; one hash anti-join of the staged rows with the stored ones
    (pruned to the rows' school years) finds them at once. Measured on a state's year of metrics sent again
    unchanged (1.31 M rows, two busy cores): the merge took 3.5-8.5 s with the probes, 1.0-2.3 s after the join.
    The same rows are written either way: a row is left out exactly when the conflict's condition would skip it
    (`IS NOT DISTINCT FROM` is its negation)."""
    spec = schema.TABLES[table_name]
    quote = conn.dialect.identifier_preparer.quote
    cols = list(frame.columns)
    sent = ", ".join(f"sent.{quote(c)}" for c in cols)
    values = [c for c in cols if c not in spec.key]
    if spec.managed or not values:
        return f"SELECT {sent} FROM {staging} AS sent"
    same = [f"held.{quote(c)} = sent.{quote(c)}" for c in spec.key]
    same += [f"held.{quote(c)} IS NOT DISTINCT FROM sent.{quote(c)}" for c in values]
    if "school_year" in spec.key:  # the year's partitions alone are read
        years = ", ".join(str(int(y)) for y in pd.unique(frame["school_year"].dropna()))
        same.insert(0, f"held.school_year IN ({years or 'NULL'})")
    return (f"SELECT {sent} FROM {staging} AS sent WHERE NOT EXISTS (SELECT 1 FROM {quote(table_name)} AS held "
            f"WHERE {' AND '.join(same)})")


def _partitioned(conn: Connection, table_name: str) -> bool:
    """True when the table is partitioned by year (migration 0008; a database migrated no further is not)."""
    kind = conn.execute(sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table_name})
    return kind.scalar() == "p"


def year_partitions(conn: Connection, table_name: str) -> dict[int, str]:
    """The school years a partitioned table has a partition for, with each partition's name."""
    rows = conn.execute(sa.text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c "
        "ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass)"), {"t": table_name}).all()
    return {int(bound.split("(", 1)[1].split(")", 1)[0]): name for name, bound in rows}


def _new_years_as_partitions(conn: Connection, table_name: str, frame: pd.DataFrame, col_list: str,
                             lines: CsvLines | None = None) -> pd.DataFrame:
    """Write the frame's rows of school years the table holds no row of as partitions of their own; return the
    rest (rows of stored years, or every row of a frame too small to pay for it), each year given a partition.

    A year's partition is made unindexed, filled by `COPY`, indexed once and attached
    (:func:`_attach_year`): a new year's 26,000 metrics rows take ~50 ms unindexed against 550-770 ms grown
    into the three B-trees of the whole table (2,000 schools). An empty partition left by deleted rows is dropped
    first (readers of the table then wait for the import's commit). A key repeated within the frame fails
    the unique constraint's build; the savepoint then sends the rows to the merge, as before partitions.
    """
    partitions = year_partitions(conn, table_name)
    years = sorted(int(y) for y in pd.unique(frame["school_year"]))
    stored = set(years) & {int(y) for y in conn.execute(years_statement(conn, table_name)).scalars()}
    new = [y for y in years if y not in stored]
    if new and len(frame) >= DIRECT_COPY_MIN_ROWS:
        savepoint = conn.begin_nested()
        try:
            for year in new:
                _replace_year(conn, table_name, year, partitions, col_list, frame[frame["school_year"] == year], lines)
            savepoint.commit()
            return frame[frame["school_year"].isin(stored)]
        except sa.exc.IntegrityError:
            savepoint.rollback()
            partitions = year_partitions(conn, table_name)
    for year in years:
        if year not in partitions:
            _attach_year(conn, table_name, year, col_list, frame.iloc[:0])
    return frame


class EarlyYearWrite:
    """A new school year's file written as its own partition by a thread of its own while the importer checks
    it (PostgreSQL), in an import's transaction left open until every cell is checked: :meth:`finish` then runs
    the rest of the import in it and commits, or :meth:`abandon` rolls it back.

    The server copies and indexes the rows while the client checks them (a state's new year of metrics: 0.9 s
    of `COPY` and 1.0 s of index builds beside 0.55 s of checks). The rows sent are the file's own lines
    (:class:`readers.CsvLines`) in the partition's order taken from the cells as read, which is the order and
    the text the write after the checks sends when every cell is stored as written; the importer finishes this
    write only then, so the same rows are stored. Nothing is visible before the commit, a failed check rolls it
    all back (and every problem is still reported), and a killed process leaves nothing behind (the server
    rolls back a transaction whose connection is gone). The import lock is held from the start: another import
    waits for the checks too. A year already held, or any failure, leaves the import to the write after the
    checks."""

    def __init__(self, engine: Engine, table_name: str, year: int, rows: pd.DataFrame, lines: CsvLines,
                 factorized: Factorized | None = None):
        self.table_name, self.year, self.rows, self.lines = table_name, year, len(rows), lines
        self._factorized = factorized  # the rows' columns factorized already (:func:`_in_partition_order`)
        self._written = threading.Event()
        self._ending = threading.Lock()  # a cancel is sent only while the write's statements may still be running
        self._copied = False
        self._driver = None
        self._rest: queue.SimpleQueue = queue.SimpleQueue()
        self._done: Future[bool] = Future()
        self._thread = threading.Thread(target=self._run, args=(engine, rows), name="ssif-early-write", daemon=True)
        self._thread.start()

    def _run(self, engine: Engine, rows: pd.DataFrame) -> None:
        try:
            with write_transaction(engine) as conn:
                self._driver = conn.connection.driver_connection
                try:
                    self._copied = self._write(conn, rows)
                except Exception:  # noqa: BLE001 - the write after the checks does it again and reports a failure
                    self._copied = False
                finally:
                    self._end_written()
                rest = self._rest.get() if self._copied else None
                if rest is None:
                    raise _Abandoned
                rest(conn)
        except _Abandoned:
            self._done.set_result(False)
        except BaseException as exc:  # noqa: BLE001 - raised again by `finish`
            self._done.set_exception(exc)
        else:
            self._done.set_result(True)
        finally:
            self._end_written()

    def _end_written(self) -> None:
        """No statement of the write runs from here: :meth:`abandon` cancels none after this (the connection may
        soon be another's, back in the pool)."""
        with self._ending:
            self._written.set()

    def _write(self, conn: Connection, rows: pd.DataFrame) -> bool:
        """The year's partition, when the table is partitioned and holds no row of the year."""
        if not _partitioned(conn, self.table_name):
            return False
        if self.year in {int(y) for y in conn.execute(years_statement(conn, self.table_name)).scalars()}:
            return False
        _replace_year(conn, self.table_name, self.year, year_partitions(conn, self.table_name), "", rows, self.lines,
                      self._factorized)
        return True

    def finish(self, rest) -> bool:
        """Run ``rest(conn)`` in the write's transaction and commit; False (nothing done) when the rows were not
        written, and then the transaction is gone. Raises what ``rest`` or the commit raised (rolled back)."""
        self._written.wait()
        if not self._copied:
            self._thread.join()
            return False
        self._rest.put(rest)
        return self._done.result()

    def abandon(self) -> None:
        """Roll the write back (a statement still running is cancelled); nothing once it has finished."""
        while not self._written.wait(0.05):
            with self._ending:
                if self._driver is not None and not self._written.is_set():
                    self._driver.cancel()
        self._rest.put(None)
        self._thread.join()


class _Abandoned(Exception):
    """Rolls an early write's transaction back."""


def _replace_year(conn: Connection, table_name: str, year: int, partitions: dict[int, str], col_list: str,
                  rows: pd.DataFrame, lines: CsvLines | None = None, factorized: Factorized | None = None) -> None:
    """A new year's partition of ``rows`` (:func:`_attach_year`), in place of the empty one that deleted rows left
    (``partitions``: :func:`year_partitions`)."""
    if year in partitions:
        conn.exec_driver_sql(f"DROP TABLE {conn.dialect.identifier_preparer.quote(partitions[year])}")
    _attach_year(conn, table_name, year, col_list, rows, lines, factorized)


def _attach_year(conn: Connection, table_name: str, year: int, col_list: str, rows: pd.DataFrame,
                 lines: CsvLines | None = None, factorized: Factorized | None = None) -> None:
    """One school year's partition: a table LIKE the parent holding `rows`, its unique key and indexes built
    once from them, then attached.

    Each index is named after the parent's with the year (`ix_metrics_school_y2024`), as the
    migration that partitioned the table named them. The `CHECK` on the year, tested row by row as `COPY`
    writes, lets `ATTACH PARTITION` skip its scan of the table; it is dropped once attached (the partition bound says the same). Indexes matching the parent's are
    taken over by the attach, so none is built twice. `ATTACH` locks the parent only against schema changes
    (readers go on reading the committed years); all of it is in the caller's transaction, so a failure or a
    killed process leaves no partition behind.
    """
    quote = conn.dialect.identifier_preparer.quote
    name = schema.year_partition(table_name, year)
    part, check = quote(name), quote(f"{name}_year")
    conn.exec_driver_sql(f"CREATE TABLE {part} (LIKE {quote(table_name)} INCLUDING DEFAULTS, "
                         f"CONSTRAINT {check} CHECK (school_year = {int(year)}))")
    if not rows.empty:  # the file's own lines need only the rows' order (their labels), no column of them
        sent = _in_partition_order(table_name, rows, columns=lines is None, factorized=factorized)
        _copy_rows(conn, part, col_list, sent, table_name, lines)
    key = ", ".join(quote(c) for c in schema.key_order(table_name, conn.dialect.name))
    carried = ", ".join(quote(c) for c in schema.key_include(table_name, conn.dialect.name))
    with _serial_index_build(conn):  # its rows are in its order
        conn.exec_driver_sql(f"ALTER TABLE {part} ADD CONSTRAINT {quote(f'uq_{table_name}_key_y{int(year)}')} "
                             f"UNIQUE ({key})" + (f" INCLUDE ({carried})" if carried else ""))
    for index in schema.declared_indexes(table_name, conn.dialect.name):
        conn.exec_driver_sql(f"CREATE INDEX {quote(f'{index.name}_y{int(year)}')} ON {part} "
                             f"({', '.join(quote(c.name) for c in index.columns)})")
    conn.exec_driver_sql(f"ALTER TABLE {quote(table_name)} ATTACH PARTITION {part} FOR VALUES IN ({int(year)})")
    conn.exec_driver_sql(f"ALTER TABLE {part} DROP CONSTRAINT {check}")


@contextmanager
def _serial_index_build(conn: Connection) -> Iterator[None]:
    """An index built inside the block by the backend alone, without parallel workers (a setting of this
    transaction, set back after the block).

    PostgreSQL's serial sort of rows already in the index's order ends after one pass over them; a parallel
    build has each worker sort its share onto tapes that the backend then merges, comparing every entry again.
    Measured on a state's new year of metrics (1.31 M rows in key order, two busy cores): the unique key
    built in 0.56 s of the server's CPU and 0.79 s serially, 0.88 s and 0.95 s with two workers. The index
    on the school, whose entries must be sorted, keeps its workers (0.77 s of CPU and 0.79 s against 0.63 s
    and 0.9 s serially)."""
    workers = conn.exec_driver_sql("SHOW max_parallel_maintenance_workers").scalar_one()
    conn.exec_driver_sql("SET LOCAL max_parallel_maintenance_workers = 0")
    yield  # a failed build leaves the transaction (or its savepoint) to be rolled back, the setting with it
    conn.exec_driver_sql(f"SET LOCAL max_parallel_maintenance_workers = {int(workers)}")


# A column's `pd.factorize` by its name: each row's code (-1 when missing) and the distinct values.
Factorized = Callable[[str], tuple[np.ndarray, pd.Index]]


def _in_partition_order(table_name: str, rows: pd.DataFrame, columns: bool = True,
                        factorized: Factorized | None = None) -> pd.DataFrame:
    """One year's rows in the order of the partition's unique key (:data:`schema.POSTGRESQL_KEY_ORDER`: metric and
    group, then school; the year is one value there).

    PostgreSQL sorts the entries of an index it builds, and a sort of rows already in order ends after one pass
    over them; so only the index on the school is sorted, by one abbreviated key an entry. Measured on a state's
    new year of metrics (1.31 M rows, the server's CPU seconds in one process): rows in school order built a
    school-first key in 0.5 s and a metric-first index in 4.4 s; in metric-first order that index in 0.5 s and the
    school-first key in 1.3 s; in this order the key in 0.5 s and the school index in 0.5 s.

    The rows are ordered by one integer a row made of each column's sorted value codes, the same order as
    `sort_values` over the columns (stable, text in byte order): a state's new year took 0.07 s of CPU so
    against 0.12 s, and 0.19 s against 0.29 s in no order at all. Without ``columns`` only the rows' labels
    are returned in that order (a frame of no columns), none of their cells copied. ``factorized``: the rows'
    columns factorized already (the importer's checks factorize them too, :meth:`readers.RawTable.factorized`).
    """
    order = partition_order(table_name)
    if len(rows) < 2:
        return rows
    factorize = factorized or (lambda name: pd.factorize(rows[name]))
    try:
        codes = [_sorted_codes(*factorize(name)) for name in order]
    except TypeError:  # a column of mixed Python types: sorting it says what is wrong
        codes = None
    sizes = [int(column.max()) + 1 for column in codes or []]
    if codes is None or math.prod(sizes) >= 2**63:
        return rows.sort_values(order, kind="stable")
    key = np.zeros(len(rows), dtype=np.int64)
    for column, size in zip(codes, sizes, strict=True):
        key = key * size + column
    return (rows if columns else rows.iloc[:, :0]).take(np.argsort(key, kind="stable"))


def _sorted_codes(codes: np.ndarray, uniques: pd.Index) -> np.ndarray:
    """Factorized codes renumbered in the order of their values (text in byte order), a missing value (-1)
    after every other, as `sort_values` puts it."""
    rank = np.empty(len(uniques) + 1, dtype=np.int64)
    rank[np.asarray(uniques.argsort())] = np.arange(len(uniques))
    rank[-1] = len(uniques)
    return rank[codes]


def partition_order(table_name: str) -> list[str]:
    """The columns a year's partition is filled in the order of: its key's but the year (one value there)."""
    return [c for c in schema.key_order(table_name, "postgresql") if c != "school_year"]


def _years_all_new(conn: Connection, table_name: str, frame: pd.DataFrame) -> bool:
    """True for a frame of at least :data:`DIRECT_COPY_MIN_ROWS` rows of a table keyed by school year when
    none of its years has rows yet (one probe of the year index; such rows cannot collide with a stored key)."""
    table = schema.DATA_TABLES[table_name]
    if len(frame) < DIRECT_COPY_MIN_ROWS or "school_year" not in schema.TABLES[table_name].key:
        return False
    years = [int(y) for y in pd.unique(frame["school_year"].dropna())]
    probe = sa.select(sa.literal(1)).select_from(table).where(table.c.school_year.in_(years)).limit(1)
    return conn.execute(probe).first() is None


def _outweighs_table(conn: Connection, table_name: str, rows: int) -> bool:
    """True for a bulk write of at least as many rows as the table holds (counted no further than that).

    Measured on 158,000 metrics rows (PostgreSQL, three indexes): each index grown row by row costs about
    1.3 us a row written, built from scratch about 0.7 us a row held; so building again after the write
    pays once the new rows are about as many as the old.
    """
    if rows < DIRECT_MIN_ROWS:
        return False
    table = schema.DATA_TABLES[table_name]
    held = sa.select(sa.func.count()).select_from(sa.select(sa.literal(1)).select_from(table).limit(rows + 1).subquery())
    return conn.execute(held).scalar_one() <= rows


@contextmanager
def _indexes_set_aside(conn: Connection, table_name: str, *, unique: bool, when: bool = True,
                       analyze: bool = False) -> Iterator[None]:
    """Drop the table's secondary indexes (and with ``unique`` its unique constraints), then build them again.

    A B-tree built once from all its rows is cheaper than one grown row by row when most rows are new.
    The definitions are read back from the database itself, so the table gets exactly the indexes it had.
    All of it happens in the caller's transaction: on an error nothing is rebuilt and the rollback restores
    the indexes with the rows; a duplicate key found when a unique constraint is rebuilt fails the write as
    the insert would have. On PostgreSQL readers of the table wait (an exclusive lock) until the
    transaction ends; on SQLite they keep reading the last committed version. Building an index records the
    table's row count for the planner; ``analyze`` also refreshes its column statistics (PostgreSQL, a
    sixth of the write's time on 158,000 metrics rows; an import leaves that to autovacuum).
    """
    sqlite = conn.dialect.name == "sqlite"
    if not when or sqlite and not conn.connection.driver_connection.in_transaction:  # a DROP would commit alone
        yield
        return
    quote = conn.dialect.identifier_preparer.quote
    target = quote(table_name)
    if not sqlite:
        constraints = conn.execute(sa.text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype = 'u'"), {"t": table_name}).all() if unique else []
        indexes = conn.execute(sa.text(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisprimary AND (:u OR NOT x.indisunique) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"),
            {"t": table_name, "u": unique}).all()
    else:  # SQLite: indexes made by CREATE INDEX (a UNIQUE constraint's index has no SQL of its own)
        listed = conn.exec_driver_sql(f"PRAGMA index_list({target})").all()
        names = [row[1] for row in listed if row[3] == "c" and (unique or not row[2])]
        constraints = []
        indexes = [(name, conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                                               (name,)).scalar_one()) for name in names]
    for name, _ in constraints:
        conn.exec_driver_sql(f"ALTER TABLE {target} DROP CONSTRAINT {quote(name)}")
    for name, _ in indexes:
        conn.exec_driver_sql(f"DROP INDEX {quote(name)}")
    yield
    for name, definition in constraints:
        conn.exec_driver_sql(f"ALTER TABLE {target} ADD CONSTRAINT {quote(name)} {definition}")
    for _, definition in indexes:
        conn.exec_driver_sql(definition)
    if analyze and not sqlite:
        conn.exec_driver_sql(f"ANALYZE {target}")


def _conflict_clause(conn: Connection, table_name: str, cols: list[str]) -> str:
    """`ON CONFLICT (key) DO UPDATE SET ...` (both dialects); unmanaged rows only when a value changed."""
    spec = schema.TABLES[table_name]
    quote = conn.dialect.identifier_preparer.quote
    target = quote(table_name)
    updates = [c for c in cols if c not in spec.key and not (spec.managed and c == "version")]
    key_list = ", ".join(quote(k) for k in spec.key)
    if not updates:
        return f"ON CONFLICT ({key_list}) DO NOTHING"
    sets = [f"{quote(c)} = excluded.{quote(c)}" for c in updates]
    if spec.managed:  # an edited record replaced by an import is a new version of it
        return f"ON CONFLICT ({key_list}) DO UPDATE SET {', '.join(sets + [f'version = {target}.version + 1'])}"
    distinct = "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"
    changed = " OR ".join(f"{target}.{quote(c)} {distinct} excluded.{quote(c)}" for c in updates)
    return f"ON CONFLICT ({key_list}) DO UPDATE SET {', '.join(sets)} WHERE {changed}"


def _copy_rows(conn: Connection, target: str, col_list: str, frame: pd.DataFrame, table_name: str,
               lines: CsvLines | None = None) -> None:
    """PostgreSQL `COPY ... FROM STDIN` of a frame as CSV written by Arrow (a null is an unquoted empty
    field, which COPY reads as NULL; Arrow writes CSV about 8x faster than `DataFrame.to_csv`), or as the
    file's own lines of its rows when ``lines`` holds them (:class:`readers.CsvLines`), in the frame's order.

    Measured on a state's new year of metrics (1.31 M rows) and kept as CSV: COPY's binary format, laid out
    with whole-array numpy or Arrow operations, took twice as long to build as this text (2.0 s against 0.95 s)
    and the COPY as a whole took longer; sending from a second thread (psycopg's queued writer) while the next
    chunk is written gained nothing on two busy cores."""
    if lines is not None:
        quote = conn.dialect.identifier_preparer.quote
        col_list = ", ".join(quote(c) for c in lines.columns)
        chunks = lines.chunks(frame.index.to_numpy())
    else:
        chunks = _csv_chunks(schema.DATA_TABLES[table_name], frame)
    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY {target} ({col_list}) FROM STDIN (FORMAT csv)") as copy:
            for chunk in chunks:
                copy.write(chunk)
    except conn.dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy's exception, like any other statement
        raise sa.exc.DBAPIError.instance(f"COPY {target}", None, exc, conn.dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()


def _csv_chunks(table: sa.Table, frame: pd.DataFrame, rows: int = 200_000):
    """The frame as CSV bytes, `rows` at a time (bounded memory for state-sized tables)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    options = pa_csv.WriteOptions(include_header=False)
    for start in range(0, len(frame), rows):
        part = _copy_types(table, frame.iloc[start : start + rows])
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(pa.Table.from_pandas(part, preserve_index=False), sink, options)
        yield sink.getvalue().to_pybytes()


def _copy_types(table: sa.Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Whole numbers held as floats (NaN-able counts) as integers, which COPY requires for integer columns;
    Python objects (dates, booleans, mixed text) as types Arrow writes the way PostgreSQL reads them.

    A shallow copy: with copy-on-write a replaced column leaves `frame` as it was, and the columns already
    in COPY's types (most of an import) are not copied at all."""
    out = frame.copy(deep=False)
    for name, column in frame.items():
        if isinstance(table.c[name].type, sa.Integer) and not pd.api.types.is_integer_dtype(column):
            out[name] = pd.to_numeric(column).round().astype("Int64")
        elif column.dtype == object:
            present = column.dropna()
            first = present.iloc[0] if len(present) else None
            if isinstance(first, bool | np.bool_):
                out[name] = column.astype("boolean")
            elif hasattr(first, "isoformat"):
                out[name] = column.map(lambda v: None if v is None or v != v else v.isoformat())
            else:
                out[name] = column.map(lambda v: None if v is None or v != v else str(v))
    return out


def replace_all(engine: Engine, frames: dict[str, pd.DataFrame], progress=None) -> None:
    """Replace every data table with `frames` in one transaction (used by the demo loader).

    ``progress(message)``, when given, hears about each table as it is written (state-sized demos take
    minutes). Imports are held off meanwhile (the import lock), as readers see the old data until commit.
    """
    create_schema(engine)
    with write_transaction(engine) as conn:
        partitioned = {name for name in schema.YEAR_PARTITIONED
                       if conn.dialect.name == "postgresql" and _partitioned(conn, name)}
        for name in reversed(schema.IMPORTABLE_TABLES):
            if name in partitioned:  # every year new again: each is loaded as a partition of its own
                _drop_year_partitions(conn, name)
            else:
                conn.execute(sa.delete(schema.DATA_TABLES[name]))
        for name in schema.IMPORTABLE_TABLES:
            if name in frames and not frames[name].empty:
                started = time.perf_counter()
                if conn.dialect.name == "postgresql" and len(frames[name]) >= BULK_LOAD_ROWS:
                    if name in partitioned:
                        upsert(conn, name, frames[name])
                        conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.quote(name)}")
                    else:
                        _bulk_load_postgresql(conn, name, frames[name])
                else:
                    upsert(conn, name, frames[name])
                if progress and len(frames[name]) >= DIRECT_MIN_ROWS:
                    progress(f"wrote {name}: {counted(len(frames[name]), 'row')} in {time.perf_counter() - started:.1f} s")
        bump_version(conn, imported=True)
        if progress:
            progress("committing")


def _drop_year_partitions(conn: Connection, table_name: str) -> None:
    """Drop every school year's partition of a partitioned table (its rows with it; readers wait for the commit)."""
    quote = conn.dialect.identifier_preparer.quote
    names = list(year_partitions(conn, table_name).values())
    if names:
        conn.exec_driver_sql(f"DROP TABLE {', '.join(quote(n) for n in names)}")


# An emptied PostgreSQL table receiving at least this many rows is loaded first and indexed after (a table
# partitioned by year is loaded a partition at a time instead, and its statistics gathered after).
BULK_LOAD_ROWS = 500_000


def _bulk_load_postgresql(conn: Connection, table_name: str, frame: pd.DataFrame) -> None:
    """`COPY` into an emptied table with its unique constraints and indexes set aside, then rebuilt.

    Building a B-tree once from sorted rows is several times faster than growing it row by row (state
    scale: millions of metric rows); a duplicate key found when the unique constraint is rebuilt fails the
    load and leaves the table as it was.
    """
    quote = conn.dialect.identifier_preparer.quote
    cols = [c for c in frame.columns if c in schema.DATA_TABLES[table_name].c]
    with _indexes_set_aside(conn, table_name, unique=True, analyze=True):
        _copy_rows(conn, quote(table_name), ", ".join(quote(c) for c in cols), frame[cols], table_name)


def record_import(conn: Connection, file_name: str, table_name: str, rows: int, skipped: int, who: str) -> None:
    conn.execute(
        sa.insert(schema.imports).values(
            file_name=file_name,
            table_name=table_name,
            rows=rows,
            rows_skipped=skipped,
            imported_at=datetime.now(UTC),
            imported_by=who,
        )
    )


# --- reads --------------------------------------------------------------------------------------

_INT_COLS = {
    "metrics": ("numerator", "denominator"),
    "discipline": (
        "enrolled", "students_suspended", "students_iss", "students_oss", "students_expelled",
        "incidents", "law_referrals", "restorative_conferences",
    ),
}


def _read(engine: Engine, stmt: sa.Select, planner: dict[str, str] | None = None) -> pd.DataFrame:
    """Run a Core SELECT through the driver's own cursor, or on PostgreSQL as CSV (:func:`_read_copy`).

    Fetching a million rows through SQLAlchemy's row objects takes about four times as long as the
    DBAPI cursor (10.7 s vs 2.6 s for 1.1 M metrics rows on SQLite), and pages load whole metrics.
    ``planner``: PostgreSQL settings for this statement alone (``SET LOCAL``, undone when its transaction
    ends), for a statement whose best plan the planner's costs do not find; ignored elsewhere.
    """
    with engine.connect() as conn:
        if planner and conn.dialect.name == "postgresql":
            for name, value in planner.items():
                conn.execute(sa.text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        if compiled.positiontup is not None:
            params = [compiled.params[name] for name in compiled.positiontup]
        else:
            params = compiled.params
        driver = conn.connection.driver_connection
        if conn.dialect.name == "postgresql" and (types := _csv_types(stmt)) and driver.info.encoding == "utf-8":
            try:
                return _read_copy(driver, compiled.string, params, types)
            except BaseException:
                if not _ready_for_next_statement(driver):  # a COPY left half read is no connection to pool again
                    conn.invalidate()
                raise  # otherwise the pool rolls back a failed transaction as the connection goes back
        cursor = driver.cursor()
        try:
            cursor.execute(compiled.string, params)
            columns = [d[0] for d in cursor.description]
            chunks = []
            while rows := cursor.fetchmany(READ_CHUNK_ROWS):
                chunks.append(pd.DataFrame.from_records(rows, columns=columns))
                del rows
        finally:
            cursor.close()
    if len(chunks) <= 1:
        return chunks[0] if chunks else pd.DataFrame.from_records([], columns=columns)
    df = _concat_chunks(chunks)
    del chunks
    release_freed_memory()
    return df


def _ready_for_next_statement(driver) -> bool:
    """Whether a connection whose COPY read failed can be pooled again: still connected, and no command in
    progress (libpq's transaction status idle, in a transaction or in a failed one).

    An error the server answered (a statement timeout, a query error, before or during the rows) is read to
    the end by :func:`_copy_out`, and the connection is ready for the next statement; replacing it would cost a
    new backend for nothing. A read stopped between messages (a broken protocol, an exception raised
    mid-COPY) leaves the status active, and a lost connection leaves it unknown: those are invalidated."""
    from psycopg import pq

    pgconn = driver.pgconn
    return pgconn.status == pq.ConnStatus.OK and pgconn.transaction_status in (
        pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


def _csv_types(stmt: sa.Select) -> dict | None:
    """The Arrow type of each column a SELECT returns when every one is of a type whose CSV text reads back as
    the driver's value would (integers, floating point, text, booleans) and is the type PostgreSQL returns
    (:func:`_typed_as_declared`), else None.

    Other expressions (sums, counts: PostgreSQL's ``bigint`` or ``numeric``), dates and times keep the cursor:
    their results are small, and their Python values (``Decimal``, ``date``) are what callers convert."""
    import pyarrow as pa

    types = {}
    for column in stmt.selected_columns:
        kind = column.type
        if not _typed_as_declared(column) or column.name in types:
            return None
        if isinstance(kind, sa.Boolean):
            types[column.name] = pa.bool_()
        elif isinstance(kind, sa.Integer):
            types[column.name] = pa.int64()
        elif isinstance(kind, sa.Float):
            types[column.name] = pa.float64()
        elif isinstance(kind, sa.String):
            types[column.name] = pa.string()
        else:
            return None
    return types


def _typed_as_declared(column: sa.ColumnElement) -> bool:
    """Whether a selected column's declared type is the one PostgreSQL returns it as: a table's column, a labelled
    ``CAST``, or text from a subquery (text reads back as text whatever made it). A district's worsened colours
    (158,000 rows at 10,000 schools) and suspensions per school and month (140,000) read through the cursor
    made a Python object of each value: about 0.3 s of the interpreter's time in a view of what changed."""
    if isinstance(column, sa.Column):
        return True
    if isinstance(column, sa.Label):
        return isinstance(column.element, sa.Cast)
    return isinstance(column, sa.ColumnClause) and column.table is not None and isinstance(column.type, sa.String)


def _read_copy(driver, sql: str, params, types: dict) -> pd.DataFrame:
    """PostgreSQL: the rows of a SELECT as `COPY (...) TO STDOUT` CSV (:func:`_copy_out`), parsed by Arrow and
    typed as the cursor's rows would be by ``DataFrame.from_records`` (:func:`_as_records_frame`).

    psycopg makes a Python object of every value and pandas reads them back into columns: 0.28 s of CPU for the
    248,000 metric rows of one metric's two years at 10,000 schools, against 0.13 s for this read. In CSV a
    NULL is an unquoted empty field and an empty text a quoted one, which Arrow tells apart; a row of one NULL
    column is an empty line, which Arrow would otherwise skip."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    data = pa.py_buffer(_copy_out(driver, sql, params))
    if not data.size:
        return pd.DataFrame.from_records([], columns=list(types))
    table = pa_csv.read_csv(
        pa.BufferReader(data), read_options=pa_csv.ReadOptions(column_names=list(types)),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True,
                                              quoted_strings_can_be_null=False, true_values=["t"],
                                              false_values=["f"]))
    del data
    df = _as_records_frame(table)
    if len(df) >= READ_CHUNK_ROWS:
        del table
        release_freed_memory()
    return df


def _copy_out(driver, sql: str, params) -> bytearray:
    """The CSV text of `COPY (sql) TO STDOUT`, taken from libpq directly (psycopg's ``pq`` layer).

    PostgreSQL sends each row of a COPY as a message of its own; psycopg's ``Copy`` passes each through its
    generator and wait loop, 0.19 s of CPU for 248,000 rows against under half of that here, where the loop
    waits for the socket (``poll``: any descriptor number) only when libpq has no whole message buffered. Each row is appended to one buffer as it comes, not
    kept as an object of its own: a quarter of a million small objects at once, freed while other threads
    allocate, left the server's memory fragmented and larger (pymalloc returns an arena only when it is empty).
    COPY takes no parameters: they are bound into the text by psycopg, as its own ``copy`` binds them. Runs in
    the connection's transaction, if one is open."""
    import select

    from psycopg import ClientCursor, errors, pq

    pgconn = driver.pgconn
    query = ClientCursor(driver).mogrify(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params)

    def ready(events: int) -> None:
        poller = select.poll()
        poller.register(pgconn.socket, events)
        poller.poll()

    def wait() -> None:  # until the server sends more (a query not yet sent whole is sent first)
        while pgconn.flush():
            ready(select.POLLIN | select.POLLOUT)
            pgconn.consume_input()
        ready(select.POLLIN)
        pgconn.consume_input()

    def result():
        while pgconn.is_busy():
            wait()
        return pgconn.get_result()

    def fail(first):
        while result() is not None:  # the connection is ready for the next statement
            pass
        raise errors.error_from_result(first, encoding=driver.info.encoding)

    pgconn.send_query(query.encode(driver.info.encoding))
    while pgconn.flush():
        ready(select.POLLOUT)
    started = result()
    if started.status != pq.ExecStatus.COPY_OUT:
        fail(started)
    text = bytearray()
    while True:
        size, data = pgconn.get_copy_data(1)
        if size > 0:
            text += data
        elif size == 0:
            wait()
        else:
            break
    finished = result()
    if finished.status != pq.ExecStatus.COMMAND_OK:
        fail(finished)
    while result() is not None:
        pass
    return text


def _as_records_frame(table) -> pd.DataFrame:
    """An Arrow table as the frame ``DataFrame.from_records`` makes of the same rows' Python values: whole
    numbers as int64, as float64 with NaN when some are NULL; booleans as bool, as objects (None) when some
    are NULL; text as pandas makes text; a column of NULLs alone as objects (None)."""
    import pyarrow as pa

    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if column.null_count == len(column):
            columns[name] = np.full(len(column), None, dtype=object)
        elif pa.types.is_integer(column.type) and column.null_count:
            columns[name] = column.cast(pa.float64()).to_numpy()
        elif pa.types.is_boolean(column.type) and column.null_count:
            columns[name] = np.array(column.to_pylist(), dtype=object)
        elif pa.types.is_string(column.type):
            columns[name] = column.to_pandas()
        else:
            columns[name] = column.to_numpy()
    return pd.DataFrame(columns, columns=list(table.column_names))


READ_CHUNK_ROWS = 20_000


def _concat_chunks(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from chunks read in turn, typed as if read at once.

    A column whose chunks were typed differently (all empty in one chunk, numbers in another) is
    inferred again from its values, as ``DataFrame.from_records`` infers it from the whole result.
    """
    df = pd.concat(chunks, ignore_index=True)
    for column in df.columns:
        if len({str(chunk[column].dtype) for chunk in chunks}) > 1:
            df[column] = pd.Series(df[column].tolist(), index=df.index)
    return df


def _return_arrow_memory_to_the_system() -> None:
    """Let pandas' Arrow-backed string columns allocate through the C allocator.

    Arrow's default pool (mimalloc) keeps the pages of freed columns for reuse, so a server that once
    read a large table stays at its peak; with the system pool :func:`release_freed_memory` returns them.
    """
    try:
        import pyarrow
    except ImportError:  # strings are Python objects then: nothing to change
        return
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


_return_arrow_memory_to_the_system()


def release_freed_memory() -> None:
    """Give memory freed after a large read back to the operating system (glibc ``malloc_trim``).

    Rows are fetched as Python objects before they become columns; without this the server's resident
    size stays at its peak long after those objects are gone (DESIGN §8 memory bar).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


class _Among(sa.sql.expression.ColumnElement):
    """A column's value is among a subquery's: ``IN (SELECT ...)``, but on PostgreSQL ``= ANY(ARRAY(SELECT
    ...))``, whose values are read once and looked up as a list's are (an index scan per partition with them
    all), where the planner joined ``IN``'s and looked each one up in every partition (twice the time)."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("values", InternalTraversal.dp_clauseelement)]
    type = sa.Boolean()

    def __init__(self, column: sa.ColumnElement, values: sa.Select):
        self.column, self.values = column, values


@compiles(_Among)
def _among_in(element: _Among, compiler, **kw) -> str:
    return compiler.process(element.column.in_(element.values), **kw)


@compiles(_Among, "postgresql")
def _among_array(element: _Among, compiler, **kw) -> str:
    values = sa.func.array(element.values.scalar_subquery())
    return compiler.process(element.column == sa.any_(values), **kw)


def among(column: sa.ColumnElement, values: sa.Select) -> sa.ColumnElement[bool]:
    """Whether `column` is one of the values `values` selects (one column), read the way a list of them is."""
    return _Among(column, values)


def _filtered(table: sa.Table, **filters: Iterable | None) -> sa.Select:
    stmt = sa.select(table)
    for col, values in filters.items():
        if values is None:
            continue
        values = list(values) if not isinstance(values, (str, int)) else [values]
        stmt = stmt.where(table.c[col].in_(values))
    return stmt


def _typed(table_name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Counts as float (NaN = suppressed/unknown), years as int: the frame analytics expects."""
    for col in _INT_COLS.get(table_name, ()):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("value", "target", "oss_days", "latitude", "longitude", "days_removed"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    if "school_year" in df:
        df["school_year"] = df["school_year"].astype("int64")
    return df


def load_schools(engine: Engine, *, clusters: Sequence[str] | None = None,
                 school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The schools (of ``clusters`` or ``school_ids``), in the byte order of their ids (:func:`in_byte_order`)."""
    df = _read(engine, _filtered(schema.schools, cluster=clusters, school_id=school_ids))
    if df.empty:
        df = pd.DataFrame(columns=schema.TABLES["schools"].column_names)
    df = in_byte_order(df, ["school_id"])
    for col in ("latitude", "longitude", "enrollment", "rp_start_year"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["title1"] = _booleans(df["title1"])
    return df


def in_byte_order(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The rows sorted by ``keys``, text by its characters' code points (UTF-8's byte order), stably.

    An `ORDER BY` on PostgreSQL sorts text in the database's collation: on an `en_US` database "a-2", "A1",
    "b" (punctuation and case weigh last), where SQLite and Python give "A1", "a-2", "b". The key columns of the
    metrics and discipline tables are byte-ordered on PostgreSQL (migration 0010); the schools' ids and
    clusters are not, so lists read with them are put in this one order here, the same on both engines.
    """
    if len(df) < 2:
        return df.reset_index(drop=True)
    return df.sort_values(list(keys), kind="stable", ignore_index=True)


def _booleans(values: pd.Series) -> pd.Series:
    """SQLite hands booleans back as 0/1: make them True/False (None stays None)."""
    return values.map(lambda v: None if v is None or v != v else bool(v)).astype(object)


def load_metrics(engine: Engine, *, years: Sequence[int] | None = None, metrics: Sequence[str] | None = None,
                 groups: Sequence[str] | None = None, school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    stmt = _filtered(schema.metrics, school_year=years, metric=metrics, student_group=groups, school_id=school_ids)
    df = _read(engine, stmt)
    if df.empty:
        df = pd.DataFrame(columns=schema.TABLES["metrics"].column_names)
    return _typed("metrics", df)


def load_metrics_any(engine: Engine, conditions: Sequence[sa.ColumnElement[bool]]) -> pd.DataFrame:
    """The metrics rows that meet any of `conditions` (e.g. some schools of one metric and group each), typed
    as :func:`load_metrics` types them. Each condition is its own SELECT of a UNION ALL, so each finds its rows
    by an index (PostgreSQL scanned every row for the OR of them), a hundred to a statement (SQLite's limit on
    a compound SELECT is 500); conditions that overlap give their common rows more than once."""
    frames = [_read(engine, stmt) for stmt in metrics_any_statements(conditions)]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0] if frames else pd.DataFrame()
    if df.empty:
        df = pd.DataFrame(columns=schema.TABLES["metrics"].column_names)
    return _typed("metrics", df)


def metrics_any_statements(conditions: Sequence[sa.ColumnElement[bool]]) -> list[sa.CompoundSelect]:
    """The statements of :func:`load_metrics_any`: a UNION ALL of one SELECT per condition, a hundred each."""
    conditions = list(conditions)
    return [sa.union_all(*[sa.select(schema.metrics).where(c) for c in conditions[i:i + 100]])
            for i in range(0, len(conditions), 100)]


def load_discipline(engine: Engine, *, years: Sequence[int] | None = None, groups: Sequence[str] | None = None,
                    school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    stmt = _filtered(schema.discipline, school_year=years, student_group=groups, school_id=school_ids)
    df = _read(engine, stmt)
    if df.empty:
        df = pd.DataFrame(columns=schema.TABLES["discipline"].column_names)
    return _typed("discipline", df)


def load_incidents(engine: Engine, *, school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    df = _read(engine, _filtered(schema.incidents, school_id=school_ids))
    if df.empty:
        df = pd.DataFrame(columns=schema.TABLES["incidents"].column_names)
    df["incident_date"] = pd.to_datetime(df["incident_date"])
    for col in ("farms", "eml", "swd"):
        df[col] = _booleans(df[col])
    return _typed("incidents", df)


def load_cycles(engine: Engine, *, school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    df = _read(engine, _filtered(schema.improvement_cycles, school_id=school_ids))
    if df.empty:
        df = pd.DataFrame(columns=schema.TABLES["improvement_cycles"].column_names)
    for col in ("start_date", "end_date"):
        df[col] = pd.to_datetime(df[col])
    return df


_PL_NUMERIC = ("participants", "hours", "response", "count", "pre_score", "post_score", "classrooms_observed",
               "classrooms_using", "start_year")


def load_table(engine: Engine, table_name: str, *, programs: Sequence[str] | None = None,
               school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Any importable table with its schema columns (empty frame when it has no rows), optionally filtered
    by programme and school (the professional-learning tables); numbers as float, dates as datetimes."""
    table = schema.DATA_TABLES[table_name]
    filters = {k: v for k, v in (("program", programs), ("school_id", school_ids)) if k in table.c}
    df = _read(engine, _filtered(table, **filters))
    if df.empty:
        df = pd.DataFrame(columns=schema.TABLES[table_name].column_names)
    for spec in schema.TABLES[table_name].columns:
        if spec.kind == schema.DATE:
            df[spec.name] = pd.to_datetime(df[spec.name])
        elif spec.name in _PL_NUMERIC:
            df[spec.name] = pd.to_numeric(df[spec.name], errors="coerce").astype("float64")
    return _typed(table_name, df)


def load_metric_definitions(engine: Engine) -> pd.DataFrame:
    return _read(engine, sa.select(schema.metric_definitions))


def load_imports(engine: Engine) -> pd.DataFrame:
    return _read(engine, sa.select(schema.imports).order_by(schema.imports.c.import_id.desc()))


def available_years(engine: Engine) -> list[int]:
    """Every school year with metrics or discipline rows, ascending (:func:`years_statement` of each table)."""
    with engine.connect() as conn:
        return sorted({int(y) for name in YEARS_TABLES for y in conn.execute(years_statement(conn, name)).scalars()})


def table_years(engine: Engine, table_name: str) -> list[int]:
    """The school years one table holds a row of, ascending."""
    with engine.connect() as conn:
        return sorted(int(y) for y in conn.execute(years_statement(conn, table_name)).scalars())


YEARS_TABLES = ("metrics", "discipline")


def years_statement(conn: Connection, table_name: str) -> sa.Select:
    """The school years a table holds a row of, without reading every row.

    A `DISTINCT` over the year reads the whole table: 1.2-1.4 s at 10,000 schools x 8 years on PostgreSQL
    (~10 M metrics rows), before each first view. On PostgreSQL a year-partitioned table (migration 0008)
    lists its partitions, and each year is kept when its partition holds a row (one row read, pruned to that
    partition; an emptied partition may remain after a delete). Elsewhere :func:`distinct_statement` over an
    index leading with the year (``ix_metrics_year_metric`` on SQLite, ``ix_discipline_year``)."""
    table = schema.DATA_TABLES[table_name]
    year = table.c.school_year
    if conn.dialect.name == "postgresql" and _partitioned(conn, table_name):
        held = [sa.select(sa.literal(y).label("school_year")).where(sa.exists().where(year == y))
                for y in sorted(year_partitions(conn, table_name))]
        return sa.union_all(*held) if len(held) > 1 else held[0] if held else sa.select(year).where(sa.false())
    return distinct_statement(year)


def distinct_statement(column: sa.Column, *where: sa.ColumnElement[bool]) -> sa.Select:
    """The distinct values of a column (among the rows matching `where`) by a loose index scan.

    A recursive CTE steps from each value to the smallest greater one, each step one seek into an index
    leading with the `where` columns' values and then `column` (the PostgreSQL wiki's "Loose indexscan"; neither
    engine skips through an index by itself): the 13 metrics of 10 M rows take 14 seeks on PostgreSQL, one
    per partition each, where `DISTINCT` read every row (1.5 s). Same values as ``SELECT DISTINCT`` (NULL
    left out), in no particular order."""
    name = f"{column.table.name}_{column.name}_steps"
    steps = sa.select(sa.func.min(column).label("value")).where(*where).cte(name, recursive=True)
    after = sa.select(sa.func.min(column)).where(*where, column > steps.c.value).scalar_subquery()
    steps = steps.union_all(sa.select(after).where(steps.c.value.is_not(None)))
    return sa.select(steps.c.value.label(column.name)).where(steps.c.value.is_not(None))


def key_values(engine: Engine, table_name: str, column: str) -> set[str]:
    """Every value of one column of a table (the ids an import's references are checked against), read as
    plain values: typing whole tables as frames for one column each made an import's reference look-up
    10-30 ms instead of 2 (200 schools), a fixed cost that weighs on small files."""
    with engine.connect() as conn:
        return {str(v) for (v,) in conn.execute(sa.select(schema.DATA_TABLES[table_name].c[column]))}


def available_metrics(engine: Engine) -> list[str]:
    """The metrics with rows, sorted (:func:`distinct_statement` on the metric-first index)."""
    with engine.connect() as conn:
        return sorted(conn.execute(distinct_statement(schema.metrics.c.metric)).scalars())


def tables_present(engine: Engine) -> dict[str, bool]:
    """Whether each imported table holds a row, in one statement of `EXISTS` subqueries (each stops at its
    table's first row): what a page asks before it draws. :func:`table_counts` reads every row, over a
    second per cold view at 10,000 schools x 8 years on PostgreSQL."""
    stmt = sa.select(*(sa.exists(sa.select(sa.literal(1)).select_from(table)).label(name)
                       for name, table in schema.DATA_TABLES.items()))
    with engine.connect() as conn:
        row = conn.execute(stmt).one()
    return {name: bool(value) for name, value in zip(schema.DATA_TABLES, row, strict=True)}


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            for name, table in schema.DATA_TABLES.items()
        }
