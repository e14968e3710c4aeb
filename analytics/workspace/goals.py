"""School Performance Plan goals: checks when saved, progress against the trajectory, roll-ups.

Progress rule (DESIGN §7 `goals`, §9), stated on the page:
- trajectory for a school year = the straight line from (baseline_year, baseline_value) to
  (target_year, target_value): baseline + (target - baseline) x (year - baseline_year) /
  (target_year - baseline_year); with interim targets the line runs through them (piecewise linear,
  so a year with an interim target uses it exactly); after the target year it stays at the target;
- **on_track**: the value reaches the trajectory in the improving direction (>= for higher-is-better
  metrics, <= for lower-is-better);
- **at_risk**: the value misses it but its Wilson 95% interval reaches it (the miss could be chance);
- **off_track**: the interval misses it too; a value-only metric (no counts, so no interval) is
  on or off track only;
- **not_measured**: no value yet for that year.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from analytics.stats.rates import add_rate_columns

PROGRESS = ("on_track", "at_risk", "off_track", "not_measured")
PROGRESS_LABELS = {"on_track": "On track", "at_risk": "At risk", "off_track": "Off track",
                   "not_measured": "Not yet measured"}
GOAL_COLUMNS = ["goal_id", "school_id", "school_name", "metric", "student_group", "school_year", "value", "ci_low",
                "ci_high", "trajectory", "progress"]
COUNTED_STATUSES = ("active", "met", "not_met")  # draft and retired goals stay out of roll-ups
_INTERIM = re.compile(r"^\s*(\d{4})\s*[:=]\s*(-?\d+(?:\.\d+)?)\s*$")
_EPS = 1e-9


def parse_interim(text: object) -> dict[int, float]:
    """`"2025: 48; 2026: 52.5"` -> {2025: 48.0, 2026: 52.5}; raises ValueError naming the bad part."""
    if text is None or (isinstance(text, float) and np.isnan(text)) or not str(text).strip():
        return {}
    out: dict[int, float] = {}
    for part in re.split(r"[;,\n]", str(text)):
        if not part.strip():
            continue
        match = _INTERIM.match(part)
        if not match:
            raise ValueError(f"interim target {part.strip()!r} is not `YEAR: VALUE` (e.g. `2025: 48`)")
        out[int(match.group(1))] = float(match.group(2))
    return dict(sorted(out.items()))


def format_interim(targets: Mapping[int, float]) -> str:
    return "; ".join(f"{y}: {v:g}" for y, v in sorted(targets.items()))


def trajectory(goal: Mapping, year: int) -> float:
    """The goal's expected value in `year` (the rule in the module docstring)."""
    points = {int(goal["baseline_year"]): float(goal["baseline_value"])}
    points.update(parse_interim(goal.get("interim_targets")))
    points[int(goal["target_year"])] = float(goal["target_value"])
    years = np.array(sorted(points), dtype=float)
    values = np.array([points[int(y)] for y in years])
    return float(np.interp(year, years, values))  # flat before the baseline and after the target


def classify(value: float, ci_low: float, ci_high: float, expected: float, higher_is_better: bool) -> str:
    """on_track / at_risk / off_track / not_measured for one value against the trajectory."""
    if value is None or not np.isfinite(value):
        return "not_measured"
    if higher_is_better:
        reached, interval_reaches = value >= expected - _EPS, np.isfinite(ci_high) and ci_high >= expected - _EPS
    else:
        reached, interval_reaches = value <= expected + _EPS, np.isfinite(ci_low) and ci_low <= expected + _EPS
    if reached:
        return "on_track"
    return "at_risk" if interval_reaches else "off_track"


def check_goal(goal: Mapping, *, higher_is_better: bool | None, unit: str = "%", known_metric: bool = True,
               data_baseline: float | None = None) -> list[tuple[str, str]]:
    """Problems with a goal as (field, message); empty when it may be saved (DESIGN §9 checks).

    `data_baseline` is the metric's value for the school, group and baseline year in the data, if any:
    a goal needs a baseline, from the data or given.
    """
    problems: list[tuple[str, str]] = []
    if not known_metric:
        problems.append(("metric", f"metric {goal.get('metric')!r} is not in the catalog"))
    baseline = _number(goal.get("baseline_value"))
    if baseline is None:
        baseline = data_baseline
    if baseline is None:
        problems.append(("baseline_value", f"no baseline: the data has no value for {goal.get('baseline_year')} "
                                           "and none was given"))
    target = _number(goal.get("target_value"))
    if target is None:
        problems.append(("target_value", "a target value is required"))
    by, ty = _number(goal.get("baseline_year")), _number(goal.get("target_year"))
    if by is None or ty is None or ty <= by:
        problems.append(("target_year", "the target year must come after the baseline year"))
    if unit == "%":
        for name, v in (("baseline_value", baseline), ("target_value", target)):
            if v is not None and not 0 <= v <= 100:
                problems.append((name, f"{v:g} is outside 0-100 (a percentage)"))
    if baseline is not None and target is not None and higher_is_better is not None:
        if higher_is_better and target <= baseline:
            problems.append(("target_value", f"target {target:g} is not above the baseline {baseline:g}: "
                                             "higher is better for this metric"))
        if not higher_is_better and target >= baseline:
            problems.append(("target_value", f"target {target:g} is not below the baseline {baseline:g}: "
                                             "lower is better for this metric"))
    try:
        interim = parse_interim(goal.get("interim_targets"))
    except ValueError as exc:
        problems.append(("interim_targets", str(exc)))
        interim = {}
    if by is not None and ty is not None:
        outside = [y for y in interim if not by < y < ty]
        if outside:
            problems.append(("interim_targets", f"interim years {outside} must lie between {by:g} and {ty:g}"))
    return problems


