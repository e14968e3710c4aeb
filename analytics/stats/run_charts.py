"""Run charts for improvement cycles: median, shift and trend signals, PDSA cycles (DESIGN §3).

Rules follow Perla, Provost & Murray, "The run chart: a simple analytical tool for learning from
variation in healthcare processes" (BMJ Quality & Safety, 2011):
- shift: six or more consecutive points all above or all below the median; points on the median
  neither count toward nor break a run;
- trend: five or more consecutive points all going up or all going down; a point equal to the one
  before it neither counts toward nor breaks the trend.
Every point in a qualifying run is marked.

The rules are written once, over many series at once (:func:`series_signals`: integer series codes and
values in period order, group-wise numpy with no loop per series); one chart (:func:`run_chart`) is the
case of a single series, so the page's chart and the district's list of new signals cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SHIFT_LENGTH = 6
TREND_LENGTH = 5
# July has no school and is left out of monthly series (:func:`monthly_series_by_school`); the school year
# ends in June and starts in August, so those months have fewer school days (and incidents) than the rest.
PARTIAL_MONTHS = {6: "June", 8: "August"}


def partial_months(periods: pd.Series) -> np.ndarray:
    """Whether each month (a timestamp) is a partial school month: June or August (:data:`PARTIAL_MONTHS`)."""
    return pd.to_datetime(periods).dt.month.isin(list(PARTIAL_MONTHS)).to_numpy()


def month_segments(periods: pd.Series) -> np.ndarray:
    """A number per month (in period order) that grows after every month left out (July, or no data): a line
    drawn per segment breaks where a month is missing instead of running straight across it."""
    months = pd.to_datetime(periods).dt.to_period("M").astype("int64").to_numpy() if len(periods) else np.zeros(0)
    return np.cumsum(np.r_[0, np.diff(months) > 1]).astype(int)


def _mark_runs(codes: np.ndarray, labels: np.ndarray, min_length: int) -> np.ndarray:
    """Mark positions in runs of >= min_length equal non-zero labels within one series code; zeros are
    skipped (neither counted nor breaks). ``codes`` are non-decreasing: a new code starts a new run."""
    marked = np.zeros(len(labels), dtype=bool)
    at = np.flatnonzero(labels != 0)
    if not len(at):
        return marked
    label, code = labels[at], codes[at]
    starts = np.ones(len(at), dtype=bool)
    starts[1:] = (label[1:] != label[:-1]) | (code[1:] != code[:-1])
    run = np.cumsum(starts) - 1
    marked[at] = np.bincount(run)[run] >= min_length
    return marked


def _sign(values: np.ndarray) -> np.ndarray:
    """-1, 0 or 1; a missing value is 0 (neither counts nor breaks a run)."""
    return np.nan_to_num(np.sign(values), nan=0.0).astype(np.int8)


def series_medians(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each point's series median (missing values left out, as pandas' median): the mean of the one or
    two middle values of the series in order, (a + b) / 2 as numpy's and pandas' median compute it."""
    n = len(values)
    if not n:
        return np.zeros(0)
    order = np.lexsort((values, codes))  # NaN last within each series
    ordered = values[order]
    first = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]])
    size = np.diff(np.r_[first, n])
    valid = np.add.reduceat(~np.isnan(ordered), first)
    low, high = first + np.maximum(valid - 1, 0) // 2, first + valid // 2
    medians = np.where(valid > 0, (ordered[low] + ordered[high]) / 2, np.nan)
    return np.repeat(medians, size)


