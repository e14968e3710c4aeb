"""AppTest of the district, cluster, school and data pages: no exception, deep links, right numbers."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.data import loads, storage
from tests.page_runner import run_page as _run


def _pooled(engine, metric: str, year: int, group: str, school_ids=None) -> float:
    rows = loads.load_metrics(engine, metrics=[metric], years=[year], groups=[group], school_ids=school_ids)
    return 100 * rows["numerator"].sum() / rows["denominator"].sum()


def _metric(at: AppTest, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def test_overview_deep_link_restores_filters_and_shows_pooled_value(on_demo):
    at = _run("overview", year="2024", metric="math_proficient", group="BL")
    assert [s.value for s in at.selectbox] == ["2024", "math_proficient", "BL"]
    expected = _pooled(on_demo, "math_proficient", 2024, "BL")
    assert _metric(at, "Math proficient") == f"{expected:.1f}%"
    n = loads.load_metrics(on_demo, metrics=["math_proficient"], years=[2024], groups=["BL"])["denominator"].sum()
    assert _metric(at, "Students measured") == f"{n:,.0f}"


def test_overview_derives_suspension_rate_from_discipline(on_demo):
    at = _run("overview", metric="suspension_rate", year="2025")
    d = loads.load_discipline(on_demo, years=[2025], groups=["ALL"])
    assert _metric(at, "Suspension rate") == f"{100 * d['students_suspended'].sum() / d['enrolled'].sum():.1f}%"


@pytest.mark.parametrize(("param", "value"), [("year", "1999"), ("metric", "shoe_size"), ("group", "ZZ")])
def test_overview_unknown_values_say_not_found(on_demo, param, value):
    at = _run("overview", **{param: value})
    assert any("was not found" in e.value and value in e.value for e in at.error)
    assert not at.metric


def test_cluster_page_shows_cluster_pooled_value_and_breadcrumb(on_demo):
    schools = loads.load_schools(on_demo)
    cluster = schools["cluster"].iloc[0]
    members = schools.loc[schools["cluster"] == cluster, "school_id"].tolist()
    at = _run("cluster", cluster=cluster, year="2025", metric="read_proficient", group="ALL")
    assert _metric(at, "Cluster reading proficient") == f"{_pooled(on_demo, 'read_proficient', 2025, 'ALL', members):.1f}%"
    assert _metric(at, "Schools reporting") == f"{len(members)} of {len(members)}"
    assert any("[District]" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert len(table) == len(members)


def test_cluster_not_found(on_demo):
    at = _run("cluster", cluster="Atlantis")
    assert any("Atlantis" in e.value for e in at.error)


def test_school_profile_matches_counts(on_demo):
    school_id = loads.load_schools(on_demo)["school_id"].iloc[5]
    at = _run("school", school=school_id, year="2025")
    profile = at.dataframe[0].value
    rows = loads.load_metrics(on_demo, school_ids=[school_id], years=[2025], groups=["ALL"],
                              metrics=["read_proficient"])
    shown = profile[(profile["Metric"] == "Reading proficient") & (profile["Group"] == "All students")]
    expected = 100 * rows["numerator"].iloc[0] / rows["denominator"].iloc[0]
    assert float(shown["School (%)"].iloc[0]) == pytest.approx(expected, abs=0.05)  # shown with one decimal
    small = profile[profile["denominator"] < 10]
    # hidden for fewer than 10 students, and shown as a dash (never "None")
    assert len(small) and (small["School (%)"] == "–").all() and (small["ci_low"] == "–").all()


def test_every_schools_prepared_profile_equals_its_own(on_demo, use_engine):
    """The latest year's profiles, made in blocks of schools (what a school's first view slices), equal
    `school_profile` of each school's own rows for every school of the demo: rows, order, columns, numbers."""
    from analytics.data import aggregates
    from analytics.data.derived import metrics_with_suspension
    from analytics.stats.summaries import school_profile
    from pages.ui import school_loaders

    use_engine(lambda: on_demo)
    year = max(loads.available_years(on_demo))
    ids = loads.load_schools(on_demo)["school_id"].tolist()
    prepared = school_loaders.SchoolProfiles(storage.import_version(on_demo), year, ids)
    district = aggregates.district_figures(on_demo, year)
    assert prepared.of(ids[0]) is None  # not made yet: the page makes the school's own
    assert len(ids) == 200 and prepared.blocks() == 2  # blocks of 100 schools
    for block in range(prepared.blocks()):
        prepared.block(block)
    for school in ids:
        own = metrics_with_suspension(loads.load_metrics(on_demo, school_ids=[school]),
                                      loads.load_discipline(on_demo, school_ids=[school]))
        pd.testing.assert_frame_equal(prepared.of(school), school_profile(own, None, year, district=district))
    assert prepared.of("999999") is None


def test_school_not_found(on_demo):
    at = _run("school", school="999999")
    assert any("999999" in e.value for e in at.error)


def test_data_page_shows_dictionary_and_history(on_demo):
    at = _run("data", tab="Data dictionary")
    tables = [df.value for df in at.dataframe]
    dictionary = next(t for t in tables if "description" in t.columns)
    assert {"schools", "metrics", "discipline"} <= set(dictionary["table"])
    counts = next(df.value for df in _run("data", tab="Import history").dataframe if "rows" in df.value.columns)
    assert counts.set_index("table")["rows"]["schools"] == len(loads.load_schools(on_demo))


