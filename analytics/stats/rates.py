"""Rates with Wilson score intervals, and pooling of counts across schools.

Cluster and district rates are pooled: sum of numerators / sum of denominators over the rows
that have both counts. They are never averages of school percentages. Rows with a suppressed or
missing count are left out of the pool and counted in ``n_rows_left_out`` so a page can say so.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

# scipy.stats is imported inside the functions that use it: it costs 1-3 s, and the pages' shared modules
# import this module on a server's first page (tests/test_imports.py).


@functools.cache
def _special_ufuncs():
    """The Boost functions behind scipy.stats.hypergeom (private: checked against fisher_exact in the tests),
    or None on another SciPy layout."""
    try:
        from scipy.special import _ufuncs
    except ImportError:  # pragma: no cover - another SciPy layout
        return None
    return _ufuncs


def wilson_interval(successes: float, trials: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion, in percent (0-100).

    Uses ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`` (Wilson, 1927).
    Returns ``(nan, nan)`` when the counts are missing, not integers, or ``trials`` is 0.
    """
    if not np.isfinite(successes) or not np.isfinite(trials) or trials <= 0 or successes < 0:
        return (np.nan, np.nan)
    if successes > trials or successes != int(successes) or trials != int(trials):
        return (np.nan, np.nan)
    from scipy import stats

    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return (100.0 * ci.low, 100.0 * ci.high)


@functools.cache
def _z(confidence: float) -> float:
    """The two-sided normal quantile of `confidence` (1.96 for 95%), looked up once: scipy's `ppf` costs
    more than the Wilson interval of a small table. `ndtri` is the function `scipy.stats.norm.ppf` calls (the
    same number), without importing scipy.stats: a first view's Wilson intervals (the learning page's level 1)
    would otherwise wait the 1-3 s of that import."""
    from scipy.special import ndtri

    return ndtri(0.5 + confidence / 2)


