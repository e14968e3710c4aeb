"""Gaps, status-and-change, disproportionality, privacy, run charts and RP impact, worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.access.privacy import suppress_table
from analytics.config import DEFAULT_SETTINGS
from analytics.stats.disproportionality import disproportionality, disproportionality_parts, district_risks
from analytics.stats.gaps import gap_table
from analytics.stats.rp_impact import rp_impact
from analytics.stats.run_charts import monthly_incident_series, run_chart, shift_points
from analytics.stats.status_change import change_level, grid_color, grid_colors, status_change, status_level

# --- gaps ------------------------------------------------------------------------------------------


def _rows(year, all_num, all_den, g_num, g_den, target=np.nan):
    return [
        {"school_id": "s", "school_year": year, "metric": "m", "student_group": "ALL", "numerator": all_num,
         "denominator": all_den, "value": 100 * all_num / all_den, "target": target},
        {"school_id": "s", "school_year": year, "metric": "m", "student_group": "BL", "numerator": g_num,
         "denominator": g_den, "value": 100 * g_num / g_den, "target": np.nan},
    ]


def test_gap_against_other_students_and_a_significant_closing():
    # 2024: BL 100/400 = 25%, others (600-100)/(1000-400) = 500/600 = 83.33% -> gap -58.33
    # 2025: BL 200/400 = 50%, others 500/600 = 83.33% -> gap -33.33; change +25.0 (closing)
    rows = pd.DataFrame(_rows(2024, 600, 1000, 100, 400) + _rows(2025, 700, 1000, 200, 400))
    out = gap_table(rows, "others").set_index("school_year")
    assert out.loc[2024, "gap"] == pytest.approx(25 - 100 * 500 / 600)
    assert out.loc[2025, "gap_change"] == pytest.approx(25.0)
    # Years pooled: BL .375*.625*(2/400) + others .8333*.1667*(2/600) = 0.0016348; z = 0.25/0.040433 = 6.18
    assert out.loc[2025, "p_value"] < 1e-9
    assert out.loc[2025, "trend"] == "closing"


def test_small_change_is_not_called_closing():
    rows = pd.DataFrame(_rows(2024, 600, 1000, 100, 400) + _rows(2025, 604, 1000, 104, 400))
    assert gap_table(rows, "others").set_index("school_year").loc[2025, "trend"] == "no significant change"


def test_gap_to_target_and_too_small_cells():
    rows = pd.DataFrame(_rows(2024, 60, 100, 3, 8, target=70.0) + _rows(2025, 62, 100, 4, 8, target=72.0))
    out = gap_table(rows, "target").set_index("school_year")
    assert out.loc[2025, "reference_value"] == 72.0 and out.loc[2025, "gap"] == pytest.approx(50 - 72)
    assert out.loc[2025, "trend"] == "too small to test"


def test_gap_to_district_and_best_group():
    rows = pd.DataFrame(_rows(2025, 60, 100, 10, 40) + [
        {"school_id": "t", "school_year": 2025, "metric": "m", "student_group": "ALL", "numerator": 140,
         "denominator": 200, "value": 70.0, "target": np.nan},
        {"school_id": "s", "school_year": 2025, "metric": "m", "student_group": "WH", "numerator": 45,
         "denominator": 50, "value": 90.0, "target": np.nan}])
    district = gap_table(rows, "district_all")
    bl = district[(district["school_id"] == "s") & (district["student_group"] == "BL")].iloc[0]
    assert bl["reference_value"] == pytest.approx(100 * 200 / 300)  # (60 + 140) / (100 + 200)
    best = gap_table(rows, "best_group", {"m": True})
    assert best.loc[best["student_group"] == "BL", "gap"].iloc[0] == pytest.approx(25 - 90)


# --- status and change --------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "level"), [(0.5, "Very Low"), (0.51, "Low"), (1.0, "Low"), (3.0, "Medium"),
                                              (6.0, "High"), (6.01, "Very High")])
def test_status_levels_at_the_cut_points(value, level):
    assert status_level(value, DEFAULT_SETTINGS.cuts_for("suspension_rate", "ES")) == level


@pytest.mark.parametrize(("change", "level"), [(2.01, "Increased significantly"), (2.0, "Increased"),
                                               (0.3, "Increased"), (0.29, "Maintained"), (-0.29, "Maintained"),
                                               (-0.3, "Declined"), (-0.99, "Declined"),
                                               (-1.0, "Declined significantly")])
def test_change_levels_at_the_cut_points(change, level):
    assert change_level(change, DEFAULT_SETTINGS.cuts_for("suspension_rate", "ES")) == level


def test_every_row_of_the_design_grid():
    design = {"Very High": "RRROY", "High": "ROOYY", "Medium": "OOYGG", "Low": "-YGGB", "Very Low": "-GBBB"}
    names = {"R": "Red", "O": "Orange", "Y": "Yellow", "G": "Green", "B": "Blue", "-": ""}
    changes = ["Increased significantly", "Increased", "Maintained", "Declined", "Declined significantly"]
    for status, row in design.items():
        assert [grid_color(status, c, higher_is_better=False) for c in changes] == [names[x] for x in row]
    # Mirrored for higher-is-better metrics: top status and a big increase is Blue.
    assert grid_color("Very High", "Increased significantly", higher_is_better=True) == "Blue"
    # Many cells at once, unknown and empty levels included, give the same colours.
    statuses, changes_ = [*design, "", "?"], [*changes, ""]
    cells = [(s, c) for s in statuses for c in changes_]
    for way in (False, True):
        got = grid_colors(np.array([s for s, _ in cells], dtype=object), np.array([c for _, c in cells], dtype=object),
                          way)
        assert got.tolist() == [grid_color(s, c, way) for s, c in cells]
    assert grid_colors(np.array(["Medium"]), np.array(["Increased"]), False).tolist() == ["Orange"]


def test_groups_under_30_get_no_colour():
    cur = pd.DataFrame({"school_id": ["a", "a"], "student_group": ["ALL", "AS"], "metric": "suspension_rate",
                        "value": [7.0, 7.0], "denominator": [400, 29]})
    prev = cur.assign(value=[4.0, 4.0])
    out = status_change(cur, prev, {"a": "ES"}, {"suspension_rate": False}).set_index("student_group")
    assert out.loc["ALL", "color"] == "Red" and out.loc["AS", "color"] == ""
    assert out.loc["AS", "status_level"] == "Very High"


# --- disproportionality -----------------------------------------------------------------------------


def _school(sid, year, all_n, all_s, groups):
    rows = [{"school_id": sid, "school_year": year, "student_group": "ALL", "enrolled": all_n,
             "students_suspended": all_s}]
    rows += [{"school_id": sid, "school_year": year, "student_group": g, "enrolled": n, "students_suspended": s}
             for g, n, s in groups]
    return rows


def test_risk_ratio_alternate_and_too_small_by_hand():
    # School A: BL 20/100 = 20%; others (50-20)/(1000-100) = 30/900 = 3.333% -> RR 6.0, diff 16.67, comp 40%
    # School B: BL 12/40 = 30%; others 2/20 -> comparison count 2 < 10 -> alternate:
    #   district risk outside BL = (30 + 2) / (900 + 20) = 3.478% -> RR 30 / 3.478 = 8.625
    # School B: WH 2/20 -> count 2 < 10: none
    rows = _school("A", 2025, 1000, 50, [("BL", 100, 20), ("WH", 900, 30)]) + _school(
        "B", 2025, 60, 14, [("BL", 40, 12), ("WH", 20, 2)])
    out = disproportionality(pd.DataFrame(rows))
    out = out[out["outcome"] == "suspension"].set_index(["school_id", "student_group"])
    a = out.loc[("A", "BL")]
    assert a["ratio_type"] == "within_school" and a["risk_ratio"] == pytest.approx(6.0)
    assert a["rate_difference"] == pytest.approx(20 - 100 / 30) and a["composition"] == pytest.approx(40.0)
    b = out.loc[("B", "BL")]
    assert b["ratio_type"] == "alternate" and b["risk_ratio"] == pytest.approx(30 / (100 * 32 / 920))
    assert out.loc[("B", "WH"), "ratio_type"] == "none" and np.isnan(out.loc[("B", "WH"), "risk_ratio"])


def test_parts_of_one_school_keep_the_districts_alternate_ratio_and_make_up_the_whole_table():
    # As above: B's BL ratio is the alternate one, 30% / the district's 32 of 920 outside BL (school A's
    # students included) even when B's rows are computed apart from A's.
    rows = _school("A", 2025, 1000, 50, [("BL", 100, 20), ("WH", 900, 30)]) + _school(
        "B", 2025, 60, 14, [("BL", 40, 12), ("WH", 20, 2)])
    parts = list(disproportionality_parts(pd.DataFrame(rows), schools_per_part=1))
    assert [part["school_id"].unique().tolist() for part in parts] == [["A"], ["B"]]
    b = parts[1][(parts[1]["outcome"] == "suspension") & (parts[1]["student_group"] == "BL")].iloc[0]
    assert b["ratio_type"] == "alternate" and b["risk_ratio"] == pytest.approx(30 / (100 * 32 / 920))
    pd.testing.assert_frame_equal(pd.concat(parts), disproportionality(pd.DataFrame(rows)), check_exact=True)


def test_some_groups_only_are_computed_as_in_the_whole_table():
    # School B has no ALL row: its ALL is summed from both race rows (60 enrolled, 14 suspended) before only
    # BL is kept, so BL's comparison is still WH's 2 of 20 (too few: the district's alternate ratio, 30% / the
    # district's 32 of 920 outside BL as above).
    rows = pd.DataFrame(_school("A", 2025, 1000, 50, [("BL", 100, 20), ("WH", 900, 30)])
                        + _school("B", 2025, 60, 14, [("BL", 40, 12), ("WH", 20, 2)])[1:])
    whole = disproportionality(rows)
    some = disproportionality(rows, district=district_risks(rows),
                              groups=pd.DataFrame({"school_id": ["B"], "student_group": ["BL"]}))
    assert set(some["student_group"]) == {"BL"} and set(some["school_id"]) == {"B"}
    b = some[some["outcome"] == "suspension"].iloc[0]
    assert b["ratio_type"] == "alternate" and b["risk_ratio"] == pytest.approx(30 / (100 * 32 / 920))
    mine = (whole["school_id"] == "B") & (whole["student_group"] == "BL")
    pd.testing.assert_frame_equal(some, whole[mine].reset_index(drop=True), check_exact=True)
    with pytest.raises(ValueError, match="district"):
        disproportionality(rows, groups=pd.DataFrame({"school_id": ["B"], "student_group": ["BL"]}))


@pytest.mark.parametrize(("enrolled", "count", "computed"), [(29, 10, False), (30, 9, False), (30, 10, True)])
def test_n_size_and_cell_size_edges(enrolled, count, computed):
    rows = _school("A", 2025, 1000, 100, [("BL", enrolled, count)])
    out = disproportionality(pd.DataFrame(rows))
    row = out[(out["outcome"] == "suspension") & (out["student_group"] == "BL")].iloc[0]
    assert (row["ratio_type"] != "none") == computed


def test_three_consecutive_years_flag_and_a_gap_year_breaks_it():
    def years(ys):
        rows = []
        for y in ys:
            rows += _school("A", y, 1000, 80, [("BL", 100, 30), ("WH", 900, 50)])  # RR = 30% / 5.56% = 5.4
        return pd.DataFrame(rows)

    flagged = disproportionality(years([2021, 2022, 2023]))
    bl = flagged[(flagged["outcome"] == "suspension") & (flagged["student_group"] == "BL")].set_index("school_year")
    assert bl["flagged"].tolist() == [False, False, True]
    gap = disproportionality(years([2021, 2022, 2024]))
    assert not gap["flagged"].any()


# --- privacy --------------------------------------------------------------------------------------


def _cluster_rates():
    # Three schools and the cluster total; school C has n = 7.
    return pd.DataFrame({"school_id": ["A", "B", "C", "cluster:X"], "cluster": "X", "school_year": 2025,
                         "metric": "m", "student_group": "ALL", "numerator": [30, 40, 3, 73],
                         "denominator": [100, 120, 7, 227], "value": [30.0, 33.3, 42.9, 32.2],
                         "ci_low": 1.0, "ci_high": 2.0})


def test_small_cells_are_starred_and_cannot_be_recovered_from_the_cluster_total():
    out = suppress_table(_cluster_rates()[:3], n_col="denominator", count_cols=["numerator"],
                         rate_cols=["value", "ci_low", "ci_high"], sets=[["cluster"]])
    assert out.loc[2, "numerator"] == "*" and out.loc[2, "value"] == "*" and out.loc[2, "denominator"] == "*"
    # Complementary suppression hides the next smallest school (A, n = 100) so C = total - A - B fails.
    assert out.loc[0, "numerator"] == "*" and out.loc[1, "numerator"] == 40


def test_top_and_bottom_coding_hide_the_count():
    df = pd.DataFrame({"g": ["a", "b"], "numerator": [2, 97], "denominator": [100, 100], "value": [2.0, 97.0],
                       "ci_low": [0.5, 91.0], "ci_high": [7.0, 99.0]})
    out = suppress_table(df, n_col="denominator", count_cols=["numerator"], rate_cols=["value", "ci_low", "ci_high"])
    assert out["value"].tolist() == ["<= 5.0%", ">= 95.0%"]
    assert out["numerator"].tolist() == ["*", "*"] and out["ci_low"].tolist() == ["*", "*"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=2, max_size=8))
def test_no_released_numbers_reveal_a_count_under_10(sizes):
    """Attack: subtract every released school count from the (public) total of the set."""
    df = pd.DataFrame({"school_id": [f"s{i}" for i in range(len(sizes))], "cluster": "X",
                       "denominator": sizes, "numerator": [n // 2 for n in sizes]})
    df["value"] = 100 * df["numerator"] / df["denominator"].where(df["denominator"] > 0)
    out = suppress_table(df, n_col="denominator", count_cols=["numerator"], rate_cols=["value"], sets=[["cluster"]])
    hidden = out["denominator"] == "*"
    assert (hidden | (df["denominator"] >= 10)).all()
    assert hidden.sum() != 1  # one hidden cell would equal total minus the released ones
    hidden_num = out["numerator"] == "*"
    assert hidden_num.sum() != 1


# --- run charts ----------------------------------------------------------------------------------


def test_shift_skips_points_on_the_median():
    # Six points below the median 5 with one point on it in between: still a shift.
    assert shift_points([1, 1, 5, 1, 1, 1, 1, 9], median=5).tolist() == [True, True, False, True, True, True, True,
                                                                          False]
    # Four below, one above, two below: no run of six.
    assert not shift_points([1, 1, 1, 1, 9, 1, 1], median=5).any()
    chart = run_chart(pd.DataFrame({"period": range(12), "value": [1, 2, 3, 4, 5, 6, 20, 21, 22, 23, 24, 25]}))
    assert chart["median"].iloc[0] == 13.0  # (6 + 20) / 2
    assert chart["signal"].str.contains("shift").all()


def test_trend_ignores_ties():
    chart = run_chart(pd.DataFrame({"period": range(7), "value": [1, 2, 2, 3, 4, 5, 3]}))
    # 1 -> 2 (=2) -> 3 -> 4 -> 5: four rising steps with a tie skipped = a five-point trend
    assert chart["signal"].str.contains("trend").tolist() == [True, True, True, True, True, True, False]
    short = run_chart(pd.DataFrame({"period": range(5), "value": [1, 2, 3, 4, 3]}))
    assert not short["signal"].str.contains("trend").any()


def test_monthly_series_counts_empty_months_as_zero():
    incidents = pd.DataFrame({"school_id": ["a", "a", "a"], "incident_date": ["2024-09-03", "2024-09-20",
                                                                              "2024-11-02"],
                              "action": ["OSS", "ISS", "OSS"]})
    series = monthly_incident_series(incidents)
    assert series["value"].tolist() == [2, 0, 1]
    assert monthly_incident_series(incidents, actions=["OSS"])["value"].tolist() == [1, 0, 1]


# --- RP impact ----------------------------------------------------------------------------------


def _panel(effect_by_school: dict[str, float], start: dict[str, float]):
    """Four schools, 2021-2024; each rate = 5 + year trend + school effect - planted effect after start."""
    rows = []
    for i, sid in enumerate(effect_by_school):
        for year in range(2021, 2025):
            rate = 5 + 0.5 * (year - 2021) + i - (effect_by_school[sid] if year >= start.get(sid, 9999) else 0)
            rows += [{"school_id": sid, "school_year": year, "student_group": "ALL", "enrolled": 1000,
                      "students_suspended": round(rate * 10)}]
    schools = pd.DataFrame({"school_id": list(effect_by_school), "rp_start_year": [start.get(s, np.nan)
                                                                                    for s in effect_by_school]})
    return schools, pd.DataFrame(rows)


def test_rp_effect_by_hand_on_a_four_school_panel():
    # Treated s1, s2 start 2023; never-treated s3, s4. Effect 2.0 points from 2023 on.
    # ATT(2023, 2023) = mean(Δ treated 2022->2023) - mean(Δ control) = (0.5 - 2) - 0.5 = -2.0; same for 2024.
    schools, discipline = _panel({"s1": 2.0, "s2": 2.0, "s3": 0, "s4": 0}, {"s1": 2023, "s2": 2023})
    result = rp_impact(schools, discipline, outcomes=["suspension_rate"])
    assert result.summary["estimate"].iloc[0] == pytest.approx(-2.0, abs=1e-9)
    events = result.event_study.set_index("rel_year")["estimate"]
    assert events[-2] == pytest.approx(0.0, abs=1e-9) and events[0] == pytest.approx(-2.0)
    assert "small" in result.statement


def test_staggered_heterogeneous_effects_are_recovered():
    # s1 starts 2022 with effect 3, s2 starts 2024 with effect 1: cohort-size weighted post ATT.
    schools, discipline = _panel({"s1": 3.0, "s2": 1.0, "s3": 0, "s4": 0, "s5": 0}, {"s1": 2022, "s2": 2024})
    result = rp_impact(schools, discipline, outcomes=["suspension_rate"])
    # post cells: s1 at 2022, 2023, 2024 (-3 each) and s2 at 2024 (-1): mean = (-9 - 1) / 4 = -2.5
    assert result.summary["estimate"].iloc[0] == pytest.approx(-2.5, abs=1e-9)


def test_no_rp_schools_gives_a_clear_statement():
    schools, discipline = _panel({"s1": 0, "s2": 0}, {})
    result = rp_impact(schools, discipline, outcomes=["suspension_rate"])
    assert "no RP schools" in result.statement and np.isnan(result.summary["estimate"].iloc[0])


def test_group_rates_pool_each_outcome_over_the_schools_that_count_it():
    from analytics.data.aggregates_discipline import SCOPE_COUNTS
    from analytics.data.catalog import group_label
    from analytics.stats.disproportionality import group_rates

    def row(year, group, enrolled, suspended, oss, oss_enrolled):
        values = {"school_year": year, "student_group": group, "enrolled": enrolled, "suspended": suspended}
        for c in SCOPE_COUNTS:  # unknown everywhere (no school counts it) unless set below
            values.update({c: 0.0, f"{c}_enrolled": 0.0, f"n_{c}": 0})
        values.update(students_suspended=suspended, students_suspended_enrolled=enrolled, n_students_suspended=4,
                      students_oss=oss, students_oss_enrolled=oss_enrolled, n_students_oss=3)
        return values

    sums = pd.DataFrame([row(2025, "ALL", 1000, 50, 30, 800), row(2025, "WH", 600, 24, 15, 500),
                         row(2025, "BL", 200, 20, 12, 150), row(2025, "AS", 8, 1, 1, 8),
                         row(2024, "ALL", 900, 90, 90, 900)])
    wide, shares = group_rates(sums, 2025)
    assert list(wide.index) == [group_label(g) for g in ["ALL", "AS", "BL", "WH"]]  # the catalog's order
    # 50/1000, 8 students too few to read, 20/200, 24/600; OSS pooled over the 3 schools counting it: 30/800 ...
    assert np.allclose(wide["suspension"], [5.0, np.nan, 10.0, 4.0], equal_nan=True)
    assert np.allclose(wide["oss"], [3.75, np.nan, 8.0, 3.0], equal_nan=True)
    assert wide["enrolled"].tolist() == [1000, 8, 200, 600]
    assert "expulsion" not in wide  # no school counts it
    # Shares of the ALL row's 50 suspended and 1,000 enrolled.
    assert shares.loc["BL"].tolist() == [40.0, 20.0] and shares.loc["WH"].tolist() == [48.0, 60.0]
    assert shares.loc["AS"].tolist() == [2.0, 0.8]
    empty_wide, _ = group_rates(sums, 2019)
    assert empty_wide.empty
