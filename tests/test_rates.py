"""Rates, pooling, tests of change, derived discipline values and findings, with hand-computed values."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.data.derived import discipline_with_all, metrics_with_suspension
from analytics.outputs.findings import gap_finding, rate_change_finding
from analytics.stats.rates import (
    pooled_rates,
    two_proportion_test,
    two_proportion_tests,
    wilson_arrays,
    wilson_interval,
)
from analytics.stats.summaries import gaps_vs_others, pooled_kpi, profile_slices, school_profile, school_profiles


def test_wilson_interval_by_hand():
    # k = 5, n = 10, z = 1.959964: centre = (0.5 + z²/20) / (1 + z²/10) = 0.5;
    # half = z * sqrt(0.025 + z²/400) / (1 + z²/10) = 1.959964 * 0.186157 / 1.384146 = 0.263607
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(23.6593, abs=1e-3) and high == pytest.approx(76.3407, abs=1e-3)
    vec_low, vec_high = wilson_arrays(np.array([5.0]), np.array([10.0]))
    assert vec_low[0] == pytest.approx(low, abs=1e-9) and vec_high[0] == pytest.approx(high, abs=1e-9)


def test_wilson_of_zero_and_missing():
    assert all(np.isnan(v) for v in wilson_interval(0, 0))
    low, high = wilson_interval(0, 20)
    assert low == 0 and high == pytest.approx(16.1125, abs=1e-3)  # z²/(n+z²) = 3.8415/23.8415


def test_pooled_rate_is_not_the_average_of_percentages():
    # School A 9/10 = 90%, school B 10/100 = 10%: average 50%, pooled 19/110 = 17.27%.
    df = pd.DataFrame({"cluster": ["c", "c", "c"], "numerator": [9, 10, np.nan], "denominator": [10, 100, 50]})
    row = pooled_rates(df, ["cluster"]).iloc[0]
    assert row["value"] == pytest.approx(100 * 19 / 110)
    assert row["n_schools"] == 2 and row["n_rows_left_out"] == 1


@given(st.lists(st.tuples(st.integers(0, 500), st.integers(1, 500)), min_size=1, max_size=12))
def test_pooled_rate_lies_between_school_rates(pairs):
    rows = [(min(k, n), n) for k, n in pairs]
    df = pd.DataFrame({"g": 1, "numerator": [k for k, _ in rows], "denominator": [n for _, n in rows]})
    value = pooled_rates(df, ["g"])["value"].iloc[0]
    rates = [100 * k / n for k, n in rows]
    assert min(rates) - 1e-9 <= value <= max(rates) + 1e-9


def test_two_proportion_z_test_by_hand():
    # 61/1000 vs 42/1000: pooled p = 0.0515, SE = sqrt(.0515*.9485*.002) = 0.009884, z = 1.9223, p = 0.05457
    assert two_proportion_test(61, 1000, 42, 1000) == pytest.approx(0.05457, abs=1e-4)
    # Small cells fall back to Fisher's exact test: 2/10 vs 5/10 -> p = 0.3498
    assert two_proportion_test(2, 10, 5, 10) == pytest.approx(0.34985, abs=1e-4)


def test_gap_against_all_other_students():
    # ALL 60/100, BL 10/40: others = 50/60 = 83.33%, gap = 25 - 83.33 = -58.33 points
    rows = pd.DataFrame({"school_id": "s", "school_year": 2024, "metric": "m", "student_group": ["ALL", "BL"],
                         "numerator": [60.0, 10.0], "denominator": [100.0, 40.0], "value": [60.0, 25.0]})
    gap = gaps_vs_others(rows).iloc[0]
    assert gap["others_value"] == pytest.approx(100 * 50 / 60)
    assert gap["gap"] == pytest.approx(25 - 100 * 50 / 60)
    assert gap["p_value"] < 0.001


def test_every_schools_profile_at_once_is_each_schools_own_profile():
    # School b comes first in the rows and a's rows are split around it: each school's gap is against its own
    # ALL row (a: ALL 60/100, BL 10/40 -> others 50/60; b: ALL 30/50, BL 20/25 -> others 10/25 = 40%).
    rows = pd.DataFrame({"school_id": ["a", "b", "b", "a"], "school_year": 2024, "metric": "m",
                         "student_group": ["ALL", "ALL", "BL", "BL"], "numerator": [60.0, 30.0, 20.0, 10.0],
                         "denominator": [100.0, 50.0, 25.0, 40.0], "value": [60.0, 60.0, 80.0, 25.0],
                         "target": np.nan})
    district = pd.DataFrame({"metric": "m", "student_group": ["ALL", "BL"], "value": [60.0, 30.0],
                             "basis": "pooled"})
    ordered, where = profile_slices(school_profiles(rows, 2024, district))
    assert where == {"a": (0, 2), "b": (2, 4)}
    a, b = (ordered.iloc[start:stop].reset_index(drop=True) for start, stop in (where["a"], where["b"]))
    assert b["gap"].tolist()[1] == pytest.approx(80 - 40) and a["gap"].tolist()[1] == pytest.approx(25 - 100 * 50 / 60)
    assert b["vs_district"].tolist() == pytest.approx([0.0, 50.0])
    for school, sliced in (("a", a), ("b", b)):
        pd.testing.assert_frame_equal(sliced, school_profile(rows[rows["school_id"] == school], None, 2024,
                                                             district=district))


def test_kpi_change_and_significance():
    rows = pd.DataFrame({"school_id": ["a", "b", "a", "b"], "school_year": [2023, 2023, 2024, 2024],
                         "student_group": "ALL", "numerator": [30.0, 31.0, 20.0, 22.0],
                         "denominator": [500.0, 500.0, 500.0, 500.0]})
    kpi = pooled_kpi(rows, 2024, "ALL", [2023, 2024])
    assert kpi.value == pytest.approx(4.2) and kpi.previous_value == pytest.approx(6.1)
    assert kpi.change == pytest.approx(-1.9)
    assert kpi.p_value == pytest.approx(two_proportion_test(42, 1000, 61, 1000))


def test_all_row_is_derived_from_race_rows_when_missing():
    d = pd.DataFrame({"school_id": "s", "school_year": 2024, "student_group": ["BL", "WH", "FARMS"],
                      "enrolled": [40.0, 60.0, 50.0], "students_suspended": [4.0, np.nan, 3.0]})
    full, derived = discipline_with_all(d)
    all_row = full[full["student_group"] == "ALL"].iloc[0]
    # WH's count is suppressed, so the summed ALL count is unknown (a partial sum, 4, would understate it).
    assert all_row["enrolled"] == 100 and np.isnan(all_row["students_suspended"])
    assert len(derived) == 1


def test_suspension_rate_is_derived_with_oss_fallback():
    d = pd.DataFrame({"school_id": "s", "school_year": 2024, "student_group": ["ALL", "BL"],
                      "enrolled": [200.0, 50.0], "students_suspended": [np.nan, 5.0], "students_oss": [8.0, 4.0]})
    empty = pd.DataFrame(columns=["school_id", "school_year", "metric", "student_group", "numerator", "denominator",
                                  "value", "target"])
    rows = metrics_with_suspension(empty, d).set_index("student_group")
    assert rows.loc["ALL", "value"] == pytest.approx(4.0) and rows.loc["BL", "value"] == pytest.approx(10.0)


def test_findings_respect_significance_and_small_numbers():
    text = rate_change_finding("Suspension rate", 61, 1000, 42, 1000, higher_is_better=False)
    assert "fell 1.9 points since last year, 6.1% → 4.2%" in text and "no significant change" in text
    text = rate_change_finding("Suspension rate", 122, 2000, 84, 2000, higher_is_better=False)
    assert "a significant change, an improvement" in text
    assert "too few students" in rate_change_finding("Reading", 3, 8, 4, 9, True)
    assert "too few students" in gap_finding("Asian", "Reading", 50, 40, 0.5, 6)


def test_two_proportion_tests_give_the_scalar_p_values_row_by_row():
    # by hand: the z-test above, Fisher's exact test (expected cell 3.5 < 5), equal rates (se 0), no counts
    got = two_proportion_tests([61, 2, 0, np.nan, 3], [1000, 10, 20, 50, 0], [42, 5, 0, 4, 1], [1000, 10, 30, 60, 10])
    assert got[0] == pytest.approx(0.05457, abs=1e-4) and got[1] == pytest.approx(0.34985, abs=1e-4)
    assert got[2] == 1.0 and np.isnan(got[3]) and np.isnan(got[4])
    # every row exactly as the scalar test gives it (the school profile's gaps must not move)
    rng = np.random.default_rng(5)
    n1, n2 = rng.integers(1, 400, 500).astype(float), rng.integers(1, 400, 500).astype(float)
    k1, k2 = np.floor(n1 * rng.uniform(0, 1, 500)), np.floor(n2 * rng.uniform(0, 1, 500))
    want = [two_proportion_test(*row) for row in zip(k1, n1, k2, n2, strict=True)]
    np.testing.assert_array_equal(two_proportion_tests(k1, n1, k2, n2), np.array(want))


def test_fisher_exact_two_sided_is_scipys_p_value():
    from scipy import stats

    from analytics.stats.rates import fisher_exact_two_sided

    # [[3, 1], [1, 3]]: P(a) = C(4, a)^2 / 70 for a = 0..4; tables as or less likely than a = 3: 1 + 16 + 16 + 1
    assert fisher_exact_two_sided(3, 1, 1, 3) == pytest.approx(34 / 70, rel=1e-12)
    assert fisher_exact_two_sided(0, 5, 0, 7) == 1.0 and fisher_exact_two_sided(2, 2, 2, 2) == 1.0
    rng = np.random.default_rng(7)
    small = rng.integers(0, 12, (1500, 4))
    n1, n2 = rng.integers(1, 400, 1500), rng.integers(1, 5000, 1500)
    k1, k2 = (rng.random(1500) * n1).astype(int), (rng.random(1500) ** 3 * n2).astype(int)
    tables = [tuple(int(v) for v in t) for t in small] + [
        (int(a), int(n - a), int(b), int(m - b)) for a, n, b, m in zip(k1, n1, k2, n2, strict=True)]
    for a, b, c, d in tables:  # the very same float, not an approximation
        assert fisher_exact_two_sided(a, b, c, d) == float(stats.fisher_exact([[a, b], [c, d]]).pvalue), (a, b, c, d)
