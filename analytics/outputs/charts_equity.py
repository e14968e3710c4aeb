"""Chart builders for the equity views: gap trends, status grid, risk ratios, event study, run chart.

Pure functions from a view's table to an ``alt.Chart`` (or, for the charts of a first discipline view, the
Vega-Lite dict Altair makes of one: :mod:`analytics.outputs.vega`); colour-blind-safe palettes (Okabe-Ito), titles,
axis titles with units.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from analytics.data.catalog import group_label
from analytics.outputs.charts_district import LINE_LEGEND, OKABE_ITO, end_labels
from analytics.outputs.labels import RATIO_TYPES
from analytics.outputs.vega import VegaLite, frame_ref, layered
from analytics.stats.run_charts import PARTIAL_MONTHS, month_segments, partial_months
from analytics.stats.status_change import CHANGE_LEVELS, STATUS_LEVELS

# The Dashboard's colour names drawn with colour-blind-distinguishable hues (Okabe-Ito based).
GRID_COLOURS = {"Blue": "#0072B2", "Green": "#009E73", "Yellow": "#F0E442", "Orange": "#E69F00", "Red": "#D55E00",
                "": "#D9DDE1"}


GAP_LABEL_PX = 180  # the longest group name ("Emergent multilingual learners") whole, within the right padding


def _label_gap(values: pd.Series, height_px: int) -> float:
    """The gap, in points, that keeps two group names one line (15 px) apart on a gap axis, which always shows
    zero (the reference line) and so spans at least from zero to the farthest value."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    span = max(float(values.max()), 0.0) - min(float(values.min()), 0.0) if len(values) else 1.0
    return (span or 1.0) * 15 / height_px


def gap_trend(table: pd.DataFrame, metric_label: str) -> alt.Chart:
    """Gap (points) by year for each group, with a zero line: below zero the group trails the reference.

    The gap shown per group is the mean of the schools' gaps (unweighted), as the axis says.
    """
    data = table.dropna(subset=["gap"]).assign(group=lambda d: d["student_group"].map(group_label))
    if data["school_year"].nunique() <= 1:  # one year: compare groups side by side
        means = data.groupby("group", as_index=False).agg(gap=("gap", "mean"), schools=("gap", "size"))
        base = alt.Chart(means).encode(y=alt.Y("group:N", title=None, sort=means.sort_values("gap")["group"].tolist(),
                                               axis=alt.Axis(labelLimit=0, labelOverlap=False)))
        bars = base.mark_bar(color="#0072B2").encode(
            x=alt.X("gap:Q", title="Gap vs reference (percentage points; mean over schools)"),
            tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip("gap:Q", format="+.1f", title="Gap (pts)"),
                     alt.Tooltip("schools:Q", title="Schools")])
        values = base.mark_text(align="left", dx=4, fontSize=11).encode(
            x="gap:Q", text=alt.Text("gap:Q", format="+.1f"))
        zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#333").encode(x="x:Q")
        return alt.layer(bars, zero, values).properties(title=f"{metric_label}: gaps by group",
                                                        height=alt.Step(26))
    means = data.groupby(["group", "school_year"], as_index=False)["gap"].mean()
    colour = alt.Color("group:N", title="Group", scale=alt.Scale(range=OKABE_ITO),
                       legend=alt.Legend(labelLimit=0, **LINE_LEGEND))
    lines = alt.Chart(means).mark_line(point=True).encode(
        x=alt.X("school_year:O", title="School year (ending)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("gap:Q", title="Gap vs reference (percentage points)"),
        color=colour, strokeDash=alt.StrokeDash("group:N", legend=None),
        tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip("school_year:O", title="Year"),
                 alt.Tooltip("gap:Q", format="+.1f", title="Gap (pts)")],
    )
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="#333").encode(y="y:Q")
    return alt.layer(zero, lines, end_labels(means, "school_year", "gap", "group", limit=GAP_LABEL_PX,
                                             min_gap=_label_gap(means["gap"], 300))).properties(
        title=f"{metric_label}: gaps by group", height=300, padding={"right": 190})


