"""Writes the real-world-shaped files of the bad-input corpus that are awkward to keep by hand.

Run `python tests/bad_inputs/make_corpus.py` to regenerate them; each is small and committed beside
`cases.json`, which says what the importer must answer for it. The files copy what district and state
software actually saves: European-locale Excel (semicolons, decimal commas), Excel's "Unicode text"
(UTF-16, tab-delimited), report titles and unit rows above the data, totals rows, formulas, HTML pages
saved as `.xls`, macro-enabled and legacy workbooks, and archives built to exhaust memory.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).parent
DISCIPLINE = "school_id,school_year,student_group,enrolled,students_suspended,students_oss,oss_days"


def text(name: str, body: str, encoding: str = "utf-8") -> None:
    (HERE / name).write_bytes(body.encode(encoding))


def workbook(rows: list[list], sheet: str = "discipline") -> bytes:
    book = Workbook()
    ws = book.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rewrite_member(data: bytes, member: str, change) -> bytes:
    """The workbook with one XML member rewritten (to add what openpyxl cannot write: cached values...)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            dst.writestr(info.filename, change(content) if info.filename == member else content)
    return out.getvalue()


def csv_shapes() -> None:
    text("semicolon_decimal_comma.csv",
         "school_id;school_year;student_group;enrolled;students_suspended;students_oss;oss_days\n"
         "S1;2023-24;ALL;420;12;8;14,5\n"
         "S1;2023-24;BL;120;7;5;9,5\n"
         "S2;2023-24;ALL;abc;3;2;1,0\n")
    text("utf16_tab_schools.csv",
         "\ufeffschool_id\tschool_name\tlevel\tcluster\n"
         "S7\tÉcole Saint-Exupéry\tES\tNorth\n"
         "S8\tO'Brien Middle\tElementary\tNorth\n", "utf-16-le")
    text("pipe_delimited_discipline.csv", DISCIPLINE.replace(",", "|") + "\nS1|2024|ALL|100|5|3|6\nS1|2024|HI|30|31|0|0\n")
    text("tab_metrics.csv",
         "school_id\tschool_year\tmetric\tstudent_group\tnumerator\tdenominator\n"
         "S1\t2024\tread_proficient\tALL\t50\t100\n"
         "S1\t2024\tread_proficient\tBL\t45\t40\n")
    text("excel_serial_dates.csv",
         "school_id,metric,start_date,end_date,change_idea,status\n"
         "S1,suspension_rate,45383,45444,Restorative circles each morning,running\n")
    text("title_row_above_header.csv",
         "Suspension report 2023-24 (Office of School Support)\n"
         "Source: student information system, run 2024-07-01\n\n"
         f"{DISCIPLINE}\nS1,2024,ALL,100,5,3,6\nS1,2024,BL,30,999,2,2\n")
    text("two_row_header_groups.csv",
         ",,,Students,Students,Students,Days\n"
         f"{DISCIPLINE}\nS1,2024,ALL,100,5,3,6\nS1,2024,WH,20,2,1,x\n")
    text("two_row_header_units.csv",
         f"{DISCIPLINE}\n,,,count,count,count,days\nS1,2024,ALL,100,5,3,6\n")
    text("totals_row_at_bottom.csv",
         f"{DISCIPLINE}\nS1,2024,ALL,100,5,3,6\nS2,2024,ALL,80,4,2,3\nTotal,2024,ALL,180,9,5,9\n")
    text("grand_total_row.csv",
         "school_id,school_name,level,cluster\nS5,Maple ES,ES,North\nGrand Total,,,\n")
    text("marks_in_optional_columns.csv",
         f"{DISCIPLINE},students_expelled,law_referrals\n"
         "S1,2024,ALL,100,n<10,<5,\u22645%,--,N/A\n"
         "S1,2024,AM,12,\u2020,*,,N/A,--\n"
         "S1,2024,PI,11,n\u226410,<=5.0,,\u2021,~\n"
         "S2,2024,ALL,90,91,2,3,,\n")
    text("mark_in_required_year.csv", f"{DISCIPLINE}\nS1,N/A,ALL,100,5,3,6\n")
    text("mark_in_required_group.csv", f"{DISCIPLINE}\nS1,2024,\u2020,100,5,3,6\n")
    text("trailing_spaces_in_codes.csv",
         f"{DISCIPLINE}\nS1 ,2024,ALL ,100,5,3,6\n S1,2024, BL,30,2,1,1\nS2,2024 ,hi ,25,26,1,1\n")
    text("duplicate_column_names.csv",
         "school_id,school_year,student_group,enrolled,students_suspended,students_oss,enrolled\n"
         "S1,2024,ALL,100,5,3,100\n")
    text("ragged_row.csv", f"{DISCIPLINE}\nS1,2024,ALL,100,5,3,6\nS1,2024,BL,40,2,1,1,extra\n")
    text("unclosed_quote.csv",
         "school_id,school_name,level,cluster\nS5,\"Maple ES,ES,North\nS6,Oak MS,MS,North\n")
    text("blank_and_comma_only_rows.csv",
         f"{DISCIPLINE}\nS1,2024,ALL,100,5,3,6\n\n,,,,,,\nS1,2024,BL,30,2,1,1\n\nS1,2024,WH,20,21,1,1\n,,,,,,\n,,,,,,\n")
    text("crdc_reserve_codes.csv", f"{DISCIPLINE}\nS1,2024,ALL,100,5,-9,6\nS1,2024,BL,30,-3,1,1\n")
    text("schools_bad_coordinates.csv",
         "school_id,school_name,level,cluster,latitude,longitude\nS5,Maple ES,ES,North,391.2,-77.1\n")
    text("schools_level_words.csv", "school_id,school_name,level,cluster\nS5,Maple ES,Elementary,North\n")
    text("incidents_with_student_names.csv",
         "incident_id,school_id,incident_date,student_key,student_name,action\n"
         "I1,S1,2024-01-09,K1,Jane Doe,OSS\n")
    text("incidents_unknown_action.csv",
         "incident_id,school_id,incident_date,student_key,action,days_removed\n"
         "I1,S1,2024-01-09,K1,Suspension,1\nI2,S1,2024-01-10 00:00:00,K2,OSS,2\n")
    text("years_that_do_not_follow.csv", f"{DISCIPLINE}\nS1,2023-25,ALL,100,5,3,6\nS1,FY24,BL,30,2,1,1\n")
    text("metrics_without_value_or_counts.csv",
         "school_id,school_year,metric,student_group,numerator,denominator,value\n"
         "S1,2024,read_proficient,ALL,,,\nS1,2024,read_proficient,BL,*,*,*\n")
    text("parenthesised_negative.csv", f"{DISCIPLINE}\nS1,2024,ALL,100,(5),3,6\n")
    text("pdf_renamed.csv", "%PDF-1.7\n1 0 obj <<>> endobj\n")
    text("html_saved_as.xls",
         "<html xmlns:o=\"urn:schemas-microsoft-com:office:office\"><body><table><tr><td>school_id</td></tr>"
         "</table></body></html>")


