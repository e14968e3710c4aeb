"""AppTest of /gaps and /discipline: deep links, numbers equal to analytics, thin real-shaped data."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.data import loads, storage
from analytics.stats.disproportionality import disproportionality
from analytics.stats.rp_impact import rp_impact
from tests.page_runner import run_page as _run


def test_gaps_page_deep_link_and_findings(on_demo):
    at = _run("gaps", metric="math_growth", year="2025", level="ES")
    assert [s.value for s in at.selectbox][:3] == ["ES", "2025", "math_growth"]
    findings = at.markdown[0].value
    assert "closing" in findings and "z-test" in findings
    table = at.dataframe[-1].value
    assert {"closing", "widening"} & {v.split(" ", 1)[-1] for v in table["verdict"]} or len(table)


def test_gaps_trend_is_summed_once_on_its_own_thread_and_is_the_pooled_trend_of_the_view(on_demo, monkeypatch):
    import threading

    from analytics.data import aggregates
    from analytics.stats.gaps import pooled_gap_trend_from_sums

    st.cache_data.clear()
    st.cache_resource.clear()
    from pages.ui import caching, metric_loaders

    summed, original = [], aggregates.gap_trend_sums
    monkeypatch.setattr(aggregates, "gap_trend_sums", lambda *args, **kwargs: summed.append(
        threading.current_thread().name) or original(*args, **kwargs))
    started, ahead = [], caching.ahead
    monkeypatch.setattr(metric_loaders, "ahead", lambda name, *args: started.append(name) or ahead(name, *args))
    schools = loads.load_schools(on_demo)
    cluster = schools["cluster"].value_counts().index[0]
    at = _run("gaps", metric="math_growth", year="2025", cluster=cluster)
    # Started on its thread as the page opened, summed once (by that thread, unless the run's own call came first
    # on a busy machine: then the run waited for nothing and the thread found it made).
    assert started == ["gap-trend"] and len(summed) == 1
    ids = schools.loc[schools["cluster"] == cluster, "school_id"].tolist()
    trend = pooled_gap_trend_from_sums(original(on_demo, "math_growth", ids))
    shown = next(df.value for df in at.dataframe if "mh_gap" in df.value.columns)
    year = trend[trend["school_year"] == 2025]
    assert len(shown) == len(year) > 0
    assert shown["gap"].tolist() == [f"{v:+.1f}" for v in year["gap"]]
    _run("gaps", metric="math_growth", year="2025", cluster=cluster)  # a new session reads the sums made
    assert len(summed) == 1


def test_a_thread_a_run_starts_reads_through_the_engine_without_a_warning_per_read(on_demo):
    """Work started ahead (`ui.ahead`) and what changed's threads read through `engine()`, which looks for a legacy
    pages run: off the script thread there is none, and the server's log is not told so at every read."""
    import logging
    import threading

    from pages.ui import data_versions

    data_versions.engine()  # the run made it
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    logger.addHandler(handler)
    try:
        thread = threading.Thread(target=data_versions.engine, name="gap-trend")
        thread.start()
        thread.join(30)
    finally:
        logger.removeHandler(handler)
    assert seen == []


def test_gaps_not_found(on_demo):
    at = _run("gaps", cluster="Atlantis")
    assert any("Atlantis" in e.value for e in at.error)


def test_discipline_page_shows_the_rp_estimate_of_analytics(on_demo):
    at = _run("discipline", year="2025")
    expected = rp_impact(loads.load_schools(on_demo), loads.load_discipline(on_demo)).statement
    assert expected in at.markdown[0].value
    assert "fell by" in expected and "unlikely to be chance alone" in expected  # the planted demo effect is found


def test_discipline_flag_links_match_the_three_year_rule(on_demo):
    school = loads.load_schools(on_demo)["school_id"].iloc[0]
    at = _run("discipline", school=school, year="2025")
    table = disproportionality(loads.load_discipline(on_demo))
    flagged = table[(table["school_id"] == school) & (table["school_year"] == 2025) & table["flagged"]]
    links = [m.value for m in at.markdown if "school?school=" in m.value]
    assert len(links) == flagged[["school_id", "student_group"]].drop_duplicates().shape[0]


