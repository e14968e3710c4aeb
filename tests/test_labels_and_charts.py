"""Names people read and charts that carry meaning in text: labels, chart specs, text alternatives."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics.data.catalog import outcome_label, school_labels
from analytics.outputs import charts_district, charts_equity
from analytics.outputs.exports import chart_bytes
from analytics.outputs.labels import chance_text, counted, for_count, people_table, trend_text, year_label
from tests.page_runner import run_page as _run

SCHOOLS = pd.DataFrame({"school_id": ["1", "2", "3", "4", "5"],
                        "school_name": ["Lincoln ES", "Lincoln ES", "Adams MS", "Oak HS", "Oak HS"],
                        "cluster": ["North", "South", "North", "East", "East"]})


def _layers(chart) -> list[dict]:
    spec = chart.to_dict()
    return spec.get("layer", [spec])


def test_same_named_schools_are_told_apart_by_cluster_then_id():
    names = school_labels(SCHOOLS)
    assert names["1"] == "Lincoln ES (North)" and names["2"] == "Lincoln ES (South)"
    assert names["3"] == "Adams MS"  # unique names stay as they are
    assert names["4"] == "Oak HS (East) · 4" and names["5"] == "Oak HS (East) · 5"  # same cluster: the id too


def test_schools_labelled_within_their_clusters_in_one_pass_read_as_each_cluster_labelled_alone():
    # "Oak HS (East)" is a school's own name beside two Oak HS of East: all three need their ids
    schools = pd.concat([SCHOOLS, pd.DataFrame({"school_id": ["6"], "school_name": ["Oak HS (East)"],
                                                "cluster": ["East"]})], ignore_index=True)
    within = school_labels(schools, within="cluster")
    assert within.to_dict() == {"1": "Lincoln ES", "2": "Lincoln ES", "3": "Adams MS", "4": "Oak HS (East) · 4",
                                "5": "Oak HS (East) · 5", "6": "Oak HS (East) · 6"}
    alone = pd.concat([school_labels(part) for _, part in schools.groupby("cluster", sort=False)])
    assert within.reindex(alone.index).to_dict() == alone.to_dict()


def test_codes_read_as_names():
    assert outcome_label("iss") == "In-school suspension" and outcome_label("law_referral") == \
        "Referral to law enforcement"
    assert year_label(2025) == "2024-25" and year_label(np.nan) == "" and year_label("*") == "*"
    assert trend_text("closing", 2024, -3.0) == "closing"
    assert trend_text("", np.nan, -3.0) == "no previous year"
    # a group that has a previous year but no comparable gap is not "no previous year" (the /gaps bug)
    assert trend_text("", 2024, np.nan) == "no comparison group this year"
    assert trend_text("", 2024, -5.0) == "no comparison group last year"


def test_counts_read_as_people_write_them():
    assert counted(1, "school") == "1 school"
    assert counted(3, "school") == "3 schools"
    assert counted(0, "school") == "0 schools"
    assert counted(np.int64(1200), "school") == "1,200 schools"
    assert counted(1, "school-year") == "1 school-year" and counted(2, "school-year") == "2 school-years"
    assert counted(4, "walkthrough look-for") == "4 walkthrough look-fors"
    assert counted(1, "analysis", "analyses") == "1 analysis" and counted(2, "analysis", "analyses") == "2 analyses"
    assert for_count(1, "has", "have") == "has" and for_count(2, "has", "have") == "have"


def test_a_probability_never_reads_as_certain():
    assert [chance_text(p) for p in (1.0, 0.9951, 0.994, 0.95, 0.5, 0.0051, 0.0049, 0.0)] == \
        [">99%", ">99%", "99%", "95%", "50%", "1%", "<1%", "<1%"]


def test_the_cluster_and_overview_pages_write_a_near_certain_chance_alike(on_demo):
    """The cluster table's flag said "100% likely worse" where the overview said ">99%" of the same school."""
    overview = _run("overview", year="2025", metric="read_proficient", group="ALL").dataframe[-1].value
    near_certain = overview[overview["prob_worse"] == ">99%"]
    assert len(near_certain)
    school = near_certain.iloc[0]
    cluster = _run("cluster", cluster=school["cluster"], year="2025", metric="read_proficient", group="ALL")
    flags = cluster.dataframe[-1].value.set_index("school_name")["flags"]
    assert "(>99% likely worse than district)" in flags[school["school_name"]]
    assert not flags.str.contains("100%").any()


