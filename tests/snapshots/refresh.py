"""Regenerate the export-view snapshots on purpose: `python tests/snapshots/refresh.py`.

Every `python -m analytics export VIEW` CSV of a small fixed demo district is written here. The test
`tests/test_view_snapshots.py` rebuilds the same district and compares each view with its snapshot, so a
change that moves any exported number fails until the snapshots are refreshed deliberately.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

DEMO = {"schools": 30, "years": 6, "seed": 7}
SINCE = "2020-01-01"  # a fixed meeting date, before every demo event, for `export changes --since`
# (file stem, CLI arguments after `export`)
VIEWS = [
    ("rates", ["rates"]),
    ("rates_cluster", ["rates", "--cluster", "{cluster}"]),
    ("gaps", ["gaps"]),
    ("status-change", ["status-change"]),
    ("disproportionality", ["disproportionality"]),
    ("rp-impact", ["rp-impact"]),
    ("run-chart", ["run-chart"]),
    ("goals", ["goals"]),
    ("changes", ["changes", "--since", SINCE]),
    ("learning", ["learning"]),
]


def snapshot_path(stem: str) -> Path:
    return HERE / f"{stem}.csv.gz"


def read_snapshot(stem: str) -> str:
    return gzip.decompress(snapshot_path(stem).read_bytes()).decode("utf-8")


def build_demo_database(directory: Path) -> str:
    """A SQLite file with the fixed demo district; returns its URL."""
    from analytics.data import storage
    from analytics.data.demo import load_demo

    url = f"sqlite:///{directory / 'snapshot.db'}"
    os.environ["DATABASE_URL"] = url
    engine = storage.ensure_database(seed_demo=False)
    load_demo(engine, **DEMO)
    engine.dispose()
    return url


def first_cluster() -> str:
    from analytics.data import loads, storage

    engine = storage.ensure_database(seed_demo=False)
    return sorted(loads.load_schools(engine)["cluster"].dropna().unique())[0]


def export_csv(args: list[str]) -> str:
    """One `export` run's CSV text (DATABASE_URL must point at the demo database)."""
    from analytics import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["export", *args])
    if code != 0:
        raise RuntimeError(f"export {' '.join(args)} failed ({code}): {err.getvalue()}")
    return out.getvalue()


def all_exports() -> dict[str, str]:
    cluster = first_cluster()
    return {stem: export_csv([a.format(cluster=cluster) for a in args]) for stem, args in VIEWS}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        build_demo_database(Path(tmp))
        for stem, text in all_exports().items():
            snapshot_path(stem).write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
            print(f"wrote {snapshot_path(stem).name} ({text.count(chr(10)) - 1:,} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
