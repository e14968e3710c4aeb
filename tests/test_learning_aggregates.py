"""Level 1's feedback sums from the database (SQL GROUP BY) equal hand-computed sums on SQLite and PostgreSQL,
and the sums the page and exports read give the same level 1 as the imported rows."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.data import bulk_write
from analytics.learning import evaluation, levels, load

SCHOOLS = pd.DataFrame({"school_id": ["A", "B"], "school_name": ["Ash", "Birch"], "level": ["ES", "ES"],
                        "cluster": ["North", "North"]})
PROGRAMS = pd.DataFrame({"program": ["P", "Q"], "program_name": ["Pee", "Queue"],
                         "goal_metrics": ["math_proficient", "math_proficient"]})
# S4 is held district-wide (no school); Q has its own S1, at another school (sessions are keyed by programme).
SESSIONS = pd.DataFrame({"program": ["P", "P", "P", "P", "Q"], "session_id": ["S1", "S2", "S3", "S4", "S1"],
                         "session_date": ["2024-09-10"] * 5, "school_id": ["A", "A", "B", None, "B"],
                         "participants": [5, 3, 4, 5, 7], "hours": [2.0, 2.0, 1.0, 1.0, 3.0]})
# (program, session, item, response, count); S9 of P has feedback but no session row.
FEEDBACK = pd.DataFrame(
    [("P", "S1", "Time", 4, 3), ("P", "S1", "Time", 5, 2), ("P", "S2", "Time", 4, 1), ("P", "S2", "Time", 2, 2),
     ("P", "S3", "Time", 5, 4), ("P", "S4", "Useful", 3, 5), ("P", "S9", "Time", 1, 1), ("Q", "S1", "Time", 1, 7)],
    columns=["program", "session_id", "item", "response", "count"])


@pytest.fixture
def pl_district(engine):
    bulk_write.replace_all(engine, {"schools": SCHOOLS, "pl_programs": PROGRAMS, "pl_sessions": SESSIONS,
                                    "pl_feedback": FEEDBACK})
    return engine


def _as_dict(counts: pd.DataFrame) -> dict:
    return {(p, None if pd.isna(s) else s, i, int(r)): c
            for p, s, i, r, c in counts[levels.FEEDBACK_COLUMNS].itertuples(index=False)}


def _sessions(held: pd.DataFrame) -> dict:
    return {(p, None if pd.isna(s) else s): n for p, s, n in held[levels.FEEDBACK_SESSION_COLUMNS].itertuples(index=False)}


EXPECTED_COUNTS = {("P", "A", "Time", 2): 2.0, ("P", "A", "Time", 4): 4.0, ("P", "A", "Time", 5): 2.0,
                   ("P", "B", "Time", 5): 4.0, ("P", None, "Time", 1): 1.0, ("P", None, "Useful", 3): 5.0,
                   ("Q", "B", "Time", 1): 7.0}
EXPECTED_SESSIONS = {("P", "A"): 2, ("P", "B"): 1, ("P", None): 2, ("Q", "B"): 1}


def test_feedback_sums_by_hand(pl_district):
    counts, held = load.feedback_summary(pl_district)
    assert _as_dict(counts) == EXPECTED_COUNTS
    assert _sessions(held) == EXPECTED_SESSIONS
    only_q, held_q = load.feedback_summary(pl_district, programs=["Q"])
    assert _as_dict(only_q) == {("Q", "B", "Time", 1): 7.0} and _sessions(held_q) == {("Q", "B"): 1}


def test_database_sums_equal_the_pandas_sums_of_the_rows(pl_district):
    counts, held = levels.feedback_by_school(FEEDBACK, SESSIONS)
    assert _as_dict(counts) == EXPECTED_COUNTS and _sessions(held) == EXPECTED_SESSIONS


def test_empty_feedback_gives_empty_sums(engine):
    counts, held = load.feedback_summary(engine)
    assert counts.empty and list(counts.columns) == levels.FEEDBACK_COLUMNS
    assert held.empty and list(held.columns) == levels.FEEDBACK_SESSION_COLUMNS


def test_level_one_from_the_sums_by_hand(pl_district):
    row = PROGRAMS.iloc[0]
    tables = load.pl_tables(pl_district, programs=["P"])
    assert set(tables["pl_sessions"]["program"]) == {"P"}
    # School A: "Time" 2 x2, 4 x4, 5 x2 -> 8 responses, 6 agree = 75%, over sessions S1 and S2.
    at_a = evaluation.program_data(row, tables, "A")
    summary = levels.likert_summary(at_a.feedback).set_index("item")
    assert summary.loc["Time", "n"] == 8 and summary.loc["Time", "pct_agree"] == pytest.approx(75.0)
    assert at_a.feedback_sessions == 2
    # The whole programme: "Time" 1+2+4+2+4 = 13 responses, 10 agree; "Useful" 5 neutral; 5 sessions (S1-S4, S9).
    whole = evaluation.program_data(row, tables)
    summary = levels.likert_summary(whole.feedback).set_index("item")
    assert summary.loc["Time", "n"] == 13 and summary.loc["Time", "agree"] == 10
    assert summary.loc["Useful", "pct_agree"] == 0 and whole.feedback_sessions == 5
    from_rows = evaluation.program_data(row, {**tables, "pl_feedback": FEEDBACK, "pl_sessions": SESSIONS})
    assert evaluation._level1(from_rows).finding == evaluation._level1(whole).finding
    assert whole.feedback_sessions == from_rows.feedback_sessions


def test_outcome_change_by_hand():
    from analytics.learning import outcomes

    # A starts 2023: before 10 (2022), after mean(14, 18) = 16 -> +6. B starts 2024 but has no 2023 value: left
    # out. C starts 2022: before 5 (2021), after 3 -> -2. D never took part.
    panel = pd.DataFrame({"school_id": ["A", "A", "A", "B", "B", "C", "C", "D"],
                          "school_year": [2022, 2023, 2024, 2022, 2024, 2021, 2022, 2022],
                          "value": [10.0, 14.0, 18.0, 7.0, 9.0, 5.0, 3.0, 1.0]})
    starts = pd.Series({"C": 2022.0, "A": 2023.0, "B": 2024.0})
    change = outcomes.outcome_change(panel, starts)
    assert change.to_dict("list") == {"school_id": ["C", "A"], "before": [5.0, 10.0], "after": [3.0, 16.0],
                                      "change": [-2.0, 6.0]}
    assert outcomes.outcome_change(panel.iloc[0:0], starts).empty
