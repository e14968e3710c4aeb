"""Import speed against a plain `pandas.read_csv` of the same file (DESIGN §8: goal <= 2x).

For each size, demo tables are written as CSV; `read_csv` is the floor. `validate` is parsing and
every check without writing; `import` is validation plus the upsert into a fresh SQLite database
(already holding the schools). Writes benchmarks/results/import.json.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from _common import best_of, write_results

from analytics.data import storage
from analytics.data.demo import build_demo
from analytics.data.importer import import_files, validate_bytes

NO_LIMIT = 1 << 40


def measure(n_schools: int, workdir: Path) -> dict:
    frames = build_demo(schools=n_schools)
    for name, frame in frames.items():
        frame.to_csv(workdir / f"{name}.csv", index=False)
    out = {}
    for table in ("discipline", "metrics"):
        path = workdir / f"{table}.csv"
        data = path.read_bytes()
        read = best_of(lambda p=path: pd.read_csv(p))

        def fresh_import(table=table):
            db = workdir / f"bench-{n_schools}-{table}.db"
            for f in workdir.glob(db.name + "*"):
                f.unlink()
            engine = storage.get_engine(f"sqlite:///{db}")
            storage.create_schema(engine)
            assert import_files(engine, [workdir / "schools.csv"]).ok
            return engine

        engine = fresh_import()
        validate = best_of(lambda d=data, t=table, e=engine: validate_bytes(e, [(f"{t}.csv", d)], max_bytes=NO_LIMIT))
        full = best_of(lambda p=path, e=engine: import_files(e, [p], max_bytes=NO_LIMIT))
        out[table] = {
            "rows": len(frames[table]),
            "bytes": len(data),
            "read_csv_s": round(read, 4),
            "validate_s": round(validate, 4),
            "import_s": round(full, 4),
            "validate_ratio_to_read_csv": round(validate / read, 2),
            "import_ratio_to_read_csv": round(full / read, 2),
        }
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for n in (200, 2000):
            sub = Path(tmp) / str(n)
            sub.mkdir()
            results[f"{n}_schools"] = measure(n, sub)
    write_results("import", {"goal": "import <= 2x read_csv", "results": results})


if __name__ == "__main__":
    main()
