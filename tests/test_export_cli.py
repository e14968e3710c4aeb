"""`python -m analytics export`: exact columns, figures equal to an independent recomputation, safe files."""

from __future__ import annotations

import argparse
import io

import numpy as np
import pandas as pd
import pytest

from analytics import cli
from analytics.outputs.exports import safe_cell

HEADERS = {
    "rates": "school_id,school_year,metric,student_group,numerator,denominator,value,ci_low,ci_high",
    "gaps": "school_id,school_year,metric,student_group,reference,value,reference_value,gap,gap_change,p_value,trend,"
            "previous_year,q_value",
    "disproportionality": "school_id,school_year,student_group,outcome,enrolled,count,risk,comparison_risk,"
                          "risk_ratio,ratio_type,rate_difference,composition,flagged",
    "rp-impact": "outcome,estimate,ci_low,ci_high,p_value,n_rp_schools,n_comparison_schools,method",
    "run-chart": "school_id,period,value,median,signal",
    "status-change": "school_id,student_group,metric,status,change,status_level,change_level,color",
}

SCHOOLS = ("school_id,school_name,level,cluster,rp_start_year\n"
           "A,=HYPERLINK(\"http://x\"),ES,North,2024\nB,Bayside Elementary,ES,North,\nC,Cove Elementary,ES,South,\n")


