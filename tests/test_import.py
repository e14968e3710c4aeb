"""Import: every bad file gets a clear message with line and column and changes nothing; messy valid
files (Windows-1252, `2014-15`, `*` cells, apostrophes) import; re-imports replace, never duplicate."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from analytics import cli
from analytics.access import audit
from analytics.data import bulk_write, loads, schema, storage
from analytics.data.importer import import_bytes, import_files

CORPUS = Path(__file__).parent / "bad_inputs"
CASES = json.loads((CORPUS / "cases.json").read_text())

SCHOOLS_CSV = (
    "school_id,school_name,level,cluster,latitude,longitude,enrollment,rp_start_year,title1\n"
    "S1,St. Mary's Elementary,ES,North,39.1,-77.1,420,2023-24,Y\n"
    "S2,O'Connor Middle,MS,North,39.2,-77.0,800,,N\n"
    "S3,Lakeview High,HS,South,,,1500,,\n"
)
PROGRAMS_CSV = "program,program_name,goal_metrics\nRP,Restorative practices,suspension_rate\nMATH,Math talk,math_proficient\n"


def _snapshot(engine) -> dict[str, list]:
    """Every row of every table, sorted: equal snapshots mean an unchanged database."""
    out = {}
    with engine.connect() as conn:
        for name, table in schema.metadata.tables.items():
            rows = conn.execute(sa.select(table)).fetchall()
            out[name] = sorted(map(repr, rows))
    return out


@pytest.fixture
def seeded(engine):
    report = import_bytes(engine, [("schools.csv", SCHOOLS_CSV.encode())], who="test")
    assert report.ok, report.problems
    return engine


def _file_digest(engine) -> str:
    engine.dispose()  # every connection closed, so the file on disk is all there is
    return hashlib.sha256(Path(engine.url.database).read_bytes()).hexdigest()


def test_corpus_holds_at_least_forty_real_world_shapes():
    assert len(CASES) >= 40
    assert all((CORPUS / name).is_file() for name in CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_corpus_gives_every_problem_and_changes_nothing(name, sqlite_engine):
    engine = sqlite_engine
    import_bytes(engine, [("schools.csv", SCHOOLS_CSV.encode()), ("pl_programs.csv", PROGRAMS_CSV.encode())])
    before, digest = _snapshot(engine), _file_digest(engine)
    case = CASES[name]
    report = import_files(engine, [CORPUS / name], table=case["table"])
    messages = [p.format() for p in report.problems]
    assert not report.ok
    for expected in case["expect"]:
        assert any(expected in m for m in messages), f"{expected!r} not in {messages}"
    if case.get("only"):  # nothing else is blamed: the reader understood the rest of the file
        assert len(messages) == len(case["expect"]), messages
    assert _snapshot(engine) == before
    assert _file_digest(engine) == digest  # byte for byte


def test_european_semicolon_file_imports_with_decimal_commas(seeded):
    data = (CORPUS / "semicolon_decimal_comma.csv").read_bytes().replace(b"abc", b"80")
    report = import_bytes(seeded, [("discipline.csv", data)])
    assert report.ok, report.problems
    rows = loads.load_discipline(seeded).set_index(["school_id", "student_group"])
    assert rows.loc[("S1", "ALL"), "oss_days"] == 14.5
    assert rows.loc[("S2", "ALL"), "enrolled"] == 80
    assert any("semicolon" in w for w in report.warnings)


def test_utf16_tab_file_from_excel_imports_accents_and_apostrophes(seeded):
    data = (CORPUS / "utf16_tab_schools.csv").read_bytes().decode("utf-16").replace("Elementary", "MS")
    report = import_bytes(seeded, [("schools.csv", data.encode("utf-16"))])
    assert report.ok, report.problems
    names = loads.load_schools(seeded).set_index("school_id")["school_name"]
    assert names["S7"] == "École Saint-Exupéry" and names["S8"] == "O'Brien Middle"


def test_title_rows_marks_and_blank_rows_import_with_a_note(seeded):
    data = (CORPUS / "title_row_above_header.csv").read_bytes().replace(b",999,", b",4,")
    report = import_bytes(seeded, [("discipline.csv", data)])
    assert report.ok, report.problems
    assert any("skipped 3 lines above the header" in w for w in report.warnings)
    marks = (CORPUS / "marks_in_optional_columns.csv").read_bytes().replace(b"S2,2024,ALL,90,91", b"S2,2024,ALL,90,9")
    report = import_bytes(seeded, [("discipline.csv", marks)])
    assert report.ok, report.problems
    rows = loads.load_discipline(seeded).set_index(["school_id", "student_group"])
    assert np.isnan(rows.loc[("S1", "ALL"), "students_suspended"])  # `n<10` is unknown, never zero
    assert np.isnan(rows.loc[("S1", "PI"), "students_oss"])  # `<=5.0`


def test_a_file_over_the_limit_is_refused_before_it_is_read(sqlite_engine, tmp_path, monkeypatch):
    import analytics.data.importer as importer

    monkeypatch.setattr(importer, "read_tables", lambda *a, **k: pytest.fail("the file was parsed"))
    path = tmp_path / "discipline.csv"
    path.write_bytes(b"x" * 2048)
    report = import_files(sqlite_engine, [path], max_bytes=1024)
    assert report.problems[0].format() == (
        "discipline.csv:-:-: 2,048 bytes: file is larger than the import limit of 0.000976562 MB")
    report = importer.import_bytes(sqlite_engine, [("discipline.csv", b"x" * 2048)], max_bytes=1024)
    assert "larger than the import limit" in report.problems[0].reason


def test_workbooks_are_parsed_with_defused_xml():
    from openpyxl.xml import DEFUSEDXML

    assert DEFUSEDXML


def test_a_million_row_file_names_its_one_bad_line_and_changes_nothing(sqlite_engine, tmp_path):
    seeded = sqlite_engine
    import_bytes(seeded, [("schools.csv", SCHOOLS_CSV.encode())])
    rows = 1_000_000
    ids = np.arange(rows)
    frame = pd.DataFrame({"incident_id": "I" + pd.Series(ids).astype(str), "school_id": "S1",
                          "incident_date": "2024-01-09", "student_key": "K" + pd.Series(ids % 5000).astype(str),
                          "action": "OSS"})
    frame.loc[rows - 1, "action"] = "Suspension"
    path = tmp_path / "incidents.csv"
    frame.to_csv(path, index=False)
    before = _file_digest(seeded)
    report = import_files(seeded, [path])
    assert [p.format() for p in report.problems] == [
        f"incidents.csv:{rows + 1}:action: Suspension: unknown value 'Suspension'; allowed: "
        "ISS, OSS, EXP, LAW_REFERRAL, RESTORATIVE, OTHER"]
    assert _file_digest(seeded) == before


def test_unknown_column_is_a_warning_not_an_error(sqlite_engine):
    report = import_files(sqlite_engine, [CORPUS / "unknown_column_warns.csv"], table="schools")
    assert report.ok and report.written
    assert any("principal" in w for w in report.warnings)


def test_file_over_the_size_limit_names_the_limit(sqlite_engine, tmp_path):
    path = tmp_path / "schools.csv"
    path.write_text(SCHOOLS_CSV)
    report = import_files(sqlite_engine, [path], max_bytes=100)
    assert "larger than the import limit of" in report.problems[0].format()


def test_messy_valid_schools_file(seeded):
    schools = loads.load_schools(seeded).set_index("school_id")
    assert schools.loc["S1", "school_name"] == "St. Mary's Elementary"
    assert schools.loc["S1", "rp_start_year"] == 2024  # `2023-24` is the ending year 2024
    assert np.isnan(schools.loc["S3", "latitude"])
    assert bool(schools.loc["S1", "title1"]) is True


def test_suppressed_cells_are_missing_never_zero_and_rows_with_suppressed_enrolled_are_skipped(seeded):
    csv = (
        "school_id,school_year,student_group,enrolled,students_suspended,students_oss,oss_days\n"
        "S1,2014-15,ALL,420,12,*,30.5\n"
        "S1,2014-15,AM,*,*,*,\n"
        "S1,2014-15,BL,95,n<10,<=5.0,\n"
    )
    report = import_bytes(seeded, [("discipline.csv", csv.encode("cp1252"))])
    assert report.ok, report.problems
    assert report.results[0].skipped == 1
    rows = loads.load_discipline(seeded).set_index("student_group")
    assert list(rows.index) == ["ALL", "BL"] and (rows["school_year"] == 2015).all()
    assert np.isnan(rows.loc["ALL", "students_oss"]) and np.isnan(rows.loc["BL", "students_suspended"])
    assert rows.loc["ALL", "students_suspended"] == 12


def test_a_key_written_two_ways_is_a_duplicate_and_a_skipped_row_is_not(seeded):
    # Line 5 repeats line 2's key (2015 is 2014-15); line 3's is the same as line 4's, but line 3 is skipped.
    csv = (
        "school_id,school_year,student_group,enrolled\n"
        "S1,2014-15,ALL,420\n"
        "S1,2015,AM,*\n"
        "S1,2015,AM,12\n"
        "S1,2015,ALL,400\n"
        "S2,2015,ALL,400\n"
    )
    report = import_bytes(seeded, [("discipline.csv", csv.encode())])
    assert [p.format() for p in report.problems] == [
        "discipline.csv:5:school_id: S1 / 2015 / ALL: duplicate of line 2 (same school_id, school_year, student_group)"]


def test_row_keys_number_equal_keys_alike():
    from analytics.data.importer import _row_keys

    # (school code, year code) per row; -1 is a missing value, a value of its own
    codes = [np.array([0, 0, 1, 0, -1]), np.array([0, 1, 0, 0, 0])]
    keys = _row_keys(codes).tolist()
    assert keys[0] == keys[3] and len({keys[0], keys[1], keys[2], keys[4]}) == 4  # rows 1 and 4 alike


def test_keys_are_told_distinct_or_repeated_by_flags_or_left_to_the_hash_when_spread_wide():
    from analytics.data.importer import _all_distinct

    assert _all_distinct(np.array([], dtype=np.int64))
    assert _all_distinct(np.array([5, 0, 3, 7]))
    assert not _all_distinct(np.array([5, 0, 3, 5]))
    assert not _all_distinct(np.array([0, 2**40]))  # too wide to flag: the duplicate check hashes them


def test_only_cells_that_can_begin_a_totals_row_are_matched_and_every_one_is():
    from analytics.data.importer import _TOTALS_ROW, _TOTALS_STARTS, _matching

    cells = pd.Series(["100001", "Total", "sub-total", "\u017fubtotal", "All  Schools", "Totals:", "Allen", "S1"])
    assert _matching(cells, _TOTALS_ROW, _TOTALS_STARTS).tolist() == cells.str.match(_TOTALS_ROW).tolist() == [
        False, True, True, True, True, True, False, False]


def test_metrics_value_is_computed_from_counts(seeded):
    csv = "school_id,school_year,metric,student_group,numerator,denominator,value\nS1,2024,read_proficient,ALL,30,40,\n"
    assert import_bytes(seeded, [("metrics.csv", csv.encode())]).ok
    assert loads.load_metrics(seeded)["value"].iloc[0] == pytest.approx(75.0)


def test_windows_1252_and_bom_files_read_the_same(sqlite_engine):
    text = SCHOOLS_CSV.replace("St. Mary's", "Señora Núñez")
    for payload in (text.encode("cp1252"), b"\xef\xbb\xbf" + text.encode("utf-8")):
        report = import_bytes(sqlite_engine, [("schools.csv", payload)])
        assert report.ok
        assert "Señora Núñez Elementary" in set(loads.load_schools(sqlite_engine)["school_name"])


def _real_shaped_discipline(n_schools: int = 150) -> tuple[str, str]:
    """A CRDC-style file: 150 schools x 3 years x 6 groups = 2,700 rows, `2014-15` years, `*` cells."""
    rng = np.random.default_rng(5)
    schools = pd.DataFrame({
        "school_id": [f"{24000 + i}" for i in range(n_schools)],
        "school_name": [f"{'O’Neil' if i % 7 == 0 else 'Saint Mary' + chr(39) + 's' if i % 5 == 0 else 'Oak'} "
                        f"School {i}" for i in range(n_schools)],
        "level": "ES", "cluster": [f"County {i % 24}" for i in range(n_schools)],
    })
    rows = []
    for sid in schools["school_id"]:
        for year in ("2014-15", "2015-16", "2016-17"):
            all_n, all_susp = int(rng.integers(400, 1200)), 0
            for group in ("ALL", "BL", "HI", "WH", "AS", "MU"):
                # Each group is a part of ALL: never more students enrolled or suspended than ALL.
                enrolled = all_n if group == "ALL" else int(rng.integers(5, 400))
                susp = int(rng.binomial(enrolled, 0.05)) if group == "ALL" else min(all_susp,
                                                                                  int(rng.binomial(enrolled, 0.05)))
                all_susp = susp if group == "ALL" else all_susp
                rows.append([sid, year, group, enrolled, "*" if susp < 3 else susp, rng.choice(["*", str(susp // 2)])])
    frame = pd.DataFrame(rows, columns=["school_id", "school_year", "student_group", "enrolled", "students_suspended",
                                        "students_oss"])
    return schools.to_csv(index=False), frame.to_csv(index=False)


def test_real_shaped_file_imports_broken_rows_all_listed_database_byte_identical(tmp_path):
    db = tmp_path / "district.db"
    engine = storage.get_engine(f"sqlite:///{db}")
    storage.create_schema(engine)
    schools_csv, discipline_csv = _real_shaped_discipline()
    (tmp_path / "schools.csv").write_bytes(schools_csv.encode("cp1252"))
    good = tmp_path / "discipline.csv"
    good.write_bytes(discipline_csv.encode("cp1252"))
    assert len(discipline_csv.splitlines()) == 2701
    first = import_files(engine, [tmp_path / "schools.csv", good])
    assert first.ok, first.problems[:3]
    snapshot = _snapshot(engine)

    lines = discipline_csv.splitlines()
    parts = lines[10].split(",")
    parts[2] = "ZZ"
    lines[10] = ",".join(parts)  # line 11: unknown group
    parts = lines[500].split(",")
    parts[3] = "-7"
    lines[500] = ",".join(parts)  # line 501: negative enrolled
    parts = lines[2000].split(",")
    parts[4] = str(int(parts[3]) + 1)
    lines[2000] = ",".join(parts)  # line 2001: suspended above enrolled
    broken = tmp_path / "discipline_broken.csv"
    broken.write_text("\n".join(lines) + "\n", encoding="cp1252")
    engine.dispose()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    report = import_files(engine, [broken], table="discipline")
    engine.dispose()
    assert sorted({p.row for p in report.problems}) == [11, 501, 2001]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before

    again = import_files(engine, [good])
    assert again.ok
    after = _snapshot(engine)
    assert after["discipline"] == snapshot["discipline"]
    assert loads.table_counts(engine)["discipline"] == 2700 - first.results[1].skipped


def test_reimport_replaces_rows_on_both_databases(seeded):
    csv = "school_id,school_year,metric,student_group,numerator,denominator\nS1,2024,math_proficient,ALL,10,40\n"
    import_bytes(seeded, [("metrics.csv", csv.encode())])
    import_bytes(seeded, [("metrics.csv", csv.replace("10,40", "20,40").encode())])
    rows = loads.load_metrics(seeded)
    assert len(rows) == 1 and rows["numerator"].iloc[0] == 20
    history = loads.load_imports(seeded)
    assert list(history["table_name"])[:2] == ["metrics", "metrics"] and len(history) == 3


def test_one_bad_file_rejects_the_whole_import(seeded):
    good = "school_id,school_year,metric,student_group,numerator,denominator\nS1,2024,math_proficient,ALL,10,40\n"
    bad = "school_id,school_year,student_group,enrolled\nS1,2024,ALL,-1\n"
    report = import_bytes(seeded, [("metrics.csv", good.encode()), ("discipline.csv", bad.encode())])
    assert not report.ok
    assert loads.table_counts(seeded)["metrics"] == 0


def test_xlsx_sheets_named_after_tables_import_together(sqlite_engine, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.title = "schools"
    for line in SCHOOLS_CSV.splitlines():
        ws.append(line.split(","))
    ws2 = book.create_sheet("discipline")
    ws2.append(["school_id", "school_year", "student_group", "enrolled", "students_suspended"])
    ws2.append(["S1", 2024, "ALL", 100, 4])
    path = tmp_path / "district.xlsx"
    book.save(path)
    report = import_files(sqlite_engine, [path])
    assert report.ok, report.problems
    assert loads.table_counts(sqlite_engine)["discipline"] == 1


def test_cli_import_exit_codes_and_stderr(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    (tmp_path / "schools.csv").write_text(SCHOOLS_CSV)
    assert cli.main(["import", str(tmp_path / "schools.csv")]) == 0
    assert "3 schools rows imported" in capsys.readouterr().out
    bad = CORPUS / "discipline_count_above_enrolled.csv"
    assert cli.main(["import", str(bad), "--table", "discipline"]) == 1
    err = capsys.readouterr().err
    assert "discipline_count_above_enrolled.csv:2:students_suspended: 101: above enrolled (100)" in err
    assert "discipline_count_above_enrolled.csv:3:students_oss: 41: above enrolled (40)" in err
    assert "nothing imported: 2 problems" in err
    one = tmp_path / "discipline.csv"
    one.write_text("".join(bad.read_text().splitlines(keepends=True)[:2]))
    assert cli.main(["import", str(one)]) == 1
    assert "nothing imported: 1 problem\n" in capsys.readouterr().err
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tables"]["schools"] == 3 and len(info["imports"]) == 1



def test_one_row_reads_as_one_row_in_the_audit_and_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    (tmp_path / "schools.csv").write_text("".join(SCHOOLS_CSV.splitlines(keepends=True)[:2]))
    assert cli.main(["import", str(tmp_path / "schools.csv")]) == 0
    assert cli.main(["info"]) == 0
    assert "  schools: 1 row\n" in capsys.readouterr().out
    detail = audit.load(storage.get_engine(f"sqlite:///{tmp_path / 'cli.db'}")).set_index("action").loc["import", "detail"]
    assert detail == "schools.csv: 1 row, 0 skipped"

AS_WRITTEN_CSV = ("school_id,school_year,metric,student_group,numerator,denominator,value\n"
                  "S2,2024,math_proficient,ALL,3,4,75\n"
                  "S1,2024,math_proficient,HI,,,40.5\n"
                  "S1,2024,math_proficient,ALL,10,40,25.0\n")


def _lines(engine, csv: str):
    report = import_bytes(engine, [("metrics.csv", csv.encode())])
    assert report.ok, report.problems
    return report.results[0].lines


def test_a_file_stored_as_written_keeps_its_own_lines_for_copy_in_any_order_and_stores_its_rows(seeded, monkeypatch):
    monkeypatch.setattr(bulk_write, "DIRECT_COPY_MIN_ROWS", 1)  # on PostgreSQL a partition of its own
    lines = _lines(seeded, AS_WRITTEN_CSV)
    assert lines.columns == ["school_id", "school_year", "metric", "student_group", "numerator", "denominator",
                             "value"]
    # The partition's key order (metric, group, school): lines 2, 0, 1.
    assert b"".join(lines.chunks(np.array([2, 0, 1]))) == (b"S1,2024,math_proficient,ALL,10,40,25.0\n"
                                                          b"S2,2024,math_proficient,ALL,3,4,75\n"
                                                          b"S1,2024,math_proficient,HI,,,40.5\n")
    assert list(lines.chunks(np.array([0, 1, 2]), size=2)) == [b"S2,2024,math_proficient,ALL,3,4,75\n"
                                                               b"S1,2024,math_proficient,HI,,,40.5\n",
                                                               b"S1,2024,math_proficient,ALL,10,40,25.0\n"]
    rows = loads.load_metrics(seeded).sort_values(["school_id", "student_group"])
    assert rows[["school_id", "student_group", "value"]].values.tolist() == [
        ["S1", "ALL", 25.0], ["S1", "HI", 40.5], ["S2", "ALL", 75.0]]
    assert rows["numerator"].tolist()[::2] == [10.0, 3.0] and rows["numerator"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize("change", [
    ("S2,2024", " S2,2024"),  # padded: stored stripped
    (",HI,", ",hi,"),  # a group in another case: stored in its own
    (",3,4,75", ",3,4,*"),  # a suppression mark: stored as missing
    (",3,4,75", ",3,4,"),  # a value made from the counts
    (",,,40.5", ",,,40.5%"),  # a percent sign
    (",,,40.5", ",,,-0.0"), (",,,40.5", ",,,-.00"),  # a negative zero in a decimal column (PostgreSQL keeps its sign)
    ("S1,2024,math_proficient,HI", "S1,2023-24,math_proficient,HI"),  # a year written as a school year
    (",10,40,", ",1e1,40,"),  # a count not in digits
    ("S1,2024,math_proficient,ALL,10,40,25.0", '"S1",2024,math_proficient,ALL,10,40,25.0'),  # a quoted cell
])
def test_a_cell_stored_otherwise_than_written_sends_text_made_from_the_rows(seeded, change):
    assert _lines(seeded, AS_WRITTEN_CSV.replace(*change)) is None
    assert len(loads.load_metrics(seeded)) == 3


def test_a_negative_zero_is_stored_as_the_checks_read_it(seeded):
    """A column of whole numbers is read as integers, so `-0` is 0; PostgreSQL reading the cell as written would
    keep the sign (-0.0, shown as `-0.0`)."""
    csv = AS_WRITTEN_CSV.replace(",,,40.5", ",,,-0").replace(",25.0", ",25")
    assert _lines(seeded, csv) is None
    value = loads.load_metrics(seeded).set_index("student_group").loc["HI", "value"]
    assert value == 0 and math.copysign(1.0, value) == 1.0


# Files whose cells are all stored as written, in the shapes people send: a BOM and CRLF line ends, title lines
# above the header, headers in their own case and order, Windows-1252 text, a last line with no line end, counts
# with leading zeros, decimals longer than a double holds, a stored year beside a new one, a table with no year.
AS_WRITTEN_FILES = [
    ("metrics.csv", ("\ufeff" + AS_WRITTEN_CSV.replace("\n", "\r\n")).encode()),
    ("metrics.csv", (b"District results\n\nValue,Student Group,Metric,School Year,School ID,Denominator,Numerator\n"
                     b"33.33333333333333333333,ALL,read_proficient,2023,S1,,\n"
                     b"0.1000000000000000055511151231257827,ALL,read_proficient,2023,S2,0040,007")),
    ("metrics.csv", (b"school_id,school_year,metric,student_group,value,target\n"
                     b"S2,2024,math_proficient,ALL,80,90\nS3,2025,math_proficient,ALL,.5,\n")),
    ("school_goals.csv", ("goal_id,school_id,metric,student_group,baseline_year,baseline_value,target_year,"
                          "target_value,status,owner,strategy\nG1,S1,math_proficient,ALL,2023,40,2026,60,active,"
                          "Zoë Éclair,Café talk – “number strings”\n").encode("cp1252")),
    ("pl_feedback.csv", b"program,session_id,item,response,count\nRP,s1,useful,4,10\nRP,s1,clear,5,3\n"),
]


@pytest.mark.postgres
def test_a_file_sent_as_its_own_lines_stores_what_its_typed_rows_store(postgres_server_url, monkeypatch):
    """PostgreSQL is sent a plain file's own lines instead of text written from its typed rows: every table
    holds the same rows after the same imports either way."""
    from analytics.data import readers

    def imported(own_lines: bool) -> dict[str, list]:
        name = f"ssif_lines_{own_lines:d}_{os.getpid()}"
        admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        engine = storage.get_engine(sa.engine.make_url(postgres_server_url).set(database=name)
                                    .render_as_string(hide_password=False))
        storage.create_schema(engine)
        assert import_bytes(engine, [("schools.csv", SCHOOLS_CSV.encode()), ("pl_programs.csv", PROGRAMS_CSV.encode()),
                                     ("metrics.csv", AS_WRITTEN_CSV.replace("2024", "2023").encode())]).ok
        with monkeypatch.context() as patch:
            patch.setattr(bulk_write, "DIRECT_COPY_MIN_ROWS", 1)  # a new year a partition of its own
            if not own_lines:
                patch.setattr(readers, "_data_lines", lambda *_: None)
            for name_, data in AS_WRITTEN_FILES:
                report = import_bytes(engine, [(name_, data)])
                assert report.ok, report.problems
                assert (report.results[0].lines is not None) == own_lines, name_
        snapshot = _snapshot(engine)
        snapshot["school_goals"] = [re.sub(r"datetime\.datetime\(.*?\)\)", "", row) for row in snapshot["school_goals"]]
        return {table: rows for table, rows in snapshot.items() if table in schema.DATA_TABLES}

    own, typed = imported(True), imported(False)
    assert len(own["metrics"]) == 9 and own == typed
