"""Run charts for improvement cycles: median, shift and trend signals, PDSA cycles (DESIGN §3).

Rules follow Perla, Provost & Murray, "The run chart: a simple analytical tool for learning from
variation in healthcare processes" (BMJ Quality & Safety, 2011):
- shift: six or more consecutive points all above or all below the median; points on the median
  neither count toward nor break a run;
- trend: five or more consecutive points all going up or all going down; a point equal to the one
  before it neither counts toward nor breaks the trend.
Every point in a qualifying run is marked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SHIFT_LENGTH = 6
TREND_LENGTH = 5


def _mark_runs(labels: Sequence[int], min_length: int) -> np.ndarray:
    """Mark positions in runs of >= min_length equal non-zero labels; zeros are skipped (not breaks)."""
    marked = np.zeros(len(labels), dtype=bool)
    run: list[int] = []
    current = 0
    for i, label in enumerate(labels):
        if label == 0:
            continue
        if label == current:
            run.append(i)
        else:
            if len(run) >= min_length:
                marked[run] = True
            run, current = [i], label
    if len(run) >= min_length:
        marked[run] = True
    return marked


def shift_points(values: Sequence[float], median: float) -> np.ndarray:
    side = np.sign(np.asarray(values, dtype=float) - median).astype(int)
    return _mark_runs(side, SHIFT_LENGTH)


def trend_points(values: Sequence[float]) -> np.ndarray:
    """Points in runs of >= 5 steadily rising or falling points (ties skipped).

    A trend of k points has k - 1 steps; the first point of the trend is marked with its steps.
    """
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return np.zeros(len(v), dtype=bool)
    steps = np.sign(np.diff(v)).astype(int)  # step i goes from point i to point i + 1
    marked = np.zeros(len(v), dtype=bool)
    step_marks = _mark_runs(steps, TREND_LENGTH - 1)
    for i in np.flatnonzero(step_marks):
        marked[i] = marked[i + 1] = True
    # A tie inside a marked trend belongs to it too (it neither counts nor breaks).
    return marked


def run_chart(series: pd.DataFrame) -> pd.DataFrame:
    """Median and signals of a series with columns ``period`` and ``value`` (sorted by period).

    Returns the series with ``median`` and ``signal`` ("", "shift", "trend" or "shift,trend").
    """
    out = series.sort_values("period").reset_index(drop=True).copy()
    if out.empty:
        return out.assign(median=pd.Series(dtype=float), signal=pd.Series(dtype=str))
    median = float(out["value"].median())
    shift = shift_points(out["value"], median)
    trend = trend_points(out["value"])
    out["median"] = median
    out["signal"] = [",".join(name for name, on in (("shift", s), ("trend", t)) if on) for s, t in zip(shift, trend,
                                                                                                        strict=True)]
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
    by the database: :func:`analytics.data.aggregates.monthly_incident_counts`).

    Months without incidents inside the covered range count 0; July (no school) is left out.
    """
    if counts.empty:
        return pd.DataFrame(columns=["school_id", "period", "value"])
    counts = counts.sort_index()
    full = pd.period_range(counts.index.min(), counts.index.max(), freq="M")
    counts = counts.reindex(full, fill_value=0)
    # Summer months with no school have no incidents by design; they are left out, not counted 0.
    counts = counts[~counts.index.month.isin([7])]
    return pd.DataFrame({"school_id": label, "period": counts.index.to_timestamp(), "value": counts.to_numpy()})


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
