"""PDSA cycles: ramps of linked cycles and the run chart of a cycle's (or ramp's) custom measure.

A ramp is the chain of cycles linked through `previous_cycle_id` (each cycle builds on the one
before: Langley et al., *The Improvement Guide*, 2009). The run chart uses the rules of
`analytics.stats.run_charts` (median, shift of 6, trend of 5) over the measures of every cycle in
the ramp, with each cycle's span shaded.
"""

from __future__ import annotations

import pandas as pd

from analytics.stats.run_charts import run_chart, shift_runs, trend_runs

DECISION_LABELS = {"adopt": "Adopt", "adapt": "Adapt", "abandon": "Abandon"}


def ramp(cycles: pd.DataFrame, cycle_id: str) -> list[str]:
    """The cycle ids of the ramp holding `cycle_id`, first to last (cycles linked by previous_cycle_id).

    Follows links back to the first cycle and forward through every cycle that builds on one in the
    chain; a loop in the links is cut rather than followed forever.
    """
    if cycle_id not in set(cycles["cycle_id"]):
        return []
    previous = dict(zip(cycles["cycle_id"], cycles["previous_cycle_id"], strict=True))
    first, seen = cycle_id, {cycle_id}
    while isinstance(previous.get(first), str) and previous[first] in previous and previous[first] not in seen:
        first = previous[first]
        seen.add(first)
    order = [first]
    followers: dict[str, list[str]] = {}
    starts = dict(zip(cycles["cycle_id"], pd.to_datetime(cycles["start_date"]), strict=True))
    for cid, prev in previous.items():
        if isinstance(prev, str):
            followers.setdefault(prev, []).append(cid)
    frontier = [first]
    while frontier:
        nxt = sorted((c for f in frontier for c in followers.get(f, []) if c not in order), key=lambda c: starts[c])
        order += nxt
        frontier = nxt
    return order


def cycle_title(change_idea: object, step: int | None = None) -> str:
    """A cycle's link text: its change idea, with its place in the ramp when it has one (`2. Text and call in
    the family's home language`); its id stays in the link's URL."""
    idea = change_idea.strip() if isinstance(change_idea, str) and change_idea.strip() else "Untitled cycle"
    return f"{step}. {idea}" if step is not None else idea


def ramp_run_chart(cycles: pd.DataFrame, measures: pd.DataFrame, cycle_ids: list[str],
                   ramp_order: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, spans) for the run chart of the given cycles' custom measures.

    points: period (date), value, cycle_id, note, median, signal ("", "shift", "trend", "shift,trend").
    spans: cycle_id, change_idea, start, end (end = last measure date when the cycle is still open) and label,
    "Cycle 2" for the ramp's second cycle (`ramp_order`: the ramp's ids first to last, default `cycle_ids`), as
    the page numbers the ramp's links.
    """
    these = measures[measures["cycle_id"].isin(cycle_ids)].copy()
    spans = cycles[cycles["cycle_id"].isin(cycle_ids)][["cycle_id", "change_idea", "start_date", "end_date"]]
    spans = spans.rename(columns={"start_date": "start", "end_date": "end"}).copy()
    step = {cycle: n for n, cycle in enumerate(ramp_order or cycle_ids, start=1)}
    spans["label"] = [f"Cycle {step[c]}" if c in step else c for c in spans["cycle_id"]]
    if these.empty:
        return pd.DataFrame(columns=["period", "value", "cycle_id", "note", "median", "signal"]), spans
    these["period"] = pd.to_datetime(these["date"])
    # One point per date: a date measured in two cycles of a ramp keeps the later cycle's value.
    these = these.sort_values(["period", "cycle_id"]).drop_duplicates("period", keep="last")
    chart = run_chart(these[["period", "value"]])
    extra = these.set_index("period")[["cycle_id", "note"]]
    chart = chart.join(extra, on="period")
    last = chart["period"].max()
    spans["end"] = pd.to_datetime(spans["end"]).fillna(last)
    spans["start"] = pd.to_datetime(spans["start"])
    return chart, spans


def signal_summary(points: pd.DataFrame) -> str:
    """Plain words for the chart's signals: each shift and trend the run chart rules found, or that none were.

    The rules are :mod:`analytics.stats.run_charts`' (Perla, Provost & Murray 2011): a shift is six or more
    points in a row on one side of the median (points on it neither count nor break the run), a trend five or
    more points in a row rising or falling (a repeated value neither counts nor breaks it). Each run is told
    apart with its side or direction, never summed: 6 points below the median and then 8 above it are two
    shifts, not a run of 14.
    """
    if points.empty:
        return "No measurements yet."
    n = len(points)
    median = float(points["median"].iloc[0])
    shifts = shift_runs(points["value"], median)
    trends = trend_runs(points["value"])
    if not shifts and not trends:
        extra = " (a run chart needs about 10 or more points to show a signal)" if n < 10 else ""
        return f"No shift or trend among {n} points: the variation looks like the usual ups and downs{extra}."
    parts = []
    if shifts:
        sides = [f"{length} points in a row {SIDES[side]} the median {median:g}" if i == 0
                 else f"then {length} {SIDES[side]} it" for i, (_, _, length, side) in enumerate(shifts)]
        parts.append(f"{_how_many(len(shifts), 'shift')} ({', '.join(sides)})")
    if trends:
        ways = [f"{length} points in a row {DIRECTIONS[way]}" if i == 0 else f"then {length} {DIRECTIONS[way]}"
                for i, (_, _, length, way) in enumerate(trends)]
        parts.append(f"{_how_many(len(trends), 'trend')} ({', '.join(ways)})")
    return "Signal of a non-random change: " + " and ".join(parts) + "."


SIDES = {1: "above", -1: "below"}
DIRECTIONS = {1: "rising", -1: "falling"}
_NUMBER_WORDS = {1: "a", 2: "two", 3: "three", 4: "four"}


def _how_many(count: int, noun: str) -> str:
    return f"{_NUMBER_WORDS.get(count, count)} {noun}{'' if count == 1 else 's'}"
