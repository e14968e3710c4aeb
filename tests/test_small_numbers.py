"""Empirical-Bayes adjusted rates for small schools, worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.stats.small_numbers import MAX_STRENGTH, adjusted_rates, fit_beta_prior, rank_schools


def _schools(counts):
    df = pd.DataFrame(counts, columns=["school_id", "numerator", "denominator"])
    return df.assign(value=100 * df["numerator"] / df["denominator"])


def test_method_of_moments_prior_and_adjusted_rate_by_hand():
    # (2, 10), (5, 10), (8, 10): mu = 15/30 = .5; S = 10(.3²) + 0 + 10(.3²) = 1.8; S/(mu(1-mu)) = 7.2
    # N - Σn²/N - (I - 1) = 30 - 10 - 2 = 18; rho = (7.2 - 2)/18 = .28889; a + b = 1/rho - 1 = 2.46154
    prior = fit_beta_prior([2, 5, 8], [10, 10, 10])
    assert prior.strength == pytest.approx(18 / 5.2 - 1)
    assert prior.a == pytest.approx(prior.strength / 2) and prior.mean == pytest.approx(0.5)
    out = adjusted_rates(_schools([("A", 2, 10), ("B", 5, 10), ("C", 8, 10)]), prior, 50.0).set_index("school_id")
    # A: (2 + 1.23077) / (10 + 2.46154) = 25.926%; reliability 10 / 12.46154 = .80247
    assert out.loc["A", "adjusted"] == pytest.approx(100 * 3.230769 / 12.461538, rel=1e-6)
    assert out.loc["A", "reliability"] == pytest.approx(10 / 12.461538, rel=1e-6)
    assert out.loc["B", "adjusted"] == pytest.approx(50.0) and out.loc["A", "value"] == 20.0  # raw rate kept
    # P(true rate < 50%) under Beta(3.2308, 9.2308) is about .964: A needs attention (>= .95); B does not.
    assert out.loc["A", "prob_worse"] == pytest.approx(0.964, abs=0.001)
    assert out.loc["A", "needs_attention"] and not out.loc["B", "needs_attention"]
    assert out.loc["A", "adjusted_low"] < out.loc["A", "adjusted"] < out.loc["A", "adjusted_high"]


def test_schools_no_more_different_than_chance_all_get_the_district_rate():
    # S = 0: rho = (0 - 2)/(30 - 10 - 2) < 0 -> no evidence schools differ; a + b = MAX_STRENGTH.
    prior = fit_beta_prior([5, 5, 5], [10, 10, 10])
    assert prior.strength == MAX_STRENGTH
    out = adjusted_rates(_schools([("A", 5, 10)]), prior, 50.0)
    assert out.loc[0, "adjusted"] == pytest.approx(50.0) and out.loc[0, "reliability"] == pytest.approx(10 / (10 + 1e6))


def test_too_few_schools_or_no_counts_give_no_adjustment():
    assert fit_beta_prior([1, 2], [10, 10]) is None
    assert fit_beta_prior([0, 0, 0], [10, 10, 10]) is None  # district rate 0: nothing to shrink towards
    assert fit_beta_prior([1, np.nan, 3, 4], [10, 10, 0, 10]) is None  # two usable schools
    out = adjusted_rates(_schools([("A", np.nan, np.nan)]), None, 50.0)
    assert np.isnan(out.loc[0, "adjusted"]) and not out.loc[0, "needs_attention"]


def test_a_tiny_school_no_longer_tops_the_ranking():
    # Raw: A 2/2 = 100% is "best". mu = 212/402 = .52736; S = 19.199; S/(mu(1-mu)) = 77.026;
    # N - Σn²/N - 4 = 402 - 99.512 - 4 = 298.488; rho = 73.026/298.488 = .24465; a + b = 3.0874, a = 1.6282.
    # A adjusted = (2 + 1.6282)/(2 + 3.0874) = 71.3% < B's (80 + 1.6282)/103.0874 = 79.2%.
    ranked, prior = rank_schools(_schools([("A", 2, 2), ("B", 80, 100), ("C", 50, 100), ("D", 20, 100),
                                           ("E", 60, 100)]), higher_is_better=True)
    assert prior.strength == pytest.approx(3.0874, abs=1e-3)
    assert ranked["school_id"].tolist() == ["D", "C", "E", "A", "B"]  # worst first
    a = ranked.set_index("school_id").loc["A"]
    assert a["adjusted"] == pytest.approx(100 * 3.6282 / 5.0874, abs=0.01)
    assert a["reliability"] == pytest.approx(2 / 5.0874, abs=1e-3)
    # Lower is better: the order turns round (worst = highest adjusted rate first).
    ranked, _ = rank_schools(_schools([("A", 2, 2), ("B", 80, 100), ("C", 50, 100), ("D", 20, 100),
                                       ("E", 60, 100)]), higher_is_better=False)
    assert ranked["school_id"].tolist() == ["B", "A", "E", "C", "D"]


def test_rows_without_counts_keep_their_raw_value_for_ordering():
    from analytics.stats.small_numbers import with_adjusted_rates

    rows = _schools([("A", 2, 10), ("B", 5, 10), ("C", 8, 10)])
    rows = pd.concat([rows, pd.DataFrame({"school_id": ["D"], "numerator": [np.nan], "denominator": [np.nan],
                                          "value": [42.0]})], ignore_index=True)
    out, prior = with_adjusted_rates(rows)
    assert prior.n_schools == 3
    assert out.set_index("school_id").loc["D", "order_value"] == 42.0
    assert out.set_index("school_id").loc["A", "order_value"] == pytest.approx(25.926, abs=1e-3)