def series_signals(codes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, shift, trend) of every point of many series at once.

    ``codes``: non-decreasing integer series codes; ``values``: each series' values in period order.
    A trend of k points has k - 1 steps (step i goes from point i to point i + 1); every point from the
    first step's start to the last step's end of a qualifying trend is marked, so repeated values inside a
    trend belong to it (:func:`_spans_of_runs`).
    """
    codes = np.asarray(codes)
    values = np.asarray(values, dtype=float)
    medians = series_medians(codes, values)
    shift = _mark_runs(codes, _sign(values - medians), SHIFT_LENGTH)
    steps = np.zeros(len(values), dtype=np.int8)
    if len(values) > 1:
        same = codes[1:] == codes[:-1]
        steps[:-1] = np.where(same, _sign(np.diff(values)), 0)
    step_marks = _spans_of_runs(codes, steps, TREND_LENGTH - 1)
    trend = step_marks.copy()
    trend[1:] |= step_marks[:-1]
    return medians, shift, trend


def _spans_of_runs(codes: np.ndarray, labels: np.ndarray, min_length: int) -> np.ndarray:
    """:func:`_mark_runs` with the zero labels inside each qualifying run marked too: a trend's flat steps lie
    between its rising (or falling) ones, so every point from its first to its last belongs to it."""
    marked = _mark_runs(codes, labels, min_length)
    at = np.flatnonzero(labels != 0)
    if len(at) < 2:
        return marked
    label, code = labels[at], codes[at]
    inside = marked[at[:-1]] & marked[at[1:]] & (label[1:] == label[:-1]) & (code[1:] == code[:-1])
    fill = np.zeros(len(labels) + 1, dtype=np.int32)  # +1 after each bounding step, -1 at the next one
    np.add.at(fill, at[:-1][inside] + 1, 1)
    np.add.at(fill, at[1:][inside], -1)
    return marked | (np.cumsum(fill)[:-1] > 0)


def shift_points(values: Sequence[float], median: float) -> np.ndarray:
    """Points of one series in runs of >= 6 on one side of ``median`` (points on it neither break nor count)."""
    v = np.asarray(values, dtype=float)
    return _mark_runs(np.zeros(len(v), dtype=int), _sign(v - median), SHIFT_LENGTH)


def _runs_of(labels: np.ndarray, min_length: int) -> list[tuple[int, int, int, int]]:
    """(first position, last position, length, label) of each run of >= min_length equal non-zero labels, in
    order; zeros are skipped (neither counted nor breaks), as :func:`_mark_runs` marks them."""
    at = np.flatnonzero(labels != 0)
    if not len(at):
        return []
    label = labels[at]
    starts = np.flatnonzero(np.r_[True, label[1:] != label[:-1]])
    ends = np.r_[starts[1:], len(at)]
    return [(int(at[a]), int(at[b - 1]), int(b - a), int(label[a])) for a, b in zip(starts, ends, strict=True)
            if b - a >= min_length]


def shift_runs(values: Sequence[float], median: float) -> list[tuple[int, int, int, int]]:
    """Each shift of one series, in order: (first point, last point, points off the median, side: 1 above,
    -1 below). The points :func:`shift_points` marks, run by run: a run on one side and the next on the
    other are two shifts, and points on the median are not counted."""
    v = np.asarray(values, dtype=float)
    return _runs_of(_sign(v - median), SHIFT_LENGTH)


def trend_runs(values: Sequence[float]) -> list[tuple[int, int, int, int]]:
    """Each trend of one series, in order: (first point, last point, points, direction: 1 rising, -1 falling).
    A trend of k points has k - 1 steps; a point equal to the one before is not counted (nor breaks it)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return []
    return [(first, last + 1, steps + 1, direction)
            for first, last, steps, direction in _runs_of(_sign(np.diff(v)), TREND_LENGTH - 1)]


def signal_names(shift: np.ndarray, trend: np.ndarray) -> np.ndarray:
    """"", "shift", "trend" or "shift,trend" per point."""
    return np.select([shift & trend, shift, trend], ["shift,trend", "shift", "trend"], default="").astype(object)


