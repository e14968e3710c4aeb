"""Charts of the improvement workspace: a goal against its trajectory, a PDSA ramp's run chart, the roll-up.

Okabe-Ito colours (colour-blind safe); progress is also told by point shape so it never rests on colour.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from analytics.data.catalog import group_label
from analytics.workspace.goals import PROGRESS, PROGRESS_LABELS, goal_title

PROGRESS_COLOURS = {"on_track": "#0072B2", "at_risk": "#E69F00", "off_track": "#D55E00", "not_measured": "#999999"}
PROGRESS_SHAPES = {"on_track": "circle", "at_risk": "diamond", "off_track": "triangle-down",
                   "not_measured": "square"}


def goal_chart(progress: pd.DataFrame, goal: dict, metric_label: str, unit: str = "%") -> alt.Chart:
    """Trajectory from baseline to target (dashed), measured values with 95% intervals, points by progress."""
    base_year, target_year = int(goal["baseline_year"]), int(goal["target_year"])
    years = sorted({base_year, target_year, *progress["school_year"].astype(int)})
    from analytics.workspace.goals import trajectory

    line = pd.DataFrame({"school_year": years, "trajectory": [trajectory(goal, y) for y in years]})
    values = progress[progress["value"].notna()].assign(
        label=lambda d: d["progress"].map(PROGRESS_LABELS))
    baseline = pd.DataFrame({"school_year": [base_year], "value": [float(goal["baseline_value"])],
                             "label": ["Baseline"]})
    x = alt.X("school_year:O", title="School year (ending)", axis=alt.Axis(labelAngle=0))
    y_title = f"{metric_label} ({unit})" if unit else metric_label
    path = alt.Chart(line).mark_line(strokeDash=[6, 4], color="#555").encode(
        x=x, y=alt.Y("trajectory:Q", title=y_title, scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("school_year:O", title="Year"), alt.Tooltip("trajectory:Q", format=".1f")])
    target = alt.Chart(pd.DataFrame({"school_year": [target_year], "value": [float(goal["target_value"])]})).mark_point(
        shape="cross", size=160, color="#009E73", filled=True).encode(
        x=x, y="value:Q", tooltip=[alt.Tooltip("value:Q", title="Target", format=".1f")])
    layers = [path, target]
    base_point = alt.Chart(baseline).mark_point(size=90, color="#000", filled=False).encode(
        x=x, y="value:Q", tooltip=[alt.Tooltip("value:Q", title="Baseline", format=".1f")])
    layers.append(base_point)
    if len(values):
        domain = [PROGRESS_LABELS[p] for p in PROGRESS]
        bars = alt.Chart(values[values["ci_low"].notna()]).mark_rule(color="#333", strokeWidth=1.5).encode(
            x=x, y="ci_low:Q", y2="ci_high:Q")
        points = alt.Chart(values).mark_point(size=110, filled=True, opacity=1).encode(
            x=x, y="value:Q",
            color=alt.Color("label:N", title="Progress", scale=alt.Scale(
                domain=domain, range=[PROGRESS_COLOURS[p] for p in PROGRESS])),
            shape=alt.Shape("label:N", title="Progress", scale=alt.Scale(
                domain=domain, range=[PROGRESS_SHAPES[p] for p in PROGRESS])),
            tooltip=[alt.Tooltip("school_year:O", title="Year"), alt.Tooltip("value:Q", format=".1f"),
                     alt.Tooltip("ci_low:Q", format=".1f", title="95% low"),
                     alt.Tooltip("ci_high:Q", format=".1f", title="95% high"),
                     alt.Tooltip("trajectory:Q", format=".1f"), alt.Tooltip("label:N", title="Progress")])
        layers += [bars, points]
    return alt.layer(*layers).properties(
        title=alt.TitleParams(goal_title(metric_label, group_label(goal["student_group"]), goal["target_value"],
                                         goal["target_year"], unit),
                              subtitle="Dashed: trajectory from baseline to target (cross). Bars: 95% interval."),
        height=320)


def cycle_run_chart(points: pd.DataFrame, spans: pd.DataFrame, measure: str) -> alt.Chart:
    """The ramp's measure over time: median line, shift/trend points marked, each cycle's span shaded."""
    data = points.assign(signalled=np.where(points["signal"].astype(str) != "", "shift or trend", "no signal"),
                         signal_text=points["signal"].replace("", "none"))
    x = alt.X("period:T", title="Date of measurement")
    line = alt.Chart(data).mark_line(color="#555").encode(x=x, y=alt.Y("value:Q", title=measure))
    dots = alt.Chart(data).mark_point(size=80, filled=True).encode(
        x="period:T", y="value:Q",
        color=alt.Color("signalled:N", title="Run-chart signal", scale=alt.Scale(
            domain=["no signal", "shift or trend"], range=["#56B4E9", "#D55E00"])),
        shape=alt.Shape("signalled:N", title="Run-chart signal", scale=alt.Scale(
            domain=["no signal", "shift or trend"], range=["circle", "diamond"])),
        tooltip=[alt.Tooltip("period:T", format="%d %b %Y", title="Date"), "value:Q",
                 alt.Tooltip("cycle_id:N", title="Cycle id"), alt.Tooltip("signal_text:N", title="Signal")])
    median = alt.Chart(data).mark_rule(color="#009E73", strokeDash=[6, 3]).encode(y="mean(median):Q")
    layers = []
    if spans is not None and not spans.empty:
        shade = alt.Chart(spans).mark_rect(opacity=0.13, color="#CC79A7").encode(
            x="start:T", x2="end:T", tooltip=[alt.Tooltip("label:N", title="Cycle"),
                                              alt.Tooltip("change_idea:N", title="Change idea"),
                                              alt.Tooltip("cycle_id:N", title="Cycle id")])
        labels = alt.Chart(spans).mark_text(align="left", dx=3, dy=-4, fontSize=11, color="#7A3E65").encode(
            x="start:T", y=alt.value(10), text="label:N")  # "Cycle 2", as the ramp's links number it
        layers += [shade, labels]
    return alt.layer(*layers, line, median, dots).properties(
        title=alt.TitleParams(f"Run chart: {measure}",
                              subtitle="Green dashed: median. Shaded: each cycle's span. Orange diamonds: shift "
                                       "(6+ on one side) or trend (5+ rising or falling)."),
        height=320)


def rollup_chart(rollup: pd.DataFrame) -> alt.Chart:
    """Goals per cluster stacked by progress."""
    long = rollup.melt(id_vars=["cluster", "goals"], value_vars=list(PROGRESS), var_name="progress", value_name="n")
    long["label"] = long["progress"].map(PROGRESS_LABELS)
    domain = [PROGRESS_LABELS[p] for p in PROGRESS]
    return alt.Chart(long).mark_bar().encode(
        y=alt.Y("cluster:N", title="Cluster", sort="-x", axis=alt.Axis(labelOverlap=False, labelLimit=160)),
        x=alt.X("n:Q", title="Goals (active, met or not met)", axis=alt.Axis(format="d", tickMinStep=1)),
        color=alt.Color("label:N", title="Progress", sort=domain,
                        scale=alt.Scale(domain=domain, range=[PROGRESS_COLOURS[p] for p in PROGRESS])),
        order=alt.Order("progress_order:Q"),
        tooltip=["cluster:N", alt.Tooltip("label:N", title="Progress"), alt.Tooltip("n:Q", title="Goals")],
    ).transform_calculate(progress_order=f"indexof({domain!r}, datum.label)").properties(
        title="School Performance Plan goals by cluster: progress in the latest measured year",
        height=alt.Step(24))
