"""Restorative-practices impact and the generic staggered DiD: randomization inference checked by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.config import Settings
from analytics.stats.did import describe, invert_test, staggered_did
from analytics.stats.rp_impact import rp_impact, rp_impact_for_cluster, rp_impact_for_school


def _two_year_panel(diffs: dict[str, float], starts: dict[str, int]) -> pd.DataFrame:
    """Outcome 10 in 2021 and 10 + diff in 2022 for each school."""
    rows = []
    for sid, d in diffs.items():
        for year, y in ((2021, 10.0), (2022, 10.0 + d)):
            rows.append({"school_id": sid, "school_year": year, "y": y, "start_year": starts.get(sid, np.nan)})
    return pd.DataFrame(rows)


def test_three_schools_enumerated_by_hand():
    # One treated school A (diff -3) and controls B (+1), C (0). The three ways to place the start year:
    # A: -3 - mean(1, 0) = -3.5;  B: 1 - mean(-3, 0) = 2.5;  C: 0 - mean(-3, 1) = 1.0.
    # p = #{|T| >= 3.5} / 3 = 1/3; with 3 assignments nothing can be rejected: the interval is unbounded.
    result = staggered_did(_two_year_panel({"A": -3, "B": 1, "C": 0}, {"A": 2022}), "y")
    assert result.estimate == pytest.approx(-3.5)
    assert result.p_value == pytest.approx(1 / 3)
    assert result.exact and result.assignments == 3
    assert np.isneginf(result.ci_low) and np.isposinf(result.ci_high)
    assert not result.significant()
    text = describe(result, subject="RP schools", outcome_label="suspension rates")
    assert "fell by 3.50" in text and "no change can be claimed" in text and "unbounded" in text
    assert "Small sample" in text and "smallest possible p-value is 0.33" in text


def test_interval_by_test_inversion_by_hand():
    # 20 schools, one treated with diff d1 = -5, one control with +1, 18 controls with 0 (N = 20).
    # If school j were treated, T_j = (N d_j - S) / (N - 1); shifting the treated school by tau gives x = -5 - tau:
    # T_obs = (19x - 1)/19, T_(+1 school) = (19 - x)/19, T_(0 school) = -(x + 1)/19.
    # tau is kept when some other school ties or beats the observed: |19 - x| >= |19x - 1| <=> |x| <= 1
    # (the zero schools need x in [0, 1/9], inside it). So the 95% CI is tau in [-6, -4];
    # at tau = 0 (x = -5) only the observed assignment counts: p = 1/20 = 0.05, which rejects at alpha 0.05.
    diffs = {"s00": -5.0, "s01": 1.0} | {f"s{i:02d}": 0.0 for i in range(2, 20)}
    result = staggered_did(_two_year_panel(diffs, {"s00": 2022}), "y")
    assert result.estimate == pytest.approx(-5 - 1 / 19)
    assert (result.ci_low, result.ci_high) == (pytest.approx(-6.0), pytest.approx(-4.0))
    assert result.p_value == pytest.approx(0.05)
    assert result.exact and result.assignments == 20 and "exact" in result.method
    assert result.significant()
    text = describe(result, subject="RP schools", outcome_label="suspension rates")
    assert "fell by 5.05" in text and "unlikely to be chance alone" in text and "Small sample" in text


def test_a_rise_is_worded_as_a_rise():
    diffs = {"s00": 5.0, "s01": -1.0} | {f"s{i:02d}": 0.0 for i in range(2, 20)}
    result = staggered_did(_two_year_panel(diffs, {"s00": 2022}), "y")
    text = describe(result, subject="RP schools", outcome_label="suspension rates")
    assert (result.ci_low, result.ci_high) == (pytest.approx(4.0), pytest.approx(6.0))
    assert "rose by 5.05" in text and "a rise this large" in text
    assert "fell" not in text and "drop" not in text


def _four_year_panel(effect_by_school: dict[str, float], start: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for i, sid in enumerate(effect_by_school):
        for year in range(2021, 2025):
            rate = 5 + 0.5 * (year - 2021) + i - (effect_by_school[sid] if year >= start.get(sid, 9999) else 0)
            rows.append({"school_id": sid, "school_year": year, "student_group": "ALL", "enrolled": 1000,
                         "students_suspended": round(rate * 10)})
    schools = pd.DataFrame({"school_id": list(effect_by_school),
                            "rp_start_year": [start.get(s, np.nan) for s in effect_by_school]})
    return schools, pd.DataFrame(rows)


def test_cohort_of_two_enumerates_six_assignments():
    # s1, s2 start 2023 with effect 2; s3, s4 never. The C(4, 2) = 6 placements of the two start years:
    # {s1,s2}: -2; {s3,s4}: +2; each mixed pair: 0. p = #{|T| >= 2} / 6 = 1/3.
    schools, discipline = _four_year_panel({"s1": 2.0, "s2": 2.0, "s3": 0, "s4": 0}, {"s1": 2023, "s2": 2023})
    result = rp_impact(schools, discipline, outcomes=["suspension_rate"])
    row = result.summary.iloc[0]
    assert row["estimate"] == pytest.approx(-2.0)
    assert row["p_value"] == pytest.approx(1 / 3)
    assert "all 6 possible ways (exact)" in row["method"]
    assert "no change can be claimed" in result.statement and "fell by 2.00" in result.statement
    assert "drop" not in result.statement


def test_event_study_counts_schools_behind_each_year():
    # s1 starts 2022 (base 2021: e = 0, 1, 2), s2 starts 2024 (base 2023: e = -3, -2, 0), data 2021-2024.
    schools, discipline = _four_year_panel({"s1": 3.0, "s2": 1.0, "s3": 0, "s4": 0, "s5": 0},
                                           {"s1": 2022, "s2": 2024})
    result = rp_impact(schools, discipline, outcomes=["suspension_rate"])
    n = result.event_study.set_index("rel_year")["n_schools"].to_dict()
    assert n == {-3: 1, -2: 1, -1: 2, 0: 2, 1: 1, 2: 1}
    assert result.summary["estimate"].iloc[0] == pytest.approx(-2.5)  # (-3 - 3 - 3 - 1) / 4 post cells


@pytest.mark.parametrize(("starts", "words"), [
    ({"s1": 2023, "s2": 2023, "s3": 2022, "s4": 2022}, "no comparison group"),
    ({"s1": 2021, "s2": 2021}, "started in the first year of data (2021)"),
    ({"s1": 2026}, "no RP school has a year of data after its start"),
    ({}, "no RP schools"),
])
def test_edge_cases_have_plain_messages(starts, words):
    schools, discipline = _four_year_panel({"s1": 0, "s2": 0, "s3": 0, "s4": 0}, starts)
    result = rp_impact(schools, discipline, outcomes=["suspension_rate"])
    assert words in result.statement
    assert np.isnan(result.summary["estimate"].iloc[0])
    assert "Traceback" not in result.statement


def test_first_year_starters_are_left_out_with_a_note():
    schools, discipline = _four_year_panel({"s1": 2.0, "s2": 2.0, "s3": 0, "s4": 0, "s5": 0},
                                           {"s1": 2021, "s2": 2023})
    result = rp_impact(schools, discipline, outcomes=["suspension_rate"])
    assert result.summary["n_rp_schools"].iloc[0] == 1  # the school that can be compared
    assert ("1 RP school that started in the first year of data (2021) has no before-year and is left out"
            in result.statement)


def test_school_scale_uses_one_school_against_the_never_treated():
    schools, discipline = _four_year_panel({"s1": 2.0, "s2": 2.0, "s3": 0, "s4": 0}, {"s1": 2023, "s2": 2023})
    one = rp_impact_for_school(schools, discipline, "s1", outcomes=["suspension_rate"])
    row = one.summary.iloc[0]
    assert (row["n_rp_schools"], row["n_comparison_schools"]) == (1, 2)
    assert "all 3 possible ways" in row["method"]
    assert "no restorative-practices start year" in rp_impact_for_school(schools, discipline, "s3").statement


def test_inversion_matches_a_brute_force_grid():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 199), rng.normal(0, 0.3, 199)
    estimate = 2.1
    p0, low, high = invert_test(estimate, a, b, 0.05, exact=False)
    grid = np.linspace(-10, 10, 4001)
    hits = (np.abs(a[:, None] - grid * b[:, None]) >= np.abs(estimate - grid)).sum(axis=0)
    accepted = grid[(1 + hits) / 200 > 0.05]
    assert low == pytest.approx(accepted.min(), abs=0.01) and high == pytest.approx(accepted.max(), abs=0.01)
    assert p0 == pytest.approx((1 + (np.abs(a) >= estimate).sum()) / 200)


def test_exact_test_rejects_in_at_most_alpha_of_all_assignments():
    # Fixed outcomes, the one start year placed on each of the 20 schools in turn: by construction of the
    # randomization test, at most 5% of the placements (here: 1 of 20) may give p <= 0.05.
    rng = np.random.default_rng(7)
    diffs = dict(zip([f"s{i:02d}" for i in range(20)], rng.normal(0, 1, 20), strict=True))
    rejections = sum(staggered_did(_two_year_panel(diffs, {sid: 2022}), "y", event_study=False).significant() for sid in diffs)
    assert rejections <= 1


def _benchmark():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "rp_coverage.py"
    spec = importlib.util.spec_from_file_location("rp_coverage", path)
    bench = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # the benchmark imports its _common helpers
    spec.loader.exec_module(bench)
    return bench


def test_small_coverage_run_of_the_benchmark():
    bench = _benchmark()
    settings = Settings(permutations=199)
    null = bench.run_scenario(3, 25, 0.0, range(1, 21), settings)
    planted = bench.run_scenario(10, 50, 1.5, range(1, 11), settings)
    assert null["interval_excludes_zero"] <= 0.10 and null["verdict_disagrees_with_interval"] == 0
    assert planted["found_a_fall"] >= 0.8


def _levelled_panel(diffs: dict[str, float], starts: dict[str, int], levels: dict[str, str]) -> pd.DataFrame:
    return _two_year_panel(diffs, starts).assign(level=lambda f: f["school_id"].map(levels))


def test_strata_compare_and_reassign_within_level_by_hand():
    # Level A: treated a1 (diff -3), never a2 (+1), a3 (0). Level B: treated b1 (+4), never b2 (+2).
    # Within A: a1 -> -3 - mean(1, 0) = -3.5, a2 -> 1 - mean(-3, 0) = 2.5, a3 -> 0 - mean(-3, 1) = 1.0.
    # Within B: b1 -> 4 - 2 = 2, b2 -> 2 - 4 = -2. T = mean of the two levels' ATT (one treated each).
    # The 3 x 2 = 6 placements: -0.75 (observed), -2.75, 2.25, 0.25, 1.5, -0.5; p = #{|T| >= 0.75} / 6 = 4/6.
    levels = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B"}
    panel = _levelled_panel({"a1": -3, "a2": 1, "a3": 0, "b1": 4, "b2": 2}, {"a1": 2022, "b1": 2022}, levels)
    result = staggered_did(panel, "y", strata_col="level")
    assert result.estimate == pytest.approx(-0.75)
    assert result.p_value == pytest.approx(4 / 6)
    assert result.exact and result.assignments == 6
    assert (result.n_treated, result.n_comparison, result.strata) == (2, 3, "level")
    assert "of the same level" in result.method and "within each level in all 6 possible ways" in result.method
    text = describe(result, subject="RP schools", outcome_label="suspension rates")
    assert "3 comparison schools of the same level" in text
    # Pooled over levels the same data give another estimate: mean(-3, 4) - mean(1, 0, 2) = -0.5.
    assert staggered_did(panel, "y").estimate == pytest.approx(-0.5)


def test_treated_school_without_a_same_level_comparison_is_left_out():
    levels = {"a1": "A", "a2": "A", "h1": "H"}
    panel = _levelled_panel({"a1": -3, "a2": 1, "h1": 5}, {"a1": 2022, "h1": 2022}, levels)
    result = staggered_did(panel, "y", strata_col="level")
    assert result.estimate == pytest.approx(-4.0) and result.n_treated == 1
    assert "1 treated school with no never-treated school of the same level is left out" in result.note
    alone = staggered_did(_levelled_panel({"a1": -3, "h1": 5, "h2": 0}, {"a1": 2022}, {"a1": "A", "h1": "H", "h2": "H"}),
                          "y", strata_col="level")
    assert not alone.estimable and "no treated school has a never-treated school of the same level" in alone.note


def test_stratified_exact_test_rejects_in_at_most_alpha_of_all_placements():
    # Fixed outcomes; one start year in level A (20 schools) and one in level B (3 schools), placed in all
    # 20 x 3 = 60 ways: at most 5% of them (3) may give p <= 0.05.
    rng = np.random.default_rng(11)
    ids = [f"a{i:02d}" for i in range(20)] + ["b0", "b1", "b2"]
    diffs = dict(zip(ids, rng.normal(0, 1, len(ids)), strict=True))
    levels = {sid: sid[0] for sid in ids}
    rejections = sum(
        staggered_did(_levelled_panel(diffs, {a: 2022, b: 2022}, levels), "y", strata_col="level",
                      event_study=False).significant()
        for a in ids[:20] for b in ids[20:])
    assert rejections <= 3


def test_rp_impact_compares_within_school_level():
    schools, discipline = _four_year_panel({"s1": 2.0, "s2": 0, "s3": 0, "h1": 0, "h2": 0}, {"s1": 2023})
    schools["level"] = ["ES", "ES", "ES", "HS", "HS"]
    result = rp_impact(schools, discipline, outcomes=["suspension_rate"])
    row = result.summary.iloc[0]
    assert (row["n_rp_schools"], row["n_comparison_schools"]) == (1, 2)  # the high schools take no part
    assert "reassigned within each level in all 3 possible ways" in row["method"]
    assert "never-treated schools of the same level" in result.statement


def test_level_dependent_adoption_small_version_of_the_benchmark():
    """benchmarks/rp_coverage.py's adoption-by-level scenario in miniature (20 null seeds, 199 reassignments)."""
    bench = _benchmark()
    row = bench.run_adoption_by_level(40, 200, range(1, 21), Settings(permutations=199))
    assert row["within_level"]["interval_excludes_zero"] <= 0.15
    assert row["within_level"]["verdict_disagrees_with_interval"] == 0