def run_charts(series: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """:func:`run_chart` of every series of ``series`` (one per value of ``keys``; columns ``period`` and
    ``value``) at once: the rows in order of ``keys`` then period, with the series number (``series``, in
    key order), ``median`` and booleans ``shift`` and ``trend``. Rows with a missing key are left out
    (as ``groupby`` leaves them)."""
    keys = list(keys)
    codes = series.groupby(keys, sort=True, dropna=True).ngroup().to_numpy()
    kept = codes >= 0
    out = series[kept].assign(series=codes[kept]).sort_values(["series", "period"], kind="stable",
                                                                    ignore_index=True)
    medians, shift, trend = series_signals(out["series"].to_numpy(), out["value"].to_numpy(dtype=float))
    return out.assign(median=medians, shift=shift, trend=trend)


def run_chart(series: pd.DataFrame) -> pd.DataFrame:
    """Median and signals of a series with columns ``period`` and ``value`` (sorted by period).

    Returns the series with ``median`` and ``signal`` ("", "shift", "trend" or "shift,trend").
    """
    out = series.sort_values("period", kind="stable").reset_index(drop=True).copy()
    if out.empty:
        return out.assign(median=pd.Series(dtype=float), signal=pd.Series(dtype=str))
    medians, shift, trend = series_signals(np.zeros(len(out), dtype=int), out["value"].to_numpy(dtype=float))
    out["median"] = medians
    out["signal"] = signal_names(shift, trend)
    return out


def monthly_incident_series(incidents: pd.DataFrame, school_ids: Sequence[str] | None = None,
                            actions: Sequence[str] | None = None, label: str = "all") -> pd.DataFrame:
    """Incidents per calendar month, pooled over the given schools (``school_id`` = `label`).

    Months without incidents inside the covered range count 0. ``actions`` restricts to actions such as
    ``["ISS", "OSS"]`` (suspensions).
    """
    work = incidents
    if school_ids is not None:
        work = work[work["school_id"].isin(list(school_ids))]
    if actions is not None:
        work = work[work["action"].isin(list(actions))]
    return monthly_series(pd.to_datetime(work["incident_date"]).dt.to_period("M").value_counts(), label)


def monthly_series(counts: pd.Series, label: str = "all") -> pd.DataFrame:
    """The run chart's series from incidents per month (``counts`` indexed by monthly periods, e.g. summed
    by the database: :func:`analytics.data.aggregates_discipline.monthly_incident_counts`).

    Months without incidents inside the covered range count 0; July (no school) is left out.
    """
    if counts.empty:
        return pd.DataFrame(columns=["school_id", "period", "value"])
    index = pd.MultiIndex.from_arrays([np.full(len(counts), label, dtype=object), counts.index])
    return monthly_series_by_school(pd.Series(counts.to_numpy(), index=index))


def monthly_series_by_school(counts: pd.Series, min_months: int = 0) -> pd.DataFrame:
    """:func:`monthly_series` of every school at once (``counts`` indexed by school and monthly period, as
    ``monthly_incident_counts(..., by_school=True)`` gives them): each school's months from its first to
    its last filled in with 0 in one reindex, July left out; schools with fewer than `min_months` months
    are left out (too short for a run chart). Rows in order of school, then month."""
    if counts.empty:
        return pd.DataFrame(columns=["school_id", "period", "value"])
    counts = counts.sort_index()
    schools, months = counts.index.get_level_values(0), counts.index.get_level_values(1)
    codes, names = pd.factorize(schools, sort=True)
    ordinal = months.asi8  # months since January 1970
    low = np.full(len(names), np.iinfo(np.int64).max)
    high = np.full(len(names), np.iinfo(np.int64).min)
    np.minimum.at(low, codes, ordinal)
    np.maximum.at(high, codes, ordinal)
    size = high - low + 1
    start = np.r_[0, np.cumsum(size)[:-1]]
    school = np.repeat(np.arange(len(names)), size)
    month = low[school] + np.arange(size.sum()) - start[school]
    value = np.zeros(len(month), dtype=counts.dtype)
    value[start[codes] + ordinal - low[codes]] = counts.to_numpy()
    # Summer months with no school have no incidents by design; they are left out, not counted 0.
    keep = month % 12 != 6
    keep &= np.bincount(school[keep], minlength=len(names))[school] >= min_months
    return pd.DataFrame({"school_id": np.asarray(names, dtype=object)[school[keep]],
                         "period": month[keep].astype("datetime64[M]").astype("datetime64[ns]"),
                         "value": value[keep]})


def attach_cycles(chart: pd.DataFrame, cycles: pd.DataFrame) -> pd.DataFrame:
    """PDSA cycles overlapping the chart's period range, clipped to it (start, end, change_idea, status)."""
    if chart.empty or cycles.empty:
        return pd.DataFrame(columns=["start", "end", "change_idea", "status"])
    lo, hi = chart["period"].min(), chart["period"].max() + pd.offsets.MonthEnd(0)
    start = pd.to_datetime(cycles["start_date"])
    end = pd.to_datetime(cycles["end_date"]).fillna(hi)
    keep = (end >= lo) & (start <= hi)
    return pd.DataFrame({"start": start[keep].clip(lower=lo), "end": end[keep].clip(upper=hi),
                         "change_idea": cycles.loc[keep, "change_idea"], "status": cycles.loc[keep, "status"]})
