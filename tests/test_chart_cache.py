"""Finished charts (pages/ui/charts.py): built and validated once per arguments, drawn exactly as
`st.altair_chart` draws the Altair chart they come from."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest


def _draw_both():
    """A script drawing one chart through ui.chart twice: as Altair, then finished (run by AppTest)."""
    import pandas as pd

    from analytics.outputs import charts_district as charts
    from pages import ui

    trend = pd.DataFrame({"school_year": [2023, 2024, 2025] * 2, "value": [40.0, 42.5, 45.0, 50.0, 49.0, 51.5],
                          "series": ["All students"] * 3 + ["English learners"] * 3})
    ui.chart(charts.trend_lines(trend, "Reading proficient", title="Reading by group"), None, "Up 5 points.")
    ui.chart(ui.finished(charts.trend_lines, trend, "Reading proficient", title="Reading by group"), None,
             "Up 5 points.")


def _decoded(chart) -> tuple[dict, list]:
    """A drawn Vega-Lite element's spec with dataset names replaced by their order, and its datasets' rows."""
    from streamlit import dataframe_util

    proto = chart.proto
    spec = proto.spec
    names = [d.name for d in proto.datasets]
    for i, name in enumerate(names):
        spec = spec.replace(name, f"dataset-{i}")
    rows = [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data).to_dict("records") for d in proto.datasets]
    return json.loads(spec), rows


def test_a_finished_chart_draws_the_same_spec_and_data_as_the_altair_chart():
    at = AppTest.from_function(_draw_both, default_timeout=60).run()
    assert not at.exception
    altair, finished = at.get("vega_lite_chart")
    spec, rows = _decoded(altair)
    assert _decoded(finished) == (spec, rows)
    assert spec["description"] == "Reading by group. Up 5 points."
    assert spec["width"] == "container" and spec["autosize"] == {"type": "fit-x", "contains": "padding"}
    assert "config" not in spec or "continuousWidth" not in json.dumps(spec["config"])  # Altair's theme is off
    assert len(rows) == 2 and len(rows[0]) == 6  # the lines and their end labels


def _resolved(spec: dict, rows_of) -> dict:
    """A spec with each named dataset replaced by its rows (`rows_of(name)`), `$schema` and theme left out."""
    def walk(node):
        if isinstance(node, dict):
            if node.keys() == {"name"} and isinstance(node["name"], str) and node["name"].startswith("data-"):
                return {"values": rows_of(node["name"])}
            return {k: walk(v) for k, v in node.items() if k not in ("$schema", "config", "datasets")}
        return [walk(v) for v in node] if isinstance(node, list) else node

    return walk(spec)


def test_a_chart_written_as_a_dict_draws_the_spec_altair_writes_of_it():
    """The dot plot, trend lines and the discipline charts are Vega-Lite dicts: what a page draws (tables by
    name, sent as Arrow) is the spec Altair writes (tables inline), for snapshot cases
    (tests/chart_spec_cases.py)."""
    import altair as alt

    from analytics.outputs import charts_district, charts_equity
    from pages import ui
    from tests import chart_spec_cases

    args = {"dots_with_intervals": (charts_district.school_dot_plot, (chart_spec_cases._schools(12), "Math", 52.5),
                                    {}),
            "trend_by_school": (charts_district.trend_lines, (chart_spec_cases._trends(["A", "B"]), "Reading"),
                                {"color_field": "school", "facet_field": "school", "columns": 2}),
            "trend_by_group": (charts_district.trend_lines, (chart_spec_cases._trends(["A", "B", "C"]), "Reading"),
                               {}),
            "ratios_by_school": (charts_equity.risk_ratio_bars, (chart_spec_cases._ratios(9),), {"label_field": "label"}),
            "event_study": (charts_equity.event_study, (chart_spec_cases._events(),), {"title": "RP, North"}),
            "run_chart": (charts_equity.run_chart, (chart_spec_cases._months(), chart_spec_cases._cycles()), {})}
    for name, (build, a, kw) in args.items():
        drawn = ui.finished(build, *a, **kw)
        written = build(*a, **kw).to_dict()
        assert drawn.spec["$schema"] == written["$schema"] == alt.SCHEMA_URL, name
        rows = {n: alt.utils.data.to_values(frame)["values"] for n, frame in drawn.datasets.items()}
        assert _resolved(drawn.spec, rows.get) == _resolved(written, written["datasets"].get), name
        assert json.loads(drawn.to_json()) == written  # exports render Altair's form


def test_a_chart_is_built_once_per_distinct_arguments():
    import altair as alt
    import pandas as pd

    from pages import ui

    built = []

    def bars(frame: pd.DataFrame, title: str) -> alt.Chart:
        built.append(title)
        return alt.Chart(frame, title=title).mark_bar().encode(x="a:Q", y="b:N")

    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    first = ui.finished(bars, frame, "One")
    again = ui.finished(bars, frame.copy(), "One")  # equal data, another object: the same finished chart
    other = ui.finished(bars, frame.assign(a=[3.0, 4.0]), "One")
    assert again is first and other is not first
    assert built == ["One", "One"]
    assert first.spec["title"] == "One" and "datasets" not in first.spec
    assert list(first.datasets.values())[0].equals(frame)
    assert json.loads(first.to_json())["title"] == "One"  # exports render the source chart


def test_a_finished_map_carries_the_json_tooltip_and_points_streamlit_would_send():
    import pandas as pd
    from streamlit.elements.deck_gl_json_chart import _get_pydeck_tooltip, _prepare_pydeck_for_json

    from analytics.outputs import charts_district as charts
    from pages import ui

    schools = pd.DataFrame({"school_id": ["A", "B"], "school_name": ["Ash", "Birch"], "cluster": ["N", "N"],
                            "latitude": [39.0, 39.1], "longitude": [-77.0, -77.1],
                            "color": [[1, 2, 3, 255], [4, 5, 6, 255]], "value_text": ["50.0%", "60.0%"],
                            "n_text": ["100", "120"]})

    def build():
        return charts.school_map(schools, "<b>{school_name}</b>: {value_text}")

    as_streamlit = build()
    _prepare_pydeck_for_json(as_streamlit)
    finished = ui.FinishedMap(build())
    assert json.loads(finished.to_json()) == json.loads(as_streamlit.to_json())  # the same document, unindented
    assert _get_pydeck_tooltip(finished) == _get_pydeck_tooltip(as_streamlit) == {
        "html": "<b>{school_name}</b>: {value_text}"}
    assert '"Birch"' in finished.to_json()


def test_a_key_stands_for_the_arguments_so_large_tables_are_not_hashed_on_every_rerun():
    import altair as alt
    import pandas as pd

    from pages import ui

    def dots(frame: pd.DataFrame) -> alt.Chart:
        return alt.Chart(frame).mark_point().encode(x="a:Q")

    first = ui.finished(dots, pd.DataFrame({"a": [1.0]}), key=("v1", "view"))
    assert ui.finished(dots, pd.DataFrame({"a": [1.0]}), key=("v1", "view")) is first
    assert ui.finished(dots, pd.DataFrame({"a": [2.0]}), key=("v2", "view")) is not first


def _draw_table_twice():
    """One table drawn as a DataFrame, then as its Arrow-ready table (run by AppTest)."""
    import pandas as pd
    import streamlit as st

    from pages import ui

    frame = pd.DataFrame({"School": ["Ash", "Birch"], "Rate (%)": [12.5, None], "n": [40, 8]})
    st.dataframe(frame, hide_index=True, column_config={"n": st.column_config.NumberColumn("n", format="localized")})
    st.dataframe(ui.arrow_ready(frame), hide_index=True,
                 column_config={"n": st.column_config.NumberColumn("n", format="localized")})


def test_an_arrow_ready_table_sends_the_same_bytes_and_settings_as_its_frame():
    import pandas as pd

    from pages import ui

    at = AppTest.from_function(_draw_table_twice, default_timeout=60).run()
    assert not at.exception
    as_frame, as_arrow = at.dataframe
    assert as_arrow.proto.arrow_data.data == as_frame.proto.arrow_data.data
    assert as_arrow.proto.columns == as_frame.proto.columns
    assert as_arrow.value["Rate (%)"].tolist()[0] == 12.5 and as_arrow.value["School"].tolist() == ["Ash", "Birch"]
    frame = pd.DataFrame({"a": [1, 2]})
    assert ui.arrow_ready(frame) is ui.arrow_ready(frame)  # converted once per frame object
    assert ui.arrow_ready(frame.copy()) is not ui.arrow_ready(frame)
    assert ui.arrow_ready(frame).num_rows == 2


def test_a_finished_chart_keeps_each_dataset_as_the_bytes_streamlit_sends():
    import altair as alt
    import pandas as pd
    from streamlit import dataframe_util

    from pages import ui

    def bars(frame: pd.DataFrame) -> alt.Chart:
        return alt.Chart(frame).mark_bar().encode(x="a:Q", y="b:N")

    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    chart = ui.finished(bars, frame, key=("arrow-bytes", 1))
    (name, data), = chart.datasets.items()
    assert chart.arrow == {name: dataframe_util.convert_anything_to_arrow_bytes(data)}


def _memo_page():
    """Counts computations of one per-run value asked for three times in a run (run by AppTest)."""
    import streamlit as st

    from pages.ui.state import per_run, start_run

    if st.session_state.get("pinned", True):
        start_run()
    computed = st.session_state.setdefault("computed", [])
    for _ in range(3):
        per_run("answer", lambda: computed.append(1) or 42)
    st.markdown(str(len(computed)))


def test_a_per_run_value_is_computed_once_per_run_and_again_in_the_next():
    at = AppTest.from_function(_memo_page, default_timeout=60).run()
    assert at.markdown[0].value == "1"
    at.run()
    assert at.markdown[0].value == "2"
    bare = AppTest.from_function(_memo_page, default_timeout=60)
    bare.session_state["pinned"] = False  # a run nobody started: nothing is kept
    bare.run()
    assert bare.markdown[0].value == "3"


def _drawn_page():
    """A view drawn through ui.drawn twice in a run and once more on the next run (run by AppTest)."""
    import streamlit as st

    from pages import ui

    made = st.session_state.setdefault("made", [])

    @ui.drawn
    def view(version: int, name: str):
        made.append(name)
        return {"title": name.upper()}

    first, again = view(1, "ash"), view(1, "ash")
    other = view(2, "ash")
    st.markdown(f"{len(made)} {first is again} {first is other} {first['title']}")


def test_a_drawn_view_is_made_once_per_arguments_and_shared_between_reruns():
    import streamlit as st

    st.cache_resource.clear()
    at = AppTest.from_function(_drawn_page, default_timeout=60).run()
    assert at.markdown[0].value == "2 True False ASH"
    at.run()
    assert at.markdown[0].value == "2 True False ASH"  # the next rerun only looks them up