def test_thin_district_gets_the_views_its_data_supports(imported_district):
    """Only students_suspended, race groups only, five years, no incidents, no RP schools."""
    schools = pd.DataFrame({"school_id": [f"{i:03d}" for i in range(12)], "school_name": [f"S{i}" for i in range(12)],
                            "level": "HS", "cluster": "County A"})
    rows = []
    for sid in schools["school_id"]:
        for year in range(2016, 2021):
            rows += [(sid, year, "BL", 200, 30), (sid, year, "WH", 300, 12), (sid, year, "HI", 100, 6)]
    discipline = pd.DataFrame(rows, columns=["school_id", "school_year", "student_group", "enrolled",
                                             "students_suspended"])
    imported_district([("schools.csv", schools.to_csv(index=False).encode()),
                       ("discipline.csv", discipline.to_csv(index=False).encode())])
    at = _run("discipline", group="BL")
    text = " ".join(i.value for i in at.info)
    assert "ISS/OSS split" in text and "incident" in text
    assert "no RP schools" in at.markdown[0].value
    assert any("ALL was summed" in c.value for c in at.caption)
    # BL risk 30/200 = 15% vs others (12+6)/(300+100) = 4.5% -> RR 3.33 in every year: flagged
    flag = "S0 · Black or African American · suspension \\(in or out of school\\) \\(3.3\\)"
    assert any(flag in m.value for m in at.markdown)
    _run("gaps")


def test_discipline_tables_are_suppressed_for_shared_views(on_demo):
    school = loads.load_schools(on_demo)["school_id"].iloc[0]
    at = _run("discipline", school=school, year="2025", share="token-checked-by-the-app-shell")
    rates = at.dataframe[0].value
    assert (rates["Enrolled (n)"] == "*").any()  # the school's American Indian and Pacific Islander groups
    assert rates.isin(["<= 5.0%"]).any().any()
    numeric = pd.to_numeric(rates["Enrolled (n)"].str.replace(",", ""), errors="coerce").dropna()
    assert (numeric >= 10).all()


def test_a_cluster_discipline_view_shows_its_own_sums_before_and_after_every_cluster_s_are_made(on_demo):
    """A cold cluster view pools its own schools' sums; once the preparer has made every cluster's, the view
    reads its slice of them: the same rates by group, composition and findings either way."""
    from pages.ui import caching, discipline_loaders

    st.cache_data.clear()
    st.cache_resource.clear()  # the flags of what is made go with the caches
    cluster = str(loads.load_schools(on_demo)["cluster"].iloc[0])
    cold = _run("discipline", cluster=cluster)
    version = storage.import_version(on_demo)  # what the district-wide results are keyed on
    # nothing district-wide was pooled or counted for it (sums, rates, months); only the district's flagged rows
    # are made, which every scope slices
    assert caching._made() <= {("flags", version)}
    years, _ = discipline_loaders._discipline_choices(version)
    discipline_loaders._cluster_group_rates(version, years[-1])  # as the preparer makes them
    for actions in (None, ("ISS", "OSS")):
        discipline_loaders._cluster_incident_months(version, actions)
    assert {("sums", version), ("rates", version, years[-1]), ("months", version, None),
            ("months", version, ("ISS", "OSS"))} <= caching._made()
    warm = _run("discipline", cluster=cluster)
    for before, after in zip(cold.dataframe, warm.dataframe, strict=True):
        pd.testing.assert_frame_equal(before.value, after.value)
    assert [m.value for m in cold.markdown] == [m.value for m in warm.markdown]


def test_a_cluster_discipline_view_shows_the_same_from_the_pieces_made_ahead_and_builds_none(on_demo, monkeypatch):
    """Clusters spread over the district, one of them with a school chosen and one on an earlier year: after the
    preparer's discipline step (each cluster's flags and ratios of the latest year as a slice, its run chart)
    and its RP view (event study and estimates), each view shows what it shows with nothing made ahead
    (figures, tables, chart specs, text); a cluster's opening view neither gathers its rows from every year's
    ratios, counts its incidents per month nor builds its RP view."""
    from analytics.data.prepare import Step
    from pages.ui import caching, compact, discipline_loaders, prepare, rp_views
    from tests.test_prepare import _shown

    schools = loads.load_schools(on_demo)
    clusters = sorted(schools["cluster"].dropna().unique())
    versions = storage.versions(on_demo)
    version = versions.imports  # what the district-wide results are keyed on
    st.cache_data.clear()
    st.cache_resource.clear()
    years, _ = discipline_loaders._discipline_choices(version)
    views = [{"cluster": c} for c in clusters[::3]]
    views += [{"cluster": clusters[1], "school": schools.loc[schools["cluster"] == clusters[1], "school_id"].iloc[0]},
              {"cluster": clusters[1], "year": str(years[-2])}]
    unprepared = [_shown(_run("discipline", **view)) for view in views]
    assert caching._made() <= {("flags", version)}  # the district's flagged rows, which every scope slices
    st.cache_data.clear()
    st.cache_resource.clear()
    for _ in prepare._run(Step("discipline", "discipline"), versions):
        pass
    assert {("year ratios", version, years[-1]), ("run charts", version)} <= caching._made()
    made = [rp_views._cluster_rp_view(version, view["cluster"]) for view in views]  # as the RP step makes them
    assert any(view is not None for view in made)  # a cluster with an estimate to draw
    year_rows = discipline_loaders.year_flags_and_ratios  # the page's own call, before it is watched below

    def gathered(*args, **kwargs):
        raise AssertionError("a cluster's opening view gathered its rows or counted its months")

    for view, shown in zip(views, unprepared, strict=True):
        with monkeypatch.context() as watched:
            if set(view) == {"cluster"}:  # its opening view: slices of what the preparer made
                watched.setattr(discipline_loaders, "flags_and_ratios", gathered)
                watched.setattr(discipline_loaders, "incident_months", gathered)
                watched.setattr(rp_views, "rp_view", gathered)
            assert _shown(_run("discipline", **view)) == shown, view
    flagged, ratios = year_rows(years[-1], None, clusters[0])
    ids = set(schools.loc[schools["cluster"] == clusters[0], "school_id"])
    every_flagged, every_ratio = discipline_loaders._flags_and_ratios(version, None)
    every_ratio = compact._as_read(every_ratio)  # kept with its texts as categories, read as the page reads it
    for mine, every in ((flagged, every_flagged), (ratios, every_ratio)):  # its rows, in table order, labels kept
        pd.testing.assert_frame_equal(mine, every[every["school_id"].isin(ids) & (every["school_year"] == years[-1])])


