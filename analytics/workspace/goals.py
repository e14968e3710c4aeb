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


def _points(baseline_year, baseline_value, target_year, target_value, interim) -> dict[int, float]:
    """A goal's trajectory points by year: baseline, interim targets, target (a later one wins a year)."""
    points = {int(baseline_year): float(baseline_value)}
    points.update(parse_interim(interim))
    points[int(target_year)] = float(target_value)
    return points


def trajectory(goal: Mapping, year: int) -> float:
    """The goal's expected value in `year` (the rule in the module docstring)."""
    points = _points(goal["baseline_year"], goal["baseline_value"], goal["target_year"], goal["target_value"],
                     goal.get("interim_targets"))
    years = np.array(sorted(points), dtype=float)
    values = np.array([points[int(y)] for y in years])
    return float(np.interp(year, years, values))  # flat before the baseline and after the target


def classify(value: float, ci_low: float, ci_high: float, expected: float, higher_is_better: bool) -> str:
    """on_track / at_risk / off_track / not_measured for one value against the trajectory."""
    if value is None:
        return "not_measured"
    return str(classify_arrays(*(np.array([x], dtype=float) for x in (value, ci_low, ci_high, expected)),
                               np.array([higher_is_better]))[0])


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


def goal_title(metric_label: str, group_label: str, target_value: object, target_year: object,
               unit: str = "%") -> str:
    """A goal in the words people name it by, its code left out: metric, student group and target, e.g.
    `Suspension rate, Black or African American: 1.8% by 2026` (no target yet: metric and group)."""
    aim = f"{metric_label}, {group_label}"
    target = _number(target_value)
    if target is None or _number(target_year) is None:
        return aim
    return f"{aim}: {target:.1f}{'%' if unit == '%' else f' {unit}' if unit else ''} by {int(float(target_year))}"