def test_cluster_scale_compares_its_rp_schools_with_the_districts_never_treated_of_their_level():
    # Cluster North holds the only RP high school (h1, effect 2 from 2023) and no never-RP high school;
    # h2 and h3 (cluster South) are the district's never-RP high schools. s2 is an RP school of the other
    # cluster and takes no part. Inside North alone nothing is comparable; against the district h1 is
    # reassigned among {h1, h2, h3}: 3 placements, T = -2 for h1 and +1 for the others -> p = 1/3.
    schools, discipline = _four_year_panel({"h1": 2.0, "e1": 0, "h2": 0, "h3": 0, "s2": 2.0},
                                           {"h1": 2023, "s2": 2023})
    schools["level"] = ["HS", "ES", "HS", "HS", "ES"]
    schools["cluster"] = ["North", "North", "South", "South", "South"]
    north = schools[schools["cluster"] == "North"]
    inside = rp_impact(north, discipline[discipline["school_id"].isin(north["school_id"])],
                       outcomes=["suspension_rate"])
    assert np.isnan(inside.summary["estimate"].iloc[0])
    row = rp_impact_for_cluster(schools, discipline, "North", outcomes=["suspension_rate"]).summary.iloc[0]
    assert (row["n_rp_schools"], row["n_comparison_schools"]) == (1, 2)
    assert row["estimate"] == pytest.approx(-2.0, abs=0.01)
    assert row["p_value"] == pytest.approx(1 / 3)
    none = rp_impact_for_cluster(schools.assign(rp_start_year=np.nan), discipline, "North")
    assert none.statement.startswith("No school here has a restorative-practices start year")