def test_people_table_names_schools_labels_codes_and_keeps_suppression_marks():
    table = pd.DataFrame({"school_id": ["1", "cluster:North", "district"], "school_year": [2025, 2025, 2025],
                          "student_group": ["BL", "ALL", "SWD"], "outcome": ["law_referral", "iss", "suspension"],
                          "ratio_type": ["within_school", "alternate", "none"], "risk_ratio": [3.5, 1.2, "*"],
                          "flagged": [True, False, "*"]})
    out = people_table("disproportionality", table, SCHOOLS)
    assert list(out.columns[:3]) == ["School", "School ID", "Cluster"]
    assert out["School"].tolist() == ["Lincoln ES (North)", "North cluster (pooled)", "District (pooled)"]
    assert out["School ID"].tolist() == ["1", "", ""]
    assert out["Student group"].tolist() == ["Black or African American", "All students", "Students with disabilities"]
    assert out["Outcome"].tolist() == ["Referral to law enforcement", "In-school suspension",
                                       "Suspension (in or out of school)"]
    assert out["Ratio type"].tolist() == ["Within school", "Alternate (district comparison)", "Too small to compute"]
    assert out["Risk ratio"].tolist() == [3.5, 1.2, "*"] and out["Flagged (3.0 or more, 3 years)"].tolist() == \
        ["Yes", "No", "*"]
    assert out["School year"].tolist() == ["2024-25"] * 3
    assert not [c for c in out.columns if "_" in c]


def test_risk_ratio_chart_names_every_bar_and_says_which_are_alternate():
    rows = pd.DataFrame({"label": [f"School {i} · Black or African American" for i in range(25)],
                         "student_group": "BL", "risk_ratio": np.linspace(0.5, 5, 25),
                         "ratio_type": ["alternate" if i % 5 == 0 else "within_school" for i in range(25)]})
    chart = charts_equity.risk_ratio_bars(rows, label_field="label")
    bars, values, _ = _layers(chart)
    axis = bars["encoding"]["y"]["axis"]
    assert axis["labelOverlap"] is False and axis["labelLimit"] == 0  # no label hidden or cut
    assert len(bars["encoding"]["y"]["sort"]) == 25  # one named row per bar, highest first
    assert chart.to_dict()["height"] == {"step": 24}  # sized to the count of bars
    legend = bars["encoding"]["color"]["scale"]["domain"]
    assert legend == ["Within school", "Alternate (district comparison)"]
    rows_drawn = [row for rows in chart.to_dict()["datasets"].values() for row in rows if "text" in row]
    assert sum(row["text"].endswith("(alternate)") for row in rows_drawn) == 5  # said in words, not colour only
    assert values["encoding"]["text"]["field"] == "text"  # every bar labelled with its ratio


