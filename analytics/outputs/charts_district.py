"""Chart builders for the district, cluster and school pages: pure functions from DataFrames to charts.

Palettes are colour-blind safe: Okabe-Ito for categories, viridis for the map's sequential scale.
Every chart has a title, axis titles with units, and tooltips that state n and the interval.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import pydeck as pdk

from analytics.outputs.vega import VegaLite, frame_ref, layered

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
MAX_AREA_NAMES = 12
END_LABEL_PX = 120  # right-hand room for the names at the end of trend lines
# A line's legend entry drawn as a short stroke in its colour and dash (a dashed circle reads as a blob).
LINE_LEGEND = {"symbolType": "stroke", "symbolStrokeWidth": 2, "symbolSize": 300, "symbolOpacity": 1}
ACCENT, MUTED, GREY_RGB = "#0072B2", "#9AA5B1", [170, 170, 170, 160]
# Viridis at nine stops (matplotlib's colormap), interpolated for the map.
_VIRIDIS = np.array([
    [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
], dtype=float)


def viridis_rgb(values: pd.Series, vmin: float, vmax: float, reverse: bool = False) -> list[list[int]]:
    """RGBA colours for values on viridis; NaN values are grey (not coloured)."""
    span = (vmax - vmin) or 1.0
    t = ((values.astype("float64") - vmin) / span).clip(0, 1)
    if reverse:
        t = 1 - t
    pos = t.to_numpy() * (len(_VIRIDIS) - 1)
    lo = np.floor(np.nan_to_num(pos)).astype(int).clip(0, len(_VIRIDIS) - 2)
    frac = (np.nan_to_num(pos) - lo)[:, None]
    rgb = _VIRIDIS[lo] * (1 - frac) + _VIRIDIS[lo + 1] * frac
    out = [[int(r), int(g), int(b), 220] for r, g, b in rgb]
    return [GREY_RGB if np.isnan(v) else c for v, c in zip(pos, out, strict=True)]


def better_colours(values: pd.Series, higher_is_better: bool) -> tuple[list[list[int]], float, float]:
    """Map colours on one rule for every metric: brighter = better (viridis), NaN grey.

    The scale runs over the 5th-95th percentile of the values. Returns the colours and the values at
    the worst (dark) and best (bright) ends, for the legend.
    """
    if values.notna().any():
        low, high = (float(v) for v in np.nanpercentile(values.astype("float64"), [5, 95]))
    else:
        low, high = 0.0, 100.0
    colours = viridis_rgb(values, low, high, reverse=not higher_is_better)
    return colours, (low if higher_is_better else high), (high if higher_is_better else low)


def viridis_legend_css(reverse: bool = False) -> str:
    stops = _VIRIDIS[::-1] if reverse else _VIRIDIS
    colours = ", ".join(f"rgb({int(r)},{int(g)},{int(b)})" for r, g, b in stops)
    return f"linear-gradient(to right, {colours})"


def cluster_comparison(df: pd.DataFrame, metric_label: str, district_value: float | None,
                       higher_is_better: bool, selection_name: str = "pick", basis: str = "pooled") -> alt.Chart:
    """Cluster values as bars sorted best first, clickable.

    Pooled values carry Wilson 95% interval rules; a value-only metric (`basis="median"`, medians of
    school values) is drawn without interval bars, and its tooltip gives the range of school values.
    """
    median = basis == "median"
    pick = alt.selection_point(name=selection_name, fields=["cluster"], on="click")
    base = alt.Chart(df).encode(
        y=alt.Y("cluster:N", sort=alt.EncodingSortField("value", order="descending" if higher_is_better else "ascending"), title=None, axis=alt.Axis(labelLimit=220, labelOverlap=False)),
    )
    if median:
        tooltip = [alt.Tooltip("cluster:N", title="Cluster"), alt.Tooltip("value:Q", title="Median of school values %", format=".1f"),
                   alt.Tooltip("low:Q", title="Lowest school %", format=".1f"),
                   alt.Tooltip("high:Q", title="Highest school %", format=".1f"),
                   alt.Tooltip("n_schools:Q", title="Schools with a value")]
    else:
        tooltip = [alt.Tooltip("cluster:N", title="Cluster"), alt.Tooltip("value:Q", title="Pooled %", format=".1f"),
                   alt.Tooltip("ci_low:Q", title="95% CI low", format=".1f"),
                   alt.Tooltip("ci_high:Q", title="95% CI high", format=".1f"),
                   alt.Tooltip("denominator:Q", title="Students (n)", format=","),
                   alt.Tooltip("n_schools:Q", title="Schools")]
    bars = base.mark_bar(cursor="pointer").encode(
        x=alt.X("value:Q", title="Median of school values (%)" if median else f"{metric_label} (%, pooled)",
                scale=alt.Scale(zero=True)),
        color=alt.condition(pick, alt.value(ACCENT), alt.value(MUTED)),
        tooltip=tooltip,
    ).add_params(pick)
    layers = [bars]
    if not median:
        layers.append(base.mark_rule(color="#222", strokeWidth=1.5).encode(x="ci_low:Q", x2="ci_high:Q"))
    if district_value is not None and np.isfinite(district_value):
        line = alt.Chart(pd.DataFrame({"district": [district_value]})).mark_rule(
            color="#D55E00", strokeDash=[6, 4], strokeWidth=2).encode(
            x="district:Q", tooltip=[alt.Tooltip("district:Q", title="District %", format=".1f")])
        layers.append(line)
    height = max(220, 24 * len(df))
    # Short lines: the chart often has half a page, where one line of it all was cut off with "…".
    subtitle = (["Median of school values (no counts, so no intervals);", "dashed = district median. "
                 "Click a bar to open the cluster."] if median else
                ["Pooled from counts; line = 95% Wilson interval;", "dashed = district. Click a bar to open the cluster."])
    return alt.layer(*layers).properties(
        title=alt.TitleParams(f"{metric_label} by cluster", subtitle=subtitle),
        height=height,
    )


def _district_rule(frames: dict[str, pd.DataFrame], district_value: float, axis: bool = True) -> dict:
    """The dashed district line (one row: its value)."""
    x = {"field": "district", "type": "quantitative"}
    return {"data": frame_ref(frames, pd.DataFrame({"district": [district_value]})),
            "mark": {"type": "rule", "color": "#D55E00", "strokeDash": [6, 4], "strokeWidth": 2},
            "encoding": {"x": x if axis else {**x, "axis": None}}}


def school_dot_plot(df: pd.DataFrame, metric_label: str, district_value: float | None,
                    selection_name: str = "pick_school", subtitle: str | None = None) -> VegaLite:
    """Each school's value (with its Wilson interval when it has counts), sorted, against the district.

    The value axis is drawn at the top and at the bottom so a long list stays readable; rows are
    compact (18 px) beyond 40 schools. Value-only rows (no counts) get no interval bar.

    One layer spec with the click selection declared on its top level for the dots' view (named here),
    written as the dict Altair makes of it (:mod:`analytics.outputs.vega`: building it through Altair
    cost more than the rest of a cluster's first view).
    """
    view = f"{selection_name}_dots"
    frames: dict[str, pd.DataFrame] = {}
    has_ci = bool(df["ci_low"].notna().any()) if "ci_low" in df else False
    step = 30 if len(df) <= 40 else 18
    data = frame_ref(frames, df)
    y = {"field": "school_label", "type": "nominal", "sort": {"field": "value", "order": "descending"},
         "title": None, "axis": {"labelLimit": 260, "labelOverlap": False}}
    tooltip = [{"field": "school_name", "type": "nominal", "title": "School"},
               {"field": "value", "type": "quantitative", "title": "%", "format": ".1f"}]
    if has_ci:
        tooltip += [{"field": "ci_low", "type": "quantitative", "title": "95% CI low", "format": ".1f"},
                    {"field": "ci_high", "type": "quantitative", "title": "95% CI high", "format": ".1f"},
                    {"field": "denominator", "type": "quantitative", "title": "n", "format": ","}]
    dots = {"data": data, "name": view,
            "mark": {"type": "circle", "size": 110 if step == 30 else 60, "cursor": "pointer", "opacity": 1},
            "encoding": {"x": {"field": "value", "type": "quantitative", "title": f"{metric_label} (%)",
                               "axis": {"orient": "bottom"}},
                         "y": y,
                         "color": {"field": "level", "type": "nominal", "title": "Level",
                                   "scale": {"range": OKABE_ITO}},
                         "tooltip": tooltip}}
    top_axis = {"data": data, "mark": {"type": "point", "opacity": 0},
                "encoding": {"x": {"field": "value", "type": "quantitative", "axis": {"orient": "top", "title": None}},
                             "y": y}}
    layers = [dots, top_axis]
    if has_ci:
        layers.insert(0, {"data": data, "mark": {"type": "rule", "color": "#555"},
                          "encoding": {"x": {"field": "ci_low", "type": "quantitative", "axis": None},
                                       "x2": {"field": "ci_high"}, "y": y}})
    if district_value is not None and np.isfinite(district_value):
        layers.append(_district_rule(frames, district_value, axis=False))
    default = ("Dot = school value; line = 95% Wilson interval; dashed = district." if has_ci else
               "Dot = school value as published (no counts, so no intervals); dashed = district median.")
    pick = {"name": selection_name, "select": {"type": "point", "fields": ["school_id"], "on": "click"},
            "views": [view]}
    return VegaLite(layered(layers, params=[pick], resolve={"axis": {"x": "independent"}},
                             title={"text": f"{metric_label}: schools side by side", "subtitle": subtitle or default},
                             height={"step": step}), frames)


def _spread(values: pd.Series, gap: float) -> pd.Series:
    """Label positions at least `gap` apart, in the values' order, pushed upward only as far as needed."""
    order = values.sort_values()
    placed: list[float] = []
    for v in order:
        placed.append(v if not placed else max(v, placed[-1] + gap))
    return pd.Series(placed, index=order.index, dtype=float).reindex(values.index)


def _end_label_rows(data: pd.DataFrame, x: str, y: str, label: str, min_gap: float | None = None) -> pd.DataFrame:
    """Each series' last point with `label_y`, where its name is written: names of lines that end close
    together are spread apart (by `min_gap` in the data's units; default a 14th of its span) so they never
    print over each other."""
    last = data.dropna(subset=[y]).sort_values(x).groupby(label, as_index=False).tail(1).copy()
    span = float(data[y].max() - data[y].min()) if len(data) else 0.0
    last["label_y"] = _spread(last[y], min_gap if min_gap is not None else (span or 1.0) / 14)
    return last


def _end_labels_layer(frames: dict[str, pd.DataFrame], data: pd.DataFrame, x: str, y: str, label: str) -> dict:
    return {"data": frame_ref(frames, _end_label_rows(data, x, y, label)),
            "mark": {"type": "text", "align": "left", "dx": 6, "fontSize": 11, "limit": END_LABEL_PX - 8},
            "encoding": {"x": {"field": x, "type": "ordinal"},
                         "y": {"field": "label_y", "type": "quantitative"},
                         "text": {"field": label, "type": "nominal"},
                         "color": {"field": label, "type": "nominal", "legend": None,
                                   "scale": {"range": OKABE_ITO}}}}


def end_labels(data: pd.DataFrame, x: str, y: str, label: str, limit: int = END_LABEL_PX - 8,
               min_gap: float | None = None) -> alt.Chart:
    """The series' name beside its last point, so a line is named without the legend's colour (Altair, for
    layering with other Altair charts; :func:`trend_lines` writes the same layer as a dict). `limit`: the
    pixels a name may take before it is cut with "…"; `min_gap`: see :func:`_end_label_rows`."""
    return alt.Chart(_end_label_rows(data, x, y, label, min_gap)).mark_text(
        align="left", dx=6, fontSize=11, limit=limit).encode(
        x=f"{x}:O", y=alt.Y("label_y:Q"), text=f"{label}:N",
        color=alt.Color(f"{label}:N", legend=None, scale=alt.Scale(range=OKABE_ITO)))


def trend_lines(df: pd.DataFrame, metric_label: str, color_field: str = "series", title: str | None = None,
                columns: int | None = None, facet_field: str | None = None) -> VegaLite:
    """Values by school year, one line per series (optionally small multiples by `facet_field`).

    Written as the dict Altair makes of it (:mod:`analytics.outputs.vega`), drawn on every school's and
    cluster's first view."""
    frames: dict[str, pd.DataFrame] = {}
    colour = ({"value": ACCENT} if facet_field else
              {"field": color_field, "type": "nominal", "title": None, "scale": {"range": OKABE_ITO},
               "legend": {"orient": "bottom", "labelLimit": 0, "columns": 2, **LINE_LEGEND}})
    encoding = {
        "x": {"field": "school_year", "type": "ordinal", "title": "School year (ending)", "axis": {"labelAngle": 0}},
        "y": {"field": "value", "type": "quantitative", "title": f"{metric_label} (%)", "scale": {"zero": False}},
        "color": colour,
        "tooltip": [{"field": color_field, "type": "nominal", "title": "Series"},
                    {"field": "school_year", "type": "ordinal", "title": "Year"},
                    {"field": "value", "type": "quantitative", "title": "%", "format": ".1f"}],
    }
    if not facet_field:
        encoding["strokeDash"] = {"field": color_field, "type": "nominal", "legend": None}
    mark = {"type": "line", "point": True}
    if facet_field:  # two columns fit a phone (390 px)
        return VegaLite({
            "data": frame_ref(frames, df),
            "facet": {"field": facet_field, "type": "nominal", "title": None, "header": {"labelLimit": 120}},
            "columns": columns or 4,
            "spec": {"mark": mark, "encoding": encoding, "width": 120, "height": 110},
            "title": title or f"{metric_label} over time"}, frames)
    # Each line is named at its end. Vega's autosize makes room for the end labels (cut with "…" beyond
    # END_LABEL_PX), so the plot keeps most of a phone's width; a fixed padding on top of that would squeeze
    # it twice.
    line = {"data": frame_ref(frames, df), "mark": mark, "encoding": encoding}
    return VegaLite(layered([line, _end_labels_layer(frames, df, "school_year", "value", color_field)],
                             title=title or f"{metric_label} over time", height=260), frames)


def cluster_areas(schools: pd.DataFrame, pad: float = 0.08, margin: float = 0.01) -> pd.DataFrame:
    """Each cluster's area as the convex hull of its schools, padded, for geographic context offline.

    Hull by ``scipy.spatial.ConvexHull`` on (longitude, latitude); each vertex is pushed out from the
    centroid by `pad` (a share of its distance) plus `margin` degrees so edge schools sit inside.
    A cluster with fewer than three distinct points gets a small square around them. Returns
    ``cluster``, ``polygon`` (list of [lon, lat]), ``longitude``/``latitude`` (label position).
    """
    from scipy.spatial import ConvexHull, QhullError

    located = schools.dropna(subset=["latitude", "longitude", "cluster"])
    # Each cluster's points cut from one array sorted by cluster (the clusters in groupby's order): a pandas
    # group per cluster cost most of the outlines' time at 10,000 schools and 1,251 clusters.
    codes, names = pd.factorize(located["cluster"], sort=True)
    order = np.argsort(codes, kind="stable")
    coords = located[["longitude", "latitude"]].to_numpy(dtype=float)[order]
    sizes = np.bincount(codes, minlength=len(names))
    rows = []
    for cluster, end, size in zip(names, np.cumsum(sizes), sizes, strict=True):
        points = np.unique(coords[end - size:end], axis=0)
        centre = points.mean(axis=0)
        try:
            ring = points[ConvexHull(points).vertices] if len(points) >= 3 else None
        except QhullError:  # all points on a line
            ring = None
        if ring is None:
            lo, hi = points.min(axis=0) - margin, points.max(axis=0) + margin
            ring = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
        else:
            offset = ring - centre
            length = np.hypot(offset[:, 0], offset[:, 1])[:, None]
            ring = centre + offset * (1 + pad) + offset / np.where(length > 0, length, 1) * margin
        rows.append({"cluster": cluster, "polygon": ring.round(5).tolist(),
                     "longitude": float(centre[0]), "latitude": float(ring[:, 1].max())})
    return pd.DataFrame(rows, columns=["cluster", "polygon", "longitude", "latitude"])


def school_map(df: pd.DataFrame, tooltip_html: str, areas: pd.DataFrame | None = None,
               map_style: str | None = None) -> pdk.Deck:
    """Schools as points coloured by the `color` column, over cluster areas (outlined and named).

    `id` "schools" is the layer id used for click selection. With no `map_style` (the default) the
    map needs nothing from the network: the cluster areas give the geographic context.
    """
    layers = []
    if areas is not None and not areas.empty:
        layers.append(pdk.Layer("PolygonLayer", id="cluster_areas", data=areas, get_polygon="polygon",
                                get_fill_color=[0, 114, 178, 18], get_line_color=[60, 60, 60, 150],
                                line_width_min_pixels=1, stroked=True, filled=True, pickable=False))
        if len(areas) <= MAX_AREA_NAMES:  # beyond that the names overlap; the list beside the map has them
            layers.append(pdk.Layer("TextLayer", id="cluster_names", data=areas,
                                    get_position=["longitude", "latitude"], get_text="cluster", get_size=12,
                                    get_color=[40, 40, 40, 230], get_alignment_baseline="'bottom'",
                                    font_family="'Source Sans Pro', sans-serif", pickable=False))
    layers.append(pdk.Layer(
        "ScatterplotLayer",
        id="schools",
        data=df,
        get_position=["longitude", "latitude"],
        get_fill_color="color",
        get_line_color=[40, 40, 40, 200],
        line_width_min_pixels=1,
        stroked=True,
        get_radius=700,
        radius_min_pixels=5,
        radius_max_pixels=14,
        pickable=True,
        auto_highlight=True,
    ))
    view = pdk.ViewState(latitude=float(df["latitude"].mean()), longitude=float(df["longitude"].mean()),
                         zoom=_zoom(df), pitch=0)
    return pdk.Deck(layers=layers, initial_view_state=view, tooltip={"html": tooltip_html}, map_style=map_style)


def _zoom(df: pd.DataFrame) -> float:
    """A web-mercator zoom that fits the schools' spread (about 360 degrees / 2**zoom per 512 px)."""
    spread = max(float(df["longitude"].max() - df["longitude"].min()),
                 1.3 * float(df["latitude"].max() - df["latitude"].min()), 0.01)
    return float(np.clip(np.log2(360 / spread) - 0.4, 3, 13))


def ranked_bars(df: pd.DataFrame, label_field: str, value_field: str, title: str, value_title: str,
                category_title: str, reference: float | None = None, reference_label: str = "District") -> alt.Chart:
    """A static ranked bar chart for print: every bar named and labelled with its value, 95% interval
    rules when `ci_low`/`ci_high` are present, and a dashed reference line named in the subtitle."""
    data = df.copy()
    data["value_text"] = data[value_field].map(lambda v: f"{v:.1f}")
    data["text_at"] = data[[value_field, "ci_high"]].max(axis=1) if "ci_high" in data else data[value_field]
    order = data.sort_values(value_field, ascending=False)[label_field].drop_duplicates().tolist()
    base = alt.Chart(data).encode(y=alt.Y(f"{label_field}:N", title=None, sort=order,
                                          axis=alt.Axis(labelLimit=0, labelOverlap=False)))
    tooltip = [alt.Tooltip(f"{label_field}:N", title=category_title),
               alt.Tooltip(f"{value_field}:Q", title=value_title, format=".1f")]
    layers = [base.mark_bar(color=ACCENT).encode(x=alt.X(f"{value_field}:Q", title=value_title,
                                                         scale=alt.Scale(zero=True)), tooltip=tooltip)]
    subtitle = []
    if {"ci_low", "ci_high"} <= set(data.columns) and data["ci_low"].notna().any():
        layers.append(base.mark_rule(color="#222", strokeWidth=1.5).encode(x="ci_low:Q", x2="ci_high:Q"))
        subtitle.append("black line = 95% Wilson interval")
    layers.append(base.mark_text(align="left", dx=5, fontSize=11).encode(x="text_at:Q", text="value_text:N"))
    if reference is not None and np.isfinite(reference):
        layers.append(alt.Chart(pd.DataFrame({"ref": [reference]})).mark_rule(
            color="#D55E00", strokeDash=[6, 4], strokeWidth=2).encode(x="ref:Q"))
        subtitle.append(f"dashed line = {reference_label.lower()} {reference:.1f}")
    return alt.layer(*layers).properties(
        title=alt.TitleParams(title, subtitle=_sentence(subtitle)),
        height=alt.Step(24), width=520)


def _sentence(parts: list[str]) -> str:
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "." if text else ""
