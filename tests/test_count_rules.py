"""Counts that cannot mislead: alternate risk ratio, groups above ALL, derived ALL, status/change rounding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.data import loads
from analytics.data.derived import discipline_with_all
from analytics.data.importer import import_bytes
from analytics.stats.disproportionality import disproportionality
from analytics.stats.status_change import largest_rounding_to, round_half_away, status_change


def _rows(sid: str, all_n: float, all_s: float, groups: list[tuple[str, float, float]]) -> list[dict]:
    rows = [{"school_id": sid, "school_year": 2024, "student_group": "ALL", "enrolled": all_n,
             "students_suspended": all_s}]
    return rows + [{"school_id": sid, "school_year": 2024, "student_group": g, "enrolled": n,
                    "students_suspended": s} for g, n, s in groups]


def test_alternate_ratio_uses_every_school_with_known_counts():
    # A: ALL 20 of 100, BL 12 of 40 -> comparison 8 of 60 is under the cell size 10: alternate ratio.
    # B: ALL 10 of 200, no BL row: BL is 0 of 0 there, so B adds 10 of 200.
    # C: ALL count suppressed: left out of numerator and denominator alike.
    # D: BL count suppressed: left out alike.
    # District comparison = (8 + 10) / (60 + 200) = 18/260 = 6.923%; A's BL risk 30% -> 30 / 6.923 = 4.333.
    # (Summing only schools with a BL row and keeping C's enrolment gave 8 / (60 + 90) -> ratio 5.625.)
    data = pd.DataFrame(_rows("A", 100, 20, [("BL", 40, 12)]) + _rows("B", 200, 10, [])
                        + _rows("C", 100, np.nan, [("BL", 10, 2)]) + _rows("D", 50, 5, [("BL", 20, np.nan)]))
    out = disproportionality(data)
    a = out[(out["school_id"] == "A") & (out["outcome"] == "suspension")].iloc[0]
    assert a["ratio_type"] == "alternate"
    assert a["risk_ratio"] == pytest.approx(30 / (100 * 18 / 260))
    assert a["risk_ratio"] == pytest.approx(4.3333, abs=1e-4)


def test_alternate_ratio_matches_the_design_formula_on_district_totals():
    # Two schools: A (ALL 30 of 300, WH 9 of 50 -> comparison 21 of 250, fine) and E (ALL 12 of 100, WH 11 of 40:
    # comparison 1 of 60 is too small). E's alternate comparison for WH = (district ALL - district WH)
    # = (30 + 12 - 9 - 11) / (300 + 100 - 50 - 40) = 22 / 310 = 7.097%; WH risk 27.5% -> ratio 3.875.
    data = pd.DataFrame(_rows("A", 300, 30, [("WH", 50, 9)]) + _rows("E", 100, 12, [("WH", 40, 11)]))
    out = disproportionality(data).set_index(["school_id", "outcome"])
    e = out.loc[("E", "suspension")]
    assert e["ratio_type"] == "alternate"
    assert e["risk_ratio"] == pytest.approx(27.5 / (100 * 22 / 310))


SCHOOLS = ("school_id,school_name,level,cluster,enrollment\n"
           "S1,North Elementary,ES,North,300\nS2,South Middle,MS,South,600\n")


@pytest.fixture
def with_schools(sqlite_engine):
    assert import_bytes(sqlite_engine, [("schools.csv", SCHOOLS.encode())]).ok
    return sqlite_engine


def test_a_group_larger_than_all_is_an_import_error_naming_file_row_column(with_schools):
    csv = ("school_id,school_year,student_group,enrolled,students_suspended\n"
           "S1,2024,ALL,100,10\n"
           "S1,2024,BL,120,4\n"      # line 3: enrolled above ALL's 100
           "S1,2024,WH,50,12\n"      # line 4: suspended above ALL's 10
           "S2,2024,ALL,600,30\n"
           "S2,2024,BL,200,20\n")    # fine
    report = import_bytes(with_schools, [("discipline.csv", csv.encode())])
    assert not report.ok
    found = {(p.file, p.row, p.column) for p in report.problems}
    assert found == {("discipline.csv", 3, "enrolled"), ("discipline.csv", 4, "students_suspended")}
    assert "above the ALL row's enrolled (100, line 2)" in report.problems[0].format()
    assert loads.load_discipline(with_schools).empty  # all or nothing


def test_a_group_is_held_to_its_own_school_years_first_all_row(with_schools):
    csv = ("school_id,school_year,student_group,enrolled,students_suspended\n"
           "S1,2024,ALL,100,10\n"
           "S1,2025,BL,150,4\n"     # no ALL row for S1 in 2025: nothing to compare with
           "S1,2024,ALL,300,30\n"   # line 4: a second ALL row (a duplicate key); line 2 stays the reference
           "S1,2024,HI,200,11\n"    # line 5: enrolled above 100, suspended above 10
           "S2,2024,BL,90,9\n")     # S2 has no ALL row at all
    report = import_bytes(with_schools, [("discipline.csv", csv.encode())])
    above = sorted((p.row, p.column, p.reason) for p in report.problems if "ALL row" in p.reason)
    assert above == [(5, "enrolled", "above the ALL row's enrolled (100, line 2) for this school and year"),
                     (5, "students_suspended",
                      "above the ALL row's students_suspended (10, line 2) for this school and year")]


def test_derived_all_is_unknown_when_a_race_count_is_suppressed():
    # No ALL row: ALL = sum of race rows. BL's count is suppressed, so ALL's count is unknown, not 25 of 300.
    data = pd.DataFrame([
        {"school_id": "S1", "school_year": 2024, "student_group": "BL", "enrolled": 100, "students_suspended": np.nan},
        {"school_id": "S1", "school_year": 2024, "student_group": "WH", "enrolled": 200, "students_suspended": 25},
        {"school_id": "S2", "school_year": 2024, "student_group": "BL", "enrolled": 50, "students_suspended": 3},
        {"school_id": "S2", "school_year": 2024, "student_group": "WH", "enrolled": 50, "students_suspended": 4},
    ])
    full, derived = discipline_with_all(data)
    all_rows = full[full["student_group"] == "ALL"].set_index("school_id")
    assert len(derived) == 2
    assert all_rows.loc["S1", "enrolled"] == 300 and np.isnan(all_rows.loc["S1", "students_suspended"])
    assert all_rows.loc["S2", "students_suspended"] == 7


def _status(prev: list[float], cur: list[float]) -> pd.DataFrame:
    n = len(cur)
    frame = pd.DataFrame({"school_id": [f"s{i}" for i in range(n)], "student_group": "ALL",
                          "metric": "suspension_rate", "denominator": 400})
    levels = dict.fromkeys(frame["school_id"], "ES")
    return status_change(frame.assign(value=cur), frame.assign(value=prev), levels, {"suspension_rate": False})


def test_sixty_exact_three_tenths_changes_are_increased_and_declined():
    prev = [round(0.1 * k, 1) for k in range(60)]   # 0.0, 0.1, ... 5.9
    up = [round(p + 0.3, 1) for p in prev]           # each exactly +0.3 as a decimal
    out = _status(prev, up)
    assert (out["change"] == 0.3).all()
    assert (out["change_level"] == "Increased").all()
    down = _status(up, prev)
    assert (down["change_level"] == "Declined").all()


@pytest.mark.parametrize(("prev", "cur", "change", "level"), [
    (2.2, 2.5, 0.3, "Increased"),
    (2.24, 2.49, 0.3, "Increased"),          # 0.25 rounds half away from zero to 0.3
    (2.0, 1.75, -0.3, "Declined"),           # -0.25 -> -0.3
    (3.0, 2.0, -1.0, "Declined significantly"),
    (1.0, 3.0, 2.0, "Increased"),            # significantly needs > +2.0
    (1.0, 3.05, 2.1, "Increased significantly"),
    (2.0, 2.24, 0.2, "Maintained"),
])
def test_change_boundaries_after_rounding(prev, cur, change, level):
    row = _status([prev], [cur]).iloc[0]
    assert row["change"] == pytest.approx(change) and row["change_level"] == level


def test_status_is_rounded_before_its_level():
    out = _status([1.0, 1.0], [0.54, 0.55])
    assert out["status"].tolist() == [0.5, 0.6]
    assert out["status_level"].tolist() == ["Very Low", "Low"]


def test_round_half_away_from_zero():
    assert round_half_away(0.25) == 0.3 and round_half_away(-0.25) == -0.3
    assert round_half_away(2.5 - 2.2) == 0.3 and round_half_away(-0.04) == 0.0


def test_largest_rounding_to_a_cut_point_is_the_last_double_before_the_next_tenth():
    """Rounded to one decimal, 0.35 - 5e-10 (numpy's round to 8 decimals first makes it 0.35) is 0.4; the
    largest double at most 0.3 after rounding is just below it; ``strict`` asks for below 0.3 (up to 0.25)."""
    t = largest_rounding_to(0.3)
    assert 0.3499999994 < t < 0.3499999995 and round_half_away(t) == 0.3
    assert round_half_away(np.nextafter(t, np.inf)) == 0.4
    below = largest_rounding_to(0.3, strict=True)
    assert round_half_away(below) == 0.2 and round_half_away(np.nextafter(below, np.inf)) == 0.3
    assert 0.2499999994 < below < 0.2499999995
    t = largest_rounding_to(-5.0)  # change cut points are negative too: -4.95 rounds to -5.0 (away from zero)
    assert round_half_away(t) == -5.0 and round_half_away(np.nextafter(t, np.inf)) == -4.9
    assert -4.9499999995 < t < -4.9499999994
