"""The data-meeting pack: sheets, native charts, slides, images, CSVs, injection, public suppression."""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from pptx import Presentation
from streamlit.testing.v1 import AppTest

from analytics import cli
from analytics.data import loads, storage
from analytics.data.importer import import_bytes
from analytics.outputs.meeting import (
    build_pack,
    deck_bytes,
    learning_specs,
    pack_title,
    specs_from_url,
    standard_specs,
    workbook_bytes,
    zip_bytes,
)
from analytics.outputs.views import build_view

PAGES = Path(__file__).resolve().parent.parent / "pages"


@pytest.fixture(scope="module")
def pack_files(demo_db_url):
    engine = storage.get_engine(demo_db_url)
    schools = loads.load_schools(engine)
    cluster = schools["cluster"].iloc[0]
    specs = standard_specs(cluster=cluster, year=2025, schools=schools,
                           metric_names={"read_proficient": "Reading proficient"})
    pack = build_pack(engine, specs, pack_title(schools, cluster, None, 2025), public=False)
    return engine, cluster, pack, workbook_bytes(pack), deck_bytes(pack), zip_bytes(pack)


def test_workbook_has_a_sheet_per_view_values_of_analytics_and_native_charts(pack_files):
    engine, cluster, pack, xlsx, _, _ = pack_files
    book = load_workbook(io.BytesIO(xlsx))
    assert book.sheetnames == ["Cover", "1 What changed", "2 Rates", "3 Status and change", "4 Gaps", "5 Risk ratios",
                               "6 RP impact", "7 Run chart", "8 Goals"]
    sheet = book["2 Rates"]
    header = next(r for r in range(1, 12) if sheet.cell(r, 1).value == "School")
    assert sheet.freeze_panes == f"A{header + 1}"
    expected = build_view(engine, "rates", cluster=cluster, year=2025, metric="read_proficient")
    first = expected.iloc[0]
    names = loads.load_schools(engine).set_index("school_id")["school_name"]
    assert sheet.cell(header + 1, 2).value == first["school_id"]  # the id beside the name
    assert sheet.cell(header + 1, 1).value.startswith(names[first["school_id"]])
    headers = [c.value for c in sheet[header] if c.value]
    assert sheet.cell(header + 1, headers.index("Rate (%)") + 1).value == pytest.approx(first["value"])
    assert len(sheet._charts) == 1 and len(book["7 Run chart"]._charts) == 1
def test_public_pack_has_no_count_under_10(demo_db_url):
    engine = storage.get_engine(demo_db_url)
    cluster = loads.load_schools(engine)["cluster"].iloc[0]
    pack = build_pack(engine, standard_specs(cluster=cluster, year=2025)[:5], "Public", public=True)
    book = load_workbook(io.BytesIO(workbook_bytes(pack)))
    for item, name in zip(pack.items, book.sheetnames[1:], strict=True):
        for col in ("denominator", "enrolled", "numerator", "count"):
            if col in item.table:
                numbers = pd.to_numeric(item.table[col], errors="coerce").dropna()
                denominators = item.table.get("denominator", item.table.get("enrolled"))
                small = pd.to_numeric(denominators, errors="coerce") < 10
                assert not small.any(), (name, col)
                assert (numbers >= 0).all()


def test_formula_like_school_names_stay_text(tmp_path):
    url = f"sqlite:///{tmp_path / 'inj.db'}"
    engine = storage.get_engine(url)
    storage.create_schema(engine)
    names = ['=HYPERLINK("http://evil","x")', "+1", "-2+3", "@SUM(A1)", "=1+1", "-cmd"]
    schools = pd.DataFrame({"school_id": [f"s{i}" for i in range(len(names))], "school_name": names, "level": "ES",
                            "cluster": ["=cmd|' /C calc'!A0"] * len(names)})
    metrics = pd.DataFrame({"school_id": schools["school_id"], "school_year": 2025, "metric": "read_proficient",
                            "student_group": "ALL", "numerator": 40, "denominator": 80})
    assert import_bytes(engine, [("schools.csv", schools.to_csv(index=False).encode()),
                                 ("metrics.csv", metrics.to_csv(index=False).encode())]).ok
    pack = build_pack(engine, standard_specs(year=2025)[1:2], "=Injected title")
    book = load_workbook(io.BytesIO(workbook_bytes(pack)))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert not (isinstance(cell.value, str) and cell.value[:1] in "=+-@\t\r"), cell.value
    with zipfile.ZipFile(io.BytesIO(zip_bytes(pack))) as z:
        text = z.read("tables/01-rates.csv").decode()
        assert "\n=" not in text and ",=" not in text and ",+" not in text
        assert "'=cmd" in text  # the cluster's name, neutralised


