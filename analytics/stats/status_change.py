"""Status and change: the 5 x 5 colour grid of the California School Dashboard (DESIGN §3).

Status is this year's value placed in five levels by the metric's cut points; change is this
year's value minus last year's, placed in five levels. Both are rounded to one decimal (half away
from zero, on the exact decimal) before they are classified, as the California Dashboard does. For a lower-is-better metric (suspensions)
the colours are DESIGN's table, rows from Very High to Very Low status and columns from Increased
significantly to Declined significantly:

    Very High  R R R O Y
    High       R O O Y Y
    Medium     O O Y G G
    Low        - Y G G B
    Very Low   - G B B B

A higher-is-better metric uses the same table mirrored (Very High status and a significant increase
are Blue). Groups with fewer than ``settings.status_min_n`` (30) students get no colour, and so do
the "-" cells.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from analytics.config import DEFAULT_SETTINGS, Settings, StatusCuts

STATUS_LEVELS = ("Very Low", "Low", "Medium", "High", "Very High")
CHANGE_LEVELS = ("Declined significantly", "Declined", "Maintained", "Increased", "Increased significantly")
COLOR_NAMES = {"R": "Red", "O": "Orange", "Y": "Yellow", "G": "Green", "B": "Blue", "-": ""}
# GRID[status index from Very High][change index from Increased significantly], lower is better.
_GRID = ("RRROY", "ROOYY", "OOYGG", "-YGGB", "-GBBB")
COLUMNS = ["school_id", "student_group", "metric", "status", "change", "status_level", "change_level", "color"]


def round_half_away(values: pd.Series | np.ndarray | float, decimals: int = 1) -> pd.Series | np.ndarray | float:
    """Round half away from zero on the exact decimal: 0.30000000000000004 and 0.29999999999999993 are
    0.3, and 0.25 is 0.3 (Python's round() would give 0.2). Binary noise is removed first by rounding
    the scaled value to 8 decimals."""
    scale = 10.0 ** decimals
    scaled = np.round(np.abs(values) * scale, 8)
    return np.sign(values) * np.floor(scaled + 0.5) / scale + 0.0  # + 0.0 turns -0.0 into 0.0


@lru_cache(maxsize=1024)
def largest_rounding_to(bound: float, strict: bool = False) -> float:
    """The largest double v with ``round_half_away(v) <= bound`` (``< bound`` when ``strict``).

    :func:`round_half_away` never decreases as v grows, so "the rounded value is at most the bound" is
    "v is at most this number": a database compares the raw value with it, to the last bit what rounding
    first and comparing then gives (found by bisection over the doubles in order, 64 steps). Kept for each
    cut point: a statement that colours every metric asks for a few hundred (a quarter of a second's bisection)."""
    def rounds_in(v: float) -> bool:
        r = float(round_half_away(np.float64(v)))
        return r < bound if strict else r <= bound

    lo, hi = _ordered(bound - 1.0), _ordered(bound + 1.0)  # rounds in, and does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if rounds_in(_double(mid)) else (lo, mid)
    return _double(lo)


def _ordered(x: float) -> int:
    """A double's place among all doubles (an integer that orders them as their values)."""
    bits = int(np.float64(x).view(np.int64))
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def _double(place: int) -> float:
    bits = place if place >= 0 else -place | -0x8000000000000000
    return float(np.int64(bits).view(np.float64))


def status_level(value: float, cuts: StatusCuts) -> str:
    """Very Low <= c0 < Low <= c1 < Medium <= c2 < High <= c3 < Very High."""
    if not np.isfinite(value):
        return ""
    for bound, name in zip(cuts.status, STATUS_LEVELS, strict=False):
        if value <= bound:
            return name
    return STATUS_LEVELS[-1]


def change_level(change: float, cuts: StatusCuts) -> str:
    """Declined significantly <= c0 < Declined <= c1 < Maintained < c2 <= Increased <= c3 < Increased significantly."""
    if not np.isfinite(change):
        return ""
    c0, c1, c2, c3 = cuts.change
    if change > c3:
        return "Increased significantly"
    if change >= c2:
        return "Increased"
    if change > c1:
        return "Maintained"
    if change > c0:
        return "Declined"
    return "Declined significantly"


def grid_color(status: str, change: str, higher_is_better: bool) -> str:
    """The colour name of a (status, change) cell; "" for the "-" cells or unknown levels."""
    if status not in STATUS_LEVELS or change not in CHANGE_LEVELS:
        return ""
    row = 4 - STATUS_LEVELS.index(status)  # 0 = Very High
    col = 4 - CHANGE_LEVELS.index(change)  # 0 = Increased significantly
    if higher_is_better:
        row, col = 4 - row, 4 - col
    return COLOR_NAMES[_GRID[row][col]]


# Every cell's colour by direction, with a last row and column of "" for a missing level (index -1).
_COLOR_TABLE = {way: np.array([[grid_color(s, c, way) for c in (*CHANGE_LEVELS, "")] for s in (*STATUS_LEVELS, "")],
                              dtype=object) for way in (False, True)}


def status_change(current: pd.DataFrame, previous: pd.DataFrame, level_of: dict[str, str],
                  higher_is_better: dict[str, bool], settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """Status, change and colour for each school x group x metric of `current`.

    Parameters
    ----------
    current, previous : metrics rows of this year and last year (value and denominator used).
    level_of : school_id -> school level (ES, MS, HS, OTHER), which selects the cut points.
    higher_is_better : metric -> direction.
    """
    keys = ["school_id", "student_group", "metric"]
    prev = previous[keys + ["value"]].rename(columns={"value": "previous"})
    out = current[keys + ["value", "denominator"]].merge(prev, on=keys, how="left")
    # Rounded to one decimal before classifying (as the California Dashboard does): 2.2 -> 2.5 is +0.3.
    out["status"] = round_half_away(out["value"])
    out["change"] = round_half_away(out["value"] - out["previous"])
    out["_level"] = out["school_id"].map(level_of).fillna("ES")
    status_levels, change_levels, colors = (np.full(len(out), "", dtype=object) for _ in range(3))
    # Levels are computed per (metric, school level) block, each with its own cut points.
    for (metric, level), at in out.groupby(["metric", "_level"]).indices.items():
        cuts = settings.cuts_for(metric, level)
        if cuts is None:
            continue
        block = out.iloc[at]
        s = _levels(block["status"], cuts.status, STATUS_LEVELS, inclusive=True)
        c0, c1, c2, c3 = cuts.change
        change = block["change"]
        c = np.select([change > c3, change >= c2, change > c1, change > c0, change.notna()], list(CHANGE_LEVELS[::-1]),
                      default="")
        status_levels[at], change_levels[at] = s, c
        big_enough = block["denominator"].fillna(0).to_numpy() >= settings.status_min_n
        colors[at] = np.where(big_enough, grid_colors(s, c, higher_is_better.get(metric, True)), "")
    out["status_level"], out["change_level"], out["color"] = status_levels, change_levels, colors
    return out[COLUMNS + ["denominator"]]


def grid_colors(status: np.ndarray, change: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """:func:`grid_color` of many cells at once, looked up in the grid :func:`grid_color` spells out."""
    rows = pd.Index(STATUS_LEVELS).get_indexer(status)  # -1: not a level, the table's last row
    cols = pd.Index(CHANGE_LEVELS).get_indexer(change)
    return _COLOR_TABLE[higher_is_better][rows, cols]


def _levels(values: pd.Series, bounds: tuple, names: tuple, inclusive: bool) -> np.ndarray:
    """Vectorised :func:`status_level`: the first level whose upper bound the value does not exceed."""
    conditions = [values <= b for b in bounds] + [values.notna()]
    return np.select(conditions, list(names), default="")