def _number(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def goal_progress(goals: pd.DataFrame, metric_rows: pd.DataFrame, directions: Mapping[str, bool],
                  school_names: Mapping[str, str] | None = None, last_year: int | None = None) -> pd.DataFrame:
    """One row per goal and school year after its baseline (DESIGN §7 `goals` columns).

    Parameters
    ----------
    goals : rows of `school_goals`.
    metric_rows : metric rows (numerator, denominator, value) covering the goals' schools, metrics, groups.
    directions : metric -> higher is better.
    last_year : the latest school year on file; years up to it (and to the target year) without a value
        are `not_measured`. A goal with no year after its baseline yet gets one `not_measured` row.
    """
    if goals.empty:
        return pd.DataFrame(columns=GOAL_COLUMNS)
    rated = add_rate_columns(metric_rows) if len(metric_rows) else metric_rows.assign(ci_low=[], ci_high=[])
    keys = ["school_id", "metric", "student_group", "school_year"]
    lookup = rated.set_index(keys)[["value", "ci_low", "ci_high"]].sort_index() if len(rated) else None
    names = school_names or {}
    rows = []
    for goal in goals.to_dict("records"):
        rows += _goal_rows(goal, lookup, directions.get(goal["metric"], True), names, last_year)
    out = pd.DataFrame(rows, columns=GOAL_COLUMNS)
    return out.sort_values(["goal_id", "school_year"], ignore_index=True)


def _goal_rows(goal: dict, lookup: pd.DataFrame | None, higher: bool, names: Mapping[str, str],
               last_year: int | None) -> list[dict]:
    base, target = int(goal["baseline_year"]), int(goal["target_year"])
    measured: dict[int, tuple[float, float, float]] = {}
    if lookup is not None:
        try:
            found = lookup.loc[(goal["school_id"], goal["metric"], goal["student_group"])]
        except KeyError:
            found = None
        if found is not None:
            for year, r in found.iterrows():
                if int(year) > base and pd.notna(r["value"]):
                    measured[int(year)] = (float(r["value"]), float(r["ci_low"]), float(r["ci_high"]))
    horizon = min(target, last_year) if last_year is not None else base
    years = sorted(set(measured) | set(range(base + 1, horizon + 1))) or [base + 1]
    rows = []
    for year in years:
        value, lo, hi = measured.get(year, (np.nan, np.nan, np.nan))
        expected = trajectory(goal, year)
        rows.append({"goal_id": goal["goal_id"], "school_id": goal["school_id"],
                     "school_name": names.get(goal["school_id"], ""), "metric": goal["metric"],
                     "student_group": goal["student_group"], "school_year": year, "value": value, "ci_low": lo,
                     "ci_high": hi, "trajectory": round(expected, 4),
                     "progress": classify(value, lo, hi, expected, higher)})
    return rows


def latest_progress(progress: pd.DataFrame) -> pd.DataFrame:
    """Each goal's standing now: its latest measured year, else `not_measured`."""
    if progress.empty:
        return progress
    measured = progress[progress["progress"] != "not_measured"]
    latest = measured.sort_values("school_year").groupby("goal_id").tail(1)
    missing = progress[~progress["goal_id"].isin(latest["goal_id"])].groupby("goal_id").head(1)
    return pd.concat([latest, missing]).sort_values("goal_id", ignore_index=True)


def rollup(goals: pd.DataFrame, progress: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """Per cluster: goals counted (active, met, not met), and how many are on track, at risk, off track,
    not yet measured. Draft and retired goals are left out."""
    counted = goals[goals["status"].isin(COUNTED_STATUSES)]
    now = latest_progress(progress)
    now = now[now["goal_id"].isin(counted["goal_id"])] if len(now) else now
    merged = counted[["goal_id", "school_id"]].merge(now[["goal_id", "progress"]] if len(now) else
                                                     pd.DataFrame(columns=["goal_id", "progress"]),
                                                     on="goal_id", how="left")
    merged["progress"] = merged["progress"].fillna("not_measured")
    merged = merged.merge(schools[["school_id", "cluster"]], on="school_id", how="left")
    table = pd.crosstab(merged["cluster"], merged["progress"]).reindex(columns=list(PROGRESS), fill_value=0)
    table.insert(0, "goals", table.sum(axis=1))
    return table.reset_index()


def rollup_sentence(row: Mapping) -> str:
    """"12 of 40 goals on track (5 at risk, 20 off track, 3 not yet measured)"."""
    return (f"{row['on_track']} of {row['goals']} goals on track ({row['at_risk']} at risk, {row['off_track']} off "
            f"track, {row['not_measured']} not yet measured)")