def test_the_status_and_change_slide_follows_the_chosen_metric_or_says_why_not():
    """Reading proficient has status cut points: its slide is its own. A survey measure has none (no colour can
    be given), so the slide is the suspension rate's and its title says why."""
    names = {"read_proficient": "Reading proficient", "suspension_rate": "Suspension rate",
             "climate_safety": "Climate: safety (survey, % favourable)"}
    chosen = {s.view: s for s in standard_specs(year=2025, metric="read_proficient", metric_names=names)}
    assert chosen["status-change"].filters["metric"] == "read_proficient"
    assert chosen["status-change"].title == "Status and change: Reading proficient"
    survey = {s.view: s for s in standard_specs(year=2025, metric="climate_safety", metric_names=names)}
    assert survey["status-change"].filters["metric"] == "suspension_rate"
    assert survey["status-change"].title == ("Status and change: Suspension rate, as Climate: safety (survey, % "
                                             "favourable) has no colour cut points")
    assert survey["rates"].filters["metric"] == "climate_safety"


def test_view_urls_map_to_tables():
    specs = specs_from_url("http://h/cluster?cluster=North&year=2025&share=abc")
    assert [s.view for s in specs] == ["rates", "status-change"]
    assert specs[0].filters == {"cluster": "North", "year": 2025}
    with pytest.raises(ValueError):
        specs_from_url("http://h/data")


def test_the_learning_view_is_offered_without_counting_any_table(demo_db_url, tmp_path):
    """Whether a programme has been imported is asked with `EXISTS`: counting every imported table's rows took
    seconds of the meeting page's first view at 10,000 schools."""
    engine = storage.get_engine(demo_db_url)
    statements, here = [], threading.get_ident()

    def note(_conn, _cursor, statement, *_):  # this test's own: the engine is shared with other tests' threads
        if threading.get_ident() == here:
            statements.append(statement.lower())

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        assert [spec.view for spec in learning_specs(engine)] == ["learning"]
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    assert statements and not any("count(" in statement for statement in statements)
    empty = storage.get_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    storage.create_schema(empty)
    assert learning_specs(empty) == []


def test_cli_exports_the_pack(demo_db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    cluster = loads.load_schools(storage.get_engine(demo_db_url))["cluster"].iloc[0]
    out = tmp_path / "pack.xlsx"
    assert cli.main(["export", "meeting", "--cluster", cluster, "--year", "2025", "-o", str(out)]) == 0
    assert "[9/9] Professional learning" in capsys.readouterr().err  # the demo has PL programmes: their sheet
    book = load_workbook(out)
    assert any("PL evaluation" in name for name in book.sheetnames)
    assert len(book.sheetnames) == 10 and book["Cover"]["A1"].value == f"Data meeting: {cluster} cluster, 2024-25"
    assert cli.main(["export", "meeting", "-o", str(tmp_path / "pack.txt")]) == 2


def test_meeting_page_builds_a_pack(demo_db_url, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(PAGES / "meeting.py"), default_timeout=180)
    at.run()
    assert not at.exception
    for key in ("pack_gaps", "pack_disproportionality", "pack_rp-impact", "pack_run-chart", "pack_status-change"):
        at.checkbox(key=key).uncheck()
    at.run()
    cluster = loads.load_schools(storage.get_engine(demo_db_url))["cluster"].iloc[0]
    at.selectbox(key="pack_cluster").set_value(cluster).run()
    assert [t.value for t in at.text_input if t.label == "Pack title"] == [f"Data meeting: {cluster} cluster, 2024-25"]
    at.button(key="pack_build").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "pack_files" in at.session_state and at.session_state["pack_files"]["xlsx"][:2] == b"PK"
    assert at.session_state["pack_preview"].stem == f"data-meeting-{cluster.lower()}-cluster-2024-25"


def test_the_meeting_pages_example_url_is_the_apps_own_and_follows_the_chosen_metric(demo_db_url, monkeypatch):
    """The pasted-URL example names a real cluster at the address the app is opened at (relative when the page runs
    without a browser), not a fixed port; it can be pasted as it is. The status-and-change view is of the chosen
    metric."""
    import streamlit as st

    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(PAGES / "meeting.py"), default_timeout=180)
    at.run()
    first = sorted(loads.load_schools(storage.get_engine(demo_db_url))["cluster"].unique())[0]
    example = at.text_area(key="pack_urls").placeholder
    assert example == f"/cluster?cluster={first}&year=2025".replace(" ", "+") and "8501" not in example
    assert specs_from_url(example)[0].filters == {"cluster": first, "year": 2025}
    at.selectbox(key="pack_metric").set_value("read_proficient").run()
    titles = at.data_editor(key="pack_order").value["title"].tolist()
    assert "Status and change: Reading proficient" in titles


