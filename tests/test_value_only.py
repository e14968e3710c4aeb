"""Value-only metrics (report-card percentages without counts): medians of school values, hand-computed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.stats.summaries import (
    MEDIAN,
    POOLED,
    cluster_table,
    district_values,
    median_of_values,
    summary_basis,
    summary_kpi,
    top_and_bottom,
)


def _rows(values, year=2024, group="ALL", metric="read_proficient", num=None, den=None, ids=None):
    n = len(values)
    return pd.DataFrame({
        "school_id": ids or [f"S{i}" for i in range(n)], "school_year": year, "metric": metric,
        "student_group": group, "numerator": num if num is not None else [np.nan] * n,
        "denominator": den if den is not None else [np.nan] * n, "value": values, "target": np.nan})


def test_basis_is_median_when_most_values_have_no_counts():
    assert summary_basis(_rows([10.0, 20.0, np.nan])) == MEDIAN
    counted = _rows([30.0, 10.0, 50.0], num=[3, 1, np.nan], den=[10, 10, np.nan])
    assert summary_basis(counted) == POOLED  # two rows with counts outvote one value-only row
    assert summary_basis(_rows([np.nan, np.nan])) == POOLED  # nothing at all: the pooled path says "no data"


def test_median_of_values_with_range_and_left_out_rows():
    out = median_of_values(_rows([10.0, 20.0, 40.0, np.nan]).assign(_k=1), ["_k"]).iloc[0]
    # median of 10, 20, 40 = 20; range 10-40; 3 schools with values; 1 suppressed row left out
    assert (out["value"], out["low"], out["high"]) == (20.0, 10.0, 40.0)
    assert (out["n_schools"], out["n_rows_left_out"]) == (3, 1)
    assert np.isnan(out["ci_low"]) and np.isnan(out["denominator"])


def test_summary_kpi_median_change_is_untested():
    rows = pd.concat([_rows([30.0, 50.0], year=2023), _rows([10.0, 20.0, 40.0, np.nan], year=2024)])
    kpi = summary_kpi(rows, 2024, "ALL", [2023, 2024])
    assert kpi.basis == MEDIAN and kpi.value == 20.0 and (kpi.low, kpi.high) == (10.0, 40.0)
    assert kpi.previous_value == 40.0 and kpi.change == -20.0  # median(30, 50) = 40
    assert np.isnan(kpi.p_value) and not kpi.significant and np.isnan(kpi.ci_low)
    assert (kpi.n_schools, kpi.n_left_out) == (3, 1)


def test_summary_kpi_pooled_when_counts_exist():
    rows = _rows([30.0, 10.0], num=[3, 1], den=[10, 10])
    kpi = summary_kpi(rows, 2024, "ALL", [2024])
    assert kpi.basis == POOLED and kpi.value == pytest.approx(20.0)  # (3 + 1) / (10 + 10)
    assert kpi.denominator == 20 and np.isfinite(kpi.ci_low)


def test_summary_kpi_no_values_at_all():
    kpi = summary_kpi(_rows([np.nan, np.nan]), 2024, "ALL", [2024], basis=MEDIAN)
    assert np.isnan(kpi.value) and kpi.n_schools == 0 and kpi.n_left_out == 2


def test_cluster_table_medians_per_cluster():
    rows = _rows([10.0, 30.0, 35.0, 60.0, np.nan], ids=["a", "b", "c", "d", "e"])
    schools = pd.DataFrame({"school_id": list("abcde"), "cluster": ["X", "X", "X", "Y", "Y"]})
    table = cluster_table(rows, schools, 2024, "ALL").set_index("cluster")
    assert table.loc["X", "value"] == 30.0 and (table.loc["X", "low"], table.loc["X", "high"]) == (10.0, 35.0)
    assert table.loc["Y", "value"] == 60.0 and table.loc["Y", "n_rows_left_out"] == 1
    assert set(table["basis"]) == {MEDIAN} and table["ci_low"].isna().all()


def test_district_values_choose_the_basis_per_metric():
    counted = _rows([30.0, 10.0], metric="math_proficient", num=[3, 1], den=[10, 10])
    value_only = _rows([10.0, 20.0, 90.0], metric="read_proficient")
    out = district_values(pd.concat([counted, value_only]), ["metric"]).set_index("metric")
    assert out.loc["math_proficient", "value"] == pytest.approx(20.0) and out.loc["math_proficient", "basis"] == POOLED
    assert out.loc["read_proficient", "value"] == 20.0 and out.loc["read_proficient", "basis"] == MEDIAN


def test_top_and_bottom_keeps_the_best_and_worst():
    df = pd.DataFrame({"school": list("abcdefg"), "value": [50.0, 10.0, np.nan, 30.0, 70.0, 20.0, 60.0]})
    out = top_and_bottom(df, 2, higher_is_better=True)
    assert list(out["school"]) == ["e", "g", "f", "b"] and list(out["part"]) == ["best", "best", "worst", "worst"]
    lower = top_and_bottom(df, 2, higher_is_better=False)  # lower is better: smallest values first
    assert list(lower["school"]) == ["b", "f", "g", "e"]
    assert list(top_and_bottom(df, 3)["school"]) == ["e", "g", "a", "d", "f", "b"]  # 6 values = 2n: all of them


def test_map_colours_brighter_is_better_for_either_direction():
    from analytics.outputs.charts_district import GREY_RGB, better_colours

    values = pd.Series([0.0, 50.0, 100.0, np.nan])
    up, worst, best = better_colours(values, higher_is_better=True)
    down, worst_d, best_d = better_colours(values, higher_is_better=False)
    # 5th / 95th percentiles of 0, 50, 100: 5 and 95
    assert (worst, best) == pytest.approx((5.0, 95.0)) and (worst_d, best_d) == pytest.approx((95.0, 5.0))
    assert up[2] == [253, 231, 37, 220] and down[0] == [253, 231, 37, 220]  # the best value is yellow
    assert up[3] == GREY_RGB and up[0] == down[2]


def test_cluster_areas_contain_their_schools():
    from analytics.outputs.charts_district import cluster_areas

    schools = pd.DataFrame({"cluster": ["A"] * 4 + ["B"] * 2 + ["C"],
                            "longitude": [0.0, 1.0, 1.0, 0.0, 5.0, 5.2, 9.0],
                            "latitude": [0.0, 0.0, 1.0, 1.0, 5.0, 5.0, np.nan]})
    areas = cluster_areas(schools).set_index("cluster")
    assert list(areas.index) == ["A", "B"]  # C has no coordinates
    assert all(_inside(areas.loc["A", "polygon"], p) for p in [(0, 0), (1, 1), (0.5, 0.5)])
    assert not _inside(areas.loc["A", "polygon"], (1.5, 0.5))
    assert len(areas.loc["B", "polygon"]) == 4 and _inside(areas.loc["B", "polygon"], (5.1, 5.0))


def test_cluster_areas_of_interleaved_clusters_are_each_clusters_own():
    from analytics.outputs.charts_district import cluster_areas

    # B's and A's schools interleaved, a school of A twice at one place, one school without a cluster
    schools = pd.DataFrame({"cluster": ["B", "A", "B", "A", "A", None, "A", "B"],
                            "longitude": [5.0, 0.0, 5.2, 2.0, 2.0, 7.0, 0.0, 5.1],
                            "latitude": [5.0, 0.0, 5.0, 0.0, 0.0, 7.0, 2.0, 5.0]})
    areas = cluster_areas(schools)
    assert areas["cluster"].tolist() == ["A", "B"]
    alone = pd.concat([cluster_areas(schools[schools["cluster"] == c]) for c in ("A", "B")], ignore_index=True)
    pd.testing.assert_frame_equal(areas, alone)
    # A: the triangle (0,0) (2,0) (0,2) around its centre (2/3, 2/3); B on a line: a square 0.01 beyond its ends
    # the top vertex (0, 2) pushed out by 8% of its offset (-2/3, 4/3) from the centre and 0.01 along it
    assert areas.loc[0, ["longitude", "latitude"]].tolist() == pytest.approx([2 / 3, 2 / 3 + 4 / 3 * 1.08 + 0.04 / 20 ** 0.5])
    assert areas.loc[1, ["longitude", "latitude"]].tolist() == pytest.approx([5.1, 5.01])
    assert areas.loc[1, "polygon"] == [[4.99, 4.99], [5.21, 4.99], [5.21, 5.01], [4.99, 5.01]]


def _inside(polygon, point) -> bool:
    """Ray casting: does a horizontal ray from the point cross the polygon's edges an odd number of times?"""
    x, y = point
    crossings = 0
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            crossings += 1
    return crossings % 2 == 1


