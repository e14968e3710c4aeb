"""Every cluster's results kept as one frame per position and read back as each cluster's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pages.ui.compact import ClusterParts


def _equal(got, want) -> None:
    """The same values, types, columns and index, its kind included (a RangeIndex stays one)."""
    if isinstance(want, pd.Series):
        pd.testing.assert_series_equal(got, want, check_index_type=True, check_exact=True)
    else:
        pd.testing.assert_frame_equal(got, want, check_index_type=True, check_column_type=True, check_exact=True)


def _rows() -> pd.DataFrame:
    return pd.DataFrame({"school_id": pd.Series(["a", "b", "c", "d", "e"], dtype="str"),
                         "level": pd.Categorical(["E", "M", "E", "H", "M"]),
                         "value": [1.5, np.nan, 3.0, 4.0, -0.0], "n": [10, 20, 30, 40, 50]})


def test_each_clusters_frames_come_back_as_they_were_given_and_are_kept_joined():
    rows = _rows()
    numbered = {"North": rows.iloc[:3].reset_index(drop=True), "South": rows.iloc[3:].reset_index(drop=True)}
    sums = {name: part[["n"]].sum().to_frame().T.reset_index(drop=True) for name, part in numbered.items()}
    labelled = dict(list(rows.groupby(["N", "N", "N", "S", "S"], sort=False)))  # members keep their labels
    pairs = ClusterParts({name: (numbered[name], sums[name]) for name in numbered})
    members = ClusterParts({"North": labelled["N"], "South": labelled["S"]})
    assert list(pairs) == ["North", "South"] and len(pairs) == 2 and "North" in pairs and "East" not in pairs
    for name in numbered:
        got_rows, got_sums = pairs[name]
        _equal(got_rows, numbered[name])
        _equal(got_sums, sums[name])
    _equal(members["North"], labelled["N"])
    _equal(members["South"], labelled["S"])
    assert pairs.get("East") is None and members.get("East", "none") == "none"
    with pytest.raises(KeyError):
        pairs["East"]
    # One frame per position holds every cluster's rows: a cluster's are a slice of it.
    assert len(pairs._positions) == 2 and len(pairs._positions[0]._joined) == len(rows)
    assert not pairs._positions[0]._apart


def test_series_by_month_come_back_with_their_periods():
    months = pd.PeriodIndex(["2024-01", "2024-02", "2024-03"], freq="M")
    parts = {"North": pd.Series([3, 0, 5], index=months, name="count"),
             "South": pd.Series([1], index=months[1:2], name="count")}
    joined = ClusterParts(parts)
    for name, part in parts.items():
        _equal(joined[name], part)
    assert dict(joined.items()).keys() == parts.keys()


def test_parts_that_differ_from_the_first_and_missing_parts_are_kept_as_they_were():
    rows = _rows()
    first = rows.iloc[:2].reset_index(drop=True)
    other_types = rows.iloc[2:].reset_index(drop=True).astype({"n": "float64"})
    other_columns = first.drop(columns="level")
    made = {"North": first, "South": other_types, "East": other_columns, "West": None}
    joined = ClusterParts(made)
    assert joined["South"] is other_types and joined["East"] is other_columns and joined["West"] is None
    _equal(joined["North"], first)
    assert list(joined) == ["North", "South", "East", "West"]


def test_parts_numbered_by_ranges_or_labels_come_back_numbered_as_they_were():
    rows = _rows()
    made = {"North": rows.iloc[[0, 2]].set_axis(pd.Index([0, 2])), "South": rows.iloc[3:].set_axis(pd.RangeIndex(3, 5)),
            "East": rows.iloc[1:2].set_axis(pd.RangeIndex(0, 1)), "West": rows.iloc[:2].set_axis(pd.RangeIndex(0, 4, 2))}
    joined = ClusterParts(made)
    for name, part in made.items():
        _equal(joined[name], part)
        assert type(joined[name].index) is type(part.index)
    assert not joined._positions[0]._apart


def test_parts_indexed_by_several_levels_are_kept_as_they_were():
    rows = _rows()
    made = {"North": rows.iloc[:2].set_index(["school_id", "level"]), "South": rows.iloc[2:].set_index(["school_id", "level"])}
    joined = ClusterParts(made)
    assert joined["North"] is made["North"] and joined["South"] is made["South"]