def test_the_meeting_page_builds_what_changed_and_goals_from_the_goal_progress_it_holds(own_district, monkeypatch):
    """The page's pack slices the app's goal progress (one computation per data version) and has the content
    the pack built on its own has (which computes it for each sheet that reads it)."""
    from analytics.workspace import goals as goal_rules

    calls = []
    computed = goal_rules.goal_progress
    monkeypatch.setattr(goal_rules, "goal_progress", lambda *a, **k: calls.append(1) or computed(*a, **k))
    at = AppTest.from_file(str(PAGES / "meeting.py"), default_timeout=180)
    at.run()
    for key in ("pack_rates", "pack_gaps", "pack_disproportionality", "pack_rp-impact", "pack_run-chart",
                "pack_status-change", "pack_learning"):
        at.checkbox(key=key).uncheck()
    engine = own_district
    cluster = loads.load_schools(engine)["cluster"].iloc[0]
    at.selectbox(key="pack_cluster").set_value(cluster).run()
    at.button(key="pack_build").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(calls) == 1
    pack = at.session_state["pack_preview"]
    assert [item.spec.view for item in pack.items] == ["changes", "goals"]
    alone = build_pack(engine, [item.spec for item in pack.items], pack.title, pack.date, pack.public)
    assert len(calls) == 3  # on its own, each of the two sheets computed it again
    assert len(pack.items[0].table) and len(pack.items[1].table)  # the demo's cluster has changes and goals
    for item, same in zip(pack.items, alone.items, strict=True):
        pd.testing.assert_frame_equal(item.table, same.table)
        pd.testing.assert_frame_equal(item.sheet, same.sheet)
        assert (item.finding, item.filters_text) == (same.finding, same.filters_text)


# --- read back: titles, names, headers, native chart references, alt text, slide size ---------------------


def _chart_refs(chart) -> tuple[list[tuple[str, str]], str]:
    """Each series' (title cell, value range) of a native chart, and its categories' range."""
    series = [(s.tx.strRef.f, s.val.numRef.f) for s in chart.series]
    cat = chart.series[0].cat
    return series, (cat.strRef or cat.numRef).f


def _cells(book, ref: str) -> list:
    sheet_name, cells = ref.rsplit("!", 1)
    sheet = book[sheet_name.strip("'")]
    cells = sheet[cells.replace("$", "")]
    return [cells.value] if not isinstance(cells, tuple) else [c.value for row in cells for c in row]


@pytest.mark.parametrize(("flagged", "finding"), [
    (["true", "false"], "1 school group in the district meets the 3-year rule"),
    (["true", "true"], "2 school groups in the district meet the 3-year rule"),
])
def test_the_risk_ratio_finding_counts_flagged_school_groups_in_words(flagged, finding):
    from analytics.outputs.pack_views import Context, dispro_finding

    schools = pd.DataFrame({"school_id": ["1", "2"], "school_name": ["Oak ES", "Elm ES"], "cluster": "North"})
    table = pd.DataFrame({"school_id": ["1", "2"], "school_year": 2025, "student_group": "BL", "outcome": "suspension",
                          "risk_ratio": [3.5, 3.2], "ratio_type": "within_school", "flagged": flagged})
    assert dispro_finding(Context(None, schools, {}, {}), table).startswith(finding)


@pytest.mark.parametrize(("months", "words"), [(1, "over 1 month; 1 month in a shift"),
                                              (8, "over 8 months; 8 months in a shift")])
def test_the_run_chart_finding_counts_months_in_words(months, words):
    from analytics.outputs.pack_views import Context, run_finding

    table = pd.DataFrame({"month": pd.date_range("2024-09-01", periods=months, freq="MS"), "value": 4.0,
                          "median": 4.0, "signal": "shift"})
    assert words in run_finding(Context(None, pd.DataFrame(), {}, {}), table)


def test_workbook_reads_like_a_report_about_the_clusters_schools(pack_files):
    engine, cluster, pack, xlsx, _, _ = pack_files
    book = load_workbook(io.BytesIO(xlsx))
    schools = loads.load_schools(engine)
    members = set(schools.loc[schools["cluster"] == cluster, "school_name"])
    assert book["Cover"]["A1"].value == f"Data meeting: {cluster} cluster, 2024-25"
    assert any(name in str(book["Cover"]["A5"].value) for name in members)  # the schools it is about
    for sheet in book.worksheets[1:]:
        header = next(r for r in range(1, 12) if sheet.cell(r, 1).value and sheet.cell(r + 1, 1).value is not None
                      and sheet.cell(r, 1).font.bold and r > 2)
        headers = [c.value for c in sheet[header] if c.value]
        assert not [h for h in headers if "_" in str(h)], (sheet.title, headers)  # no snake_case
        codes = {"read_proficient", "BL", "within_school", "law_referral", "iss"}
        assert not codes & {str(c.value) for row in sheet.iter_rows(min_row=header + 1) for c in row}, sheet.title
    rates = book["2 Rates"]
    ((title, values),), cats = _chart_refs(rates._charts[0])
    assert _cells(book, title) == ["Reading proficient (%)"]  # the series' title is its header
    names = _cells(book, cats)
    assert set(names) <= members and len(names) == len(members)  # one bar per school, each named
    assert rates._charts[0].x_axis.tickLblSkip == 1 and rates._charts[0].dataLabels.showVal
    plotted = _cells(book, values)
    assert plotted == sorted(plotted, reverse=True) and all(isinstance(v, float) for v in plotted)