@pytest.mark.parametrize(("changes", "gaps", "previous", "value_only", "expected"), [
    (0, 0, False, 1, "Nothing could be tested: these files have no counts, so no intervals or significance tests. "
                     "Values are shown as published. Only one school year, so no change to report."),
    (0, 0, True, 0, "Nothing could be tested: no counts for this year."),
    (3, 5, True, 0, "No significant change since last year, and no significant gap between groups."),
    (0, 2, False, 1, "No change to report (only one school year), and no significant gap between groups. "
                     "1 value without counts could not be tested."),
    (0, 2, False, 4, "No change to report (only one school year), and no significant gap between groups. "
                     "4 values without counts could not be tested."),
    (2, 0, True, 0, "No significant change since last year, and no gap between groups could be tested "
                    "(no group counts)."),
])
def test_nothing_found_never_claims_an_untested_result(changes, gaps, previous, value_only, expected):
    from analytics.outputs.findings import nothing_found_finding

    assert nothing_found_finding(changes, gaps, previous, value_only) == expected


def test_data_limits_give_the_true_reasons():
    from analytics.stats.summaries import data_limits

    report_card = _rows([40.0, 50.0])
    assert data_limits(report_card, 2024, "reading") == [
        "The files give reading for all students only, so there are no student groups to compare.",
        "These files have no counts, so no intervals or significance tests (report-card percentages).",
        "There is no previous school year, so no change can be measured."]
    assert data_limits(report_card, 2025, "reading") == ["There are no reading values for this year in this scope."]
    counted = pd.concat([_rows([30.0], year=y, group=g, num=[3], den=[10]) for y in (2023, 2024) for g in ("ALL", "BL")])
    assert data_limits(counted, 2024, "reading") == []