def test_reassignments_held_by_treated_cells_are_the_seeded_draws():
    # Two strata (units 0-5, 6-9), start years 2022/2023 among never-treated 0s: the compact, once-per-design
    # reassignments are exactly the dense ones a fresh generator with the same seed draws, and the exact
    # enumeration (C(4, 1) x C(3, 1) = 12 ways) is kept whole.
    from analytics.stats.did import _assignments, _treated_assignments

    labels = np.array([2022, 0, 0, 2023, 0, 0, 0, 2023, 0, 0])
    strata = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    dense, exact = _assignments(labels, strata, 50, np.random.default_rng(7))
    compact, compact_exact = _treated_assignments(labels, strata, 50, 7)
    assert not exact and not compact_exact
    assert np.array_equal(compact.dense(), dense) and compact.cols.shape == (50, 3)
    assert _treated_assignments(labels, strata, 50, 7)[0] is compact  # drawn once per design
    small = np.array([2022, 0, 0, 0, 0, 2023, 0])
    groups = np.array([0, 0, 0, 0, 1, 1, 1])
    dense, exact = _assignments(small, groups, 1000, np.random.default_rng(1))
    compact, compact_exact = _treated_assignments(small, groups, 1000, 1)
    assert exact and compact_exact and len(dense) == 12 and np.array_equal(compact.dense(), dense)
    # Strata interleaved among the units (levels of schools listed by id), start years past 16 bits' range too
    rng = np.random.default_rng(3)
    mixed = np.where(rng.random(300) < 0.1, rng.choice([2021, 2022, 40000], 300), 0)
    levels = rng.integers(0, 3, 300)
    for labels in (mixed, np.where(mixed == 40000, 2023, mixed)):
        dense, exact = _assignments(labels, levels, 200, np.random.default_rng(11))
        compact, compact_exact = _treated_assignments(labels, levels, 200, 11)
        assert not exact and not compact_exact and np.array_equal(compact.dense(), dense)
        assert compact.cols.shape == (200, np.count_nonzero(labels))


