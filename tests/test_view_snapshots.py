"""Every export view of a small fixed demo district equals its stored snapshot (tests/snapshots/).

The snapshots were written from main before the database-side aggregation; a change that moves any
exported number fails here. Refresh deliberately with `python tests/snapshots/refresh.py`.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_SPEC = importlib.util.spec_from_file_location("snapshot_refresh", Path(__file__).parent / "snapshots" / "refresh.py")
refresh = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(refresh)

RTOL, ATOL = 1e-9, 1e-9


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DATABASE_URL", "")
    try:
        refresh.build_demo_database(tmp_path_factory.mktemp("snapshots"))
        yield refresh.all_exports()
    finally:
        monkeypatch.undo()


def _frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def assert_same_table(got: pd.DataFrame, want: pd.DataFrame, name: str) -> None:
    """Same columns, rows and text; numeric columns equal within a tight float tolerance."""
    assert list(got.columns) == list(want.columns), f"{name}: columns differ"
    assert len(got) == len(want), f"{name}: {len(got)} rows, snapshot has {len(want)}"
    for column in want.columns:
        g, w = got[column], want[column]
        if g.equals(w):
            continue
        gn, wn = pd.to_numeric(g, errors="coerce"), pd.to_numeric(w, errors="coerce")
        text_rows = (w != "") & wn.isna()
        assert (g[text_rows] == w[text_rows]).all(), f"{name}.{column}: text differs"
        close = np.isclose(gn.to_numpy(float), wn.to_numpy(float), rtol=RTOL, atol=ATOL, equal_nan=True)
        bad = np.flatnonzero(~close)
        assert not len(bad), (f"{name}.{column}: {len(bad)} values moved, first at row {bad[0]}: "
                              f"{g.iloc[bad[0]]!r} (snapshot {w.iloc[bad[0]]!r})")


@pytest.mark.parametrize("stem", [stem for stem, _ in refresh.VIEWS])
def test_export_view_matches_snapshot(exports, stem):
    assert_same_table(_frame(exports[stem]), _frame(refresh.read_snapshot(stem)), stem)
