"""Bulk writes: rows upserted into the data tables, a new school year as a partition of its own, indexes set
aside and rebuilt, PostgreSQL's `COPY`, the demo's replacement of every table and the import log.

Every write runs inside one transaction (the caller's, or its own by :func:`storage.write_transaction`): nothing
is visible until it commits, and a failure leaves the tables as they were.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analytics.data import loads, schema, storage
from analytics.outputs.labels import counted

if TYPE_CHECKING:
    from analytics.data.readers import CsvLines


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
    partitioned = table_name in schema.YEAR_PARTITIONED and storage.partitioned_by_year(conn, table_name)
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
    partitions = storage.year_partitions(conn, table_name)
    years = sorted(int(y) for y in pd.unique(frame["school_year"]))
    stored = set(years) & {int(y) for y in conn.execute(loads.years_statement(conn, table_name)).scalars()}
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
            partitions = storage.year_partitions(conn, table_name)
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
            with storage.write_transaction(engine) as conn:
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
        if not storage.partitioned_by_year(conn, self.table_name):
            return False
        if self.year in {int(y) for y in conn.execute(loads.years_statement(conn, self.table_name)).scalars()}:
            return False
        _replace_year(conn, self.table_name, self.year, storage.year_partitions(conn, self.table_name), "", rows,
                      self.lines, self._factorized)
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
    (``partitions``: :func:`storage.year_partitions`)."""
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
    storage.create_schema(engine)
    with storage.write_transaction(engine) as conn:
        partitioned = {name for name in schema.YEAR_PARTITIONED
                       if conn.dialect.name == "postgresql" and storage.partitioned_by_year(conn, name)}
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
        storage.bump_version(conn, imported=True)
        if progress:
            progress("committing")


def _drop_year_partitions(conn: Connection, table_name: str) -> None:
    """Drop every school year's partition of a partitioned table (its rows with it; readers wait for the commit)."""
    quote = conn.dialect.identifier_preparer.quote
    names = list(storage.year_partitions(conn, table_name).values())
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