def _cell_counts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per grid cell: how many school groups fall in it, its colour and the text it carries."""
    data = table[(table["status_level"] != "") & (table["change_level"] != "")]
    counts = data.groupby(["status_level", "change_level"], as_index=False).agg(
        size=("color", "size"), color=("color", lambda c: next((x for x in c if x), "")))
    counts["colour_name"] = counts["color"].replace("", "No colour")
    counts["label"] = counts["size"].astype(str) + "\n" + counts["color"].replace("", "–")
    counts["ink"] = counts["color"].map(lambda c: "white" if c in ("Blue", "Red") else "black")
    return counts


def status_grid(table: pd.DataFrame, title: str = "Status and change", pick=None) -> alt.Chart:
    """Counts of school-groups in each of the 25 cells, coloured as DESIGN's grid.

    Every cell carries its count and its colour's name as text (colour is never the only carrier), all
    five change levels are labelled on two lines, and the tooltip uses titles. ``pick`` (a point
    selection on status and change levels) makes the cells clickable.
    """
    counts = _cell_counts(table)
    change_order, status_order = list(reversed(CHANGE_LEVELS)), list(reversed(STATUS_LEVELS))
    base = alt.Chart(counts).encode(
        x=alt.X("change_level:N", sort=change_order, scale=alt.Scale(domain=change_order),
                title="Change from last year",
                axis=alt.Axis(labelAngle=0, labelLimit=0, labelOverlap=False, labelExpr="split(datum.label, ' ')",
                              labelPadding=6, orient="bottom")),
        y=alt.Y("status_level:N", sort=status_order, scale=alt.Scale(domain=status_order), title="Status this year",
                axis=alt.Axis(labelLimit=0, labelOverlap=False)),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2, cursor="pointer" if pick is not None else "default").encode(
        color=alt.Color("color:N", title="Colour", scale=alt.Scale(domain=list(GRID_COLOURS),
                                                                  range=list(GRID_COLOURS.values())), legend=None),
        tooltip=[alt.Tooltip("status_level:N", title="Status this year"),
                 alt.Tooltip("change_level:N", title="Change from last year"),
                 alt.Tooltip("colour_name:N", title="Colour"), alt.Tooltip("size:Q", title="School groups")],
    )
    if pick is not None:
        cells = cells.encode(opacity=alt.condition(pick, alt.value(1.0), alt.value(0.45))).add_params(pick)
    text = base.mark_text(fontSize=13, fontWeight="bold", lineBreak="\n").encode(
        text="label:N", color=alt.Color("ink:N", scale=None))
    return alt.layer(cells, text).properties(
        title=alt.TitleParams(title, subtitle="Count of school student groups and their colour per cell; "
                                              "– = no colour (n < 30 or not rated)."),
        width=alt.Step(112), height=alt.Step(58))


def risk_ratio_bars(table: pd.DataFrame, threshold: float = 3.0, title: str = "Suspension risk ratios",
                    label_field: str | None = None) -> VegaLite:
    """One bar per row (a group, or a school and group when ``label_field`` names them), every bar named
    and labelled with its ratio; alternate ratios (district comparison group) are orange and say so in
    their label; the dashed line is the threshold.

    Written as the dict Altair makes of it (:mod:`analytics.outputs.vega`), drawn on every cluster's and
    school's first discipline view."""
    data = table.dropna(subset=["risk_ratio"]).copy()
    data["risk_ratio"] = pd.to_numeric(data["risk_ratio"], errors="coerce")
    data = data.dropna(subset=["risk_ratio"])
    data["label"] = data[label_field] if label_field else data["student_group"].map(group_label)
    data["ratio_name"] = data["ratio_type"].map(RATIO_TYPES).fillna(data["ratio_type"])
    data["text"] = data["risk_ratio"].map("{:.2f}".format) + data["ratio_type"].map(
        lambda t: " (alternate)" if t == "alternate" else "")
    order = data.sort_values("risk_ratio", ascending=False)["label"].drop_duplicates().tolist()
    frames: dict[str, pd.DataFrame] = {}
    rows = frame_ref(frames, data)
    y = {"field": "label", "type": "nominal", "sort": order, "title": None,
         "axis": {"labelLimit": 0, "labelOverlap": False}}
    x = {"field": "risk_ratio", "type": "quantitative"}
    bars = {"data": rows, "mark": {"type": "bar"}, "encoding": {
        "x": {**x, "title": "Risk ratio (group risk / comparison risk)"},
        "y": y,
        "color": {"field": "ratio_name", "type": "nominal", "title": "Comparison group",
                  "scale": {"domain": list(RATIO_TYPES.values())[:2], "range": ["#0072B2", "#E69F00"]},
                  "legend": {"orient": "bottom", "labelLimit": 0}},
        "tooltip": [{"field": "label", "type": "nominal", "title": "Group"},
                    {"field": "ratio_name", "type": "nominal", "title": "Comparison group"},
                    {"field": "risk_ratio", "type": "quantitative", "format": ".2f", "title": "Risk ratio"}]}}
    values = {"data": rows, "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 11},
              "encoding": {"x": x, "y": y, "text": {"field": "text", "type": "nominal"}}}
    rule = {"data": frame_ref(frames, pd.DataFrame({"x": [threshold]})),
            "mark": {"type": "rule", "color": "#D55E00", "strokeDash": [6, 3], "strokeWidth": 2},
            "encoding": {"x": {"field": "x", "type": "quantitative"}}}
    return VegaLite(layered([bars, values, rule], title={"text": title,
                                                         "subtitle": f"Dashed line: the {threshold:.1f} threshold."},
                            height={"step": 24}), frames)


