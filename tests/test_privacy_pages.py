"""Shared views show what `--public` shows: every number on a shared school or discipline page is a released cell.

The issue's examples: a shared school page's discipline table showed "7 enrolled / 0 suspended" and counts
of 2, 7 and 8; a Findings line printed "2.9% → 3.3%" above a table coded "<= 5.0%".
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analytics.access.release_store import release_for
from analytics.data import loads
from analytics.data.catalog import STUDENT_GROUPS, group_label
from tests.page_runner import run_page

SHARE = "token-checked-by-the-app-shell"  # the shell verifies tokens; pages only see that a link is shared


def _small_group_school(engine) -> str:
    """A school whose latest year has a group under 10 students (the "7 enrolled / 0 suspended" shape)."""
    discipline = loads.load_discipline(engine)
    latest = discipline[discipline["school_year"] == discipline["school_year"].max()]
    return str(latest.loc[latest["enrolled"] < 10, "school_id"].iloc[0])


def _numbers(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column.astype(str).str.replace(",", ""), errors="coerce")


def test_shared_school_page_shows_no_small_cell_and_no_finding_about_a_coded_rate(on_demo):
    school = _small_group_school(on_demo)
    release = release_for(on_demo)
    at = run_page("school", school=school, year="2025", share=SHARE)
    discipline = at.dataframe[-1].value
    enrolled, suspended = _numbers(discipline["Enrolled"]), _numbers(discipline["Suspended"])
    assert (discipline["Enrolled"] == "*").any() and not (enrolled < 10).any()
    assert not ((suspended >= 1) & (suspended <= 9)).any()
    # A count is shown only for cells the release shows exactly (so never the count behind a coded rate).
    cells = release.cells.xs((school, 2025.0, "suspension"), level=("unit", "school_year", "measure"))
    shown = discipline["Group"][suspended.notna().to_numpy()]
    code_of = {group_label(g): g for g in STUDENT_GROUPS}
    for label in shown:
        assert cells.loc[code_of[label], "state"] == "exact", label
    # Findings never state a rate change whose years are not both released.
    findings = " ".join(m.value for m in at.markdown)
    suspension_all = cells.loc["ALL", "state"]
    if suspension_all != "exact":
        assert not re.search(r"Suspension rate [^.]*→", findings)


def test_shared_discipline_page_codes_rates_and_hides_shares_of_hidden_counts(on_demo):
    school = _small_group_school(on_demo)
    at = run_page("discipline", school=school, year="2025", share=SHARE)
    rates = at.dataframe[0].value
    assert (rates["Enrolled (n)"] == "*").any()
    values = rates.drop(columns=["Enrolled (n)"]).astype(str)
    assert values.isin(["<= 5.0%", "*"]).any().any()
    numbers = values.apply(lambda c: _numbers(c.str.rstrip("%")))
    assert not ((numbers > 0) & (numbers <= 5)).any().any()  # a rate at or under 5% is only ever shown coded
    composition = at.dataframe[-1].value if len(at.dataframe) > 1 else None
    if composition is not None and "share of suspended (%)" in composition:
        shares = composition["share of suspended (%)"].astype(str)
        assert (shares == "*").any() or np.isfinite(_numbers(shares)).all()


def _too_few(at) -> int | None:
    texts = " ".join(c.value for c in at.caption)
    found = re.search(r"([\d,]+) schools? (?:has|have|shows?) (?:too few|no) Black or African American", texts)
    return None if found is None else int(found.group(1).replace(",", ""))


def test_a_shared_discipline_page_explains_its_marks_and_states_only_what_it_shows(on_demo):
    """The rates table's `*` and bands are explained beside it; no line says no group is flagged (flags resting
    on a withheld ratio are left out, not absent); schools without a shown ratio are counted as such, not
    as "0 schools have too few students"."""
    from analytics.access.privacy import marks_legend

    args = {"cluster": "all", "school": "all", "year": "2025", "group": "BL"}
    shared, staff = run_page("discipline", **args, share=SHARE), run_page("discipline", **args)
    rates = shared.dataframe[0].value
    assert rates.astype(str).isin(["*", "<= 5.0%"]).any().any()
    assert {alignment for _, alignment, _ in _kinds(shared.dataframe[0]).values()} == {"right"}
    assert any(marks_legend() in c.value for c in shared.caption)
    assert not any("`*` = withheld" in c.value for c in staff.caption)
    findings = shared.markdown[0].value
    assert "No released group" not in findings and "On a shared link a flag is shown only where" in findings
    assert "None in scope." not in [m.value for m in shared.markdown]
    assert _too_few(staff) > 0 and "have too few Black" in " ".join(c.value for c in staff.caption)
    assert _too_few(shared) >= _too_few(staff)  # the too small, and the withheld
    assert "too few students to compute one, or withheld by the privacy rules" in " ".join(
        c.value for c in shared.caption)


def _composition(at) -> pd.DataFrame:
    return next(table.value for table in at.dataframe if "share of suspended (%)" in table.value.columns)


def test_a_shared_composition_table_is_text_as_staff_read_it_with_stars_and_needs_no_arrow_fix(on_demo, monkeypatch):
    """Each share column is one type (text) on a shared page, so Streamlit converts it to Arrow as it is (no
    automatic fix of mixed `*` and numbers, no warning); a released share reads as the staff page shows it."""
    from streamlit import dataframe_util

    school = _small_group_school(on_demo)
    fixed = []
    fix = dataframe_util.fix_arrow_incompatible_column_types
    monkeypatch.setattr(dataframe_util, "fix_arrow_incompatible_column_types",
                        lambda df, *a, **k: fixed.append(list(df.columns)) or fix(df, *a, **k))
    shared = _composition(run_page("discipline", school=school, year="2025", share=SHARE))
    assert fixed == []
    staff = _composition(run_page("discipline", school=school, year="2025"))
    assert list(shared.index) == list(staff.index)
    for column in ("share of suspended (%)", "share of enrolled (%)"):
        assert {type(v) for v in shared[column]} == {str}
        assert staff[column].dtype == "float64"
        released = shared[column] != "*"
        assert [f"{v:.1f}" for v in staff.loc[released, column]] == shared.loc[released, column].tolist()
    assert (shared["share of enrolled (%)"] == "*").any() and (shared["share of enrolled (%)"] != "*").any()


def test_shared_gaps_page_rates_only_released_statuses(on_demo):
    from analytics.outputs.views import build_view

    cluster = loads.load_schools(on_demo)["cluster"].iloc[0]
    at = run_page("gaps", metric="suspension_rate", year="2025", cluster=cluster, share=SHARE)
    public = build_view(on_demo, "status-change", cluster=cluster, metric="suspension_rate", year=2025, public=True)
    released = public[~public["status_level"].isin(["*", ""]) & ~public["change_level"].isin(["*", ""])]
    texts = " ".join(e.value for e in [*at.markdown, *at.caption])
    rated = re.search(r"([\d,]+) school student groups rated", texts)
    if not released["color"].isin(["Red", "Orange", "Yellow", "Green", "Blue"]).any():
        assert rated is None  # nothing released has a colour: the page says so instead of drawing a grid
    else:
        assert int(rated.group(1).replace(",", "")) == len(released)


def test_a_shared_gaps_table_says_why_its_within_school_columns_are_empty(on_demo):
    import json

    shared = run_page("gaps", metric="math_growth", year="2025", share=SHARE)
    within = next(t for t in shared.dataframe if "mh_gap" in t.value.columns)
    assert set(within.value["mh_gap"]) == {"–"}
    config = json.loads(within.proto.columns)
    for col in ("mh_gap", "mh_low", "mh_high"):
        assert config[col]["help"].startswith("Not shown on shared links: the within-school gap is computed"), col
    assert any("within-school columns show –" in c.value for c in shared.caption)
    staff = run_page("gaps", metric="math_growth", year="2025")
    assert not any("within-school columns show" in c.value for c in staff.caption)


def test_shared_cluster_page_shows_only_released_school_rates(on_demo):
    from analytics.access.release_store import release_for

    schools = loads.load_schools(on_demo)
    cluster = schools["cluster"].iloc[0]
    release = release_for(on_demo)
    at = run_page("cluster", cluster=cluster, year="2025", metric="suspension_rate", group="ALL", share=SHARE)
    table = at.dataframe[-1].value
    states = release.cells.xs((2025.0, "suspension", "ALL"), level=("school_year", "measure", "student_group"))["state"]
    for link, name, value in zip(table["open"], table.iloc[:, 0], table.iloc[:, 2], strict=True):
        sid = re.search(r"school=([^&]+)", link).group(1)
        expected = {"exact": None, "low": "<= 5.0%", "high": ">= 95.0%", "hidden": "*"}[states[sid]]
        if expected is not None:
            assert value == expected, (name, value)
    kpis = {m.label: m.value for m in at.metric}
    cluster_state = states[f"cluster:{cluster}"]
    if cluster_state != "exact":
        assert not any(re.fullmatch(r"\d+(\.\d)?%", str(v)) for k, v in kpis.items() if k.startswith("Cluster"))


def _kinds(table) -> dict:
    """Each column's kind, alignment and number format as the grid is told them."""
    import json

    return {col: ((spec.get("type_config") or {}).get("type"), spec.get("alignment"),
                  (spec.get("type_config") or {}).get("format"))
            for col, spec in json.loads(table.proto.columns).items() if col != "_index"}


