"""The data-meeting pack: sheets, native charts, slides, images, CSVs, injection, public suppression."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from pptx import Presentation
from streamlit.testing.v1 import AppTest

from analytics import cli
from analytics.data import storage
from analytics.data.importer import import_bytes
from analytics.outputs.meeting import build_pack, deck_bytes, specs_from_url, standard_specs, workbook_bytes, zip_bytes
from analytics.outputs.views import build_view

PAGES = Path(__file__).resolve().parent.parent / "pages"


@pytest.fixture(scope="module")
def pack_files(demo_db_url):
    engine = storage.get_engine(demo_db_url)
    cluster = storage.load_schools(engine)["cluster"].iloc[0]
    pack = build_pack(engine, standard_specs(cluster=cluster, year=2025), "Data meeting: test", public=False)
    return engine, cluster, pack, workbook_bytes(pack), deck_bytes(pack), zip_bytes(pack)


def test_workbook_has_a_sheet_per_view_values_of_analytics_and_native_charts(pack_files):
    engine, cluster, pack, xlsx, _, _ = pack_files
    book = load_workbook(io.BytesIO(xlsx))
    assert book.sheetnames == ["Cover", "1 rates", "2 status-change", "3 gaps", "4 disproportionality",
                               "5 rp-impact", "6 run-chart"]
    sheet = book["1 rates"]
    header = next(r for r in range(1, 12) if sheet.cell(r, 1).value == "school_id")
    assert sheet.freeze_panes == f"A{header + 1}"
    expected = build_view(engine, "rates", cluster=cluster, year=2025, metric="read_proficient")
    first = expected.iloc[0]
    assert sheet.cell(header + 1, 1).value == first["school_id"]
    assert sheet.cell(header + 1, 7).value == pytest.approx(first["value"])
    assert len(sheet._charts) == 1 and len(book["6 run-chart"]._charts) == 1


def test_deck_has_a_title_and_a_slide_per_view_with_its_chart(pack_files):
    _, _, pack, _, pptx, _ = pack_files
    deck = Presentation(io.BytesIO(pptx))
    assert len(deck.slides) == 1 + len(pack.items)
    pictures = [s for s in deck.slides if any(sh.shape_type == 13 for sh in s.shapes)]
    assert len(pictures) == sum(item.chart is not None for item in pack.items)


def test_zip_holds_workbook_deck_images_and_tables(pack_files):
    _, _, pack, _, _, archive = pack_files
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        names = z.namelist()
        assert {"pack.xlsx", "pack.pptx"} <= set(names)
        pngs = [n for n in names if n.endswith(".png")]
        assert pngs and all(z.read(n)[:8] == b"\x89PNG\r\n\x1a\n" for n in pngs)
        assert all(z.read(n).lstrip().startswith(b"<svg") for n in names if n.endswith(".svg"))
        assert len([n for n in names if n.endswith(".csv")]) == len(pack.items)


def test_public_pack_has_no_count_under_10(demo_db_url):
    engine = storage.get_engine(demo_db_url)
    cluster = storage.load_schools(engine)["cluster"].iloc[0]
    pack = build_pack(engine, standard_specs(cluster=cluster, year=2025)[:4], "Public", public=True)
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
    pack = build_pack(engine, standard_specs(year=2025)[:1], "=Injected title")
    book = load_workbook(io.BytesIO(workbook_bytes(pack)))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert not (isinstance(cell.value, str) and cell.value[:1] in "=+-@\t\r"), cell.value
    with zipfile.ZipFile(io.BytesIO(zip_bytes(pack))) as z:
        text = z.read("tables/01-rates.csv").decode()
        assert "\n=" not in text and ",=" not in text and ",+" not in text


def test_view_urls_map_to_tables():
    specs = specs_from_url("http://h/cluster?cluster=North&year=2025&share=abc")
    assert [s.view for s in specs] == ["rates", "status-change"]
    assert specs[0].filters == {"cluster": "North", "year": 2025}
    with pytest.raises(ValueError):
        specs_from_url("http://h/data")


def test_cli_exports_the_pack(demo_db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    cluster = storage.load_schools(storage.get_engine(demo_db_url))["cluster"].iloc[0]
    out = tmp_path / "pack.xlsx"
    assert cli.main(["export", "meeting", "--cluster", cluster, "--year", "2025", "-o", str(out)]) == 0
    assert "[6/6]" in capsys.readouterr().err
    assert len(load_workbook(out).sheetnames) == 7
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
    at.button(key="pack_build").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "pack_files" in at.session_state and at.session_state["pack_files"]["xlsx"][:2] == b"PK"
