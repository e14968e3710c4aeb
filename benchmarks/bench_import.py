"""Import speed beside its floor, measured in the same run (DESIGN §8: import <= 2x the floor).

Floor = `pandas.read_csv` of the file + a bare bulk insert of the same rows (executemany into an
unindexed SQLite table; `COPY` into an unindexed table on PostgreSQL), each with its fastest conversion
(column-wise tuples; CSV written by Arrow). `validate` is reading and every check without writing;
`import` is the whole all-or-nothing import of rows the table does not hold yet (a new year's file) into
a database that already holds the schools, the figure held against the floor; `reimport_unchanged` is the
same file imported again (every row a key conflict, no value changed); `new_year` is the last year's rows
alone imported into the table holding every other year (the yearly file; no index is set aside for it),
beside its own floor, and `paired`: the floor and that import timed back to back in each repeat, the
median of their ratios (wall, this process's CPU and, on PostgreSQL, this process's CPU plus the server's:
`client_server_cpu_ratio_median`), less moved by other work on the machine. `split` is
where the fastest run's time went (reading, each check, staging, the write's statements, index builds,
commit; `_import_split`). `write_s` is the import less its validation, beside the floor's bare insert
(`write_ratio_to_bare_insert`): what the indexes and the all-or-nothing write cost on top of the rows
themselves. Writes benchmarks/results/import.json.

    python benchmarks/bench_import.py [--sizes 200 2000] [--postgres URL] [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from _common import best_of, write_results
from _import_split import split

from analytics.data import bulk_write, storage
from analytics.data.demo import build_demo
from analytics.data.importer import import_files, validate_bytes

NO_LIMIT = 1 << 40


def bare_insert(url: str, frame: pd.DataFrame) -> None:
    """The floor's write: every row into an unindexed table, the fastest way the database offers."""
    engine = sa.create_engine(url)
    cols = list(frame.columns)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bare_floor")
        conn.exec_driver_sql(f"CREATE TABLE bare_floor ({', '.join(f'{c} TEXT' for c in cols)})")
        if conn.dialect.name == "postgresql":
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), sink,
                             pa_csv.WriteOptions(include_header=False))
            cursor = conn.connection.driver_connection.cursor()
            with cursor.copy(f"COPY bare_floor ({', '.join(cols)}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(sink.getvalue().to_pybytes())
            cursor.close()
        else:
            rows = bulk_write._tuples(frame)
            conn.exec_driver_sql(f"INSERT INTO bare_floor VALUES ({', '.join(['?'] * len(cols))})", rows)
        conn.exec_driver_sql("DROP TABLE bare_floor")
    engine.dispose()


def fresh_database(url_for, workdir: Path, name: str) -> sa.Engine:
    url = url_for(name)
    engine = storage.get_engine(url)
    if engine.dialect.name == "sqlite":
        engine.dispose()
        for f in workdir.glob(f"{name}.db*"):
            f.unlink()
        storage._engine_for.cache_clear()
        engine = storage.get_engine(url)
    else:
        storage.create_schema(engine)  # a new server database has no tables yet
        with engine.begin() as conn:
            for table in ("metrics", "discipline", "imports"):
                conn.exec_driver_sql(f"DELETE FROM {table}")
    storage.create_schema(engine)
    assert import_files(engine, [workdir / "schools.csv"]).ok
    return engine


def _emptied(engine: sa.Engine, table: str, year: int | None = None) -> None:
    """The table without rows (or without one year's; on PostgreSQL without the dead ones either), so each
    run writes new rows."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM {table}" + ("" if year is None else f" WHERE school_year = {int(year)}"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")


def _imported(engine: sa.Engine, path: Path) -> None:
    report = import_files(engine, [path], max_bytes=NO_LIMIT)
    if not report.ok:
        raise RuntimeError(report.problems[0].format())


def _timed_new_import(engine: sa.Engine, table: str, path: Path, repeat: int,
                      year: int | None = None) -> tuple[float, dict]:
    """The fastest of `repeat` imports of rows the table does not hold, with that run's split (`_import_split`)."""
    runs = []
    for _ in range(repeat):
        _emptied(engine, table, year)
        with split() as phases:
            took = best_of(lambda: _imported(engine, path), 1)
        runs.append((took, phases))
    return min(runs, key=lambda run: run[0])


def _paired_new_year(engine: sa.Engine, table: str, path: Path, floor_url: str, repeat: int, year: int) -> dict:
    """The floor and the import of the same new year timed one right after the other in each repeat
    (:func:`paired_runs`)."""
    return paired_runs(lambda: _emptied(engine, table, year),
                       lambda: bare_insert(floor_url, pd.read_csv(path)),
                       lambda: _imported(engine, path), repeat, floor_url)


def paired_runs(reset, floor, imported, repeat: int, url: str) -> dict:
    """`floor()` and `imported()` run back to back `repeat` times, `reset()` before each pair.

    A busy machine slows the two unevenly when they are timed minutes apart; pairing them puts both under the
    same load, and the median of the pairs' ratios is the figure least moved by it. Medians of the wall-clock
    ratios, of this process's CPU ratios (on SQLite the whole work) and, on PostgreSQL, of the ratios of this
    process's CPU plus the server's (:func:`server_cpu`), with each pair's seconds."""
    server = server_cpu(url)
    walls, cpus, totals = [], [], []
    for _ in range(repeat):
        reset()
        floor_wall, floor_cpu, floor_server = _wall_and_cpu(floor, server)
        import_wall, import_cpu, import_server = _wall_and_cpu(imported, server)
        walls.append(import_wall / floor_wall)
        cpus.append(import_cpu / floor_cpu)
        if server is not None:
            totals.append({"ratio": round((import_cpu + import_server) / (floor_cpu + floor_server), 2),
                           "floor_client_s": round(floor_cpu, 2), "floor_server_s": round(floor_server, 2),
                           "import_client_s": round(import_cpu, 2), "import_server_s": round(import_server, 2)})
    out = {"repeats": repeat, "wall_ratio_median": round(statistics.median(walls), 2),
           "wall_ratios": [round(r, 2) for r in walls], "cpu_ratio_median": round(statistics.median(cpus), 2)}
    if totals:
        out["client_server_cpu_ratio_median"] = statistics.median(t["ratio"] for t in totals)
        out["client_server_cpu"] = totals
    return out


def server_cpu(url: str):
    """A function giving the CPU seconds used so far by the PostgreSQL server behind ``url`` (None for another
    database): the postmaster and every process it started, running or ended (the postmaster's counts of the
    children it has waited for): backends, parallel index-build workers, the WAL writer, the checkpointer.
    The server must run on this machine. An autovacuum worker is counted too, so a pair's figure can be high
    now and then: the median of the pairs is the figure to read."""
    if not url.startswith("postgresql"):
        return None
    import psutil

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        postmaster = psutil.Process(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()).parent()
    engine.dispose()

    def used() -> float:
        while True:  # again when a process ended meanwhile: its seconds may be in neither count, or in both
            running = {child.pid: child for child in postmaster.children()}
            total = 0.0
            for child in running.values():
                with contextlib.suppress(psutil.Error):
                    times = child.cpu_times()
                    total += times.user + times.system
            own = postmaster.cpu_times()  # its own and its waited-for children's (not iowait: no CPU)
            if {child.pid for child in postmaster.children()} >= running.keys():
                return total + own.user + own.system + own.children_user + own.children_system

    return used


def _wall_and_cpu(fn, server=None) -> tuple[float, float, float]:
    """Wall seconds, this process's CPU seconds and the server's (0 without ``server``) of ``fn()``."""
    before = server() if server else 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, (server() - before) if server else 0.0


def _write_split(imported: float, validate: float, insert: float) -> dict:
    """The import's write (the import less its validation) beside the floor's bare insert of the same rows."""
    write = max(imported - validate, 0.0)
    return {"validate_s": round(validate, 4), "write_s": round(write, 4),
            "write_ratio_to_bare_insert": round(write / insert, 2)}


def measure(n_schools: int, workdir: Path, url_for, repeat: int) -> dict:
    frames = build_demo(schools=n_schools)
    for name, frame in frames.items():
        frame.to_csv(workdir / f"{name}.csv", index=False)
    out = {}
    for table in ("discipline", "metrics"):
        path = workdir / f"{table}.csv"
        data = path.read_bytes()
        read = best_of(lambda p=path: pd.read_csv(p), repeat)
        frame = pd.read_csv(io.BytesIO(data), dtype=str)
        insert = best_of(lambda f=frame: bare_insert(url_for("floor"), f), repeat)
        engine = fresh_database(url_for, workdir, f"bench-{n_schools}-{table}")
        validate = best_of(lambda d=data, t=table, e=engine: validate_bytes(e, [(f"{t}.csv", d)], max_bytes=NO_LIMIT),
                           repeat)
        full, full_split = _timed_new_import(engine, table, path, repeat)
        again = best_of(lambda p=path, e=engine: import_files(e, [p], max_bytes=NO_LIMIT), repeat)
        floor = read + insert
        year = int(frames[table]["school_year"].max())
        year_path = workdir / f"{table}_{year}.csv"
        frames[table][frames[table]["school_year"] == year].to_csv(year_path, index=False)
        year_text = pd.read_csv(year_path, dtype=str)
        year_insert = best_of(lambda f=year_text: bare_insert(url_for("floor"), f), repeat)
        year_floor = best_of(lambda p=year_path: pd.read_csv(p), repeat) + year_insert
        year_validate = best_of(lambda p=year_path, e=engine: validate_bytes(e, [(p.name, p.read_bytes())],
                                                                            max_bytes=NO_LIMIT), repeat)
        year_import, year_split = _timed_new_import(engine, table, year_path, repeat, year)
        paired = _paired_new_year(engine, table, year_path, url_for("floor"), repeat, year)
        out[table] = {
            "rows": len(frames[table]), "bytes": len(data),
            "read_csv_s": round(read, 4), "bare_insert_s": round(insert, 4), "floor_s": round(floor, 4),
            "import_s": round(full, 4),
            "import_ratio_to_floor": round(full / floor, 2), "meets_2x": full <= 2 * floor,
            **_write_split(full, validate, insert), "split": full_split,
            "reimport_unchanged_s": round(again, 4),
            "new_year": {"year": year, "rows": int((frames[table]["school_year"] == year).sum()),
                         "floor_s": round(year_floor, 4), "import_s": round(year_import, 4),
                         "import_ratio_to_floor": round(year_import / year_floor, 2),
                         **_write_split(year_import, year_validate, year_insert), "split": year_split,
                         "paired": paired},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--postgres", help="a PostgreSQL URL to measure on as well (its tables are emptied)")
    parser.add_argument("--quick", action="store_true", help="200 schools, one repetition")
    parser.add_argument("--repeat", type=int, help="repetitions of each timing (best of; default 3, --quick 1)")
    args = parser.parse_args()
    sizes, repeat = ([200], 1) if args.quick else (args.sizes, 3)
    repeat = args.repeat or repeat
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            sub = Path(tmp) / str(n)
            sub.mkdir()
            results[f"sqlite_{n}_schools"] = measure(n, sub, lambda name, s=sub: f"sqlite:///{s / name}.db", repeat)
            if args.postgres:
                results[f"postgresql_{n}_schools"] = measure(n, sub, lambda name: args.postgres, repeat)
    write_results("import", {"goal": "import <= 2x (read_csv + bare bulk insert)", "results": results})


if __name__ == "__main__":
    main()
