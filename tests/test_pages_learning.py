"""AppTest of /learning: five levels with findings equal to analytics, deep links, not-found, levels without data."""

from __future__ import annotations

import pandas as pd

from analytics.data import loads, storage
from analytics.data.importer import import_bytes
from analytics.learning import load
from tests.page_runner import PAGES
from tests.page_runner import run_page as _run


def _findings(at) -> str:
    return next(m.value for m in at.markdown if "Level 1" in m.value)


def test_learning_page_shows_each_level_with_the_analytics_finding(on_demo):
    at = _run("learning", program="MATH-TALK")
    assert [s.value for s in at.selectbox][:3] == ["MATH-TALK", "all", "math_proficient"]
    text = _findings(at)
    expected = load.evaluate_program(on_demo, load.pl_tables(on_demo), "MATH-TALK")
    for level in expected.levels:
        assert f"Level {level.level}" in text
    level5 = expected.levels[4].finding
    assert "unlikely to be chance alone" in level5  # the demo's planted effect is found
    assert level5 in text.replace("\\", "")
    assert "Hedges' g" in text and "Nexus" in " ".join(h.value for h in at.subheader)


def test_a_programmes_evaluation_is_made_once_on_its_own_thread_while_level_1_is_drawn(on_demo, monkeypatch):
    import threading

    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    from pages import ui

    made, original = [], load.evaluate_program
    monkeypatch.setattr(load, "evaluate_program", lambda *args, **kwargs: made.append(
        threading.current_thread().name) or original(*args, **kwargs))
    estimated, overall = [], load.overall_effect
    monkeypatch.setattr(load, "overall_effect", lambda *args, **kwargs: estimated.append(
        threading.current_thread().name) or overall(*args, **kwargs))
    started, ahead = [], ui.ahead
    monkeypatch.setattr(ui, "ahead", lambda name, *args: started.append(name) or ahead(name, *args))
    at = _run("learning", program="RP")
    # Level 1's feedback sums are read on a thread of their own as the programme is chosen; the evaluation's threads
    # start once they are read (level 5's overall estimate and the walkthroughs beside the rest of the evaluation),
    # each made once (by its thread, unless the run's own call came first on a busy machine: the cache makes each
    # entry once either way).
    assert started == ["level 1", "level 5", "walkthroughs", "evaluation"] and len(made) == 1
    assert len(estimated) == 1
    expected = original(on_demo, load.pl_tables(on_demo), "RP")
    assert all(level.finding.replace("\\", "") in _findings(at).replace("\\", "") for level in expected.levels[2:])
    _run("learning", program="RP")  # a new session reads the evaluation made
    assert len(made) == 1


def test_an_import_landing_while_the_evaluation_reads_its_outcomes_reruns_the_page_instead_of_mixing_versions(
        own_district, monkeypatch):
    """The evaluation reads the outcome panel itself: a write landing meanwhile makes the page run again (as a
    loader's read does) rather than caching newer outcomes under the version level 1 was drawn at."""
    import streamlit as st
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    original, made = load.evaluate_program, []

    def then_a_write(engine, *args, **kwargs):
        made.append(storage.data_version(engine))
        result = original(engine, *args, **kwargs)
        if len(made) == 1:  # an import lands while the first evaluation reads
            with engine.begin() as conn:
                storage.bump_version(conn, imported=True)
        return result

    monkeypatch.setattr(load, "evaluate_program", then_a_write)
    shown = config.get_option("client.showErrorDetails")
    config.set_option("client.showErrorDetails", "full")  # the error's name, not the redacted message
    try:
        at = AppTest.from_file(str(PAGES / "learning.py"), default_timeout=120)
        at.query_params["program"] = "RP"
        at.run()
    finally:
        config.set_option("client.showErrorDetails", shown)
    assert [e.value for e in at.exception] == [f"data version {made[0]} was replaced before it was read"]  # rerun
    assert made[0] + 1 == storage.data_version(own_district)


def test_learning_school_deep_link_and_not_found(on_demo):
    sessions = loads.load_table(on_demo, "pl_sessions", programs=["RP"])
    school = sorted(sessions["school_id"].dropna().unique())[0]
    at = _run("learning", program="RP", school=school, metric="suspension_rate")
    assert [s.value for s in at.selectbox][:3] == ["RP", school, "suspension_rate"]
    assert "participating school" in _findings(at)
    missing = _run("learning", program="ASTRONOMY")
    assert any("ASTRONOMY" in e.value for e in missing.error)


def test_levels_without_data_are_named(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'pl.db'}"
    engine = storage.get_engine(url)
    storage.create_schema(engine)
    schools = pd.DataFrame({"school_id": ["A", "B"], "school_name": ["Adams", "Banneker"], "level": "ES",
                            "cluster": "North"})
    programs = pd.DataFrame({"program": ["COACH"], "program_name": ["Coaching"], "goal_metrics": ["math_proficient"]})
    feedback = pd.DataFrame({"program": "COACH", "session_id": "S1", "item": "Useful", "response": [3, 4, 5],
                             "count": [2, 5, 6]})
    report = import_bytes(engine, [(f"{n}.csv", f.to_csv(index=False).encode()) for n, f in
                                   (("schools", schools), ("pl_programs", programs), ("pl_feedback", feedback))])
    assert report.ok, report.problems
    monkeypatch.setenv("DATABASE_URL", url)
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    at = _run("learning")
    info = " ".join(i.value for i in at.info)
    assert "No data yet for level 2" in info and "`pl_assessments`" in info and "`implementation`" in info
    assert "85% agreed" in _findings(at)  # 11 of 13


def test_no_programmes_says_what_to_import(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    engine = storage.get_engine(url)
    storage.create_schema(engine)
    schools = pd.DataFrame({"school_id": ["A"], "school_name": ["Adams"], "level": "ES", "cluster": "North"})
    assert import_bytes(engine, [("schools.csv", schools.to_csv(index=False).encode())]).ok
    monkeypatch.setenv("DATABASE_URL", url)
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    at = _run("learning")
    assert "pl_programs" in at.info[0].value


def test_the_chain_slot_holds_the_chain_when_the_run_ends(on_demo):
    at = _run("learning", program="MATH-TALK")
    assert not [c.value for c in at.caption if c.value.startswith("Working out")]
    assert any("the chain of evidence" in s.value for s in at.subheader)


def test_level_2_table_and_sources_read_in_words_for_staff_and_on_a_shared_link(on_demo):
    for params in ({}, {"share": "token-checked-by-the-app-shell"}):
        at = _run("learning", program="RP", **params)
        table = next(d.value for d in at.dataframe if "Measure" in d.value.columns)
        assert list(table.columns) == ["Measure", "Estimate", "95% interval", "n"]
        assert table["Measure"].tolist() == ["Effect size g", "Mean change (points)"]
        assert table["Estimate"].str.fullmatch(r"\d\.\d\d|[+-]\d+\.\d").all()  # no 16-digit numbers
        assert table["n"].str.fullmatch(r"\d+").all()  # not "216.0"
        text = " ".join(m.value for m in at.markdown)
        assert "g_av" not in text and "average gain of g =" in text
        assert "`implementation`" not in text and "(the implementation file on the Data page)" in text
