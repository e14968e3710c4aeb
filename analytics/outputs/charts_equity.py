"""Chart builders for the equity views: gap trends, status grid, risk ratios, event study, run chart.

Pure functions from a view's table to an ``alt.Chart``; colour-blind-safe palettes (Okabe-Ito), titles,
axis titles with units.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from analytics.data.catalog import group_label
from analytics.outputs.charts_district import OKABE_ITO
from analytics.stats.status_change import CHANGE_LEVELS, STATUS_LEVELS

# The Dashboard's colour names drawn with colour-blind-distinguishable hues (Okabe-Ito based).
GRID_COLOURS = {"Blue": "#0072B2", "Green": "#009E73", "Yellow": "#F0E442", "Orange": "#E69F00", "Red": "#D55E00",
                "": "#D9DDE1"}


def gap_trend(table: pd.DataFrame, metric_label: str) -> alt.Chart:
    """Gap (points) by year for each group, with a zero line: below zero the group trails the reference."""
    data = table.dropna(subset=["gap"]).assign(group=lambda d: d["student_group"].map(group_label))
    if data["school_year"].nunique() <= 1:  # one year: compare groups side by side
        bars = alt.Chart(data).mark_bar(color="#0072B2").encode(
            y=alt.Y("group:N", title=None, sort="x"),
            x=alt.X("mean(gap):Q", title="Gap vs reference (percentage points; mean over schools)"),
            tooltip=["group:N", alt.Tooltip("mean(gap):Q", format="+.1f", title="Gap (pts)")])
        zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#333").encode(x="x:Q")
        return alt.layer(bars, zero).properties(title=f"{metric_label}: gaps by group", height=320)
    lines = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("school_year:O", title="School year (ending)"),
        y=alt.Y("mean(gap):Q", title="Gap vs reference (percentage points)"),
        color=alt.Color("group:N", title="Group", scale=alt.Scale(range=OKABE_ITO)),
        tooltip=["group:N", "school_year:O", alt.Tooltip("mean(gap):Q", format="+.1f", title="Gap (pts)")],
    )
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="#333").encode(y="y:Q")
    return alt.layer(zero, lines).properties(title=f"{metric_label}: gaps by group", height=300)


def _cell_counts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per grid cell: how many school groups fall in it and the cell's colour."""
    data = table[(table["status_level"] != "") & (table["change_level"] != "")]
    return data.groupby(["status_level", "change_level"], as_index=False).agg(
        size=("color", "size"), color=("color", lambda c: next((x for x in c if x), "")))


def status_grid(table: pd.DataFrame, title: str = "Status and change") -> alt.Chart:
    """Counts of school-groups in each of the 25 cells, coloured as DESIGN's grid."""
    counts = _cell_counts(table)
    base = alt.Chart(counts).encode(
        x=alt.X("change_level:N", sort=list(reversed(CHANGE_LEVELS)), title="Change from last year"),
        y=alt.Y("status_level:N", sort=list(reversed(STATUS_LEVELS)), title="Status this year"),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("color:N", title="Colour", scale=alt.Scale(domain=list(GRID_COLOURS),
                                                                  range=list(GRID_COLOURS.values()))),
        tooltip=["status_level:N", "change_level:N", "color:N", alt.Tooltip("size:Q", title="Count")],
    )
    text = base.mark_text(fontSize=14, fontWeight="bold").encode(text="size:Q")
    return alt.layer(cells, text).properties(title=title, width=520, height=300)


def risk_ratio_bars(table: pd.DataFrame, threshold: float = 3.0, title: str = "Suspension risk ratios") -> alt.Chart:
    """Risk ratios by group with the threshold line; alternate ratios drawn hollow."""
    data = table.dropna(subset=["risk_ratio"]).assign(group=lambda d: d["student_group"].map(group_label))
    bars = alt.Chart(data).mark_bar().encode(
        y=alt.Y("group:N", title=None, sort="-x"),
        x=alt.X("mean(risk_ratio):Q", title="Risk ratio (group risk / comparison risk)"),
        color=alt.Color("ratio_type:N", title="Ratio", scale=alt.Scale(domain=["within_school", "alternate"],
                                                                        range=["#0072B2", "#E69F00"])),
        tooltip=["group:N", "ratio_type:N", alt.Tooltip("mean(risk_ratio):Q", format=".2f")],
    )
    rule = alt.Chart(pd.DataFrame({"x": [threshold]})).mark_rule(color="#D55E00", strokeDash=[6, 3],
                                                                  strokeWidth=2).encode(x="x:Q")
    return alt.layer(bars, rule).properties(title=title, height=260)