def wilson_arrays(successes: np.ndarray, trials: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval in percent; NaN where counts are missing or trials is 0.

    Same formula as :func:`wilson_interval` (closed form, Wilson 1927), for whole columns:
    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``.
    """
    k = np.asarray(successes, dtype="float64")
    n = np.asarray(trials, dtype="float64")
    z = _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = np.isfinite(k) & np.isfinite(n) & (n > 0) & (k >= 0) & (k <= n)
        p = np.where(valid, k / np.where(n > 0, n, 1), np.nan)
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        low = np.where(valid, np.clip(centre - half, 0, 1) * 100, np.nan)
        high = np.where(valid, np.clip(centre + half, 0, 1) * 100, np.nan)
    return low, high


def add_rate_columns(df: pd.DataFrame, num: str = "numerator", den: str = "denominator") -> pd.DataFrame:
    """Add ``value`` (when missing), ``ci_low`` and ``ci_high`` computed from counts.

    Existing ``value`` entries are kept (a file may carry a value without counts); where both
    counts exist the value is recomputed as ``100 * num / den``.
    """
    out = df.copy()
    n = out[den].astype("float64")
    k = out[num].astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        computed = np.where((n > 0) & k.notna(), 100.0 * k / n, np.nan)
    if "value" in out:
        out["value"] = np.where(np.isfinite(computed), computed, out["value"].astype("float64"))
    else:
        out["value"] = computed
    out["ci_low"], out["ci_high"] = wilson_arrays(k.to_numpy(), n.to_numpy())
    return out


def pooled_rates(df: pd.DataFrame, by: list[str], num: str = "numerator", den: str = "denominator") -> pd.DataFrame:
    """Pool counts within each ``by`` group: value = 100 * sum(num) / sum(den), Wilson interval.

    Only rows with both counts enter the pool. Returns the ``by`` columns plus ``numerator``,
    ``denominator``, ``value``, ``ci_low``, ``ci_high``, ``n_schools`` (rows pooled) and
    ``n_rows_left_out`` (rows skipped because a count was missing or suppressed).
    """
    return rates_from_pooled_counts(pool_counts(df, by, num, den))


def pool_counts(df: pd.DataFrame, by: list[str], num: str = "numerator", den: str = "denominator") -> pd.DataFrame:
    """The sums behind :func:`pooled_rates`: ``by`` + ``numerator``, ``denominator`` (over rows with both
    counts and a positive denominator), ``n_schools`` (such rows) and ``n_rows`` (all rows).

    ``analytics.data.aggregates.pooled_metric_counts`` computes the same frame with SQL ``GROUP BY``.
    """
    work = df[by + [num, den]].copy()
    work["_has"] = work[num].notna() & work[den].notna() & (work[den] > 0)
    work["_num"] = work[num].where(work["_has"], 0.0)
    work["_den"] = work[den].where(work["_has"], 0.0)
    return work.groupby(by, dropna=False, sort=True).agg(
        numerator=("_num", "sum"),
        denominator=("_den", "sum"),
        n_schools=("_has", "sum"),
        n_rows=("_has", "size"),
    ).reset_index()


def rates_from_pooled_counts(grouped: pd.DataFrame) -> pd.DataFrame:
    """Pooled value and Wilson interval from :func:`pool_counts`' sums; empty pools give NaN counts."""
    grouped = grouped.copy()
    grouped["n_rows_left_out"] = grouped["n_rows"] - grouped["n_schools"]
    grouped = grouped.drop(columns="n_rows")
    empty = grouped["denominator"] <= 0
    if empty.any():  # (an assignment through .loc costs more than the rest, even when it selects nothing)
        grouped.loc[empty, ["numerator", "denominator"]] = np.nan
    return add_rate_columns(grouped)


def fisher_exact_two_sided(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test of the 2x2 table [[a, b], [c, d]]: the value
    ``scipy.stats.fisher_exact`` gives (the same steps: the table's hypergeometric probability against the
    mode's, a binary search for the other tail, the same Boost functions), without its generic argument
    handling, which cost more than the test (tens of calls per table, on every school's profile)."""
    scu = _special_ufuncs()
    if scu is None or not hasattr(scu, "_hypergeom_pmf"):  # pragma: no cover - another SciPy layout
        from scipy import stats

        return float(stats.fisher_exact([[a, b], [c, d]]).pvalue)
    if 0 in (a + c, b + d, a + b, c + d):
        return 1.0
    n1, n2, n = a + b, c + d, a + c
    total = n1 + n2
    low, high = max(n - n2, 0), min(n1, n)  # the support of the hypergeometric distribution

    def pmf(x: int) -> float:
        return _unit(scu._hypergeom_pmf(x, n1, n, total)) if low <= x <= high else 0.0

    def cdf(x: int) -> float:
        if x >= high:
            return 1.0
        return _unit(scu._hypergeom_cdf(x, n1, n, total)) if x >= low else 0.0

    def sf(x: int) -> float:
        if x < low:
            return 1.0
        return _unit(scu._hypergeom_sf(x, n1, n, total)) if x < high else 0.0

    mode = int((n + 1) * (n1 + 1) / (n1 + n2 + 2))
    pexact, pmode = pmf(a), pmf(mode)
    epsilon = 1e-14
    gamma = 1 + epsilon
    if abs(pexact - pmode) / max(pexact, pmode) <= epsilon:
        return 1.0
    if a < mode:
        plower = cdf(a)
        if pmf(n) > pexact * gamma:
            return min(plower, 1.0)
        guess = _binary_search(lambda x: -pmf(x), -pexact * gamma, mode, n)
        return min(plower + sf(guess), 1.0)
    pupper = sf(a - 1)
    if pmf(0) > pexact * gamma:
        return min(pupper, 1.0)
    guess = _binary_search(pmf, pexact * gamma, 0, mode)
    return min(pupper + cdf(guess), 1.0)


def _unit(value) -> float:
    """A probability clipped to [0, 1] as scipy's distributions clip it (NaN stays NaN)."""
    value = float(value)
    return 0.0 if value < 0 else 1.0 if value > 1 else value


def _binary_search(f, target: float, lo: int, hi: int) -> int:
    """The i in [lo, hi] with f(i) <= target < f(i + 1), f ascending there (scipy's search for the other
    tail of a two-sided exact test)."""
    while lo < hi:
        mid = lo + (hi - lo) // 2
        value = f(mid)
        if value < target:
            lo = mid + 1
        elif value > target:
            hi = mid - 1
        else:
            return mid
    return lo if f(lo) <= target else lo - 1


def two_proportion_test(k1: float, n1: float, k2: float, n2: float) -> float:
    """Two-sided p-value that two proportions differ: pooled two-proportion z-test.

    Falls back to Fisher's exact test (``scipy.stats.fisher_exact``) when any expected cell count
    is below 5, where the normal approximation is poor. Returns NaN when counts are missing.
    """
    if not all(np.isfinite(v) for v in (k1, n1, k2, n2)) or n1 <= 0 or n2 <= 0:
        return float("nan")
    pooled = (k1 + k2) / (n1 + n2)
    expected = np.array([n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled)])
    if (expected < 5).any():
        return fisher_exact_two_sided(int(k1), int(n1 - k1), int(k2), int(n2 - k2))
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / se
    from scipy import stats

    return float(2 * stats.norm.sf(abs(z)))


def two_proportion_tests(k1, n1, k2, n2) -> np.ndarray:
    """:func:`two_proportion_test` of each row of equal-length arrays, the same p-values.

    The z-tests are computed for all rows at once with the same arithmetic; only the rows with an
    expected cell below 5 (Fisher's exact test) go through the scalar function. A school's profile
    tests every group x metric, and one call per row cost more than the rest of the profile.
    """
    k1, n1, k2, n2 = (np.asarray(v, dtype="float64") for v in (k1, n1, k2, n2))
    out = np.full(k1.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = np.isfinite(k1) & np.isfinite(n1) & np.isfinite(k2) & np.isfinite(n2) & (n1 > 0) & (n2 > 0)
        pooled = (k1 + k2) / (n1 + n2)
        expected = np.stack([n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled)])
        exact = ok & (expected < 5).any(axis=0)
        z_rows = ok & ~exact
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (k1 / n1 - k2 / n2) / se
    tested = z_rows & (se != 0)
    out[z_rows & (se == 0)] = 1.0
    from scipy import stats

    out[tested] = 2 * stats.norm.sf(np.abs(z[tested]))
    for i in np.flatnonzero(exact):
        out[i] = two_proportion_test(k1[i], n1[i], k2[i], n2[i])
    return out