def test_a_shared_table_keeps_the_staff_column_kinds_links_and_precision(on_demo):
    """A shared table's links are links, a column nothing was hidden in keeps its number format, and a column
    holding `*` or a band is right-aligned text whose numbers read as the staff table's (0.97, not 1.0)."""
    args = {"year": "2025", "metric": "read_proficient", "group": "ALL"}
    staff = _kinds(run_page("overview", **args).dataframe[-1])
    shared_at = run_page("overview", **args, share=SHARE)
    assert _kinds(shared_at.dataframe[-1]) == staff
    assert staff["open"][0] == "link" and staff["reliability"] == ("number", None, "%.2f")
    assert shared_at.dataframe[-1].value["reliability"].dtype == "float64"

    cluster = loads.load_schools(on_demo)["cluster"].iloc[0]
    args = {"cluster": cluster, "year": "2025", "metric": "suspension_rate", "group": "ALL"}
    staff_table = run_page("cluster", **args).dataframe[-1]
    shared_table = run_page("cluster", **args, share=SHARE).dataframe[-1]
    kinds, shared = _kinds(shared_table), shared_table.value
    assert kinds["open"][0] == "link" and kinds["school_name"][0] == "text"
    assert shared["value"].isin(["*", "<= 5.0%"]).any()  # the example needs a masked column
    for col, (kind, alignment, _) in kinds.items():
        if shared[col].dtype == object and shared[col].isin(["*", "<= 5.0%", ">= 95.0%"]).any():
            assert (kind, alignment) == ("text", "right"), col
    by_name = staff_table.value.set_index("school_name")
    for col, digits in (("value", 1), ("reliability", 2), ("ci_low", 1)):
        released = shared[~shared[col].isin(["*", "<= 5.0%", ">= 95.0%", "–"])]
        assert len(released), col
        assert [f"{v:.{digits}f}" for v in by_name.loc[released["school_name"], col]] == \
            [v if isinstance(v, str) else f"{v:.{digits}f}" for v in released[col]], col