@pytest.fixture
def district(tmp_path, monkeypatch):
    """A hand-made district: 3 schools, 2 years, metrics and CRDC-shaped discipline, imported by the CLI."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    metrics = ["school_id,school_year,metric,student_group,numerator,denominator"]
    for sid, (n1, d1, n2, d2) in {"A": (30, 100, 35, 100), "B": (40, 120, 50, 120), "C": (3, 7, 4, 8)}.items():
        metrics += [f"{sid},2023-24,read_proficient,ALL,{n1},{d1}", f"{sid},2024-25,read_proficient,ALL,{n2},{d2}"]
    discipline = ["school_id,school_year,student_group,enrolled,students_suspended,students_oss"]
    for year in ("2022-23", "2023-24", "2024-25"):
        discipline += [f"A,{year},ALL,500,40,*", f"A,{year},BL,100,24,10", f"A,{year},WH,400,16,6",
                       f"B,{year},ALL,300,12,5", f"B,{year},BL,40,2,*", f"B,{year},WH,260,10,4",
                       f"C,{year},ALL,200,10,6", f"C,{year},BL,50,7,3", f"C,{year},WH,150,3,3"]
    for name, lines in (("schools", SCHOOLS.splitlines()), ("metrics", metrics), ("discipline", discipline)):
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
    assert cli.main(["import", *(str(tmp_path / f"{n}.csv") for n in ("schools", "metrics", "discipline"))]) == 0
    return tmp_path


def _export(capsys, *args) -> pd.DataFrame:
    capsys.readouterr()
    assert cli.main(["export", *args]) == 0
    text = capsys.readouterr().out
    return text, pd.read_csv(io.StringIO(text), dtype={"school_id": str}, keep_default_na=True)


@pytest.mark.parametrize("view", sorted(HEADERS))
def test_every_view_has_the_contract_columns(district, capsys, view):
    text, _ = _export(capsys, view)
    assert text.splitlines()[0].startswith(HEADERS[view])


def test_pooled_cluster_and_district_rows_by_hand(district, capsys):
    _, table = _export(capsys, "rates", "--year", "2025", "--metric", "read_proficient")
    rows = table.set_index("school_id")
    # North = A + B: (35 + 50) / (100 + 120) = 38.6364%; district adds C: 89 / 228 = 39.0351%
    assert rows.loc["cluster:North", "value"] == pytest.approx(100 * 85 / 220, abs=1e-6)
    assert rows.loc["district", "value"] == pytest.approx(100 * 89 / 228, abs=1e-6)
    _, cluster = _export(capsys, "rates", "--cluster", "North", "--year", "2025")
    assert set(cluster["school_id"]) >= {"A", "B", "cluster:North"} and "C" not in set(cluster["school_id"])


def test_disproportionality_equals_an_independent_recomputation(district, capsys):
    _, table = _export(capsys, "disproportionality", "--year", "2025")
    sus = table[table["outcome"] == "suspension"].set_index(["school_id", "student_group"])
    # A/BL: 24/100 vs (40-24)/(500-100) = 16/400 -> RR 6.0 within school
    assert sus.loc[("A", "BL"), "risk_ratio"] == pytest.approx(24 / 100 / (16 / 400), abs=1e-6)
    assert sus.loc[("A", "BL"), "ratio_type"] == "within_school"
    # C/BL: count 7 < 10 -> none; B/BL: count 2 -> none
    assert sus.loc[("C", "BL"), "ratio_type"] == "none" and np.isnan(sus.loc[("C", "BL"), "risk_ratio"])
    # A/WH: 16/400 = 4% vs 24/100 -> RR 0.1667; comparison BL count 24 >= 10, enrolled 100 >= 30
    assert sus.loc[("A", "WH"), "risk_ratio"] == pytest.approx(0.04 / 0.24, abs=1e-6)
    # Flag: A/BL has RR 6.0 in 2023, 2024 and 2025
    assert bool(sus.loc[("A", "BL"), "flagged"]) is True
    oss = table[table["outcome"] == "oss"].set_index(["school_id", "student_group"])
    assert np.isnan(oss.loc[("A", "BL"), "comparison_risk"])  # ALL's OSS count was suppressed


def test_public_export_suppresses_small_cells(district, capsys):
    text, table = _export(capsys, "rates", "--public", "--year", "2025", "--cluster", "South")
    c_row = table[table["school_id"] == "C"].iloc[0]
    assert c_row["numerator"] == "*" and c_row["value"] == "*"


def test_formula_like_school_names_come_out_inert(district, tmp_path, capsys):
    from openpyxl import load_workbook

    assert safe_cell("=1+1") == "'=1+1" and safe_cell("-2") == "'-2" and safe_cell(3.5) == 3.5
    assert safe_cell("\t=1") == "'\t=1" and safe_cell("\r=2") == "'\r=2" and safe_cell("@SUM(A1)") == "'@SUM(A1)"
    out = tmp_path / "rates.xlsx"
    assert cli.main(["export", "rates", "--cluster", "North", "-o", str(out)]) == 0
    book = load_workbook(out)
    values = [c.value for row in book.active.iter_rows() for c in row if c.value is not None]
    assert not any(isinstance(v, str) and v.startswith("=") for v in values)
    assert any(isinstance(v, float) for v in values)  # numbers stay numbers


@pytest.mark.parametrize(("view", "suffix"), [("rates", ".png"), ("disproportionality", ".svg"),
                                              ("run-chart", ".svg"), ("status-change", ".png")])
def test_chart_exports_are_valid_images(district, tmp_path, view, suffix):
    out = tmp_path / f"chart{suffix}"
    assert cli.main(["export", view, "-o", str(out)]) == 0
    data = out.read_bytes()
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    else:
        assert data.lstrip().startswith(b"<svg") and b"</svg>" in data


def test_unknown_view_and_unknown_cluster_are_clear(district, capsys):
    assert cli.main(["export", "nonsense"]) == 2
    assert "unknown view" in capsys.readouterr().err
    assert cli.main(["export", "rates", "--cluster", "Atlantis"]) == 2
    assert "cluster 'Atlantis' not found" in capsys.readouterr().err



def _helps(command: str | None = None) -> dict[str, str]:
    """Each argument's help (by its name) of the command line or of one command; "" the description."""
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if command is None:
        return {"": parser.description, **{c.dest: c.help for c in commands._choices_actions}}
    sub = commands.choices[command]
    return {"": sub.description or "", **{a.dest: a.help or "" for a in sub._actions}}


def test_the_help_names_what_each_command_takes_and_points_to_the_readme():
    from analytics.outputs.meeting import WRITERS
    from analytics.outputs.views import VIEWS

    top = _helps()
    assert "README" in top[""] and "DESIGN" not in top[""] and "DATABASE_URL" in top[""]
    assert top["demo"].endswith("every data and workspace table is replaced") and "audit-log" in top["info"]
    export = _helps("export")
    assert export["view"].replace(" or ", ", ").split(", ") == [*VIEWS, "meeting"]
    assert all(suffix in export["output"] for suffix in (".csv", ".xlsx", ".png", ".svg", *WRITERS))
    assert "default read_proficient" in export["metric"]  # the meeting pack's metric
    assert _helps("share")["note"] and _helps("revoke")["token"] and _helps("import")["table"]