def event_study(table: pd.DataFrame, title: str = "Suspension rate: effect by years since RP start",
                x_title: str = "Years relative to RP start (-1 = reference; n = RP schools behind the year)") -> VegaLite:
    """Estimates with 95% intervals by years relative to start, the number of RP schools behind each
    year written in a row above the plot; zero line; pre-periods are placebo checks. Points whose
    interval is unbounded (too few schools) are orange and have no bar.

    Written as the dict Altair makes of it (:mod:`analytics.outputs.vega`)."""
    data = table.copy()
    unbounded = ~(np.isfinite(data["ci_low"].astype(float)) & np.isfinite(data["ci_high"].astype(float)))
    data["ci_low"] = data["ci_low"].astype(float).where(~unbounded)
    data["ci_high"] = data["ci_high"].astype(float).where(~unbounded)
    data["interval"] = np.select([data["rel_year"] == -1, unbounded], ["reference (0)", "unbounded"], "95% CI")
    data["n_label"] = "n=" + data["n_schools"].astype(int).astype(str)
    frames: dict[str, pd.DataFrame] = {}
    rows = frame_ref(frames, data)
    # The legend names only the kinds of point drawn; the axis title wraps at its parenthesis so a half-width
    # chart shows it whole.
    colours = {"95% CI": "#0072B2", "unbounded": "#E69F00", "reference (0)": "#999999"}
    kinds = [kind for kind in colours if kind in set(data["interval"])] or ["95% CI"]
    x = {"field": "rel_year", "type": "ordinal", "title": _wrapped(x_title), "axis": {"labelAngle": 0}}
    rules = {"data": rows, "mark": {"type": "rule", "color": "#555"}, "encoding": {
        "x": x, "y": {"field": "ci_low", "type": "quantitative", "title": "Effect (percentage points)"},
        "y2": {"field": "ci_high"}}}
    signed = {"type": "quantitative", "format": "+.2f"}
    points = {"data": rows, "mark": {"type": "point", "size": 90, "filled": True}, "encoding": {
        "x": x, "y": {"field": "estimate", "type": "quantitative"},
        "color": {"field": "interval", "type": "nominal", "title": "Interval",
                  "legend": {"orient": "bottom", "labelLimit": 0},
                  "scale": {"domain": kinds, "range": [colours[kind] for kind in kinds]}},
        "tooltip": [{"field": "rel_year", "type": "ordinal", "title": "Years since start"},
                    {"field": "estimate", **signed}, {"field": "ci_low", **signed}, {"field": "ci_high", **signed},
                    {"field": "n_schools", "type": "quantitative", "title": "RP schools"},
                    {"field": "interval", "type": "nominal"}]}}
    labels = {"data": rows, "mark": {"type": "text", "fontSize": 11, "color": "#333"},  # a row above the plot
              "encoding": {"x": x, "y": {"value": -8}, "text": {"field": "n_label", "type": "nominal"}}}
    zero = {"data": frame_ref(frames, pd.DataFrame({"y": [0]})),
            "mark": {"type": "rule", "color": "#333", "strokeDash": [4, 3]},
            "encoding": {"y": {"field": "y", "type": "quantitative"}}}
    return VegaLite(layered([zero, rules, points, labels], title=title, height=300), frames)