def binary_shapes() -> None:
    (HERE / "legacy_97_2003.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("discipline.csv", f"{DISCIPLINE}\nS1,2024,ALL,100,5,3,6\n")
        z.writestr("schools.csv", "school_id,school_name,level,cluster\nS1,A,ES,North\n")
    (HERE / "zip_renamed.csv").write_bytes(zipped.getvalue())

    header = DISCIPLINE.split(",")
    (HERE / "macro_enabled.xlsm").write_bytes(workbook([header, ["S1", 2024, "ALL", 100, 5, 3, 6]]))
    plain = workbook([header, ["S1", 2024, "ALL", 100, 5, 3, 6]])
    src = zipfile.ZipFile(io.BytesIO(plain))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        dst.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 macro project")
    (HERE / "macro_renamed.xlsx").write_bytes(out.getvalue())

    # Formulas: openpyxl writes no cached values; the first file gets Excel-style <v> results added.
    with_formula = workbook([header, ["S1", 2024, "ALL", 100, 5, 3, 6], ["S1", 2024, "BL", 40, "=30*2", 1, 1]])

    def cache(xml: bytes) -> bytes:
        return xml.replace(b"<f>30*2</f><v></v>", b"<f>30*2</f><v>60</v>").replace(b"<f>30*2</f>", b"<f>30*2</f><v>60</v>")

    (HERE / "xlsx_formula_cached_values.xlsx").write_bytes(rewrite_member(with_formula, "xl/worksheets/sheet1.xml",
                                                                          cache))
    (HERE / "xlsx_formula_never_calculated.xlsx").write_bytes(with_formula)

    def laughs(xml: bytes) -> bytes:
        head = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
                b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]>')
        return head + xml.split(b"?>", 1)[-1].replace(b"<v>ALL</v>", b"<v>&lol3;</v>")

    (HERE / "xlsx_xml_entities.xlsx").write_bytes(rewrite_member(plain, "xl/worksheets/sheet1.xml", laughs))

    # A sheet that expands from a few hundred kilobytes to 300 MB of blank cells.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                z.writestr(info.filename, src.read(info.filename))
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            member.write(b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
            chunk = b" " * 1048576
            for _ in range(300):
                member.write(chunk)
            member.write(b"</sheetData></worksheet>")
    (HERE / "xlsx_decompression_bomb.xlsx").write_bytes(bomb.getvalue())


if __name__ == "__main__":
    csv_shapes()
    binary_shapes()
