"""The release decision at scale: it splits into independent pieces (one school year and source of n each)
and decides each on its own (the same cells as deciding them together), and its propagation applies only
the constraints whose variables moved."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.access import release, release_audit, release_cells, release_decide
from analytics.config import DEFAULT_SETTINGS

SCHOOLS = pd.DataFrame({"school_id": ["A1", "A2", "B1", "B2", "C1"], "cluster": ["A", "A", "B", "B", "C"],
                        "level": "ES"})


def _metrics(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["school_id", "school_year", "metric", "student_group", "numerator", "denominator"])
    return df.assign(value=100 * df["numerator"] / df["denominator"], target=np.nan)


METRICS = _metrics([("A1", 2025, "read_proficient", "ALL", 50, 100), ("A2", 2025, "read_proficient", "ALL", 60, 110),
                    ("B1", 2025, "read_proficient", "ALL", 40, 90), ("B2", 2025, "read_proficient", "ALL", 45, 95),
                    ("C1", 2025, "read_proficient", "ALL", 4, 8),
                    ("A1", 2024, "read_proficient", "ALL", 52, 104), ("A2", 2024, "read_proficient", "ALL", 61, 112),
                    ("B1", 2024, "read_proficient", "ALL", 41, 91), ("B2", 2024, "read_proficient", "ALL", 7, 9)])
DISCIPLINE = pd.DataFrame([("A1", 2025, "ALL", 200, 40), ("A1", 2025, "BL", 18, 4), ("A1", 2025, "WH", 182, 36)],
                          columns=["school_id", "school_year", "student_group", "enrolled", "students_suspended"])


def test_a_piece_is_one_year_and_one_source_of_n():
    cells = release_cells.pooled_cells(release_cells.shared_denominators(pd.concat(
        [release_cells.discipline_cells(DISCIPLINE), release_cells.metric_cells(METRICS)], ignore_index=True)), SCHOOLS)
    parts = release_decide.pieces(cells)
    # 2025 reading: 5 schools, clusters A, B, C and the district (9); 2025 suspensions: A1, cluster A and the
    # district for ALL, BL and WH (9); 2024 reading: 4 schools, clusters A and B and the district (7).
    assert [len(p) for p in parts] == [9, 9, 7]
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(cells)))
    for rows in parts:
        piece = cells.iloc[rows]
        assert piece["school_year"].nunique() == 1 and piece["n_source"].nunique() == 1


def test_deciding_the_pieces_apart_gives_the_whole_decision():
    whole = release.build_release(SCHOOLS, METRICS, DISCIPLINE).cells
    for year in (2024, 2025):
        alone = release.build_release(SCHOOLS, METRICS[METRICS["school_year"] == year], DISCIPLINE.iloc[:0]).cells
        # The same piece, with the same inputs: its fingerprint too (the whole release has more of them).
        pd.testing.assert_frame_equal(whole.xs("read_proficient", level="measure", drop_level=False)
                                      .xs(float(year), level="school_year", drop_level=False)
                                      .astype({"piece": str}), alone.astype({"piece": str}))
    states = whole["state"].xs(("read_proficient", "ALL"), level=("measure", "student_group"))
    # The lone small cluster C is hidden, and with it the smaller other cluster (B), as decided together.
    assert states[("cluster:C", 2025.0)] == "hidden" and states[("cluster:B", 2025.0)] == "hidden"
    # 7 of 9 in B2 (n < 10) is hidden in 2024, and B1 with it (B = B1 + B2 would give it back), or cluster B.
    assert states[("B2", 2024.0)] == "hidden"
    assert release.build_release(SCHOOLS, METRICS, DISCIPLINE).disclosed == 0


def test_propagation_goes_on_past_a_contradiction_and_keeps_its_bounds():
    none = np.empty(0, dtype=np.int64)
    # x0 + x1 = x2 with 4 and 10 released: x1 = 6. x1 + x6 = x7 with 20 released: x6 = 14 once x1 is known
    # (a second round). x3 + x4 = x5 with 5 and 3 released cannot hold: x4 keeps [0, BIG].
    rel = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    var = np.array([0, 1, 2, 3, 4, 5, 1, 6, 7])
    coef = np.array([1, 1, -1, 1, 1, -1, 1, 1, -1], dtype=float)
    big = release_audit.BIG
    lo = np.array([4, 0, 10, 5, 0, 3, 0, 20], dtype=float)
    hi = np.array([4, big, 10, 5, big, 3, big, 20])
    new_lo, new_hi = release_audit.propagate(lo, hi, rel, var, coef, (none, none), (none, none, 0.05), (none, none, 0.95))
    assert new_lo.tolist() == [4, 6, 10, 5, 0, 3, 14, 20]
    assert new_hi.tolist() == [4, 6, 10, 5, big, 3, 14, 20]


def test_a_piece_past_its_time_is_withheld_whole_and_its_cells_keep_more_than_one_value():
    discipline = DISCIPLINE.assign(students_expelled=[1, 0, 1])
    cells = release_cells.pooled_cells(release_cells.shared_denominators(pd.concat(
        [release_cells.discipline_cells(discipline), release_cells.metric_cells(METRICS)], ignore_index=True)), SCHOOLS)
    given = release_decide.decide(cells)
    assert not given["piece_withheld"].any()
    rushed = release_decide.decide(cells, piece_seconds=0.0)
    # Every piece here needs a second audit (a small cell pinned by its sum), so with no time each one is
    # withheld whole: every cell hidden, n included.
    assert rushed["piece_withheld"].all() and (rushed["state"] == release_cells.HIDDEN).all() and rushed["n_hidden"].all()
    # 2025 suspensions and expulsions at A1, cluster A and the district (ALL, BL, WH: 18 cells), the expelled
    # WH count 0 among them. Nothing released: neither audit finds a cell with one value.
    piece = cells[cells["n_source"] == "enrolled"]
    problem = release_cells._problem(piece)
    state = np.full(len(piece), release_cells.HIDDEN, dtype=object)
    hidden = np.ones(len(problem.k_true), dtype=bool)
    result = release_audit.audit(problem, hidden, state, DEFAULT_SETTINGS)
    assert len(piece) == 18 and not len(result.disclosed)
    system = release_audit.exact_system(problem, state, DEFAULT_SETTINGS, result.lo, result.hi)
    report = release_audit.exact_unique(system, np.arange(len(hidden)), solution=problem.k_true)
    assert report.unique == {} and report.undecided == 0 and report.audited == len(hidden)


def test_a_piece_whose_audit_leaves_a_cell_pinned_is_withheld_not_released():
    # One school, 4 of 8: it, its cluster and the district are the same cell, all hidden by rule 1. With no
    # time the exact audit counts every hidden count and n as pinned, and nothing is released to open: the
    # piece is withheld whole rather than released with its cells marked disclosed.
    cells = release_cells.pooled_cells(release_cells.shared_denominators(release_cells.metric_cells(METRICS.iloc[4:5])), SCHOOLS)
    rushed = release_decide.decide(cells, piece_seconds=0.0)
    assert len(rushed) == 3 and rushed["piece_withheld"].all() and not rushed["disclosed"].any()
    assert rushed["n_hidden"].all()
    given = release_decide.decide(cells)
    assert not given["piece_withheld"].any() and not given["disclosed"].any()


def test_each_piece_gets_at_most_what_is_left_of_the_decision():
    discipline = DISCIPLINE.assign(students_expelled=[1, 0, 1])
    cells = release_cells.pooled_cells(release_cells.shared_denominators(pd.concat(
        [release_cells.discipline_cells(discipline), release_cells.metric_cells(METRICS)], ignore_index=True)), SCHOOLS)
    # No time for the whole decision: every piece needing a second audit is withheld, as with no time per piece.
    pd.testing.assert_frame_equal(release_decide.decide(cells, seconds=0.0), release_decide.decide(cells, piece_seconds=0.0))