def test_every_reassignment_estimate_equals_the_direct_formula():
    # Overall ATT for each reassignment of one 2022 start among 4 units (2021-2022): the treated unit's change
    # minus the mean change of the other three, e.g. diffs (-3, 1, 0, 2): unit 0 treated -> -3 - 1 = -4.
    from analytics.stats.did import _estimates, _Treated, _treated_assignments

    diffs = np.array([-3.0, 1.0, 0.0, 2.0])
    values = np.stack([np.full(4, 10.0), 10.0 + diffs], axis=1)[:, :, None]
    labels = np.array([2022, 0, 0, 0])
    assign, _ = _treated_assignments(labels, np.zeros(4, dtype=int), 1000, 0)
    overall, _, _ = _estimates(values, np.array([2021, 2022]), np.zeros(4, dtype=int), assign, [])
    treated_unit = assign.cols[:, 0]
    expected = diffs[treated_unit] - (diffs.sum() - diffs[treated_unit]) / 3
    assert sorted(expected) == pytest.approx([-4.0, 0.0, 4 / 3, 8 / 3])
    assert overall[:, 0] == pytest.approx(expected)
    assert isinstance(assign, _Treated)


def test_exact_reassignments_are_listed_class_by_class_in_lexicographic_order():
    # Labels (0, 0, 2022, 2023) in one stratum: the two 0s take positions {0,1}, {0,2}, {0,3}, {1,2}, {1,3},
    # {2,3} in turn, and under each the free positions take 2022 then 2023, then 2023 then 2022.
    from analytics.stats.did import _assignments

    rows, exact = _assignments(np.array([2023, 0, 2022, 0]), np.zeros(4, dtype=int), 100, None)
    expected = [[0, 0, 2022, 2023], [0, 0, 2023, 2022], [0, 2022, 0, 2023], [0, 2023, 0, 2022],
                [0, 2022, 2023, 0], [0, 2023, 2022, 0], [2022, 0, 0, 2023], [2023, 0, 0, 2022],
                [2022, 0, 2023, 0], [2023, 0, 2022, 0], [2022, 2023, 0, 0], [2023, 2022, 0, 0]]
    assert exact and rows.tolist() == expected
    # Two strata (positions 0-2 and 3-4): the first stratum's 3 arrangements vary slowest, the second's 2 fastest.
    rows, _ = _assignments(np.array([1, 0, 0, 0, 5]), np.array([0, 0, 0, 1, 1]), 100, None)
    assert rows.tolist() == [[0, 0, 1, 0, 5], [0, 0, 1, 5, 0], [0, 1, 0, 0, 5], [0, 1, 0, 5, 0],
                             [1, 0, 0, 0, 5], [1, 0, 0, 5, 0]]
    # One treated unit among 300 (lexicographic 299-subsets, listed through their complements): it walks
    # from the last position to the first.
    one = np.zeros(300, dtype=int)
    one[7] = 2022
    rows, _ = _assignments(one, np.zeros(300, dtype=int), 1999, None)
    assert [int(np.flatnonzero(r)[0]) for r in rows] == list(range(299, -1, -1))


