"""Loads: the data tables read back as typed DataFrames, filtered in SQL on indexed keys (missing counts are
NaN, never zero), and the small reads pages ask first (the school years and metrics held, row counts).

Every read goes through :func:`_read`: the driver's own cursor, or on PostgreSQL `COPY ... TO STDOUT` parsed by
Arrow, much faster than SQLAlchemy's row objects for the million-row tables pages load.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from analytics.data import memory, schema, storage

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
    memory.release_freed_memory()
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
        memory.release_freed_memory()
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
    if conn.dialect.name == "postgresql" and storage.partitioned_by_year(conn, table_name):
        held = [sa.select(sa.literal(y).label("school_year")).where(sa.exists().where(year == y))
                for y in sorted(storage.year_partitions(conn, table_name))]
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