def event_study(table: pd.DataFrame, title: str = "Suspension rate: effect by years since RP start") -> alt.Chart:
    """Estimates with 95% intervals by years relative to start, the number of RP schools behind each
    year written under its point; zero line; pre-periods are placebo checks. Unbounded intervals (too
    few schools) are drawn as hollow points without a bar."""
    data = table.copy()
    unbounded = ~(np.isfinite(data["ci_low"].astype(float)) & np.isfinite(data["ci_high"].astype(float)))
    data["ci_low"] = data["ci_low"].astype(float).where(~unbounded)
    data["ci_high"] = data["ci_high"].astype(float).where(~unbounded)
    data["interval"] = np.where(unbounded, "unbounded (too few schools)", "95% CI")
    data["n_label"] = "n=" + data["n_schools"].astype(int).astype(str)
    x = alt.X("rel_year:O", title="Years relative to RP start (-1 = reference; n = RP schools behind the year)",
              axis=alt.Axis(labelAngle=0))
    base = alt.Chart(data).encode(x=x)
    rules = base.mark_rule(color="#555").encode(y=alt.Y("ci_low:Q", title="Effect (percentage points)"),
                                                y2="ci_high:Q")
    points = base.mark_point(size=90, filled=True).encode(
        y="estimate:Q",
        color=alt.Color("interval:N", title="Interval", scale=alt.Scale(
            domain=["95% CI", "unbounded (too few schools)"], range=["#0072B2", "#E69F00"])),
        tooltip=[alt.Tooltip("rel_year:O", title="Years since start"), alt.Tooltip("estimate:Q", format="+.2f"),
                 alt.Tooltip("ci_low:Q", format="+.2f"), alt.Tooltip("ci_high:Q", format="+.2f"),
                 alt.Tooltip("n_schools:Q", title="RP schools"), "interval:N"])
    labels = base.mark_text(dy=16, fontSize=11, color="#333").encode(y="estimate:Q", text="n_label:N")
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="#333", strokeDash=[4, 3]).encode(y="y:Q")
    return alt.layer(zero, rules, points, labels).properties(title=title, height=300)


def run_chart(table: pd.DataFrame, cycles: pd.DataFrame | None = None, title: str = "Incidents per month") -> alt.Chart:
    """Values by month, the median line, signal points highlighted, PDSA cycles shaded and labelled."""
    data = table.assign(period=pd.to_datetime(table["period"]), signalled=table["signal"].astype(str) != "")
    line = alt.Chart(data).mark_line(color="#555").encode(
        x=alt.X("period:T", title="Month"), y=alt.Y("value:Q", title="Count per month"))
    points = alt.Chart(data).mark_circle(size=70).encode(
        x="period:T", y="value:Q",
        color=alt.Color("signalled:N", title="Signal", scale=alt.Scale(domain=[False, True],
                                                                        range=["#56B4E9", "#D55E00"])),
        tooltip=[alt.Tooltip("period:T", format="%b %Y"), "value:Q", "signal:N"])
    median = alt.Chart(data).mark_rule(color="#009E73", strokeDash=[6, 3]).encode(y="mean(median):Q")
    layers = []
    if cycles is not None and not cycles.empty:
        spans = alt.Chart(cycles).mark_rect(opacity=0.15, color="#CC79A7").encode(x="start:T", x2="end:T")
        labels = alt.Chart(cycles).mark_text(align="left", dx=3, dy=-6, fontSize=10, color="#7A3E65").encode(
            x="start:T", y=alt.value(8), text="change_idea:N")
        layers += [spans, labels]
    return alt.layer(*layers, line, median, points).properties(title=title, height=300)


def gap_band_trend(table: pd.DataFrame, metric_label: str) -> alt.Chart:
    """Pooled gaps to all other students by year with 95% interval bands, one colour per group."""
    data = table.assign(group=lambda d: d["student_group"].map(group_label))
    colour = alt.Color("group:N", title="Group", scale=alt.Scale(range=OKABE_ITO))
    base = alt.Chart(data).encode(x=alt.X("school_year:O", title="School year (ending)"), color=colour)
    band = base.mark_area(opacity=0.15).encode(y=alt.Y("gap_low:Q", title="Gap vs all other students (points)"),
                                               y2="gap_high:Q")
    line = base.mark_line(point=True).encode(
        y="gap:Q", tooltip=["group:N", "school_year:O", alt.Tooltip("gap:Q", format="+.1f", title="Gap (pts)"),
                            alt.Tooltip("gap_low:Q", format="+.1f", title="95% low"),
                            alt.Tooltip("gap_high:Q", format="+.1f", title="95% high"),
                            alt.Tooltip("n:Q", format=",", title="Students in group")])
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="#333").encode(y="y:Q")
    return alt.layer(band, zero, line).properties(
        title=alt.TitleParams(f"{metric_label}: gap to all other students",
                              subtitle="Pooled from counts; band = 95% interval; below 0 = group trails."),
        height=320)


def status_grid_clickable(table: pd.DataFrame, title: str) -> alt.Chart:
    """The status grid with a point selection (`cell`) on status and change levels."""
    pick = alt.selection_point(name="cell", fields=["status_level", "change_level"], on="click")
    return _grid_with(table, title, pick)


def _grid_with(table: pd.DataFrame, title: str, pick) -> alt.Chart:
    counts = _cell_counts(table)
    base = alt.Chart(counts).encode(
        x=alt.X("change_level:N", sort=list(reversed(CHANGE_LEVELS)), title="Change from last year",
                scale=alt.Scale(domain=list(reversed(CHANGE_LEVELS))), axis=alt.Axis(labelAngle=0, labelLimit=110)),
        y=alt.Y("status_level:N", sort=list(reversed(STATUS_LEVELS)), title="Status this year",
                scale=alt.Scale(domain=list(reversed(STATUS_LEVELS)))),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2, cursor="pointer").encode(
        color=alt.Color("color:N", title="Colour", scale=alt.Scale(domain=list(GRID_COLOURS),
                                                                  range=list(GRID_COLOURS.values()))),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.45)),
        tooltip=["status_level:N", "change_level:N", "color:N", alt.Tooltip("size:Q", title="Count")],
    ).add_params(pick)
    text = base.mark_text(fontSize=15, fontWeight="bold").encode(text="size:Q")
    return alt.layer(cells, text).properties(title=alt.TitleParams(
        title, subtitle="Count of school student groups per cell; grey = no colour (n < 30 or not rated). "
                        "Click a cell to list them."), height=300)