def test_shared_overview_states_no_coded_district_rate(on_demo):
    release = release_for(on_demo)
    at = run_page("overview", year="2025", metric="suspension_rate", group="ALL", share=SHARE)
    state = release.cells.loc[("district", 2025.0, "suspension", "ALL"), "state"]
    kpi = next(m for m in at.metric if m.label.startswith("Suspension"))
    if state != "exact":
        assert not re.fullmatch(r"\d+(\.\d+)?%", str(kpi.value))


def test_a_coded_cluster_kpi_shows_its_band(on_demo):
    # A KPI card whose cell is coded says "<= 5.0%" (it showed "–", as if there were no data).
    release = release_for(on_demo)
    cells = release.cells.xs((2025.0, "suspension"), level=("school_year", "measure")).reset_index()
    coded = cells[cells["unit"].str.startswith("cluster:") & (cells["state"] == "low")].iloc[0]
    cluster, group = coded["unit"][len("cluster:"):], coded["student_group"]
    at = run_page("cluster", cluster=cluster, year="2025", metric="suspension_rate", group=group, share=SHARE)
    kpis = {m.label: m.value for m in at.metric}
    assert next(v for k, v in kpis.items() if k.startswith("Cluster")) == "<= 5.0%", kpis
    district = release.cells.loc[("district", 2025.0, "suspension", group), "state"]
    expected = {"low": "<= 5.0%", "high": ">= 95.0%", "hidden": "*"}.get(district)
    if expected:
        assert kpis["District"] == expected