def test_status_grid_labels_all_five_change_levels_and_writes_colour_names_in_cells():
    grid = pd.DataFrame({"status_level": ["High", "Low"], "change_level": ["Increased", "Declined significantly"],
                         "color": ["Red", "Blue"]})
    chart = charts_equity.status_grid(grid, "Suspension rate: status and change")
    cells, text = _layers(chart)
    x = cells["encoding"]["x"]
    assert x["scale"]["domain"] == ["Increased significantly", "Increased", "Maintained", "Declined",
                                    "Declined significantly"]
    assert x["axis"]["labelAngle"] == 0 and "split" in x["axis"]["labelExpr"] and x["axis"]["labelOverlap"] is False
    assert [t["title"] for t in cells["encoding"]["tooltip"]] == ["Status this year", "Change from last year",
                                                                  "Colour", "School groups"]
    assert text["encoding"]["text"]["field"] == "label"
    data = chart.to_dict()["datasets"]
    labels = {row["label"] for rows in data.values() for row in rows}
    assert labels == {"1\nRed", "1\nBlue"}  # count and colour name: colour is not the only carrier
    assert chart_bytes(chart, "png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_chart_signals_differ_in_shape_and_words_and_cycle_labels_do_not_overlap():
    table = pd.DataFrame({"period": pd.date_range("2024-08-01", periods=8, freq="MS").strftime("%Y-%m"),
                          "value": [3, 4, 5, 6, 7, 8, 2, 3], "median": 4.5,
                          "signal": ["", "trend", "trend", "trend", "trend", "trend", "", ""]})
    cycles = pd.DataFrame({"start": pd.to_datetime(["2024-09-01", "2024-09-15", "2025-02-01"]),
                           "end": pd.to_datetime(["2024-12-01", "2024-12-15", "2025-03-01"]),
                           "change_idea": ["Restorative circles", "Check-in check-out", "Peer mediation"]})
    chart = charts_equity.run_chart(table, cycles, title="Suspensions per month, North", y_title="Suspensions")
    layers = _layers(chart)
    points = layers[-1]["encoding"]
    assert points["color"]["scale"]["domain"] == ["No signal", "Signal: trend"]
    assert points["shape"]["scale"]["range"] == ["circle", "triangle-up"]
    staggered = charts_equity._stagger(cycles)
    assert staggered["row_y"].iloc[0] != staggered["row_y"].iloc[1]  # close starts: different rows
    assert staggered["row_y"].iloc[2] == staggered["row_y"].iloc[0]  # far apart: the first row again


def test_trend_lines_carry_dashes_and_end_labels():
    df = pd.DataFrame({"school_year": [2024, 2025] * 2, "value": [50, 55, 40, 42],
                       "series": ["All students"] * 2 + ["Students with disabilities"] * 2})
    line, labels = _layers(charts_district.trend_lines(df, "Reading proficient"))
    assert line["encoding"]["strokeDash"]["field"] == "series"
    assert labels["mark"]["type"] == "text" and labels["encoding"]["text"]["field"] == "series"


@pytest.mark.parametrize("page", ["gaps", "discipline"])
def test_page_charts_have_descriptions_and_data_tables(on_demo, page):
    at = _run(page, year="2025", cluster="Northwood")
    charts = at.get("vega_lite_chart")
    assert charts
    for element in charts:
        spec = json.loads(element.proto.spec)
        assert spec.get("description") and "Vega visualization" not in spec["description"]
    assert sum(e.label == "Data table" for e in at.expander) >= len(charts) - (page == "discipline")


def test_gaps_reference_is_in_the_url(on_demo):
    at = _run("gaps", year="2025", reference="best_group")
    assert "best_group" in [s.value for s in at.selectbox]
    assert at.query_params["reference"] in ("best_group", ["best_group"])
    table = at.dataframe[-1].value
    assert not table.isin(["None"]).any().any()
    assert not table["verdict"].str.contains("🟢|🔴|⚪").any()


def test_end_labels_of_lines_ending_close_together_are_spread_apart():
    df = pd.DataFrame({"school_year": [2024, 2025] * 3, "value": [0, -20.1, 0, -20.0, 0, -5.0],
                       "series": ["Black", "Black", "Hispanic", "Hispanic", "Asian", "Asian"]})
    labels = _layers(charts_district.trend_lines(df, "Gap"))[1]
    rows = {r["series"]: r["label_y"] for rows in charts_district.trend_lines(df, "Gap").to_dict()["datasets"].values()
            for r in rows if "label_y" in r}
    assert labels["encoding"]["y"]["field"] == "label_y"
    assert abs(rows["Black"] - rows["Hispanic"]) >= 20 / 14 - 1e-9 and rows["Asian"] == -5.0


def test_chart_specs_match_snapshot():
    """The dot plot and trend charts give the Vega-Lite specs they always gave (view names aside), however
    cheaply they are built (tests/chart_spec_cases.py)."""
    from tests import chart_spec_cases

    want = json.loads(chart_spec_cases.SNAPSHOT.read_text())
    got = chart_spec_cases.specs()
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name
    dots = chart_spec_cases.cases()["dots_with_intervals"].to_dict()
    # the click selection is declared once, on the top level, for the dots' view only
    assert [p["name"] for p in dots["params"]] == ["pick_school"]
    assert dots["params"][0]["views"] == [layer["name"] for layer in dots["layer"] if "name" in layer]
