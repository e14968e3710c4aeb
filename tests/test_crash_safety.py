"""An import killed with SIGKILL at any point leaves the database exactly as it was (SQLite and PostgreSQL).

`python -m analytics import` runs in a subprocess on a file large enough that validating and writing take
a while; it is killed while validating, as soon as its write transaction starts, and well into writing.
Each time the database must hold exactly what it held before, and a later import must still work (no
lock or hot journal left behind).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.data import schema, storage
from analytics.data.importer import import_bytes, import_files

ROOT = Path(__file__).resolve().parents[1]
SCHOOLS = 150
METRICS = ("read_proficient", "math_proficient", "ela_growth", "math_growth", "chronic_absence", "attendance_rate")
GROUPS = ("ALL", "AM", "AS", "BL", "HI", "PI", "WH", "MU", "FARMS", "EML", "SWD", "FEMALE", "MALE")


def _files(tmp_path: Path) -> tuple[Path, Path]:
    schools = pd.DataFrame({"school_id": [f"S{i:04d}" for i in range(SCHOOLS)], "school_name": "School",
                            "level": "ES", "cluster": "North"})
    schools_path = tmp_path / "schools.csv"
    schools.to_csv(schools_path, index=False)
    index = pd.MultiIndex.from_product([schools["school_id"], range(2019, 2025), METRICS, GROUPS],
                                       names=["school_id", "school_year", "metric", "student_group"])
    metrics = index.to_frame(index=False)
    rng = np.random.default_rng(7)
    metrics["denominator"] = rng.integers(20, 400, len(metrics))
    metrics["numerator"] = (metrics["denominator"] * rng.uniform(0.1, 0.9, len(metrics))).astype(int)
    metrics_path = tmp_path / "metrics.csv"
    metrics.to_csv(metrics_path, index=False)
    return schools_path, metrics_path


def _state(url: str) -> dict:
    """What the database holds, exactly: small tables row by row, the metrics table by exact aggregates."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            m = schema.metadata.tables["metrics"]
            metrics = conn.execute(sa.select(sa.func.count(), sa.func.sum(m.c.numerator), sa.func.sum(m.c.denominator),
                                             sa.func.sum(m.c.school_year))).one()
            state = {"metrics": tuple(metrics)}
            for name in ("schools", "imports", "data_version"):
                rows = conn.execute(sa.select(schema.metadata.tables[name])).fetchall()
                state[name] = sorted(map(repr, rows))
            if conn.dialect.name == "sqlite":
                state["integrity"] = conn.execute(sa.text("PRAGMA integrity_check")).scalar_one()
        return state
    finally:
        engine.dispose()


def _sqlite_writer_active(path: Path) -> bool:
    """True while another connection holds the SQLite file's write lock (an import's transaction is open)."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def _writing(watcher: sa.Connection | None, db: Path | None, stage: str) -> bool:
    """True once the child's write transaction has reached `stage`.

    On PostgreSQL the `COPY` is the start of the write and the merge `INSERT` is well into it, seen in
    `pg_stat_activity` through one open connection (a new connection per look could miss a short `COPY`).
    On SQLite the import's transaction begins as the writer (`BEGIN IMMEDIATE`), seen here as the lock; its
    pages reach the write-ahead log only as it commits, so "well into writing" is the lock held a while
    longer (:func:`_kill_import`).
    """
    if db is not None:
        return _sqlite_writer_active(db)
    pattern = "COPY%" if stage == "as the write starts" else "INSERT INTO%metrics%SELECT%"
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE :pattern")
    watcher.rollback()  # pg_stat_activity is a snapshot per transaction: each look starts a new one
    return watcher.execute(query, {"pattern": pattern}).scalar_one() > 0


def _kill_import(url: str, path: Path, when: str) -> float:
    """Start an import of `path`, SIGKILL it at `when`; returns seconds from start to the kill."""
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    db = Path(sa.engine.make_url(url).database) if url.startswith("sqlite") else None
    engine = sa.create_engine(url) if db is None else None
    watcher = engine.connect() if engine is not None else None
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "analytics", "import", str(path)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if when == "validating":
            time.sleep(0.8)  # reading and checking a 117,000-row file takes longer than this
        else:
            while not _writing(watcher, db, when):
                assert child.poll() is None, f"the import finished before it could be killed ({when})"
                assert time.monotonic() - started < 60, f"the import never reached the point {when!r}"
                time.sleep(0.01)
            if db is not None and when == "well into writing":
                time.sleep(0.1)  # writing and indexing 117,000 rows holds the lock several times longer
                assert _sqlite_writer_active(db), "the import committed before it could be killed"
        assert child.poll() is None, f"the import ended before the kill ({when})"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        return time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
        if engine is not None:
            watcher.close()
            engine.dispose()


@pytest.mark.parametrize("when", ["validating", "as the write starts", "well into writing"])
def test_an_import_killed_mid_way_leaves_the_database_as_it_was(db_url, tmp_path, when):
    engine = storage.get_engine(db_url)
    schools_path, metrics_path = _files(tmp_path)
    assert import_files(engine, [schools_path]).ok
    # Some rows already there with other numerators, so a partial upsert would show as changed values as well as
    # new rows (and the merge rewrites each of them: rows sent again unchanged are left out before it).
    first_year = pd.read_csv(metrics_path).query("school_year == 2019")
    first_year = first_year.assign(numerator=first_year["numerator"] - 1)
    assert import_bytes(engine, [("metrics.csv", first_year.to_csv(index=False).encode())]).ok
    engine.dispose()
    before = _state(db_url)

    _kill_import(db_url, metrics_path, when)

    assert _state(db_url) == before
    second_year = pd.read_csv(metrics_path).query("school_year == 2020")
    report = import_bytes(engine, [("metrics.csv", second_year.to_csv(index=False).encode())])
    assert report.ok and report.written  # nothing left locked or half-written
    assert _state(db_url)["metrics"][0] == 2 * len(first_year)
