"""Run-chart signals of many series at once equal the one-series chart, and both equal the rules written
out point by point (Perla, Provost & Murray 2011): random series with ties, short and flat ones."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from analytics.stats.run_charts import (
    SHIFT_LENGTH,
    TREND_LENGTH,
    run_chart,
    run_charts,
    series_signals,
    shift_runs,
    trend_runs,
)
from analytics.workspace import changes as ch


def _runs(labels: list[int], min_length: int) -> list[bool]:
    """The rule as a loop: runs of >= min_length equal non-zero labels, zeros skipped."""
    marked, run, current = [False] * len(labels), [], 0
    for i, label in enumerate(labels):
        if label == 0:
            continue
        if label != current:
            run, current = [], label
        run.append(i)
        if len(run) >= min_length:
            for j in run:
                marked[j] = True
    return marked


def _reference(values: list[float]) -> list[str]:
    """Each point's signal by the rules, one point at a time, the median by pandas."""
    if not values:
        return []
    median = float(pd.Series(values, dtype=float).median())
    shift = _runs([int(np.sign(v - median)) for v in values], SHIFT_LENGTH)
    signs = [int(np.sign(b - a)) for a, b in zip(values[:-1], values[1:], strict=True)]
    steps = _runs(signs, TREND_LENGTH - 1)
    trend = [False] * len(values)
    for i, on in enumerate(steps):
        if on:
            trend[i] = trend[i + 1] = True
    # Flat steps between two steps of one qualifying trend belong to it (like values neither make nor break it).
    counted = [i for i, sign in enumerate(signs) if sign]
    for a, b in zip(counted[:-1], counted[1:], strict=True):
        if steps[a] and steps[b] and signs[a] == signs[b]:
            for j in range(a + 1, b + 1):
                trend[j] = True
    return [",".join(n for n, on in (("shift", s), ("trend", t)) if on) for s, t in zip(shift, trend, strict=True)]


def _random_series(rng: np.random.Generator, n_series: int) -> pd.DataFrame:
    """Series of 0 to 30 points: few distinct values (ties), flat ones, runs and ramps, half-integers."""
    frames = []
    for k in range(n_series):
        n = int(rng.choice([0, 1, 2, 4, 5, 6, 7, rng.integers(8, 31)]))
        kind = k % 4
        if kind == 0:
            values = rng.integers(0, 4, n).astype(float)  # many ties and points on the median
        elif kind == 1:
            values = np.full(n, float(rng.integers(0, 5)))  # flat
        elif kind == 2:
            values = np.cumsum(rng.choice([-1.0, 0.0, 1.0], n, p=[0.2, 0.2, 0.6]))  # ramps with ties
        else:
            values = np.round(rng.normal(10, 3, n) * 2) / 2 + np.where(np.arange(n) > n // 2, 4, 0)  # a step
        periods = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.choice(400, n, replace=False)), "D")
        order = rng.permutation(n)  # rows come in any order
        frames.append(pd.DataFrame({"school_id": f"s{k % 37}", "source": f"cycle {k}", "link": f"cycles?cycle={k}",
                                    "period": periods[order], "value": values[order]}))
    return pd.concat(frames, ignore_index=True)


def test_signals_of_two_series_stop_at_the_series_boundary():
    # Five rising points then four more in the next series: one trend of five in the first, none across.
    codes = np.array([0] * 5 + [1] * 4)
    values = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9], dtype=float)
    median, shift, trend = series_signals(codes, values)
    assert median.tolist() == [3.0] * 5 + [7.5] * 4
    assert trend.tolist() == [True] * 5 + [False] * 4
    assert not shift.any()


def test_many_series_at_once_equal_each_chart_and_the_rules():
    series = _random_series(np.random.default_rng(20250227), 400)
    charts = run_charts(series, ["school_id", "source", "link"])
    assert len(charts) == len(series)
    checked = 0
    for (_, source, _), points in series.groupby(["school_id", "source", "link"], sort=True):
        one = run_chart(points[["period", "value"]])
        many = charts[charts["source"] == source]
        assert one["signal"].tolist() == _reference(one["value"].tolist())
        assert one["median"].tolist() == many["median"].tolist()
        assert many["period"].tolist() == one["period"].tolist()
        both = many["shift"].to_numpy() & many["trend"].to_numpy()
        names = np.where(both, "shift,trend", np.where(many["shift"], "shift", np.where(many["trend"], "trend", "")))
        assert names.tolist() == one["signal"].tolist()
        checked += 1
    assert checked > 300 and (charts["shift"].any() and charts["trend"].any() and not charts["shift"].all())


