"""What a school's page (`/school`) reads from the school's rows and profile: the findings' lines, the profile
as a table and the trend rows of a metric by group.

Pure functions of one school's rows, or of a block of schools' at once where every step is row-wise or
within a school (the profile table): the page calls them for the view it shows, and the preparer for every
school's opening view after an import (DESIGN §8: a first view within 5x its warm rerun), so both give the
same lines, tables and charts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from analytics.data.catalog import STUDENT_GROUPS, group_label
from analytics.outputs.findings import ALPHA, MIN_N, gap_finding, nothing_found_finding, rate_change_finding
from analytics.stats.gaps import FDR_Q, bh_q_values
from analytics.stats.rates import two_proportion_tests

# Released exactly? (units, years, metrics, groups) -> one bool per cell; staff see every cell.
Exact = Callable[[list, list, list, list], np.ndarray]
MIN_TESTED_N = 10  # a change or gap is tested from 10 students in each year or group
TREND_GROUPS = ("ALL", "BL", "HI", "FARMS", "SWD")  # the trend's groups when the URL carries none


def every_cell(units: list, years: list, metrics: list, groups: list) -> np.ndarray:
    """Every cell released (staff views)."""
    return np.ones(len(units), dtype=bool)


def trend_groups(present: set[str], carried: str | None = None) -> list[str]:
    """The groups the trend opens with: all students, the group carried from the district or cluster view,
    then the groups most often compared, those the school has rows for."""
    return list(dict.fromkeys(g for g in (TREND_GROUPS[0], carried, *TREND_GROUPS[1:]) if g in present))


def years_and_groups(rows: pd.DataFrame) -> tuple[list[int], set[str]]:
    """The school years and student groups the rows are of."""
    return sorted(rows["school_year"].unique().tolist()), set(rows["student_group"])


def school_findings(rows: pd.DataFrame, profile: pd.DataFrame, school_id: str, year: int, years: Sequence[int],
                    label: Callable[[str], str], higher: Callable[[str], bool],
                    exact: Exact = every_cell) -> list[str]:
    """The findings' lines (markdown bullets) of a school's year: each metric's significant change since the
    school's previous year (:func:`~analytics.outputs.findings.rate_change_finding`, ALL rows, counts of both
    years released exactly), then the three largest gaps with q < ``FDR_Q`` among the school's group x metric
    gaps (one Benjamini-Hochberg family, :func:`~analytics.stats.gaps.bh_q_values`); what was tested when
    nothing is significant (:func:`~analytics.outputs.findings.nothing_found_finding`)."""
    previous = [y for y in years if y < year]
    lines: list[str] = []
    n_changes_tested = 0
    if previous:
        before = previous[-1]
        ends = rows[(rows["student_group"] == "ALL") & rows["school_year"].isin([year, before])]
        counts_of: dict[tuple[str, int], tuple[float, float]] = {}  # (metric, year) -> its first ALL row's counts
        for key in zip(ends["metric"], ends["school_year"], ends["numerator"], ends["denominator"], strict=True):
            counts_of.setdefault((key[0], int(key[1])), (key[2], key[3]))
        both = [m for m in profile["metric"].unique() if (m, year) in counts_of and (m, before) in counts_of]
        # A shared view states a change only when both years' rates are released exactly (privacy rules).
        released = exact([school_id] * 2 * len(both), [before, year] * len(both),
                          [m for m in both for _ in range(2)], ["ALL"] * 2 * len(both)).reshape(-1, 2).all(axis=1)
        shown = [m for m, ok in zip(both, released, strict=True) if ok]
        counts = np.array([[*counts_of[(m, before)], *counts_of[(m, year)]] for m in shown], dtype="float64")
        counts = counts.reshape(-1, 4)  # last year's numerator and denominator, this year's
        smaller = np.fmin(counts[:, 1], counts[:, 3])
        finite = np.isfinite(counts).all(axis=1)
        n_changes_tested = int((finite & (smaller >= MIN_TESTED_N)).sum())
        # Every metric's test at once (the same p-values as one by one); a sentence only where it can be significant.
        p_values = two_proportion_tests(counts[:, 2], counts[:, 3], counts[:, 0], counts[:, 1])
        for i in np.flatnonzero(finite & (smaller >= MIN_N) & (p_values < ALPHA)):
            line = rate_change_finding(label(shown[i]), *counts[i], higher(shown[i]))
            if "a significant change" in line:
                lines.append(line)
    # Every group x metric gap of the school is one family of tests: BH q-values, a gap is named when q < 0.10.
    gaps = profile[(profile["student_group"] != "ALL") & (profile["denominator"] >= MIN_TESTED_N)]
    gap_cells = ([school_id] * len(gaps), [year] * len(gaps), gaps["metric"].tolist())
    gaps = gaps[exact(*gap_cells, gaps["student_group"].tolist()) & exact(*gap_cells, ["ALL"] * len(gaps))]
    gaps = gaps.assign(q_value=bh_q_values(gaps["p_value"]))
    n_gap_tests = int(gaps["q_value"].notna().sum())
    gaps = gaps[gaps["q_value"] < FDR_Q]
    gaps = gaps.assign(size=gaps["gap"].abs()).sort_values("size", ascending=False, kind="stable").head(3)
    for _, g in gaps.iterrows():
        lines.append(gap_finding(group_label(g["student_group"]), label(g["metric"]), g["value"],
                                 g["others_value"], g["p_value"], g["denominator"], q_value=g["q_value"]))
    if len(gaps):
        lines.append(f"Gaps are tested against all other students of the school ({n_gap_tests} tests on this page; "
                     f"named only when the false-discovery-rate q < {FDR_Q:.2f}); the three largest are listed.")
    if lines:
        return [f"- {line}" for line in lines]
    value_only_rows = profile["value"].notna() & profile["denominator"].isna()
    return ["- " + nothing_found_finding(int(n_changes_tested), n_gap_tests, bool(previous),
                                         int(value_only_rows.sum()))]


PROFILE_NOTES = ("n < 10: not shown", "value only (no counts): not tested; district = median of school values")


def profile_display(profiles: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Profiles (:func:`~analytics.stats.summaries.school_profiles`, one school's or a block of schools') as the
    table shows them: metric and group labels, values of groups under 10 students hidden (privacy, DESIGN §3),
    a note saying why a row has no value or no test, rows by school, metric and group (catalog order).

    Row-wise but for the order, which is stable within each school: one school's rows are the same whether
    made alone or with others (then take its rows by ``school_id``)."""
    show = profiles.copy()
    show["Metric"] = show["metric"].map(lambda m: labels.get(m, m))
    show["Group"] = show["student_group"].map(group_label)
    small = show["denominator"].fillna(0) < MIN_TESTED_N
    hide = small & show["denominator"].notna()
    for col in ("value", "ci_low", "ci_high", "vs_district", "gap"):
        show[col] = show[col].where(~hide)
    show["School (%)"] = show["value"]
    show["note"] = np.where(hide, PROFILE_NOTES[0],
                            np.where(show["value"].notna() & show["denominator"].isna(), PROFILE_NOTES[1], ""))
    show["group_order"] = show["student_group"].map({g: i for i, g in enumerate(STUDENT_GROUPS)})
    return show.sort_values(["school_id", "metric", "group_order"], kind="stable").reset_index(drop=True)


def trend_rows(rows: pd.DataFrame, metric: str, groups: Sequence[str]) -> pd.DataFrame:
    """A metric's rows of the given groups that a trend draws (10 students or more, or a value without counts),
    in their order, with the group's label as ``series``."""
    trend = rows[(rows["metric"] == metric) & rows["student_group"].isin(groups)
                 & ((rows["denominator"] >= MIN_TESTED_N) | (rows["denominator"].isna() & rows["value"].notna()))]
    return trend.assign(series=trend["student_group"].map(group_label)).reset_index(drop=True)