def test_designs_of_the_same_stratum_sizes_share_their_draws_and_stay_the_seeded_ones():
    # Two designs with strata of 6 and 5 units but different treated units and start years: within
    # shared_draws the second reads the first's shuffles (made once), and both equal the dense draws of a fresh
    # generator with that seed, as they do outside it.
    from analytics.stats import did

    strata = np.array([0] * 6 + [1] * 5)
    first = np.array([2022, 0, 0, 0, 0, 0, 0, 0, 2023, 0, 0])
    second = np.array([0, 0, 0, 2021, 0, 2024, 0, 0, 0, 0, 2022])
    with did.shared_draws():
        shared = did._SHARED
        for labels in (first, second):
            dense, exact = did._assignments(labels, strata, 20, np.random.default_rng(11))
            compact, compact_exact = did._treated_assignments(labels, strata, 20, 11)
            assert not exact and not compact_exact
            assert np.array_equal(compact.dense(), dense)
            assert (np.diff(compact.cols, axis=1) > 0).all()  # columns ascending within each row
        assert list(shared.kept) == [((6, 5), 20, 11)]  # one set of draws for both designs
    assert did._SHARED is None
    alone, _ = did._treated_assignments(second, strata, 21, 11)  # outside: drawn for the design itself
    assert np.array_equal(alone.dense(), did._assignments(second, strata, 21, np.random.default_rng(11))[0])


