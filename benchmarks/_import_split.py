"""Where an import's time goes: reading, each validation check, staging, the write, index builds, commit.

`split()` times one import by wrapping the importer's and the storage layer's own steps (module functions
are looked up at call time, so wrapping them in place times every call) and by timing each SQL statement
the write sends, classed by what it does (SQLAlchemy's cursor events). Steps nest (the COPY holds its CSV
text, the write holds its statements); `other_write_s` is the write less the steps named inside it.

    with split() as phases:
        import_files(engine, [path])
    phases  # {"read_s": ..., "check_school_id_s": ..., "index_build_s": ..., "commit_s": ...}
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import defaultdict
from collections.abc import Iterator

import sqlalchemy as sa
from _common import ROOT  # noqa: F401  (puts the project on the path)

from analytics.data import bulk_write, importer, storage

# SQL statements of the write by what they do (first matching prefix, upper-cased).
_STATEMENT_KINDS = (
    ("CREATE INDEX", "index_build"), ("CREATE UNIQUE INDEX", "index_build"), ("ALTER TABLE", "index_build"),
    ("INSERT INTO", "insert"), ("DROP INDEX", "index_drop"), ("CREATE TABLE", "staging"),
    ("CREATE TEMP TABLE", "staging"), ("DROP TABLE", "staging"), ("ANALYZE", "analyze"),
)


def _statement_kind(statement: str) -> str:
    text = statement.lstrip().upper()
    if text.startswith("ALTER TABLE") and "ATTACH PARTITION" in text:
        return "attach"
    if text.startswith("ALTER TABLE") and "DROP CONSTRAINT" in text:
        return "index_drop"
    for prefix, kind in _STATEMENT_KINDS:
        if text.startswith(prefix):
            return kind
    return "other_sql"


@contextlib.contextmanager
def split() -> Iterator[dict[str, float]]:
    """Seconds per step of every import run inside the block (rounded when the block ends)."""
    seconds: dict[str, float] = defaultdict(float)
    patched: list[tuple[object, str, object]] = []

    def wrap(module, name: str, label) -> None:
        original = getattr(module, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                key = label(*args, **kwargs) if callable(label) else label
                seconds[key] += time.perf_counter() - started

        patched.append((module, name, original))
        setattr(module, name, timed)

    def wrap_generator(module, name: str, label: str) -> None:
        original = getattr(module, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            parts = original(*args, **kwargs)
            while True:
                started = time.perf_counter()
                try:
                    part = next(parts)
                except StopIteration:
                    seconds[label] += time.perf_counter() - started
                    return
                seconds[label] += time.perf_counter() - started
                yield part

        patched.append((module, name, original))
        setattr(module, name, timed)

    wrap(importer, "read_tables", "read_s")
    wrap(importer, "_context", "context_s")
    wrap(importer, "_check_column", lambda raw, spec, *a, **k: f"check_{spec.name}_s")
    wrap(importer, "_table_rules", "check_table_rules_s")
    wrap(importer, "_duplicate_keys", "check_duplicate_keys_s")
    wrap(importer, "_second_header", "check_second_header_s")
    wrap(importer, "_storage_types", "storage_types_s")
    wrap(importer, "validate_table", "validate_table_s")
    wrap(importer, "write_report", "write_s")
    wrap(bulk_write, "_in_write_order", "write_order_s")
    wrap(bulk_write, "_in_partition_order", "partition_order_s")
    wrap(bulk_write, "_tuples", "tuples_s")
    wrap(bulk_write, "_copy_rows", "copy_s")
    wrap_generator(bulk_write, "_csv_chunks", "copy_text_s")
    statement_started: list[float] = []
    writing: list[bool] = []  # SQL is classed inside the write transaction only (not the validator's reads)

    def before(conn, cursor, statement, parameters, context, executemany):
        statement_started.append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        if statement_started:
            took = time.perf_counter() - statement_started.pop()
            if writing:
                seconds[f"sql_{_statement_kind(statement)}_s"] += took

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
    sa.event.listen(sa.engine.Engine, "after_cursor_execute", after)
    original_transaction = storage.write_transaction

    @contextlib.contextmanager
    def timed_transaction(engine):
        with original_transaction(engine) as conn:
            writing.append(True)
            try:
                yield conn
            finally:
                writing.clear()
            body_done = time.perf_counter()
        seconds["commit_s"] += time.perf_counter() - body_done

    storage.write_transaction = timed_transaction
    patched.append((storage, "write_transaction", original_transaction))
    result: dict[str, float] = {}
    try:
        yield result
    finally:
        for module, name, original in reversed(patched):
            setattr(module, name, original)
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", before)
        sa.event.remove(sa.engine.Engine, "after_cursor_execute", after)
        named = sum(v for k, v in seconds.items() if k.startswith("sql_") or k in (
            "write_order_s", "partition_order_s", "tuples_s", "copy_s"))
        if "write_s" in seconds:
            seconds["other_write_s"] = max(seconds["write_s"] - seconds["commit_s"] - named, 0.0)
        checks = sum(v for k, v in seconds.items() if k.startswith("check_"))
        seconds["validation_s"] = seconds.get("validate_table_s", 0.0)
        seconds["checks_total_s"] = checks
        result.update({k: round(v, 4) for k, v in sorted(seconds.items())})