def test_every_point_of_a_trend_is_marked_repeated_values_inside_it_too():
    # 1 2 2 2 3 4 5: five points rising (the repeated 2s are not counted); the middle 2 lies between two flat
    # steps and belongs to the trend as much as its neighbours (Perla et al.: like values neither make nor break).
    _, _, trend = series_signals(np.zeros(7, dtype=int), np.array([1, 2, 2, 2, 3, 4, 5], dtype=float))
    assert trend.tolist() == [True] * 7
    # Flat points after a trend's last rise are not part of it; a flat stretch between a rise and a fall ends it.
    _, _, trend = series_signals(np.zeros(7, dtype=int), np.array([1, 2, 3, 4, 5, 5, 5], dtype=float))
    assert trend.tolist() == [True] * 5 + [False] * 2
    _, _, trend = series_signals(np.zeros(7, dtype=int), np.array([1, 2, 2, 2, 3, 1, 1], dtype=float))
    assert not trend.any()


def test_each_run_is_told_apart_with_its_side_or_direction():
    # 6 below the median, then 8 above it: two shifts of 6 and 8, not one of 14.
    assert shift_runs([11, 10, 12, 11, 10, 12, 21, 20, 22, 21, 20, 22, 21, 20], median=16) == [
        (0, 5, 6, -1), (6, 13, 8, 1)]
    # A point on the median (position 2) neither counts nor breaks the run; the 9 alone is no shift.
    assert shift_runs([1, 1, 5, 1, 1, 1, 1, 9], median=5) == [(0, 6, 6, -1)]
    assert shift_runs([1, 1, 1, 1, 1, 9], median=5) == []
    # 1 2 3 3 4 5: five points rising (the repeated 3 is not counted), then a fall of one step.
    assert trend_runs([1, 2, 3, 3, 4, 5, 0]) == [(0, 5, 5, 1)]
    assert trend_runs([9, 8, 7, 6, 5, 6, 7, 8, 9, 10]) == [(0, 4, 5, -1), (4, 9, 6, 1)]
    assert trend_runs([1, 2, 3, 4]) == [] and trend_runs([3]) == []


def test_the_runs_hold_exactly_the_points_the_chart_marks():
    series = _random_series(np.random.default_rng(11), 200)
    for _, points in series.groupby("source"):
        chart = run_chart(points[["period", "value"]])
        values, median = chart["value"].tolist(), float(chart["median"].iloc[0])
        shifted = {i for first, last, _, _ in shift_runs(values, median) for i in range(first, last + 1)
                   if values[i] != median}
        trending = {i for first, last, _, _ in trend_runs(values) for i in range(first, last + 1)}
        assert shifted == set(np.flatnonzero(chart["signal"].str.contains("shift")))
        assert trending == set(np.flatnonzero(chart["signal"].str.contains("trend")))


def _new_signals_one_by_one(series: pd.DataFrame, since: date) -> pd.DataFrame:
    """The list of new signals drawn one chart at a time."""
    cut, rows = pd.Timestamp(since), []
    for (school, source, link), points in series.groupby(["school_id", "source", "link"], sort=True):
        chart = run_chart(points[["period", "value"]])
        after = chart[(chart["period"] > cut) & (chart["signal"] != "")]
        earlier = points[points["period"] <= cut][["period", "value"]]
        if after.empty or (len(earlier) and run_chart(earlier)["signal"].iloc[-1] != ""):
            continue
        kinds = sorted({k for s in after["signal"] for k in s.split(",") if k})
        rows.append({"school_id": school, "change": "run_chart_signal", "link": link,
                     "detail": f"{source}: {' and '.join(kinds)} since {since:%Y-%m-%d} ({len(after)} signal points)"})
    return pd.DataFrame(rows, columns=["school_id", "change", "detail", "link"])


def test_new_signals_equal_the_list_drawn_one_chart_at_a_time():
    series = _random_series(np.random.default_rng(7), 300)
    for since in (date(2024, 3, 1), date(2024, 8, 15), date(2025, 6, 1)):
        got = ch.new_signals(series, since)
        want = _new_signals_one_by_one(series, since)
        assert len(want) > 0 or since == date(2025, 6, 1)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