def _one_school_impact():
    """Suspensions pooled over 3 RP schools; beside them, climate rests on 1 (the other two have no survey);
    the event study's year +3 rests on the one school that started early enough."""
    from analytics.stats.rp_impact import RPImpact

    def summary_row(outcome, estimate, n_rp):
        return {"outcome": outcome, "estimate": estimate, "ci_low": estimate - 1, "ci_high": estimate + 1,
                "p_value": 0.02, "n_rp_schools": n_rp, "n_comparison_schools": 40, "method": "DiD"}

    summary = pd.DataFrame([summary_row("suspension_rate", -1.5, 3)])
    beyond = pd.DataFrame([summary_row("chronic_absence", 0.5, 3), summary_row("climate_safety", 4.25, 1)])
    events = pd.DataFrame({"outcome": "suspension_rate", "rel_year": [-2, -1, 0, 1, 3],
                           "estimate": [0.1, 0.0, -1.0, -1.5, -6.0], "ci_low": [-0.5, 0.0, -2.0, -2.5, -9.0],
                           "ci_high": [0.7, 0.0, 0.0, -0.5, -3.0], "n_schools": [3, 3, 3, 2, 1]})
    return RPImpact(summary, events, "statement"), beyond


def test_the_rp_rule_withholds_an_event_study_year_resting_on_one_school():
    from analytics.access.privacy import release_view

    impact, _ = _one_school_impact()
    starred = release_view(impact.event_study, "rp-impact", None)
    assert starred["estimate"].tolist() == [0.1, 0.0, -1.0, -1.5, "*"]
    assert starred.loc[4, ["ci_low", "ci_high"]].tolist() == ["*", "*"] and starred["n_schools"].tolist()[-1] == 1


def test_a_shared_rp_view_withholds_every_estimate_resting_on_one_school_and_staff_see_them_all():
    """The suspension estimate is withheld whole by the page when one RP school stands behind it; the outcomes
    beside it and the event study's years carry their own counts, checked here one by one."""
    from pages.ui import rp_views

    impact, beyond = _one_school_impact()
    key = ("event study", "test")
    events, _, rows, shown = rp_views.public_rp_view(impact, beyond, "Ashford", str, key + ("public",))
    assert events["rel_year"].tolist() == [-2, -1, 0, 1] and rows["Years since start"].tolist() == [-2, -1, 0, 1]
    assert shown["Estimate"].tolist() == ["-1.50", "+0.50", "*"]
    assert shown["p (randomization)"].tolist() == ["0.020", "0.020", "*"]
    assert shown.loc[2, ["95% CI", "Verdict"]].tolist() == ["*", "*"] and shown["RP schools"].tolist() == [3, 3, 1]
    _, _, staff_rows, staff = rp_views.rp_view(impact, beyond, "Ashford", str, key)
    assert staff["Estimate"].tolist() == [-1.5, 0.5, 4.25] and staff_rows["Years since start"].tolist()[-1] == 3


def test_a_masked_columns_numbers_keep_their_format_percent_signs_included():
    """Beside a `*`, a masked column's numbers are written as its number format says: printf formats with text
    after the number ("%.0f%%" reads 12%), and the grid is told it is right-aligned text, not a number column."""
    import streamlit as st

    from pages.ui.tables import python_format
    from pages.ui.viewer import as_shown

    assert [python_format(f).format(12.345) for f in ("%.1f", "%+.1f", "%.0f%%", "%.2f pts")] == [
        "12.3", "+12.3", "12%", "12.35 pts"]
    masked = pd.DataFrame({"share": ["*", 61.25], "n": [4, 30]}).astype({"share": object})
    shown, config = as_shown(masked, {"share": st.column_config.NumberColumn("Share", format="%.0f%%"),
                                      "n": st.column_config.NumberColumn("n")})
    assert shown["share"].tolist() == ["*", "61%"] and shown["n"].tolist() == [4, 30]
    assert config["share"]["alignment"] == "right" and config["share"]["type_config"]["type"] == "text"
    assert config["n"]["type_config"]["type"] == "number"