def _wrapped(title: str) -> str | list[str]:
    """A long axis title on two lines, broken before its parenthesis (Vega draws a list as lines)."""
    head, paren, tail = title.partition(" (")
    return [head, paren.strip() + tail] if paren and len(title) > 50 else title


def _stagger(cycles: pd.DataFrame) -> pd.DataFrame:
    """Cycle labels on rows (pixels from the top) so labels of cycles that start close together never
    overlap: a label moves down a row while the previous label on that row has not ended."""
    out = cycles.sort_values("start").reset_index(drop=True).copy()
    out["label"] = out["change_idea"].astype(str).map(lambda t: t if len(t) <= 28 else t[:27] + "…")
    ends: list[pd.Timestamp] = []
    rows = []
    for start, label in zip(pd.to_datetime(out["start"]), out["label"], strict=True):
        width = pd.Timedelta(days=7 * len(label))  # about a week of axis per character at a typical width
        row = next((i for i, end in enumerate(ends) if start > end), len(ends))
        if row == len(ends):
            ends.append(start + width)
        else:
            ends[row] = start + width
        rows.append(row)
    out["row_y"] = [10 + 13 * r for r in rows]
    return out


def run_chart(table: pd.DataFrame, cycles: pd.DataFrame | None = None, title: str = "Incidents per month",
              y_title: str = "Count per month") -> VegaLite:
    """Values by month, the median line, signal points as triangles, PDSA cycles shaded and labelled.

    Points in a shift or trend signal differ in shape and colour, and the legend says so in words.
    Written as the dict Altair makes of it (:mod:`analytics.outputs.vega`).
    """
    names = {"": "No signal", "shift": "Signal: shift", "trend": "Signal: trend", "shift,trend": "Signal: shift and trend"}
    data = table.sort_values("period", kind="stable").assign(
        period=lambda d: pd.to_datetime(d["period"]),
        signal_name=lambda d: d["signal"].fillna("").astype(str).map(lambda s: names.get(s, s)))
    data = data.assign(segment=month_segments(data["period"]), partial=partial_months(data["period"]))
    frames: dict[str, pd.DataFrame] = {}
    rows = frame_ref(frames, data)
    month = {"field": "period", "type": "temporal"}
    value = {"field": "value", "type": "quantitative"}
    line = {"data": rows, "mark": {"type": "line", "color": "#555"}, "encoding": {  # broken where a month is missing
        "x": {**month, "title": "Month", "axis": {"format": "%b %Y", "labelAngle": -40}},
        "y": {**value, "title": y_title}, "detail": {"field": "segment", "type": "nominal"}}}
    domain = [n for n in names.values() if n in set(data["signal_name"])] or ["No signal"]
    points = {"data": rows, "mark": {"type": "point", "size": 80, "filled": True, "opacity": 1}, "encoding": {
        "x": month, "y": value,
        "color": {"field": "signal_name", "type": "nominal", "title": None,
                  "scale": {"domain": domain, "range": ["#56B4E9" if n == "No signal" else "#D55E00" for n in domain]},
                  "legend": {"orient": "bottom", "labelLimit": 0}},
        "shape": {"field": "signal_name", "type": "nominal", "legend": None, "scale": {
            "domain": domain, "range": ["circle" if n == "No signal" else "triangle-up" for n in domain]}},
        "tooltip": [{**month, "format": "%b %Y", "title": "Month"}, {**value, "title": y_title},
                    {"field": "signal_name", "type": "nominal", "title": "Signal"}]}}
    median = {"data": rows, "mark": {"type": "rule", "color": "#009E73", "strokeDash": [6, 3]},
              "encoding": {"y": {"field": "median", "type": "quantitative", "aggregate": "mean"}}}
    subtitle = ["Dashed green line: median. Triangles: points in a shift (6+ on one side of the median)",
                "or a trend (5+ rising or falling)."]
    rings = []
    if data["partial"].any():  # a ring around each partial month's point, named in the subtitle
        partial = frame_ref(frames, data[data["partial"]])
        rings = [{"data": partial, "mark": {"type": "point", "size": 260, "filled": False, "color": "#333",
                                            "strokeWidth": 1.5}, "encoding": {"x": month, "y": value}}]
        months = " and ".join(PARTIAL_MONTHS.values())
        subtitle.append(f"Rings: {months}, partial school months (fewer school days). No line across a missing "
                        "month.")
    layers = []
    if cycles is not None and not cycles.empty:
        spans = frame_ref(frames, _stagger(cycles))
        start, end = {"field": "start", "type": "temporal"}, {"field": "end", "type": "temporal"}
        layers += [{"data": spans, "mark": {"type": "rect", "opacity": 0.15, "color": "#CC79A7"},
                    "encoding": {"x": start, "x2": {"field": "end"}}},
                   {"data": spans, "mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 10, "color": "#7A3E65"},
                    "encoding": {"x": start, "y": {"field": "row_y", "type": "quantitative", "scale": None},
                                 "text": {"field": "label", "type": "nominal"},
                                 "tooltip": [{"field": "change_idea", "type": "nominal", "title": "PDSA cycle"},
                                             {**start, "title": "Start"}, {**end, "title": "End"}]}}]
    return VegaLite(layered([*layers, line, median, *rings, points], title={"text": title, "subtitle": subtitle},
                            height=300, width=640), frames)