def test_a_scope_panel_sliced_from_the_district_is_its_own_panel_and_estimate():
    # s3 (cluster South, RP from 2023) is the only school with 2020 rows; North's scope (n1, RP from 2023, and
    # the never-RP n2, s4) holds 2021-2024 only, as its own rows give it, not a 2020 of empty cells.
    from analytics.stats.rp_impact import DistrictPanel, comparison_scope, outcome_panel

    schools, discipline = _four_year_panel({"n1": 2.0, "n2": 0, "s3": 2.0, "s4": 0}, {"n1": 2023, "s3": 2023})
    early = discipline[discipline["school_id"] == "s3"].assign(school_year=2020, students_suspended=40)
    discipline = pd.concat([early, discipline], ignore_index=True)
    schools["cluster"] = ["North", "North", "South", "South"]
    district = DistrictPanel.of(schools, discipline)
    assert sorted(district.panel["school_year"].unique()) == [2020, 2021, 2022, 2023, 2024]
    keep = comparison_scope(schools, ["n1", "n2"])
    own = outcome_panel(keep, discipline[discipline["school_id"].isin(keep["school_id"])])
    sliced = district.scope(keep["school_id"])
    pd.testing.assert_frame_equal(sliced, own, check_exact=True)
    assert sorted(sliced["school_year"].unique()) == [2021, 2022, 2023, 2024]
    assert sorted(sliced["school_id"].unique()) == ["n1", "n2", "s4"]
    fast = rp_impact_for_cluster(schools, discipline, "North", district=district)
    plain = rp_impact_for_cluster(schools, discipline, "North")
    pd.testing.assert_frame_equal(fast.summary, plain.summary, check_exact=True)
    assert fast.summary["estimate"].iloc[0] == pytest.approx(-2.0, abs=0.01)  # n1's effect, hand-planted


