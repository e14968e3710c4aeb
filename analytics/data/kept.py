"""Results kept in the database for one state of the data, so a restarted server or another server process
reads them instead of computing them again.

The district's list of what changed since its last meeting costs seconds of database and Python work at
10,000 schools (its worsened colours read four years of every school's metrics). A server computes it once
per data version (after an import its preparer does, :mod:`analytics.data.prepare`) and keeps it in memory;
this table keeps it across restarts and between the processes of one deployment.

A result is kept under its name, its arguments (their ``repr``), the data version it was computed at (the
counter every write bumps, :data:`analytics.data.storage.CHANGES`: one version is one state of the data) and
a fingerprint of the code that computed it (:func:`code_fingerprint`: a new release computes again). It is
read back only under the same four. Every write that bumps the version deletes what older versions kept,
in its own transaction (:func:`forget_before`), so nothing kept outlives the rows it was computed from.
A result is kept only while its version is still the database's: one computed by a run that pinned an
older version is used by that run and not kept.

The frame goes in as Parquet bytes (its dtypes and index round-trip). A database that cannot be written (a
read-only role) or a table that cannot be read only loses the keeping: the result in hand is still used.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analytics.data import schema

PACKAGE = Path(__file__).resolve().parents[1]  # analytics/: every formula a kept result comes from
APP_PAGES = PACKAGE.parent / "pages"  # the app's page scripts and their helpers, beside analytics/


@lru_cache(maxsize=8)
def code_fingerprint(*folders: Path) -> str:
    """SHA-256 of every Python source under `analytics/` and the given folders (e.g. the pages that call it),
    by path and content, and of the versions of the libraries a frame is made and stored with: any change to
    the code that computes a result, or an upgrade of pandas, numpy or pyarrow, makes its kept copies unread."""
    import numpy as np

    digest = hashlib.sha256(f"pandas {pd.__version__} numpy {np.__version__} pyarrow {pa.__version__}".encode())
    for root in (PACKAGE, *folders):
        for path in sorted(Path(root).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def app_fingerprint() -> str:
    """The fingerprint of the app's code (`analytics/` and `pages/`): what the pages keep under, and what the
    command line keeps ahead under for them to read."""
    return code_fingerprint(APP_PAGES)


def is_kept(engine: Engine, name: str, args: tuple, version: int, code: str) -> bool:
    """Whether a frame is kept as `name` with these arguments at this data version by this code (no blob read)."""
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(schema.kept_results.c.version)
                                .where(*_kept_as(name, args, version, code))).first() is not None
    except sa.exc.SQLAlchemyError:
        return False


def load(engine: Engine, name: str, args: tuple, version: int, code: str) -> pd.DataFrame | None:
    """The frame kept as `name` with these arguments at this data version by this code, or None (none kept,
    or it cannot be read)."""
    try:
        with engine.connect() as conn:
            blob = conn.execute(sa.select(schema.kept_results.c.frame)
                                .where(*_kept_as(name, args, version, code))).scalar()
        return None if blob is None else pd.read_parquet(io.BytesIO(blob))
    except (sa.exc.SQLAlchemyError, OSError, ValueError, pa.ArrowException):
        return None


def keep(engine: Engine, name: str, args: tuple, version: int, code: str, frame: pd.DataFrame) -> bool:
    """Keep `frame` as `name` with these arguments, if `version` is still the database's; True if kept. Replaces
    what was kept under the same name and arguments."""
    from analytics.data.storage import CHANGES

    table = schema.kept_results
    if not all(isinstance(column, str) for column in frame.columns):
        return False  # Parquet names columns by text: 1 would come back as "1"
    try:
        blob = _to_parquet(frame)
        with engine.begin() as conn:
            # The version read stays the database's until this commits: a write bumps it only after (and then
            # forgets this row), never between the check and the insert. SQLite: this transaction becomes the
            # writer first; PostgreSQL: the counter's row is locked for share (a write updates it). A write
            # already under way replaces the version anyway: nothing is kept rather than waiting for it.
            if conn.dialect.name == "sqlite":
                _begin_as_writer_or_fail(conn)
            current = conn.execute(sa.select(schema.data_version.c.version)
                                   .where(schema.data_version.c.id == CHANGES)
                                   .with_for_update(read=True, nowait=True)).scalar()
            if current != version:
                return False
            key = _args_key(args)
            conn.execute(sa.delete(table).where(table.c.name == name, table.c.args == key))
            conn.execute(sa.insert(table).values(name=name, args=key, version=version, code=code,
                                                 made_at=datetime.now(UTC), frame=blob))
        return True
    except (sa.exc.SQLAlchemyError, ValueError, TypeError, pa.ArrowException):  # Arrow's: a type Parquet lacks
        return False


def forget_before(conn: Connection, version_expr) -> None:
    """Delete what was kept for versions older than `version_expr` (a value or a scalar subquery), inside the
    caller's write transaction."""
    table = schema.kept_results
    conn.execute(sa.delete(table).where(table.c.version < version_expr))


def kept_names(engine: Engine) -> list[tuple[str, str, int]]:
    """(name, arguments, version) of every kept result, by name and arguments."""
    table = schema.kept_results
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            sa.select(table.c.name, table.c.args, table.c.version).order_by(table.c.name, table.c.args))]


def _begin_as_writer_or_fail(conn: Connection) -> None:
    """Begin SQLite's transaction as the writer now, or fail at once if another one writes (no busy wait)."""
    waited = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    conn.exec_driver_sql("PRAGMA busy_timeout = 0")
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited)}")


def _kept_as(name: str, args: tuple, version: int, code: str) -> tuple:
    """The conditions of one kept result's row: its name, arguments, data version and code."""
    table = schema.kept_results
    return (table.c.name == name, table.c.args == _args_key(args), table.c.version == version, table.c.code == code)


def _args_key(args: Iterable) -> str:
    """The arguments as text: their reprs (dates, strings, None and tuples of them read the same in every
    process)."""
    return repr(tuple(args))


def _to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()