# --- pages on a report-card district (tests/value_only.py) -------------------------------------------------

@pytest.fixture(scope="module")
def value_only_url(tmp_path_factory) -> str:
    from tests.value_only import build

    return build(f"sqlite:///{tmp_path_factory.mktemp('value_only') / 'report_card.db'}")


@pytest.fixture
def on_value_only(value_only_url, monkeypatch):
    import streamlit as st

    from analytics.data import storage

    monkeypatch.setenv("DATABASE_URL", value_only_url)
    st.cache_data.clear()
    st.cache_resource.clear()
    return storage.get_engine(value_only_url)


def _metric(at, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def _text(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])


def test_overview_shows_the_median_of_school_values(on_value_only):
    import json

    from analytics.data import loads
    from tests.page_runner import run_page
    from tests.value_only import COUNTIES

    values = loads.load_metrics(on_value_only)["value"]
    at = run_page("overview")
    assert _metric(at, "Reading proficient") == f"{values.median():.1f}%"
    assert _metric(at, "Schools reporting") == f"{values.notna().sum():,}"
    assert _metric(at, "Range of school values") == f"{values.min():.1f}% – {values.max():.1f}%"
    text = _text(at)
    assert "median of school values" in text and "these files have no counts, so no intervals" in text
    assert "No counts" not in text
    assert sum("cluster?cluster=" in m.value for m in at.markdown) == len(COUNTIES)  # every county can be opened
    deck = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    points = next(layer for layer in deck["layers"] if layer["id"] == "schools")["data"]
    assert not any("fewer than 10" in p["value_text"] for p in points)
    assert sum(p["color"][:3] == [170, 170, 170] for p in points) == sum("no value" in p["value_text"] for p in points)
    assert any(layer["id"] == "cluster_areas" for layer in deck["layers"])


def test_big_county_lists_best_and_worst_with_honest_labels(on_value_only):
    from analytics.data import loads
    from tests.page_runner import run_page
    from tests.value_only import BIG_COUNTY

    engine = on_value_only
    members = loads.load_schools(engine).query("cluster == @BIG_COUNTY")["school_id"]
    values = loads.load_metrics(engine, school_ids=list(members))["value"]
    at = run_page("cluster", cluster=BIG_COUNTY)
    assert _metric(at, "Cluster reading proficient") == f"{values.median():.1f}%"
    assert _metric(at, "Schools reporting") == f"{values.notna().sum()} of {len(members)}"
    assert at.radio[0].value == "best and worst"
    spec = at.get("vega_lite_chart")[0].proto.spec
    assert "The 15 best and 15 worst" in spec and "95% Wilson" not in spec
    assert "only School Performance Plan targets can be checked" in _text(at)
    assert "ci_low" not in at.dataframe[0].value.columns or at.dataframe[0].value["ci_low"].isna().all()


def test_school_findings_do_not_claim_untested_results(on_value_only):
    from analytics.data import loads
    from tests.page_runner import run_page

    valued = loads.load_metrics(on_value_only).dropna(subset=["value"])["school_id"].iloc[3]
    text = _text(run_page("school", school=valued))
    assert "these files have no counts, so no intervals or significance tests" in text
    assert "No significant" not in text and "no significant gap" not in text


def test_gaps_and_discipline_give_the_true_reason(on_value_only):
    from tests.page_runner import run_page

    text = _text(run_page("gaps"))
    assert "for all students only, so there are no student groups to compare" in text
    assert "0 gaps closing" not in text
    assert "no discipline data imported" in _text(run_page("discipline"))


@pytest.mark.parametrize("page", ["meeting", "changes", "plans", "cycles", "learning", "data"])
def test_other_pages_render_on_a_report_card_district(on_value_only, page):
    from pathlib import Path

    from tests.page_runner import run_page

    if not (Path(__file__).resolve().parent.parent / "pages" / f"{page}.py").exists():
        pytest.skip(f"no /{page} page")
    run_page(page)  # fails on any exception