def test_every_cluster_and_school_estimate_from_the_district_panel_equals_its_own_on_the_demo():
    # The preparer's path (one district panel and metric panels, sliced per scope) against the straightforward
    # per-scope calls, to the last digit, on clusters and RP schools of a demo district.
    from analytics.data.demo import build_demo
    from analytics.learning.outcomes import RP_METRIC_OUTCOMES, rp_metric_impact, rp_metric_panels
    from analytics.stats.rp_impact import DistrictPanel, comparison_scope

    frames = build_demo(schools=120, years=6, seed=5)
    schools, discipline = frames["schools"], frames["discipline"]
    metrics = frames["metrics"][frames["metrics"]["metric"].isin(RP_METRIC_OUTCOMES)
                                & (frames["metrics"]["student_group"] == "ALL")]
    district, panels = DistrictPanel.of(schools, discipline), rp_metric_panels(metrics, schools)
    clusters = sorted(schools.loc[schools["rp_start_year"].notna(), "cluster"].unique())[:4]
    compared = 0
    for cluster in clusters:
        fast = rp_impact_for_cluster(schools, discipline, cluster, district=district)
        plain = rp_impact_for_cluster(schools, discipline, cluster)
        pd.testing.assert_frame_equal(fast.summary, plain.summary, check_exact=True)
        pd.testing.assert_frame_equal(fast.event_study, plain.event_study, check_exact=True)
        assert fast.statement == plain.statement
        scope = comparison_scope(schools, schools.loc[schools["cluster"] == cluster, "school_id"])
        pd.testing.assert_frame_equal(rp_metric_impact(scope, metrics, panels=panels),
                                      rp_metric_impact(scope, metrics), check_exact=True)
        compared += int(np.isfinite(fast.summary["estimate"]).sum())
    school = schools.loc[schools["rp_start_year"].notna(), "school_id"].iloc[0]
    pd.testing.assert_frame_equal(rp_impact_for_school(schools, discipline, school, district=district).summary,
                                  rp_impact_for_school(schools, discipline, school).summary, check_exact=True)
    assert compared >= 4  # estimates, not only empty frames, were compared


def test_first_value_by_unit_and_year_is_the_pivot_table_of_first_values():
    # Duplicated cells take their first known value (b-2021: 3.0, not the NaN before it nor the 4.0 after), a
    # cell without one is NaN, units and years come sorted ("a10" before "a2"), and a unit without any value
    # keeps its row (c: staggered_did drops it).
    from analytics.stats.did import _first_by_unit_and_year

    panel = pd.DataFrame({"school_id": ["b", "a2", "b", "b", "a10", "c", "a2"],
                          "school_year": [2021, 2022, 2021, 2021, 2020, 2022, 2020],
                          "y": [np.nan, 1.0, 3.0, 4.0, 5.0, np.nan, 2.0]})
    got, first_row = _first_by_unit_and_year(panel, "school_id", "school_year", "y")
    want = panel.pivot_table(index="school_id", columns="school_year", values="y", aggfunc="first", dropna=False)
    assert list(got.index) == ["a10", "a2", "b", "c"] == list(want.index)
    assert list(got.columns) == [2020, 2021, 2022] == list(want.columns)
    np.testing.assert_array_equal(got.to_numpy(), [[5.0, np.nan, np.nan], [2.0, np.nan, 1.0],
                                                   [np.nan, 3.0, np.nan], [np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    assert first_row.tolist() == [4, 1, 0, 5]  # each unit's first row, as drop_duplicates keeps it
