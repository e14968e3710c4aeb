"""The static-twin benchmark's twins draw exactly the elements of their page (fast version of
benchmarks/bench_static_twin.py: one page, one rerun, no timing goal)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_static_twin  # noqa: E402
from _twin import REPLAY_SCRIPT, TWIN_SCRIPT, _kinds, _load, capture, fallbacks  # noqa: E402


def test_twin_of_the_gaps_page_draws_the_same_elements(on_demo, tmp_path, monkeypatch):
    (tmp_path / "twin.py").write_text(TWIN_SCRIPT)
    (tmp_path / "replay.py").write_text(REPLAY_SCRIPT)
    monkeypatch.setenv("SSIF_TWIN_DIR", str(BENCHMARKS))
    monkeypatch.setenv("SSIF_TWIN_FILE", "")
    # measure_page gives no floor (twin_error) unless both twins draw the page's kinds of blocks and elements
    # in its order
    result = bench_static_twin.measure_page("gaps", {}, tmp_path, repeat=1)
    assert "twin_error" not in result, result.get("twin_error")
    assert result["elements"] > 10
    assert result["twin_rerun_s"] > 0 and result["ratio_to_twin"] > 0
    assert result["replay_rerun_s"] > 0
    # the twin of DESIGN §8 draws every element through a public Streamlit call, none as a finished message
    assert fallbacks(str(tmp_path / "gaps.pickle")) == []



def test_twins_of_the_editing_pages_draw_their_forms_and_rerun(on_demo, tmp_path, monkeypatch):
    """Plans (goal forms with number inputs) and what changed (pills, a meeting form): their twins register every
    keyed widget, so AppTest can rerun them and the pages get a floor."""
    from analytics.data import loads

    (tmp_path / "twin.py").write_text(TWIN_SCRIPT)
    (tmp_path / "replay.py").write_text(REPLAY_SCRIPT)
    monkeypatch.setenv("SSIF_TWIN_DIR", str(BENCHMARKS))
    monkeypatch.setenv("SSIF_TWIN_FILE", "")
    school = loads.load_schools(on_demo)["school_id"].iloc[0]
    for name, params, kind in (("plans", {"school": school}, "number_input"), ("changes", {}, "block:form")):
        result = bench_static_twin.measure_page(name, params, tmp_path, repeat=1)
        assert "twin_error" not in result, result.get("twin_error")
        assert kind in _kinds(_load(str(tmp_path / f"{name}.pickle"))["main"])
        assert fallbacks(str(tmp_path / f"{name}.pickle")) == []


KINDS_PAGE = '''
import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st

st.title("Title")
st.header("Header", help="h")
frame = pd.DataFrame({"school": ["A", "B"], "rate": [12.5, None]})
left, right = st.columns([2, 1], gap="medium")
left.metric("Rate", "12.5%", delta="+1.0 pts", delta_color="inverse", help="pooled")
right.caption("A caption")
with st.sidebar:
    st.selectbox("Year", ["2024", "2025"], index=1, key="year")
    st.multiselect("Groups", ["a", "b", "c"], default=["b"], key="groups")
    st.toggle("Small", value=True, key="small")
    st.checkbox("Check", key="check")
    st.date_input("Day", dt.date(2025, 1, 2), key="day")
    st.text_input("Name", "x", key="name")
    st.text_area("Notes", key="notes")
one, two = st.tabs(["One", "Two"])
with one:
    st.dataframe(frame, hide_index=True, on_select="rerun", selection_mode="single-row", key="table",
                 column_config={"rate": st.column_config.NumberColumn("Rate (%)", format="%.1f")})
with two:
    pick = alt.selection_point(name="pick", fields=["school"])
    chart = alt.Chart(frame).mark_bar().encode(x="school", y="rate").add_params(pick)
    st.altair_chart(chart, on_select="rerun", key="bars")
with st.expander("More", icon=":material/table:"):
    st.info("Info", icon=":material/info:")
    st.markdown("**bold**")
    st.divider()
with st.popover("Download"):
    st.download_button("CSV", lambda: b"x", file_name="x.csv", key="csv", on_click="ignore")
row = st.container(horizontal=True, gap="small")
row.button("Go", key="go")
row.markdown("[link](./x)")
st.file_uploader("File", type=["csv"], key="up")
st.pills("Show", ["a", "b", "c"], selection_mode="multi", default=["a", "c"], format_func=str.upper, key="kinds")
st.segmented_control("View", ["map", "list"], default="list", key="view")
with st.form("goal_form"):
    st.number_input("Year", 1990, 2100, 2025, key="year_in")
    st.number_input("Value", value=None, format="%.1f", key="value_in")
    st.form_submit_button("Save", type="primary")
st.data_editor(frame, hide_index=True, disabled=["school"], key="order")
'''


def test_twin_draws_every_kind_the_pages_use_through_public_calls(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    page = tmp_path / "kinds.py"
    page.write_text(KINDS_PAGE)
    (tmp_path / "twin.py").write_text(TWIN_SCRIPT)
    monkeypatch.setenv("SSIF_TWIN_DIR", str(BENCHMARKS))
    at = AppTest.from_file(str(page)).run()
    assert not at.exception
    kinds = capture(at, tmp_path / "kinds.pickle")
    monkeypatch.setenv("SSIF_TWIN_FILE", str(tmp_path / "kinds.pickle"))
    twin = bench_static_twin._twin_app(tmp_path / "twin.py", "kinds", kinds, widgets=True)  # raises on a difference
    assert fallbacks(str(tmp_path / "kinds.pickle")) == []
    assert twin.selectbox(key="year").value == "2025"
    assert twin.multiselect(key="groups").value == ["b"]
    assert twin.toggle(key="small").value is True
    assert twin.metric[0].value == "12.5%"
    assert twin.tabs[1].label == "Two"
    assert twin.dataframe[0].value["rate"].iloc[0] == 12.5
    # a form's widgets are registered in their form (AppTest reruns them), options as the page formatted them
    assert twin.number_input(key="year_in").value == 2025 and twin.number_input(key="value_in").value is None
    assert twin.button_group(key="kinds").value == ["A", "C"]
    assert twin.button_group(key="view").value == "list"
    assert twin.button[-1].proto.is_form_submitter and twin.button[-1].proto.form_id == "goal_form"
    editor = [e for e in twin.dataframe if e.proto.editing_mode]  # an editor, not a plain table
    assert len(editor) == 1 and editor[0].proto.id.endswith("-order")
    assert not twin.run().exception  # a warm rerun draws again from the prepared results