def test_data_page_keeps_the_import_forms_choices_while_another_tab_is_open(on_demo):
    """Only the open tab reads its data, but the uploader and the table choice are drawn under every tab: a widget
    left out of a run forgets its value (the files chosen would be gone on coming back from the dictionary)."""
    from tests.page_runner import PAGES

    at = AppTest.from_file(str(PAGES / "data.py"), default_timeout=120)
    at.run()
    at.selectbox(key="import_table").set_value("metrics").run()
    at.session_state["tab"] = "Data dictionary"  # the editor opens the dictionary
    at.run()
    assert any("description" in df.value.columns for df in at.dataframe) and not at.exception
    at.session_state["tab"] = "Import"  # and comes back
    at.run()
    assert at.selectbox(key="import_table").value == "metrics" and len(at.get("file_uploader")) == 1


def test_pages_work_on_a_thin_real_district(imported_district):
    """A state's shape: 1,319 schools in 24 counties, one metric (from metric_definitions), only ALL, one
    year, no coordinates. Pages show what exists and say what is missing."""
    schools = pd.DataFrame({"school_id": [f"{i:04d}" for i in range(1319)],
                            "school_name": [f"School {i}" for i in range(1319)],
                            "level": "ES", "cluster": [f"County {i % 24}" for i in range(1319)]})
    metrics = pd.DataFrame({"school_id": schools["school_id"], "school_year": "2023-24", "metric": "ela_score",
                            "student_group": "ALL", "numerator": 30, "denominator": 60})
    defs = "metric,label,unit,higher_is_better,category\nela_score,ELA met standard,%,Y,Achievement\n"
    imported_district([("schools.csv", schools.to_csv(index=False).encode()),
                       ("metric_definitions.csv", defs.encode()),
                       ("metrics.csv", metrics.to_csv(index=False).encode())])
    at = _run("overview")
    assert _metric(at, "ELA met standard") == "50.0%"
    assert _metric(at, "Schools reporting") == "1,319"
    assert len(at.dataframe[0].value) == 24
    assert any("coordinates" in i.value for i in at.info)
    _run("cluster", cluster="County 1")
    _run("school", school="0003")


@pytest.mark.parametrize(("located", "caption"), [
    (2, "1 school has no coordinates and is not on the map."),
    (1, "2 schools have no coordinates and are not on the map."),
])
def test_the_map_counts_the_schools_it_cannot_place_in_words(imported_district, located, caption):
    schools = pd.DataFrame({"school_id": ["S1", "S2", "S3"], "school_name": ["Oak ES", "Elm ES", "Ash ES"],
                            "level": "ES", "cluster": "North",
                            "latitude": [39.1, 39.2, None][:located] + [None] * (3 - located),
                            "longitude": [-77.1, -77.0, None][:located] + [None] * (3 - located)})
    metrics = pd.DataFrame({"school_id": schools["school_id"], "school_year": "2023-24",
                            "metric": "math_proficient", "student_group": "ALL", "numerator": 30, "denominator": 60})
    imported_district([("schools.csv", schools.to_csv(index=False).encode()),
                       ("metrics.csv", metrics.to_csv(index=False).encode())])
    at = _run("overview")
    assert caption in [c.value for c in at.caption]


def test_changing_a_filter_updates_the_url_and_sticks(on_demo):
    at = _run("overview", year="2025", metric="read_proficient")
    at.selectbox(key="url_year").select("2023").run()
    assert at.query_params["year"] == ["2023"] or at.query_params["year"] == "2023"
    at.run()
    assert at.selectbox(key="url_year").value == "2023"
    assert _metric(at, "Reading proficient") == f"{_pooled(on_demo, 'read_proficient', 2023, 'ALL'):.1f}%"


def test_a_schools_profile_derives_suspension_as_its_district_year_does_on_either_path(tmp_path, monkeypatch,
                                                                                        use_engine):
    """One school imports `suspension_rate` for the latest year, so no school's is derived that year (as the
    district figure): the profile made in blocks and the one made from the school's own rows agree, whichever
    block the school is in and whether its own rows carry an import."""
    import sqlalchemy as sa

    from analytics.data import schema
    from analytics.data.demo import load_demo
    from pages.ui import school_loaders

    engine = storage.get_engine(f"sqlite:///{tmp_path / 'partial.db'}")
    storage.create_schema(engine)
    load_demo(engine, schools=12, years=2, seed=5)
    year = max(loads.available_years(engine))
    ids = sorted(loads.load_schools(engine)["school_id"].tolist())
    with storage.write_transaction(engine) as conn:
        conn.execute(sa.insert(schema.metrics).values(school_id=ids[0], school_year=year, metric="suspension_rate",
                                                      student_group="ALL", numerator=3, denominator=300, value=1.0))
        storage.bump_version(conn, imported=True)  # imported data written: both versions move
    use_engine(lambda: engine)
    monkeypatch.setattr(school_loaders, "import_version", lambda: storage.import_version(engine))
    monkeypatch.setattr(school_loaders, "PROFILE_BLOCK", 5)  # the importing school's block and two without an import
    own = {school: school_loaders.school_profile_of(school, year) for school in ids}  # no block made yet
    prepared = school_loaders.SchoolProfiles(storage.import_version(engine), year, ids)
    assert prepared.blocks() == 3
    for block in range(prepared.blocks()):
        prepared.block(block)
    for school in ids:
        pd.testing.assert_frame_equal(prepared.of(school), own[school])
        shown = own[school].loc[own[school]["metric"] == "suspension_rate", "student_group"].tolist()
        assert shown == (["ALL"] if school == ids[0] else [])  # the import alone; nothing derived this year


def test_cluster_headline_label_is_short_and_its_help_names_metric_group_and_year(on_demo):
    cluster = loads.load_schools(on_demo)["cluster"].iloc[0]
    at = _run("cluster", cluster=cluster, year="2025", metric="math_growth", group="BL")
    headline = at.metric[0]
    assert headline.label == "Cluster math growth"  # was "Cluster math growth (met expected growth) — Black or…"
    assert "Math growth (met expected growth), Black or African American, 2024-25" in headline.help