def _number(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def goal_progress(goals: pd.DataFrame, metric_rows: pd.DataFrame, directions: Mapping[str, bool],
                  school_names: Mapping[str, str] | None = None, last_year: int | None = None) -> pd.DataFrame:
    """One row per goal and school year after its baseline (DESIGN §7 `goals` columns), every goal in one
    vectorised pass (a district holds thousands of goals; the plans and what-changed pages slice it).

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
    keys = ["school_id", "metric", "student_group"]
    frame = goals.reset_index(drop=True)
    base = frame["baseline_year"].astype(int).to_numpy()
    target = frame["target_year"].astype(int).to_numpy()
    years = _goal_years(frame[["goal_id", *keys]].assign(_goal=np.arange(len(frame)), _base=base),
                        _measured(metric_rows, frame[keys].drop_duplicates()), base, target, last_year)
    goal = years["_goal"].to_numpy()
    expected = _trajectories(frame, goal, years["school_year"].to_numpy())
    higher = frame["metric"].map(lambda m: bool(directions.get(m, True))).to_numpy()[goal]
    names = school_names or {}
    out = pd.DataFrame({
        "goal_id": frame["goal_id"].to_numpy()[goal], "school_id": frame["school_id"].to_numpy()[goal],
        "school_name": frame["school_id"].map(lambda s: names.get(s, "")).to_numpy()[goal],
        "metric": frame["metric"].to_numpy()[goal], "student_group": frame["student_group"].to_numpy()[goal],
        "school_year": years["school_year"].to_numpy(dtype="int64"), "value": years["value"].to_numpy(float),
        "ci_low": years["ci_low"].to_numpy(float), "ci_high": years["ci_high"].to_numpy(float),
        "trajectory": np.round(expected, 4),
        "progress": classify_arrays(years["value"].to_numpy(float), years["ci_low"].to_numpy(float),
                                    years["ci_high"].to_numpy(float), expected, higher),
    }, columns=GOAL_COLUMNS)
    return out.sort_values(["goal_id", "school_year"], ignore_index=True)


def _measured(metric_rows: pd.DataFrame, wanted: pd.DataFrame) -> pd.DataFrame:
    """The rows of the `wanted` school, metric and group triples that have a value, with their Wilson
    intervals (one row per triple and year: the last one wins)."""
    keys = list(wanted.columns)
    if metric_rows.empty:
        return pd.DataFrame(columns=[*keys, "school_year", "value", "ci_low", "ci_high"])
    rated = add_rate_columns(metric_rows.merge(wanted, on=keys))
    rated = rated[rated["value"].notna()][[*keys, "school_year", "value", "ci_low", "ci_high"]]
    return rated.drop_duplicates([*keys, "school_year"], keep="last")


def _goal_years(goals: pd.DataFrame, measured: pd.DataFrame, base: np.ndarray, target: np.ndarray,
                last_year: int | None) -> pd.DataFrame:
    """Each goal's years (`_goal` = its position): the measured years after its baseline, and every year
    from the one after its baseline to its target or the latest year on file (the earlier); at least one."""
    found = goals.merge(measured, on=["school_id", "metric", "student_group"])
    found = found[found["school_year"].astype(int) > found["_base"]]
    found = found[["_goal", "school_year", "value", "ci_low", "ci_high"]].astype({"school_year": "int64"})
    horizon = np.minimum(target, last_year) if last_year is not None else base
    span = np.maximum(horizon - base, 0)
    none = ~np.isin(np.arange(len(goals)), found["_goal"].to_numpy())
    span[none & (span == 0)] = 1  # a goal with no year yet still gets its first one
    goal = np.repeat(np.arange(len(goals)), span)
    first = np.repeat(np.cumsum(span) - span, span)
    expected = pd.DataFrame({"_goal": goal, "school_year": base[goal] + 1 + np.arange(len(goal)) - first})
    both = pd.concat([found, expected[~_pairs(expected).isin(_pairs(found))]], ignore_index=True)
    return both.sort_values(["_goal", "school_year"], ignore_index=True)


def _pairs(frame: pd.DataFrame) -> pd.Index:
    return pd.MultiIndex.from_arrays([frame["_goal"].to_numpy(), frame["school_year"].to_numpy(dtype="int64")])


def _trajectories(goals: pd.DataFrame, goal: np.ndarray, year: np.ndarray) -> np.ndarray:
    """:func:`trajectory` of each (goal position, year) at once, with ``np.interp``'s arithmetic: the goal's
    points (baseline, interim targets, target) in year order; before the first or from the last, that
    point's value; on a point, its value; between two, slope x (year - left year) + left value."""
    owner, xp, fp = [], [], []
    for i, fields in enumerate(zip(goals["baseline_year"], goals["baseline_value"], goals["target_year"],
                                   goals["target_value"], goals.get("interim_targets", [None] * len(goals)),
                                   strict=True)):
        points = _points(*fields)
        for x in sorted(points):
            owner.append(i), xp.append(x), fp.append(points[x])
    owner_a, x_a, f_a = np.array(owner), np.array(xp, dtype=float), np.array(fp, dtype=float)
    first = np.searchsorted(owner_a, goal, side="left")
    last = np.searchsorted(owner_a, goal, side="right") - 1
    span = float(max(np.abs(x_a).max(initial=0.0), np.abs(year).max(initial=0)) * 2 + 1)  # keys never overlap
    j = np.searchsorted(owner_a * span + x_a, goal * span + year, side="right") - 1
    inner = (j >= first) & (j < last)
    left, right = np.where(inner, j, 0), np.where(inner, j + 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (f_a[right] - f_a[left]) / (x_a[right] - x_a[left])
        between = np.where(x_a[left] == year, f_a[left], slope * (year - x_a[left]) + f_a[left])
    return np.where(j < first, f_a[first], np.where(j >= last, f_a[last], between))


def classify_arrays(value: np.ndarray, ci_low: np.ndarray, ci_high: np.ndarray, expected: np.ndarray,
                    higher_is_better: np.ndarray) -> np.ndarray:
    """:func:`classify` of many values at once."""
    with np.errstate(invalid="ignore"):
        reached = np.where(higher_is_better, value >= expected - _EPS, value <= expected + _EPS)
        interval = np.where(higher_is_better, np.isfinite(ci_high) & (ci_high >= expected - _EPS),
                            np.isfinite(ci_low) & (ci_low <= expected + _EPS))
    out = np.where(reached, "on_track", np.where(interval, "at_risk", "off_track")).astype(object)
    out[~np.isfinite(value)] = "not_measured"
    return out


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
