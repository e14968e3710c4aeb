"""Small schools: empirical-Bayes (beta-binomial) adjusted rates for ranking and "needs attention" lists.

A school of 12 students can top or bottom any ranking by chance alone. Where schools are ranked or
listed as needing attention, each school's rate is shrunk towards the district rate by how little
data it has (DESIGN §3); the raw rate stays the published number and is shown beside it.

Model (beta-binomial): school i's true rate θ_i ~ Beta(a, b) across schools, k_i ~ Binomial(n_i, θ_i).
(a, b) are fitted by the method of moments for proportions with extra-binomial variation (Kleinman
1973, JASA 68:46-54), using weights n_i: with μ = Σk/Σn, S = Σ n_i (p_i − μ)² and I schools,

    E[S] = μ(1−μ) [(I − 1) + ρ (N − Σn_i²/N − (I − 1))],   ρ = 1 / (a + b + 1),

so ρ̂ = (S / μ(1−μ) − (I − 1)) / (N − Σn_i²/N − (I − 1)), a + b = 1/ρ̂ − 1, a = μ(a + b).
The adjusted rate is the posterior mean (k + a) / (n + a + b) (Efron & Morris 1975; Casella 1985,
"An introduction to empirical Bayes data analysis", Am. Stat. 39:83-87); its *reliability*
n / (n + a + b) is the weight on the school's own data (1 = its own rate, 0 = the district rate).
The 95% interval is the Beta(a + k, b + n − k) posterior's, which ignores the uncertainty in (a, b)
(fine with many schools, said here so nobody reads it as exact).

"Needs attention" is a posterior probability of at least 95% that the school's true rate is worse
than the district rate. Shrinkage is what keeps such a list from filling up with small schools by
chance when many schools are screened at once (Gelman, Hill & Yajima 2012, J. Res. Educ. Eff. 5:189-211).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_SCHOOLS = 3  # fewer schools with counts cannot say how much schools differ
MAX_STRENGTH = 1e6  # a + b when schools differ no more than chance: every school gets the district rate
ATTENTION_PROBABILITY = 0.95
ADJUSTED_COLUMNS = ["adjusted", "adjusted_low", "adjusted_high", "reliability", "prob_worse", "needs_attention"]


@dataclass(frozen=True)
class BetaPrior:
    """The spread of true school rates: Beta(a, b), fitted across ``n_schools`` schools."""

    a: float
    b: float
    n_schools: int

    @property
    def strength(self) -> float:
        """a + b: how many students' worth of weight the district rate carries for each school."""
        return self.a + self.b

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)


def fit_beta_prior(successes, trials) -> BetaPrior | None:
    """Method-of-moments Beta(a, b) across schools (Kleinman 1973); None when it cannot be fitted.

    Rows with a missing or zero count are left out. Needs ``MIN_SCHOOLS`` schools and a district
    rate strictly between 0 and 1. When the schools vary no more than binomial chance (ρ̂ <= 0),
    a + b is ``MAX_STRENGTH``: the data give no evidence that the schools differ.
    """
    k = np.asarray(successes, dtype="float64")
    n = np.asarray(trials, dtype="float64")
    keep = np.isfinite(k) & np.isfinite(n) & (n > 0) & (k >= 0) & (k <= n)
    k, n = k[keep], n[keep]
    schools = len(n)
    if schools < MIN_SCHOOLS:
        return None
    total = n.sum()
    mu = k.sum() / total
    if not 0 < mu < 1:
        return None
    spread = (n * (k / n - mu) ** 2).sum()
    denominator = total - (n**2).sum() / total - (schools - 1)
    rho = (spread / (mu * (1 - mu)) - (schools - 1)) / denominator if denominator > 0 else 0.0
    strength = MAX_STRENGTH if rho <= 1 / (MAX_STRENGTH + 1) else min(1 / rho - 1, MAX_STRENGTH)
    strength = max(strength, 1e-6)  # rho near 1: schools are all-or-nothing; keep a proper prior
    return BetaPrior(mu * strength, (1 - mu) * strength, schools)


def adjusted_rates(df: pd.DataFrame, prior: BetaPrior | None, reference_value: float, higher_is_better: bool = True,
                   num: str = "numerator", den: str = "denominator") -> pd.DataFrame:
    """Add ``ADJUSTED_COLUMNS`` (percent, like the raw ``value``) to rows with counts.

    ``reference_value`` is the district rate (percent) a school is compared with for ``prob_worse``:
    the posterior probability that its true rate is worse (below when higher is better, above
    otherwise). Without a prior or counts the columns are NaN (False for ``needs_attention``).
    """
    out = df.copy()
    k = out[num].astype("float64")
    n = out[den].astype("float64")
    valid = k.notna() & n.notna() & (n > 0) & (k >= 0) & (k <= n)
    for col in ADJUSTED_COLUMNS[:-1]:
        out[col] = np.nan
    out["needs_attention"] = False
    if prior is None or not valid.any():
        return out
    from scipy import stats  # on first use (analytics.stats.rates says why)

    post_a = (k + prior.a)[valid]
    post_b = (n - k + prior.b)[valid]
    out.loc[valid, "adjusted"] = 100 * post_a / (post_a + post_b)
    out.loc[valid, "adjusted_low"] = 100 * stats.beta.ppf(0.025, post_a, post_b)
    out.loc[valid, "adjusted_high"] = 100 * stats.beta.ppf(0.975, post_a, post_b)
    out.loc[valid, "reliability"] = n[valid] / (n[valid] + prior.strength)
    if np.isfinite(reference_value):
        below = stats.beta.cdf(reference_value / 100, post_a, post_b)
        out.loc[valid, "prob_worse"] = below if higher_is_better else 1 - below
        out["needs_attention"] = out["prob_worse"].fillna(0) >= ATTENTION_PROBABILITY
    return out


def with_adjusted_rates(df: pd.DataFrame, higher_is_better: bool = True, num: str = "numerator",
                        den: str = "denominator") -> tuple[pd.DataFrame, BetaPrior | None]:
    """Rows with ``ADJUSTED_COLUMNS`` and ``order_value`` (the adjusted rate, or the raw ``value`` for rows
    without counts or when no prior can be fitted).

    The prior is fitted across the rows given (one metric, group and year; pass the whole district so
    a cluster's schools borrow strength from all of them) and the reference is their pooled rate.
    """
    k = df[num].astype("float64")
    n = df[den].astype("float64")
    has = k.notna() & (n > 0)
    pooled = 100 * k[has].sum() / n[has].sum() if has.any() else np.nan
    prior = fit_beta_prior(k, n)
    out = adjusted_rates(df, prior, pooled, higher_is_better, num, den)
    raw = out["value"] if "value" in out else pd.Series(np.nan, index=out.index)
    out["order_value"] = out["adjusted"].where(out["adjusted"].notna(), raw)
    return out, prior


def rank_schools(df: pd.DataFrame, higher_is_better: bool = True, num: str = "numerator",
                 den: str = "denominator") -> tuple[pd.DataFrame, BetaPrior | None]:
    """Schools' rows with adjusted rates, worst first by :func:`with_adjusted_rates`'s ``order_value``.

    Adds ``rank`` (1 = worst adjusted rate).
    """
    out, prior = with_adjusted_rates(df, higher_is_better, num, den)
    out = out.sort_values("order_value", ascending=higher_is_better, na_position="last", kind="stable")
    out = out.reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out, prior