def gap_band_trend(table: pd.DataFrame, metric_label: str, higher_is_better: bool = True) -> alt.Chart:
    """Pooled gaps to all other students by year with 95% interval bands; each group has its own colour,
    dash pattern and a name at the end of its line (so the legend's colours are not needed)."""
    data = table.assign(group=lambda d: d["student_group"].map(group_label))
    colour = alt.Color("group:N", title="Group", scale=alt.Scale(range=OKABE_ITO),
                       legend=alt.Legend(orient="bottom", labelLimit=0, columns=3, **LINE_LEGEND))
    base = alt.Chart(data).encode(x=alt.X("school_year:O", title="School year (ending)", axis=alt.Axis(labelAngle=0)),
                                  color=colour)
    band = base.mark_area(opacity=0.15).encode(y=alt.Y("gap_low:Q", title="Gap vs all other students (points)"),
                                               y2="gap_high:Q")
    line = base.mark_line(point=True).encode(
        y="gap:Q", strokeDash=alt.StrokeDash("group:N", legend=None),
        tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip("school_year:O", title="School year"),
                 alt.Tooltip("gap:Q", format="+.1f", title="Gap (pts)"),
                 alt.Tooltip("gap_low:Q", format="+.1f", title="95% low"),
                 alt.Tooltip("gap_high:Q", format="+.1f", title="95% high"),
                 alt.Tooltip("n:Q", format=",", title="Students in group")])
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="#333").encode(y="y:Q")
    labels = end_labels(data, "school_year", "gap", "group", limit=GAP_LABEL_PX,
                        min_gap=_label_gap(pd.concat([data["gap_low"], data["gap_high"]]), 320))
    return alt.layer(band, zero, line, labels).properties(
        title=alt.TitleParams(f"{metric_label}: gap to all other students",
                              subtitle="Pooled from counts; band = 95% interval; "
                                       f"{'below' if higher_is_better else 'above'} 0 = group trails."),
        height=320, padding={"right": 190, "left": 5, "top": 5, "bottom": 5})


def status_grid_clickable(table: pd.DataFrame, title: str) -> alt.Chart:
    """The status grid with a point selection (`cell`) on status and change levels."""
    pick = alt.selection_point(name="cell", fields=["status_level", "change_level"], on="click")
    return status_grid(table, title, pick).properties(title=alt.TitleParams(
        title, subtitle=["Count of school student groups and their colour per cell;",
                         "– = no colour (n < 30 or not rated). Click a cell to list them."]), width="container")