def test_risk_ratio_chart_plots_ratios_of_one_outcome_named_by_school_and_group(pack_files):
    _, _, pack, xlsx, _, _ = pack_files
    book = load_workbook(io.BytesIO(xlsx))
    ((title, values),), cats = _chart_refs(book["5 Risk ratios"]._charts[0])
    assert _cells(book, title) == ["Risk ratio"]
    ratios = _cells(book, values)
    assert ratios and all(isinstance(v, float) for v in ratios)  # no row without a ratio
    item = pack.items[4]
    expected = item.table[(item.table["outcome"] == "suspension") & item.table["risk_ratio"].notna()]
    assert max(ratios) == pytest.approx(expected["risk_ratio"].max())
    assert all(" · " in label for label in _cells(book, cats))  # "School · Group"


def test_deck_is_16_9_names_schools_has_alt_text_and_no_interactive_hints(pack_files):
    engine, cluster, pack, _, pptx, _ = pack_files
    deck = Presentation(io.BytesIO(pptx))
    assert (deck.slide_width, deck.slide_height) == (12192000, 6858000)  # 13.333 x 7.5 in
    assert len(deck.slides) == 1 + len(pack.items)
    texts = ["\n".join(sh.text_frame.text for sh in slide.shapes if sh.has_text_frame) for slide in deck.slides]
    assert texts[0].startswith(f"Data meeting: {cluster} cluster, 2024-25")
    members = loads.load_schools(engine).query("cluster == @cluster")["school_name"]
    assert any(name in texts[0] for name in members) and any(name in texts[2] for name in members)
    assert texts[1].startswith("What changed since the last meeting")  # the first slide after the title
    assert not any("Click" in text or "click" in text for text in texts)
    for slide in deck.slides:
        assert slide.shapes.title.width >= deck.slide_width * 0.85  # sized for 16:9, not 4:3
        for shape in slide.shapes:
            if shape.shape_type == 13:  # a picture
                descr = shape._element.nvPicPr.cNvPr.get("descr")
                assert descr and len(descr) > 40
                assert shape.left + shape.width <= deck.slide_width
    pictures = [s for s in deck.slides if any(sh.shape_type == 13 for sh in s.shapes)]
    assert len(pictures) == sum(item.chart is not None for item in pack.items)
    rp, run = texts[6], texts[7]
    assert f"{cluster} cluster" in rp  # the RP slide's finding and chart are about the cluster
    titles = [getattr(item.chart.title, "text", item.chart.title) for item in pack.items]
    assert f"{cluster} cluster" in titles[5]
    assert "Suspensions" in run and "Suspensions" in titles[6]


def test_zip_holds_workbook_deck_images_and_tables_named_for_the_scope(pack_files):
    _, cluster, pack, _, _, archive = pack_files
    stem = f"data-meeting-{cluster.lower().replace(' ', '-')}-cluster-2024-25"
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        names = z.namelist()
        assert {f"{stem}.xlsx", f"{stem}.pptx"} <= set(names)
        pngs = [n for n in names if n.endswith(".png")]
        assert pngs and all(z.read(n)[:8] == b"\x89PNG\r\n\x1a\n" for n in pngs)
        assert all(z.read(n).lstrip().startswith(b"<svg") for n in names if n.endswith(".svg"))
        assert len([n for n in names if n.endswith(".csv")]) == len(pack.items)
        assert z.read("tables/02-rates.csv").decode().startswith("School,School ID,")


def test_a_school_pack_is_titled_and_scoped_by_the_school(demo_db_url):
    engine = storage.get_engine(demo_db_url)
    schools = loads.load_schools(engine)
    school = schools.iloc[3]
    specs = standard_specs(school=school["school_id"], year=2025, schools=schools)
    title = pack_title(schools, None, school["school_id"], 2025)
    assert title.startswith(f"Data meeting: {school['school_name']}") and school["cluster"] in title
    if pd.isna(school["rp_start_year"]):  # RP impact of the school's cluster, said so
        assert specs[5].filters == {"cluster": school["cluster"]} and school["cluster"] in specs[5].title
    else:  # the school itself against the district's never-treated schools
        assert specs[5].filters == {"school": school["school_id"]} and school["school_name"] in specs[5].title
