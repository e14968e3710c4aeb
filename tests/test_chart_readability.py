"""Charts and tables people can read whole: titles and labels not cut off, legends naming only what is drawn,
numbers at a sensible precision (the screenshot review of the learning, gaps, discipline and cluster pages)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.outputs import charts_equity
from tests import chart_spec_cases


def _layers(chart) -> list[dict]:
    spec = chart.to_dict()
    return spec.get("layer", [spec])


def _colour_domain(chart) -> list[str]:
    return next(layer["encoding"]["color"]["scale"]["domain"] for layer in _layers(chart)
                if "color" in layer.get("encoding", {}) and "scale" in layer["encoding"]["color"])


def test_event_study_legend_names_only_the_kinds_of_interval_drawn_and_its_long_axis_title_wraps():
    bounded = chart_spec_cases._events().assign(ci_low=lambda d: d["ci_low"].replace(-np.inf, -3.0),
                                                 ci_high=lambda d: d["ci_high"].replace(np.inf, 0.2))
    assert _colour_domain(charts_equity.event_study(bounded)) == ["95% CI", "reference (0)"]
    assert _colour_domain(charts_equity.event_study(chart_spec_cases._events())) == [
        "95% CI", "unbounded", "reference (0)"]
    title = _layers(charts_equity.event_study(bounded, x_title=(
        "Years relative to the start (-1 = reference; n = participating schools behind the year)")))[1][
        "encoding"]["x"]["title"]
    assert title == ["Years relative to the start", "(-1 = reference; n = participating schools behind the year)"]
    assert charts_equity.event_study(pd.DataFrame(bounded), x_title="Year").to_dict()  # a short title stays one line


def _feedback_summary() -> pd.DataFrame:
    """Three items whose order by agreement differs from their order by the right end of the diverging bar."""
    from analytics.learning import levels

    counts = {"Well prepared": {3: 40, 4: 30, 5: 30}, "Good use of time": {1: 10, 4: 40, 5: 50},
              "I can apply it": {2: 30, 4: 50, 5: 20}}
    rows = [{"item": item, "response": k, "count": v} for item, c in counts.items() for k, v in c.items()]
    return levels.likert_summary(pd.DataFrame(rows))


def test_level_1_charts_list_the_items_in_one_order_most_agreed_first():
    from analytics.learning import levels
    from analytics.outputs import charts_learning

    summary = _feedback_summary()
    bars = charts_learning.likert_bars(levels.diverging_segments(summary))
    intervals = charts_learning.agree_intervals(summary)
    want = ["Good use of time", "I can apply it", "Well prepared"]  # 90%, 70% and 60% agree
    assert [_layers(chart)[0]["encoding"]["y"]["sort"] for chart in (bars, intervals)] == [want, want]


def test_supports_chart_labels_every_bar_with_its_share_and_a_school_at_zero_reads_0_percent():
    from analytics.outputs import charts_learning

    table = pd.DataFrame({"school": ["Adams", "Banneker", "Carver"], "share": [100.0, 20.0, 0.0],
                          "in_place": [5, 1, 0], "items": [5, 5, 5]})
    spec = charts_learning.support_bars(table).to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert [r["label"] for r in rows] == ["100% (5 of 5)", "20% (1 of 5)", "0% (0 of 5)"]
    texts = [layer for layer in spec["layer"] if layer["mark"]["type"] == "text"]
    assert {layer["encoding"]["text"]["field"] for layer in texts} == {"label"}
    # long bars carry their label inside, short ones (and 0%) past their end: every school has one
    assert [t["transform"][0]["filter"] for t in texts] == ["(datum.share >= 25)", "(datum.share < 25)"]


def test_fidelity_legend_shows_long_practice_names_whole():
    from analytics.outputs import charts_learning

    table = pd.DataFrame({"practice": ["Number talks", "Students explain their reasoning to a partner"],
                          "school_year": [2025, 2025], "fidelity": [60.0, 55.0], "observed": [40, 40]})
    legend = charts_learning.fidelity_lines(table, "practice", "Practice").to_dict()["encoding"]["color"]["legend"]
    assert legend["labelLimit"] == 0 and legend["orient"] == "bottom"


LEVEL2 = pd.DataFrame({"program": "RP", "level": 2,
                       "measure": ["Hedges' g_av (post vs pre)", "mean change (score points)"],
                       "estimate": [0.3994118190306227, 5.2413], "ci_low": [0.3187, 4.2301],
                       "ci_high": [0.4801, 6.2544], "n": [216.0, 216.0], "method": ""})


def test_level_2_table_reads_in_words_with_sensible_precision_and_whole_participants():
    from analytics.outputs.labels import learning_change_table

    table = learning_change_table(LEVEL2)
    assert table.to_dict("records") == [
        {"Measure": "Effect size g", "Estimate": "0.40", "95% interval": "0.32 to 0.48",
         "n": "216"},
        {"Measure": "Mean change (points)", "Estimate": "+5.2", "95% interval": "+4.2 to +6.3",
         "n": "216"}]


def test_level_2_table_of_a_shared_view_keeps_its_suppression_marks():
    from analytics.access.privacy import suppress_learning
    from analytics.outputs.labels import learning_change_table

    released = suppress_learning(LEVEL2.assign(n=[6.0, 6.0]))
    table = learning_change_table(released)
    assert set(table[["Estimate", "95% interval", "n"]].to_numpy().ravel()) == {"*"}
    shown = learning_change_table(suppress_learning(LEVEL2))  # 216 participants: released, and readable
    assert shown["Estimate"].tolist() == ["0.40", "+5.2"] and shown["n"].tolist() == ["216", "216"]


def _gap_rows() -> pd.DataFrame:
    """Pooled gaps as /gaps draws them: two groups end 0.1 points apart, on an axis from 0 to about -28."""
    ends = {"BL": -18.0, "HI": -17.9, "FRL": -26.1, "EL": -21.9, "SWD": -26.6}
    return pd.DataFrame([{"student_group": g, "school_year": y, "gap": end, "gap_low": end - 1, "gap_high": end + 1,
                          "n": 900} for g, end in ends.items() for y in (2024, 2025)])


def test_gap_trend_names_every_line_whole_and_one_line_apart():
    from analytics.outputs import charts_district

    for chart, height in ((charts_equity.gap_band_trend(_gap_rows(), "Math growth"), 320),
                          (charts_equity.gap_trend(_gap_rows().assign(school_id="1"), "Math growth"), 300)):
        spec = chart.to_dict()
        labels = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
        assert labels["mark"]["limit"] >= 170  # "Emergent multilingual learners" is not cut with "…"
        rows = spec["datasets"][labels["data"]["name"]]
        ys = sorted(r["label_y"] for r in rows)
        pixels_per_point = height / 28.0  # the axis runs from 0 (the reference line) to at least -27.6
        assert min(b - a for a, b in zip(ys, ys[1:], strict=False)) * pixels_per_point >= 14
        legend = next(layer["encoding"]["color"]["legend"] for layer in spec["layer"]
                      if "legend" in layer.get("encoding", {}).get("color", {}))
        assert legend["symbolType"] == "stroke"  # a short line in the group's colour and dash, not a blob
    assert charts_district.LINE_LEGEND["symbolType"] == "stroke"


def test_school_trend_legend_draws_lines_not_blobs():
    from analytics.outputs import charts_district

    spec = chart_spec_cases.cases()["trend_by_group"].to_dict()
    assert spec["layer"][0]["encoding"]["color"]["legend"]["symbolType"] == "stroke"
    assert charts_district.trend_lines(chart_spec_cases._trends(["All students"]), "Attendance").to_dict()


def test_cluster_comparison_subtitle_is_short_lines_that_fit_half_a_page():
    from analytics.outputs import charts_district

    clusters = pd.DataFrame({"cluster": ["North", "South"], "value": [60.0, 50.0], "ci_low": [55.0, 45.0],
                             "ci_high": [65.0, 55.0], "denominator": [300, 280], "n_schools": [4, 3],
                             "low": [40.0, 35.0], "high": [70.0, 66.0]})
    for basis in ("pooled", "median"):
        subtitle = charts_district.cluster_comparison(clusters, "Reading proficient", 55.0, True,
                                                      basis=basis).to_dict()["title"]["subtitle"]
        assert isinstance(subtitle, list) and all(len(line) <= 60 for line in subtitle)
        assert subtitle[-1].endswith("Click a bar to open the cluster.")


def _school_months() -> pd.DataFrame:
    """Two school years of suspensions per month as the discipline page draws them: no July, low June and
    August (the school year ends and starts in them)."""
    from analytics.stats.run_charts import run_chart

    periods = [p for p in pd.date_range("2023-08-01", "2025-06-01", freq="MS") if p.month != 7]
    values = [20 if p.month in (6, 8) else 60 + i % 5 for i, p in enumerate(periods)]
    return run_chart(pd.DataFrame({"period": periods, "value": values}))


def test_suspension_run_chart_breaks_its_line_at_july_and_rings_the_partial_months():
    spec = charts_equity.run_chart(_school_months(), title="Suspensions per month").to_dict()
    line = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
    assert line["encoding"]["detail"]["field"] == "segment"
    rows = spec["datasets"][line["data"]["name"]]
    segments = {r["period"][:7]: r["segment"] for r in rows}
    assert segments["2024-06"] == 0 and segments["2024-08"] == 1  # no line from June straight to August
    rings = [layer for layer in spec["layer"] if layer["mark"].get("filled") is False]
    assert len(rings) == 1
    ringed = sorted(r["period"][:7] for r in spec["datasets"][rings[0]["data"]["name"]])
    assert ringed == ["2023-08", "2024-06", "2024-08", "2025-06"]
    assert any("partial school months" in line for line in spec["title"]["subtitle"])


def test_run_chart_without_partial_months_has_no_rings_and_no_note():
    months = _school_months()
    full = months[~pd.to_datetime(months["period"]).dt.month.isin([6, 8])]
    spec = charts_equity.run_chart(full).to_dict()
    assert not [layer for layer in spec["layer"] if layer["mark"].get("filled") is False]
    assert not any("partial" in line for line in spec["title"]["subtitle"])
