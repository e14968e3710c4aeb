"""The workspace core with hand-computed cases: progress rule, goal checks, roll-up, ramps, look-fors and
what changed since a meeting."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from analytics.outputs import charts_workspace
from analytics.workspace import changes as ch
from analytics.workspace import cycles as cy
from analytics.workspace import goals as g
from analytics.workspace import notes

GOAL = {"goal_id": "G1", "school_id": "101", "metric": "read_proficient", "student_group": "ALL",
        "baseline_year": 2022, "baseline_value": 40.0, "target_year": 2026, "target_value": 60.0,
        "interim_targets": None, "status": "active"}


def test_trajectory_is_the_straight_line_held_flat_outside_baseline_and_target():
    # 40 + (60 - 40) x (year - 2022) / (2026 - 2022)
    assert [g.trajectory(GOAL, y) for y in (2021, 2022, 2023, 2024, 2026, 2027)] == [40, 40, 45, 50, 60, 60]


def test_interim_targets_bend_the_trajectory():
    goal = {**GOAL, "interim_targets": "2024: 42"}
    # 2023 halfway from 40 to 42; 2024 exactly 42; 2025 halfway from 42 to 60
    assert [g.trajectory(goal, y) for y in (2023, 2024, 2025)] == [41, 42, 51]


@pytest.mark.parametrize(("value", "low", "high", "expected", "higher", "progress"), [
    (50.0, 40.0, 60.0, 50.0, True, "on_track"),     # reaches the trajectory exactly
    (48.0, 44.0, 52.0, 50.0, True, "at_risk"),      # misses; the interval's top reaches it
    (45.0, 41.0, 49.0, 50.0, True, "off_track"),    # the interval misses too
    (48.0, np.nan, np.nan, 50.0, True, "off_track"),  # value-only metric: no interval, no "at risk"
    (np.nan, np.nan, np.nan, 50.0, True, "not_measured"),
    (9.0, 7.0, 11.0, 9.0, False, "on_track"),       # lower is better: at or below
    (9.5, 8.7, 10.4, 9.0, False, "at_risk"),        # the interval's bottom reaches 9
    (9.5, 9.2, 9.9, 9.0, False, "off_track"),
])
def test_progress_rule(value, low, high, expected, higher, progress):
    assert g.classify(value, low, high, expected, higher) == progress


def test_goal_progress_from_counts_with_wilson_intervals():
    rows = pd.DataFrame({"school_id": "101", "metric": "read_proficient", "student_group": "ALL",
                         "school_year": [2022, 2023, 2024, 2025], "numerator": [40, 45, 44, 30],
                         "denominator": [100] * 4, "value": [np.nan] * 4})
    out = g.goal_progress(pd.DataFrame([GOAL]), rows, {"read_proficient": True}, {"101": "Oak ES"}, last_year=2026)
    assert list(out.columns) == g.GOAL_COLUMNS
    assert out["school_year"].tolist() == [2023, 2024, 2025, 2026]  # after the baseline, up to the target
    assert out["trajectory"].tolist() == [45.0, 50.0, 55.0, 60.0]
    # 2023: 45 = trajectory; 2024: 44, Wilson upper 53.8 >= 50; 2025: 30, upper 39.6 < 55; 2026: no value
    assert out["progress"].tolist() == ["on_track", "at_risk", "off_track", "not_measured"]
    assert out.loc[1, "ci_high"] == pytest.approx(53.77, abs=0.01)
    assert out["school_name"].iloc[0] == "Oak ES"


def test_goal_without_data_after_its_baseline_is_not_measured():
    out = g.goal_progress(pd.DataFrame([GOAL]), pd.DataFrame(columns=["school_id", "metric", "student_group",
                                                                      "school_year", "numerator", "denominator",
                                                                      "value"]), {}, last_year=2022)
    assert out[["school_year", "progress"]].values.tolist() == [[2023, "not_measured"]]


def test_goal_progress_of_many_goals_at_once_follows_each_goals_own_line_and_direction():
    bent = {**GOAL, "goal_id": "G2", "interim_targets": "2024: 42"}  # 40 -> 42 (2024) -> 60 (2026)
    lower = {**GOAL, "goal_id": "G3", "school_id": "102", "metric": "suspension_rate", "baseline_value": 10.0,
             "target_value": 6.0, "target_year": 2024}  # 10 -> 6 over 2022-2024: 8 in 2023, 6 from 2024
    empty = {**GOAL, "goal_id": "G4", "school_id": "103", "baseline_year": 2026, "target_year": 2028}
    rows = pd.DataFrame({"school_id": ["101"] * 3 + ["102"] * 3, "metric": ["read_proficient"] * 3
                         + ["suspension_rate"] * 3, "student_group": "ALL",
                         "school_year": [2023, 2024, 2025, 2023, 2024, 2025],
                         "numerator": [np.nan] * 6, "denominator": [np.nan] * 6,
                         "value": [41.0, 41.5, 52.0, 8.0, 6.5, 5.0]})  # values only: no intervals
    out = g.goal_progress(pd.DataFrame([bent, lower, empty]), rows,
                          {"read_proficient": True, "suspension_rate": False}, last_year=2026)
    by_goal = {gid: block for gid, block in out.groupby("goal_id")}
    # G2: 2023 halfway 40 -> 42 = 41 (41 reaches it); 2024 = 42 (41.5 misses, no interval); 2025 halfway 42 -> 60 = 51
    assert by_goal["G2"][["school_year", "trajectory", "progress"]].values.tolist() == [
        [2023, 41.0, "on_track"], [2024, 42.0, "off_track"], [2025, 51.0, "on_track"], [2026, 60.0, "not_measured"]]
    # G3 (lower is better): 8 <= 8; 6.5 > 6; 5 <= 6 after the target year (held at 6); no year past the target
    assert by_goal["G3"][["school_year", "trajectory", "progress"]].values.tolist() == [
        [2023, 8.0, "on_track"], [2024, 6.0, "off_track"], [2025, 6.0, "on_track"]]
    # G4: no year after its baseline on file yet: one row, the year after the baseline, not yet measured
    assert by_goal["G4"][["school_year", "progress"]].values.tolist() == [[2027, "not_measured"]]
    assert out["goal_id"].tolist() == ["G2"] * 4 + ["G3"] * 3 + ["G4"]  # ordered by goal, then year


def test_many_values_are_classified_as_one_is():
    value, low, high = np.array([50.0, 48, 45, 48, np.nan, 9.5]), np.array([40.0, 44, 41, np.nan, np.nan, 8.7]), \
        np.array([60.0, 52, 49, np.nan, np.nan, 10.4])
    expected, higher = np.array([50.0, 50, 50, 50, 50, 9]), np.array([True, True, True, True, True, False])
    assert g.classify_arrays(value, low, high, expected, higher).tolist() == [
        "on_track", "at_risk", "off_track", "off_track", "not_measured", "at_risk"]


@pytest.mark.parametrize(("change", "field"), [
    ({"target_value": 35.0}, "target_value"),            # reading: higher is better, 35 < 40
    ({"target_year": 2022}, "target_year"),              # not after the baseline year
    ({"target_value": 120.0}, "target_value"),           # a percentage above 100
    ({"interim_targets": "2030: 50"}, "interim_targets"),  # outside 2022-2026
    ({"interim_targets": "next year 50"}, "interim_targets"),
    ({"baseline_value": None}, "baseline_value"),         # no baseline given and none in the data
])
def test_goal_checks_name_the_field(change, field):
    problems = g.check_goal({**GOAL, **change}, higher_is_better=True)
    assert field in [f for f, _ in problems]


def test_goal_checks_pass_a_good_goal_and_take_the_baseline_from_data():
    assert g.check_goal(GOAL, higher_is_better=True) == []
    assert g.check_goal({**GOAL, "baseline_value": None}, higher_is_better=True, data_baseline=41.0) == []
    lower = {**GOAL, "metric": "suspension_rate", "baseline_value": 8.0, "target_value": 5.0}
    assert g.check_goal(lower, higher_is_better=False) == []
    assert g.check_goal({**lower, "target_value": 9.0}, higher_is_better=False)[0][0] == "target_value"


def test_rollup_counts_live_goals_by_their_latest_progress():
    goals = pd.DataFrame({"goal_id": ["A", "B", "C", "D", "E"], "school_id": ["1", "1", "2", "2", "2"],
                          "status": ["active", "active", "retired", "draft", "met"]})
    progress = pd.DataFrame({"goal_id": ["A", "A", "B", "C", "D", "E"],
                             "school_year": [2024, 2025, 2025, 2025, 2025, 2025],
                             "progress": ["off_track", "on_track", "off_track", "on_track", "on_track",
                                          "not_measured"]})
    schools = pd.DataFrame({"school_id": ["1", "2"], "cluster": ["North", "North"]})
    row = g.rollup(goals, progress, schools).iloc[0]
    assert (row["goals"], row["on_track"], row["off_track"], row["not_measured"]) == (3, 1, 1, 1)
    assert g.rollup_sentence(row) == "1 of 3 goals on track (0 at risk, 1 off track, 1 not yet measured)"


def test_ramp_follows_links_both_ways_and_survives_a_loop():
    cycles = pd.DataFrame({"cycle_id": ["a", "b", "c", "x", "l1", "l2"],
                           "previous_cycle_id": [None, "a", "b", None, "l2", "l1"],
                           "start_date": pd.to_datetime(["2024-09-01", "2024-10-01", "2024-11-01", "2024-09-01",
                                                         "2024-09-01", "2024-10-01"])})
    assert cy.ramp(cycles, "b") == ["a", "b", "c"]
    assert cy.ramp(cycles, "x") == ["x"]
    assert set(cy.ramp(cycles, "l1")) == {"l1", "l2"}
    assert cy.ramp(cycles, "nope") == []


def test_ramp_run_chart_marks_a_shift_and_spans_each_cycle():
    cycles = pd.DataFrame({"cycle_id": ["a", "b"], "change_idea": ["greet", "greet + circle"],
                           "start_date": pd.to_datetime(["2024-09-02", "2024-10-14"]),
                           "end_date": pd.to_datetime(["2024-10-11", None])})
    dates = pd.date_range("2024-09-02", periods=12, freq="W-MON")
    measures = pd.DataFrame({"cycle_id": ["a"] * 6 + ["b"] * 6, "date": dates,
                             "value": [14, 15, 13, 14, 15, 13, 9, 8, 9, 8, 7, 8], "note": None})
    points, spans = cy.ramp_run_chart(cycles, measures, ["a", "b"])
    assert points["median"].iloc[0] == 11.0  # median of the 12 values
    assert (points["signal"].str.contains("shift")).all()  # 6 above, then 6 below the median
    assert spans["end"].iloc[1] == dates[-1]  # an open cycle's span ends at its last measure
    assert "shift" in cy.signal_summary(points)
    assert spans["label"].tolist() == ["Cycle 1", "Cycle 2"]  # numbered as the ramp's links, not by id
    _, alone = cy.ramp_run_chart(cycles, measures, ["b"], ["a", "b"])
    assert alone["label"].tolist() == ["Cycle 2"]  # one cycle's chart keeps its place in the ramp
    assert "Cycle 2" in json.dumps(charts_workspace.cycle_run_chart(points, spans, "Minutes late").to_dict())


def test_signal_summary_tells_each_shift_and_trend_apart():
    dates = pd.date_range("2024-09-02", periods=18, freq="W-MON")
    # Median 16.5: 6 below, one above, 3 below, then 8 above: two shifts, not one of 14.
    values = [11, 10, 12, 11, 10, 12, 25, 13, 12, 13, 21, 20, 22, 21, 20, 22, 21, 20]
    cycles = pd.DataFrame({"cycle_id": ["a"], "change_idea": ["greet"], "start_date": [dates[0]],
                           "end_date": [None]})
    points, _ = cy.ramp_run_chart(cycles, pd.DataFrame({"cycle_id": "a", "date": dates, "value": values,
                                                        "note": None}), ["a"])
    assert cy.signal_summary(points) == ("Signal of a non-random change: two shifts (6 points in a row below the "
                                         "median 16.5, then 8 above it).")
    # Median 8: 7 below, then six 9s above (the 8s on the median neither count nor break); 1 to 5 rising.
    rising = points.assign(value=[5, 1, 2, 3, 4, 5, 1, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9])
    rising["median"] = rising["value"].median()
    assert cy.signal_summary(rising) == ("Signal of a non-random change: two shifts (7 points in a row below the "
                                         "median 8, then 6 above it) and a trend (5 points in a row rising).")


def test_goals_and_cycles_are_named_in_words():
    assert g.goal_title("Suspension rate", "Black or African American", 1.8, 2026) == (
        "Suspension rate, Black or African American: 1.8% by 2026")
    assert g.goal_title("Days absent", "All students", 12, 2027.0, unit="days") == (
        "Days absent, All students: 12.0 days by 2027")
    assert g.goal_title("Reading proficient", "All students", None, 2026) == "Reading proficient, All students"
    assert cy.cycle_title(" Greet at the door ", 2) == "2. Greet at the door"
    assert cy.cycle_title(None) == "Untitled cycle"


def test_look_fors_and_whys():
    assert notes.parse_look_fors("Target posted: 5/8; Partner talk: 3 of 8") == [
        {"item": "Target posted", "observed": 5, "classrooms": 8, "share": 62.5},
        {"item": "Partner talk", "observed": 3, "classrooms": 8, "share": 37.5}]
    with pytest.raises(ValueError, match="k must be between"):
        notes.parse_look_fors("Target posted: 9/8")
    assert notes.parse_whys("late\nno schedule > built first") == ["late", "no schedule", "built first"]
    assert [f for f, _ in notes.check_walkthrough({"notes": "Ms. Lopez kept the routine"})] == ["notes"]
    assert notes.check_walkthrough({"notes": "Routines were consistent", "look_fors": "Target: 2/4"}) == []


# --- what changed since the meeting ----------------------------------------------------------------------------


@pytest.mark.parametrize(("since", "year"), [(date(2025, 2, 27), 2024), (date(2025, 6, 30), 2024),
                                             (date(2025, 7, 1), 2025), (date(2025, 9, 15), 2025)])
def test_year_of_record(since, year):
    assert ch.year_of_record(since) == year


def test_new_risk_ratio_flags_are_flags_now_that_were_not_flags_then():
    dispro = pd.DataFrame({
        "school_id": ["1", "1", "1", "1", "2"], "school_year": [2024, 2025, 2024, 2025, 2025],
        "student_group": ["BL", "BL", "HI", "HI", "WH"], "outcome": "suspension",
        "risk_ratio": [2.5, 3.4, 3.1, 3.2, 3.0], "flagged": [False, True, True, True, True]})
    out = ch.new_rr_flags(dispro, 2024, 2025)
    assert sorted(zip(out["school_id"], out["detail"].str[:5], strict=True)) == [("1", "Black"), ("2", "White")]
    assert ch.new_rr_flags(dispro, 2025, 2025).empty  # no newer year: nothing is new


def test_status_worsened_means_into_orange_or_red_from_a_better_colour():
    keys = {"school_id": ["1"] * 6, "student_group": ["ALL", "BL", "HI", "WH", "SWD", "EML"],
            "metric": "suspension_rate"}
    then = pd.DataFrame({**keys, "color": ["Green", "Orange", "Red", "Yellow", "", "Blue"]})
    now = pd.DataFrame({**keys, "color": ["Orange", "Red", "Red", "Yellow", "Red", "Yellow"]})
    out = ch.worsened_status(then, now, 2025, {"suspension_rate": "Suspension rate"})
    assert sorted(out["detail"]) == ["Suspension rate, All students: Green → Orange in 2025",
                                     "Suspension rate, Black or African American: Orange → Red in 2025"]


def test_goal_moved_off_track_only_when_it_was_not_off_track_before():
    progress = pd.DataFrame({
        "goal_id": ["A", "A", "B", "B", "C"], "school_id": "1", "metric": "read_proficient", "student_group": "ALL",
        "school_year": [2024, 2025, 2024, 2025, 2025], "value": [50.0, 40.0, 30.0, 31.0, 48.0],
        "trajectory": [50.0, 55.0, 50.0, 55.0, 50.0],
        "progress": ["on_track", "off_track", "off_track", "off_track", "at_risk"]})
    out = ch.goals_moved_off_track(progress, 2024, {"read_proficient": "Reading proficient"})
    assert out["link"].tolist() == ["plans?school=1&goal=A"]  # the goal's id is in its link, its words in the text
    assert out["detail"].tolist() == ["goal on Reading proficient, All students: 40.0 in 2025 against a trajectory "
                                      "of 55.0"]


def test_new_run_chart_signal_after_the_meeting_but_not_one_already_running():
    weeks = pd.date_range("2025-01-06", periods=12, freq="W-MON")
    since = date(2025, 2, 12)  # after the 6th point
    shift = pd.DataFrame({"school_id": "1", "source": "cycle C1", "link": "cycles?cycle=C1", "period": weeks,
                          "value": [1, 2, 1, 2, 1, 2, 9, 9, 9, 9, 9, 9]})
    running = pd.DataFrame({"school_id": "2", "source": "cycle C2", "link": "cycles?cycle=C2", "period": weeks,
                            "value": list(range(1, 13))})  # one trend, already 6 points long at the meeting
    out = ch.new_signals(pd.concat([shift, running]), since)
    assert out["school_id"].tolist() == ["1"]
    assert out["detail"].iloc[0].startswith("cycle C1: shift since 2025-02-12")


def test_new_year_and_the_combined_list():
    years = pd.DataFrame({"school_id": ["1", "1", "2"], "school_year": [2024, 2025, 2024]})
    new = ch.new_years(years, 2024)
    assert new["school_id"].tolist() == ["1"]
    schools = pd.DataFrame({"school_id": ["1", "2"], "school_name": ["Oak ES", "Elm MS"]})
    extra = pd.DataFrame({"school_id": ["1", "1"], "change": "status_worsened", "detail": ["b", "a"],
                          "link": "school?school=1"})
    out = ch.combine([new, extra], schools, date(2025, 2, 27))
    assert list(out.columns) == ch.CHANGE_COLUMNS
    assert out["change"].tolist() == ["status_worsened", "new_year"]  # one row per school and kind, in order
    assert out["detail"].iloc[0] == "a; b" and out["since"].iloc[0] == "2025-02-27"
    assert ch.summary(out) == "1 school with changes: 1 with a worsened status, 1 with a new year of data."
    assert ch.summary(extra) == "1 school with changes: 1 with a worsened status."  # schools, not rows


def test_a_school_flagged_often_gets_one_row_per_kind_with_the_first_four_details():
    schools = pd.DataFrame({"school_id": ["1", "2"], "school_name": ["Oak ES", "Elm MS"]})
    many = pd.DataFrame({"school_id": "2", "change": "run_chart_signal", "detail": list("fedcba"),
                         "link": [f"cycles?cycle={k}" for k in "fedcba"]})
    one = pd.DataFrame({"school_id": ["1"], "change": "new_year", "detail": ["x"], "link": ["school?school=1"]})
    out = ch.combine([many, one], schools, date(2025, 2, 27))
    assert out["school_id"].tolist() == ["2", "1"]  # Elm before Oak
    assert out["detail"].tolist() == ["a; b; c; d; and 2 more", "x"]
    assert out["link"].iloc[0] == "cycles?cycle=f"  # the link of the first row given


def test_each_school_and_kind_joins_its_own_first_details_when_rows_come_interleaved():
    schools = pd.DataFrame({"school_id": ["1", "2"], "school_name": ["Oak ES", "Elm MS"]})
    rows = pd.DataFrame({"school_id": ["1", "2", "1", "2", "1", "1", "1", "2"],
                         "change": ["status_worsened", "status_worsened", "new_rr_flag", "status_worsened",
                                    "status_worsened", "status_worsened", "status_worsened", "new_rr_flag"],
                         "detail": ["e", "z", "r", "y", "d", "c", "b", "q"],
                         "link": [f"l{i}" for i in range(8)]})
    out = ch.combine([rows], schools, date(2025, 2, 27))
    # Elm (2) before Oak (1); in each, flags before colours; details sorted, four at most, then how many more.
    assert out[["school_id", "change", "detail", "link"]].values.tolist() == [
        ["2", "new_rr_flag", "q", "l7"], ["2", "status_worsened", "y; z", "l1"],
        ["1", "new_rr_flag", "r", "l2"], ["1", "status_worsened", "b; c; d; e", "l0"]]
    rows.loc[len(rows)] = ["1", "status_worsened", "a", "l8"]
    out = ch.combine([rows], schools, date(2025, 2, 27))
    assert out["detail"].iloc[-1] == "a; b; c; d; and 1 more" and out["link"].iloc[-1] == "l0"


def test_kinds_joined_per_school_as_found_make_the_same_list():
    schools = pd.DataFrame({"school_id": ["1", "2", "3"], "school_name": ["Oak ES", "Elm MS", "Elm MS"]})
    worsened = pd.DataFrame({"school_id": ["1", "2", "1", "1", "3", "1", "1", "2"], "change": "status_worsened",
                             "detail": ["e", "z", "r", "d", "y", "c", "b", "q"], "link": [f"l{i}" for i in range(8)]})
    flags = pd.DataFrame({"school_id": ["2", "2", "1"], "change": "new_rr_flag", "detail": ["f", "a", "g"],
                          "link": ["m0", "m1", "m2"]})
    whole = ch.combine([worsened, flags], schools, date(2025, 2, 27))
    joined = [ch.one_row_per_school_and_kind(part) for part in (worsened, flags)]
    pd.testing.assert_frame_equal(ch.combine(joined, schools, date(2025, 2, 27)), whole)
    assert whole["detail"].tolist() == ["a; f", "q; z", "y", "g", "b; c; d; e; and 1 more"]


def test_the_summary_separates_thousands():
    ids = [str(i) for i in range(1200)]
    many = pd.DataFrame({"school_id": ids, "change": "status_worsened", "detail": "x", "since": "2025-02-27",
                         "link": [f"school?school={i}" for i in ids]})
    assert ch.summary(many) == "1,200 schools with changes: 1,200 with a worsened status."


def test_changes_by_cluster_count_schools_per_kind_and_keep_clusters_with_none():
    """North: A has two worsened cells (one row a school and kind, but counted once) and a new year, B a new year;
    South: nothing; C has no cluster. Hand counts: North 2 schools changed of 2, 1 worsened, 2 new year."""
    schools = pd.DataFrame({"school_id": ["A", "B", "S", "C"], "cluster": ["North", "North", "South", None]})
    changes = pd.DataFrame({"school_id": ["A", "A", "A", "B", "C"],
                            "change": ["status_worsened", "status_worsened", "new_year", "new_year", "goal_off_track"]})
    out = ch.by_cluster(changes, schools)
    assert out.columns.tolist() == ["cluster", "schools", "with_changes", "status_worsened", "goal_off_track",
                                    "new_year"]
    rows = {r.cluster: (r.schools, r.with_changes, r.status_worsened, r.goal_off_track, r.new_year)
            for r in out.itertuples()}
    assert rows == {"(no cluster)": (1, 1, 0, 1, 0), "North": (2, 2, 1, 0, 2), "South": (1, 0, 0, 0, 0)}
    assert ch.by_cluster(changes.iloc[0:0], schools)["with_changes"].tolist() == [0, 0, 0]


def test_a_joined_row_counts_the_changes_it_stands_for():
    detail = pd.Series(["x", "a; b", "a; b; c; d; and 7 more"])
    assert ch.listed_items(detail).tolist() == [1, 2, 11]


def test_the_most_serious_changes_come_first_and_a_new_year_alone_is_not_a_concern():
    """Hand order: Elm (2 kinds of concern) before the schools with one; among these, Ash's new flag before Fir's
    goal, and Fir before Oak and Pine (one worsened colour each, ties by name); Yew (new year only) last. Two
    schools named Oak are told apart by the labels given."""
    changes = pd.DataFrame({
        "school_id": ["1", "1", "2", "2", "3", "4", "5", "6", "7"],
        "school_name": ["Elm MS", "Elm MS", "Ash ES", "Ash ES", "Fir HS", "Oak ES", "Pine ES", "Yew ES", "Oak ES"],
        "change": ["status_worsened", "run_chart_signal", "new_rr_flag", "new_year", "goal_off_track",
                   "status_worsened", "status_worsened", "new_year", "status_worsened"],
        "detail": ["a; b; c; d; and 3 more", "s", "f", "y", "g", "a", "a", "y", "a; b"]})
    names = pd.Series({"4": "Oak ES (North)", "7": "Oak ES (South)"})
    out = ch.most_serious_first(changes, names)
    assert out["school"].tolist() == ["Elm MS", "Ash ES", "Fir HS", "Oak ES (South)", "Oak ES (North)", "Pine ES",
                                      "Yew ES"]
    assert out["concerns"].tolist() == [2, 1, 1, 1, 1, 1, 0]
    assert out["status_worsened"].tolist() == [7, 0, 0, 2, 1, 1, 0]
    assert out.columns.tolist() == ["school_id", "school", "concerns", *ch.CHANGE_KINDS]


def test_the_summary_tells_apart_schools_that_share_a_name():
    """Two schools named Oak ES: each counts its own kinds (2 and 1, not 3 for the name), named with its cluster
    as the app names them elsewhere, or with its id when no names are given. Of the two with one kind, the goal
    off track is more serious than the new year of data."""
    from analytics.data.catalog import school_labels

    changes = pd.DataFrame({"school_id": ["1", "1", "2", "3"], "school_name": ["Oak ES", "Oak ES", "Oak ES", "Elm MS"],
                            "change": ["status_worsened", "new_year", "goal_off_track", "new_year"],
                            "detail": "x", "since": "2025-02-27", "link": "school?school=1"})
    schools = pd.DataFrame({"school_id": ["1", "2", "3"], "school_name": ["Oak ES", "Oak ES", "Elm MS"],
                            "cluster": ["North", "South", "North"]})
    assert ch.summary(changes, school_labels(schools)).endswith(
        "Most kinds of change: Oak ES (North) with 2, Oak ES (South) with 1, Elm MS with 1.")
    assert ch.summary(changes).endswith("Most kinds of change: Oak ES · 1 with 2, Oak ES · 2 with 1, Elm MS with 1.")