def test_a_cluster_discipline_view_starts_its_rp_estimates_and_year_ratios_on_threads_as_it_opens(on_demo,
                                                                                                  monkeypatch):
    """Before the preparer, a cluster's view starts its restorative-practices estimates (then those beside
    suspensions), the reads of the outcomes beside suspensions and its year's flags and ratios on threads as it
    opens, each made once; once every school's ratios and its estimates are made, the view slices and looks them
    up and starts no thread: none for nothing on a prepared server either."""
    import threading

    from pages.ui import caching, data_versions, discipline_loaders, rp_loaders

    started, ahead = [], caching.ahead
    for starts_ahead in (rp_loaders, discipline_loaders):  # the RP estimates' threads, the year's flags' thread
        monkeypatch.setattr(starts_ahead, "ahead", lambda name, *args: started.append(name) or ahead(name, *args))
    estimated, original = [], rp_loaders.rp_impact_for_cluster
    monkeypatch.setattr(rp_loaders, "rp_impact_for_cluster", lambda *args, **kwargs: estimated.append(
        threading.current_thread().name) or original(*args, **kwargs))
    cluster = str(loads.load_schools(on_demo)["cluster"].value_counts().index[0])
    at = _run("discipline", cluster=cluster)
    assert not at.exception
    assert started == ["rp-metrics", "rp-estimates", "year-flags"] and len(estimated) == 1
    discipline_loaders.flags_and_ratios()  # every school's, as the preparer makes them
    started.clear()
    again = _run("discipline", cluster=cluster)
    assert not again.exception
    assert started == [] and len(estimated) == 1  # the estimate read as made
    version = data_versions.import_version()
    rp_loaders._rp_impact(version, "all", None)  # the district's, as the preparer's RP step makes them
    rp_loaders._rp_beyond(version, "all", None)
    district = _run("discipline")
    assert not district.exception and started == []


def test_the_findings_slot_says_it_is_working_until_the_findings_replace_it(on_demo):
    """The slot is written at once (so a rerun for another scope never shows the last scope's findings while
    it works) and holds the findings when the run ends, not the placeholder."""
    cluster = str(loads.load_schools(on_demo)["cluster"].iloc[0])
    for page, params in (("discipline", {"cluster": cluster}), ("gaps", {})):
        at = _run(page, **params)
        assert not [c.value for c in at.caption if c.value.startswith("Working out")], page
        assert any(m.value.startswith("- ") for m in at.markdown), page  # the findings' bullet list


def test_a_rerun_of_a_discipline_view_reads_no_sums_and_shows_the_same(on_demo, monkeypatch):
    """The scope's sums are read once, on the view's first run, by the views made from them (counts present,
    findings, rates by group and composition); a rerun draws those views and reads no sums."""
    from pages import ui

    read = []
    sums = ui.discipline_sums
    monkeypatch.setattr(ui, "discipline_sums", lambda *a, **k: read.append(a) or sums(*a, **k))
    cluster = str(loads.load_schools(on_demo)["cluster"].iloc[0])
    at = _run("discipline", cluster=cluster)
    frames, markdown = [d.value for d in at.dataframe], [m.value for m in at.markdown]
    assert len(read) == 1
    at.run()
    assert len(read) == 1
    assert [m.value for m in at.markdown] == markdown
    for before, after in zip(frames, at.dataframe, strict=True):
        pd.testing.assert_frame_equal(before, after.value)
