"""A school's page pieces (`analytics.outputs.school_view`, `pages.ui.school_views`): hand-computed values, and
every school's opening view made ahead equal to what its page makes alone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.data import loads, storage
from analytics.data.derived import metrics_with_suspension, metrics_with_suspension_by_school
from analytics.outputs.school_view import PROFILE_NOTES, profile_display, trend_groups, trend_rows


def _metrics(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["school_id", "school_year", "metric", "student_group", "numerator",
                                       "denominator", "value", "target"])


def _discipline(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["school_id", "school_year", "student_group", "enrolled", "students_suspended",
                                       "students_oss"])


def test_suspension_is_derived_for_each_school_that_imported_none():
    metrics = _metrics([("A", 2025, "read_proficient", "ALL", 50.0, 100.0, 50.0, np.nan),
                        ("A", 2025, "suspension_rate", "ALL", 3.0, 100.0, 3.0, np.nan),
                        ("B", 2025, "read_proficient", "ALL", 20.0, 80.0, 25.0, np.nan)])
    discipline = _discipline([("A", 2025, "ALL", 100.0, 9.0, 9.0), ("B", 2025, "ALL", 80.0, np.nan, 4.0)])
    both = metrics_with_suspension_by_school(metrics, discipline)
    # A keeps its import (3 of 100); B's is derived: 4 students with OSS (no suspended count) of 80 = 5.0%.
    suspension = both[both["metric"] == "suspension_rate"].set_index("school_id")
    assert suspension.loc["A", "value"] == 3.0
    assert (suspension.loc["B", "numerator"], suspension.loc["B", "denominator"], suspension.loc["B", "value"]) == (
        4.0, 80.0, 5.0)
    for school in ("A", "B"):  # each school's rows, in order, as its own call gives them
        own = metrics_with_suspension(metrics[metrics["school_id"] == school],
                                      discipline[discipline["school_id"] == school])
        pd.testing.assert_frame_equal(both[both["school_id"] == school].reset_index(drop=True),
                                      own.reset_index(drop=True))


def test_trend_opens_on_all_students_the_carried_group_then_the_groups_most_compared():
    assert trend_groups({"ALL", "WH", "HI", "SWD", "AS"}) == ["ALL", "HI", "SWD"]
    assert trend_groups({"ALL", "WH", "HI"}, carried="WH") == ["ALL", "WH", "HI"]
    assert trend_groups({"ALL", "HI"}, carried="HI") == ["ALL", "HI"]


def test_trend_rows_keep_ten_students_or_a_value_without_counts():
    rows = _metrics([("A", 2024, "m", "ALL", 5.0, 10.0, 50.0, np.nan), ("A", 2024, "m", "BL", 4.0, 9.0, 44.4, np.nan),
                     ("A", 2025, "m", "BL", np.nan, np.nan, 40.0, np.nan), ("A", 2025, "n", "ALL", 1.0, 20.0, 5.0, np.nan)])
    trend = trend_rows(rows, "m", ["ALL", "BL"])
    assert trend[["school_year", "student_group", "series"]].values.tolist() == [
        [2024, "ALL", "All students"], [2025, "BL", "Black or African American"]]


def test_profile_display_hides_small_groups_and_orders_each_school_alone_or_in_a_block():
    profiles = pd.DataFrame({
        "school_id": ["B", "A", "A", "A", "B"],
        "metric": ["m", "m", "m", "k", "m"],
        "student_group": ["ALL", "SWD", "ALL", "ALL", "BL"],
        "denominator": [40.0, 8.0, 30.0, np.nan, 12.0],
        "value": [50.0, 25.0, 40.0, 71.0, 30.0],
        "ci_low": [35.0, 7.0, 25.0, np.nan, 12.0], "ci_high": [65.0, 59.0, 57.0, np.nan, 57.0],
        "vs_district": [1.0, -2.0, 3.0, 4.0, -5.0], "gap": [np.nan, -16.0, np.nan, np.nan, -22.0]})
    shown = profile_display(profiles, {"m": "Maths", "k": "Climate"})
    # By school, then metric id, then the catalog's group order (ALL before BL before SWD).
    assert shown[["school_id", "metric", "student_group"]].values.tolist() == [
        ["A", "k", "ALL"], ["A", "m", "ALL"], ["A", "m", "SWD"], ["B", "m", "ALL"], ["B", "m", "BL"]]
    assert shown["Metric"].tolist() == ["Climate", "Maths", "Maths", "Maths", "Maths"]
    # 8 students: value, interval, comparison and gap hidden; no counts: a value shown untested.
    assert shown["School (%)"].isna().tolist() == [False, False, True, False, False]
    assert shown.loc[2, ["ci_low", "ci_high", "vs_district", "gap"]].isna().all()
    assert shown["note"].tolist() == [PROFILE_NOTES[1], "", PROFILE_NOTES[0], "", ""]
    for school in ("A", "B"):
        alone = profile_display(profiles[profiles["school_id"] == school], {"m": "Maths", "k": "Climate"})
        pd.testing.assert_frame_equal(alone, shown[shown["school_id"] == school].reset_index(drop=True))


def test_a_block_keeps_the_discipline_table_of_the_schools_with_an_opening_view_only():
    """A school with no opening view (its own latest year is not the district's) reads its own rows on its page:
    its block keeps none of them. Each school's table is its rows in the catalog's group order."""
    from pages.ui.school_views import OpeningView, _Block

    view = OpeningView([2024, 2025], {"ALL"}, ["m"], [], "m", ("ALL",))
    discipline = _discipline([("C", 2025, "BL", 20.0, 3.0, 3.0), ("A", 2025, "BL", 20.0, 3.0, 3.0),
                              ("B", 2025, "ALL", 80.0, 4.0, 4.0), ("A", 2025, "ALL", 8.0, 1.0, 1.0),
                              ("C", 2025, "ALL", 100.0, 9.0, 9.0)]).assign(oss_days=[5.0, 6.0, 7.0, 2.0, 9.0])
    block = _Block({"A": view, "C": view}, [], discipline, year=2025)
    assert block.discipline_at.keys() == {"A", "C"}
    assert block.discipline_at["A"].tolist() == [0, 1] and block.discipline_at["C"].tolist() == [2, 3]
    # A: ALL before BL; 8 enrolled is under 10 (no rate shown), BL 3 of 20 = 15.0%.
    a = block.discipline.iloc[block.discipline_at["A"]]
    assert a[["Group", "Enrolled", "Suspended", "Rate (%)", "OSS days"]].astype(object).values.tolist() == [
        ["All students", 8.0, 1.0, "–", 2.0], ["Black or African American", 20.0, 3.0, "15.0", 6.0]]
    c = block.discipline.iloc[block.discipline_at["C"]]  # C: 9 of 100 = 9.0%, then BL 15.0%
    assert c["Rate (%)"].tolist() == ["9.0", "15.0"] and c["OSS days"].tolist() == [9.0, 5.0]


def test_every_schools_opening_view_made_ahead_equals_its_own(on_demo, monkeypatch, use_engine):
    """Every school of the demo: what its first view reads, made a block at a time (one read of the block's
    rows), is what the page makes from the school's own rows: years, groups, findings, the rows of its opening
    trend and the trend drawn from them, and its discipline table."""
    from analytics.outputs.school_view import school_findings, years_and_groups
    from pages.ui import catalog_loaders, school_loaders, school_views

    version = storage.import_version(on_demo)  # what the school views are read from: imported tables alone
    use_engine(lambda: on_demo)
    monkeypatch.setattr(school_loaders, "import_version", lambda: version)
    year = max(loads.available_years(on_demo))
    schools = loads.load_schools(on_demo)
    views = school_views.OpeningViews(school_loaders.SchoolProfiles(version, year, schools["school_id"].tolist()))
    assert views.of(schools["school_id"].iloc[0]) is None  # not made yet: the page makes the school's own
    assert len(list(views.pieces())) == 4  # two blocks of 100 schools: profiles, then opening views
    labels, catalog = catalog_loaders._metric_labels(version), catalog_loaders._catalog(version)
    names = dict(zip(schools["school_id"], schools["school_name"], strict=True))
    n_findings, n_layouts = 0, set()
    for school in schools["school_id"]:
        made = views.of(school)
        rows = metrics_with_suspension(loads.load_metrics(on_demo, school_ids=[school]),
                                       loads.load_discipline(on_demo, school_ids=[school]))
        years, present = years_and_groups(rows)
        assert (made.years, made.present) == (years, present)
        profile = school_loaders.school_profile_of(school, year)
        assert made.metrics == list(profile["metric"].unique())
        assert made.findings == school_findings(rows, profile, school, year, years, lambda m: labels.get(m, m),
                                                lambda m: bool(catalog.loc[m, "higher_is_better"]))
        n_findings += any("significant" in line for line in made.findings)
        assert made.groups == tuple(trend_groups(present)) and made.metric == made.metrics[0]
        own_trend = trend_rows(rows, made.metric, made.groups)
        pd.testing.assert_frame_equal(views.trend_rows(school), own_trend)
        pd.testing.assert_frame_equal(views.trend_wide(school), school_views.trend_wide(own_trend))
        chart, by_year, summary = school_views.trend_view(views.trend_rows(school), labels[made.metric],
                                                          names[school], key=("test", school),
                                                          wide=views.trend_wide(school))
        assert summary.startswith(f"{labels[made.metric]} at {names[school]}, ") and len(by_year) == len(
            set(own_trend["student_group"]))
        discipline = loads.load_discipline(on_demo, school_ids=[school])
        own = school_views.discipline_table(discipline[discipline["school_year"] == year], school, year, public=False)
        made_table = views.discipline_table(school)
        pd.testing.assert_frame_equal(made_table[0], own[0])
        assert made_table[1] == own[1]
        own_profile = school_views.profile_table(profile_display(profile, labels), school, year, public=False)
        made_profile = views.profile_table(school)
        pd.testing.assert_frame_equal(made_profile[0], own_profile[0])  # the table read
        assert made_profile[1] == own_profile[1]  # its column settings
        pd.testing.assert_frame_equal(made_profile[2], own_profile[2])  # the table downloaded
        n_layouts.add((tuple(made_profile[0].columns), tuple(map(str, made_profile[0].dtypes))))
    assert n_findings > 0 and len(n_layouts) > 1  # schools whose tables drop or show as text different columns
    assert views.of("999999") is None and views.trend_rows("999999") is None and views.profile_table("999999") is None


def test_a_schools_page_shows_the_same_from_its_opening_view_and_reads_none_of_its_rows(on_demo, monkeypatch):
    """Schools of both blocks: a first view after the preparer made the opening views shows what a first view
    without them shows (figures, tables, chart specs, text), without reading the school's own rows."""
    import streamlit as st

    from pages import ui
    from pages.ui import school_views
    from tests.page_runner import run_page
    from tests.test_prepare import _shown

    ids = loads.load_schools(on_demo)["school_id"].tolist()
    chosen = [ids[0], ids[99], ids[150]]
    unprepared = {school: _shown(run_page("school", school=school)) for school in chosen}
    st.cache_data.clear()
    st.cache_resource.clear()
    views = school_views._opening_views(storage.data_version(on_demo), max(loads.available_years(on_demo)))
    list(views.pieces())

    def no_read(*args, **kwargs):
        raise AssertionError("the opening view read the school's rows")

    monkeypatch.setattr(ui, "school_metrics", no_read)
    monkeypatch.setattr(ui, "discipline", no_read)
    for school in chosen:
        assert views.of(school) is not None
        assert _shown(run_page("school", school=school)) == unprepared[school], school


def test_the_schools_header_finds_its_row_and_an_unknown_school_is_not_found(on_demo):
    """The header is the school's own row (its name, level, cluster and enrollment), found by one comparison;
    a school the district does not have is named as not found."""
    from tests.page_runner import run_page

    schools = loads.load_schools(on_demo)
    row = schools.iloc[3]
    at = run_page("school", school=row["school_id"])
    facts = at.caption[0].value
    assert f"School {row['school_id']}" in facts and f"{row['cluster']} cluster" in facts and row["level"] in facts
    assert f"{row['enrollment']:,.0f} students" in facts
    assert row["school_name"] in at.title[0].value
    assert "School “nope” was not found." in run_page("school", school="nope").error[0].value
