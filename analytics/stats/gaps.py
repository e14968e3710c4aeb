"""Gaps between a student group and a reference, and whether they changed (DESIGN §3).

References:
- ``others`` (default): all other students of the same school, ALL counts minus the group's counts;
- ``district_all``: the pooled district ALL value for the metric and year;
- ``best_group``: the best-performing group of the school (by the metric's direction, n >= 10) in the
  latest year of the view; that group stays the reference in every year and gets no row of its own.
  It is chosen on the same data it is then compared with, so its latest rate is high partly by
  selection and gaps to it look a little wider that year (``benchmarks/gap_null.py`` on null data:
  0.31% of its tests labelled against 0.14-0.15% with the other references, labels in 9.4% of views);
- ``target``: the school's target for the metric (from its ALL row).

**Change** compares consecutive school years only: a missing year breaks the series (no change, no
test), and ``previous_year`` says which year was compared.

**Test.** The change in a gap is a difference in differences of proportions,
``Δ = (p_g,t − p_r,t) − (p_g,t−1 − p_r,t−1)``, tested with a z-test treating the four proportions as
independent binomial samples; each population's change gets the pooled-over-both-years variance
``p̄(1−p̄)(1/n_t + 1/n_t−1)`` of the pooled two-proportion z-test (Fleiss, Levin & Paik 2003, ch. 3),
which is exact when nothing moved and conservative when group and reference moved together (the
unpooled Wald variance labelled 9.8% of null views in ``benchmarks/gap_null.py``, this one 7.9%). For
the ``target`` reference only the group's proportions vary. A test needs every cell (successes and
failures of each proportion) to hold at least 5 students, otherwise it is "too small to test"; rows
without counts are "no counts to test" (value-only metrics: no test is invented).

**Multiple comparisons.** A page view or an export shows many tests at once, so p-values are turned
into Benjamini-Hochberg q-values across that family (Benjamini & Hochberg 1995, via
``scipy.stats.false_discovery_control``) and a change is labelled only when q < 0.10 (``FDR_Q``).
:func:`label_gaps` must be called on exactly the rows shown together.

**Labels** (significant changes only): "reversed" when the gap changed sign; "closing" when it
narrowed without changing sign and the group's own rate moved the good way (up when higher is better,
down otherwise); "closing because the reference fell" when it narrowed although the group did not
improve (the reference moved towards the group, i.e. did worse: for a lower-is-better rate it rose,
and pages say so); "widening" when it grew. Otherwise
"no significant change", "too small to test", "no counts to test", or "" (no consecutive previous year).

**Pooled vs within-school gaps.** A cluster or district gap pooled from counts mixes schools; the
Mantel-Haenszel risk difference (schools as strata) gives the within-school gap, and when the two
signs differ the pooled gap is a Simpson's paradox (:func:`pooled_gap_trend`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

REFERENCES = ("others", "district_all", "best_group", "target")
KEYS = ["school_id", "school_year", "metric"]
GAP_COLUMNS = ["school_id", "school_year", "metric", "student_group", "reference", "value", "reference_value",
               "gap", "gap_change", "p_value", "trend", "previous_year", "q_value"]
# gap_table's columns: the exported ones, then the counts and previous values behind them.
TABLE_COLUMNS = GAP_COLUMNS + ["numerator", "denominator", "ref_num", "ref_den", "previous_value", "previous_gap",
                               "untested"]
FDR_Q = 0.10  # Benjamini-Hochberg false-discovery rate for a label
MIN_CELL = 5  # every success and failure count of a tested proportion

CLOSING, CLOSING_REF = "closing", "closing because the reference fell"
WIDENING, REVERSED = "widening", "reversed"
NO_CHANGE, TOO_SMALL, NO_COUNTS = "no significant change", "too small to test", "no counts to test"
LABELS = (CLOSING, CLOSING_REF, WIDENING, REVERSED)
TESTED = (*LABELS, NO_CHANGE)


def best_groups(rows: pd.DataFrame, year: int, higher_is_better: dict[str, bool], min_n: int = 10) -> pd.DataFrame:
    """The best-performing group (not ALL, n >= ``min_n``) of each school and metric in ``year``.

    Returns ``school_id, metric, best_group``. Ties go to the larger group, then the group code.
    """
    current = rows[(rows["school_year"] == year) & (rows["student_group"] != "ALL")
                   & (rows["denominator"] >= min_n) & rows["value"].notna()].copy()
    sign = current["metric"].map(lambda m: 1.0 if higher_is_better.get(m, True) else -1.0)
    current["_score"] = current["value"] * sign
    best = current.sort_values(["_score", "denominator", "student_group"], ascending=[False, False, True])
    best = best.drop_duplicates(["school_id", "metric"])
    return best[["school_id", "metric", "student_group"]].rename(columns={"student_group": "best_group"})


def district_all_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """The ``district_all`` reference: ALL counts summed per year and metric over the schools with both.

    Returns ``school_year, metric, ref_num, ref_den``; ``analytics.data.aggregates.district_all_counts``
    sums the same in the database.
    """
    counted = rows[rows["student_group"] == "ALL"].dropna(subset=["numerator", "denominator"])
    ref = counted.groupby(["school_year", "metric"], as_index=False)[["numerator", "denominator"]].sum()
    return ref.rename(columns={"numerator": "ref_num", "denominator": "ref_den"})


def _reference_counts(rows: pd.DataFrame, reference: str, higher_is_better: dict[str, bool],
                      reference_year: int | None, district_all: pd.DataFrame | None = None) -> pd.DataFrame:
    """Group rows with ``ref_num``, ``ref_den`` and ``reference_value`` columns added."""
    groups = rows[rows["student_group"] != "ALL"].copy()
    all_rows = rows[rows["student_group"] == "ALL"]
    if reference == "others":
        ref = all_rows[KEYS + ["numerator", "denominator"]].rename(columns={"numerator": "a_num", "denominator": "a_den"})
        out = groups.merge(ref, on=KEYS, how="left")
        out["ref_num"] = out["a_num"] - out["numerator"]
        out["ref_den"] = out["a_den"] - out["denominator"]
        out = out.drop(columns=["a_num", "a_den"])
        # Group counts must be a subset of ALL; where a file's counts are not, there is no "others".
        invalid = ~(out["ref_den"] > 0) | (out["ref_num"] < 0) | (out["ref_num"] > out["ref_den"])
        out.loc[invalid, ["ref_num", "ref_den"]] = np.nan
        out["reference_value"] = 100 * out["ref_num"] / out["ref_den"]
    elif reference == "district_all":
        ref = district_all_counts(all_rows) if district_all is None else district_all
        out = groups.merge(ref[["school_year", "metric", "ref_num", "ref_den"]], on=["school_year", "metric"],
                           how="left")
        out["reference_value"] = 100 * out["ref_num"] / out["ref_den"].where(out["ref_den"] > 0)
    elif reference == "best_group":
        year = reference_year if reference_year is not None else int(groups["school_year"].max())
        best = best_groups(groups, year, higher_is_better)
        out = groups.merge(best, on=["school_id", "metric"], how="left")
        ref = groups[KEYS + ["student_group", "numerator", "denominator", "value"]].rename(columns={
            "student_group": "best_group", "numerator": "ref_num", "denominator": "ref_den",
            "value": "reference_value"})
        out = out.merge(ref, on=KEYS + ["best_group"], how="left")
        out = out[out["student_group"] != out["best_group"]]  # never compared with itself
        out = out.drop(columns="best_group")
    elif reference == "target":
        ref = all_rows[KEYS + ["target"]].rename(columns={"target": "reference_value"})
        out = groups.drop(columns=["target"], errors="ignore").merge(ref, on=KEYS, how="left")
        out["ref_num"] = np.nan
        out["ref_den"] = np.nan
    else:
        raise ValueError(f"unknown gap reference {reference!r}; use one of {', '.join(REFERENCES)}")
    return out.reset_index(drop=True)


def _change_variance(k1: pd.Series, n1: pd.Series, k0: pd.Series, n0: pd.Series) -> pd.Series:
    """Variance of one population's change in proportion between two years, from the two years pooled.

    ``p̄(1 − p̄)(1/n1 + 1/n0)`` with ``p̄ = (k1 + k0) / (n1 + n0)``, as the pooled two-proportion
    z-test does: exact when the rate did not move, and larger than the true variance when it did
    (so the test errs on the side of not labelling when group and reference moved together).
    """
    pooled = (k1 + k0) / (n1 + n0).where((n1 + n0) > 0)
    return pooled * (1 - pooled) * (1 / n1.where(n1 > 0) + 1 / n0.where(n0 > 0))


def _small(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num < MIN_CELL) | ((den - num) < MIN_CELL)


def _missing(num: pd.Series, den: pd.Series) -> pd.Series:
    return num.isna() | den.isna() | ~(den > 0)


def did_test(cur: pd.DataFrame, prev: pd.DataFrame, change: pd.Series,
             with_reference: bool) -> tuple[pd.Series, pd.Series]:
    """z-test p-value of a difference in differences of proportions, and the reason it is untested.

    ``cur``/``prev`` hold ``numerator, denominator, ref_num, ref_den`` (aligned rows); ``change`` is
    the change in the gap in points. The statistic is ``Δ / sqrt(V_group + V_reference)``, each ``V``
    the variance of that population's change from its two years pooled (:func:`_change_variance`);
    the four samples are treated as independent.
    Returns ``(p_value, untested)`` where ``untested`` is "", ``TOO_SMALL`` or ``NO_COUNTS``.
    """
    pairs = [(cur["numerator"], cur["denominator"]), (prev["numerator"], prev["denominator"])]
    if with_reference:
        pairs += [(cur["ref_num"], cur["ref_den"]), (prev["ref_num"], prev["ref_den"])]
    missing = np.logical_or.reduce([_missing(k, n).to_numpy() for k, n in pairs])
    small = np.logical_or.reduce([_small(k, n).to_numpy() for k, n in pairs]) & ~missing
    change = change / 100
    variance = _change_variance(*pairs[0], *pairs[1])
    if with_reference:
        variance = variance + _change_variance(*pairs[2], *pairs[3])
    se = np.sqrt(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, change / se, np.where(change == 0, 0.0, np.inf))
    from scipy import stats  # on first use (analytics.stats.rates says why)

    p = pd.Series(2 * stats.norm.sf(np.abs(z)), index=cur.index).where(~missing & ~small)
    untested = np.select([missing, small], [NO_COUNTS, TOO_SMALL], default="")
    return p, pd.Series(untested, index=cur.index)


def gap_table(rows: pd.DataFrame, reference: str = "others", higher_is_better: dict[str, bool] | None = None,
              reference_year: int | None = None, label: bool = True,
              district_all: pd.DataFrame | None = None, years: Sequence[int] | None = None) -> pd.DataFrame:
    """Gaps for every school x year x metric x group (not ALL), with the change since the year before.

    Parameters
    ----------
    rows : metrics rows (school_id, school_year, metric, student_group, numerator, denominator, value, target).
    reference : one of ``REFERENCES``.
    higher_is_better : metric -> direction (best group, labels); default True.
    reference_year : the latest year of the view, which fixes the ``best_group`` (default: latest in rows).
    label : label the changes with BH q-values across every returned row (one family). A caller that
        shows only part of the table must call :func:`label_gaps` on that part instead.
    district_all : the ``district_all`` reference computed beforehand (:func:`district_all_counts` of
        every school of the district, e.g. summed in the database), when `rows` hold only some schools.
    years : return only these years' rows (default: every year). The earlier years in `rows` still give
        each row its change; a view of one year then tests and sorts only its own rows (at 10,000 schools
        half the table of a two-year read, which a page never shows).

    Returns
    -------
    DataFrame with ``GAP_COLUMNS`` plus the counts behind them (``numerator, denominator, ref_num,
    ref_den``), ``previous_value``, ``previous_gap`` and ``untested``. Percentages and gaps in points.
    """
    higher_is_better = higher_is_better or {}
    if rows.empty:  # the same columns as a full table, so callers never special-case "no data"
        return pd.DataFrame(columns=TABLE_COLUMNS)
    work = rows.copy()
    if "target" not in work:
        work["target"] = np.nan
    has_counts = work["numerator"].notna() & (work["denominator"] > 0)
    work.loc[has_counts, "value"] = 100 * work["numerator"] / work["denominator"]
    out = _reference_counts(work, reference, higher_is_better, reference_year, district_all)
    out["reference"] = reference
    out["gap"] = out["value"] - out["reference_value"]

    # The same school, metric and group exactly one year earlier (consecutive years only).
    series = ["school_id", "metric", "student_group"]
    cols = ["numerator", "denominator", "ref_num", "ref_den", "value", "gap"]
    prev = out[series + ["school_year"] + cols].copy()
    prev["previous_year"] = prev["school_year"]
    prev["school_year"] = prev["school_year"] + 1
    prev = out[series + ["school_year"]].merge(prev, on=series + ["school_year"], how="left")
    out["previous_year"] = prev["previous_year"]
    out["previous_value"] = prev["value"]
    out["previous_gap"] = prev["gap"]
    out["gap_change"] = out["gap"] - prev["gap"]
    if years is not None:
        keep = out["school_year"].isin(list(years))
        out, prev = out[keep], prev[keep]

    p, untested = did_test(out, prev, out["gap_change"], with_reference=reference != "target")
    has_previous = out["gap_change"].notna()
    out["p_value"] = p.where(has_previous)
    out["untested"] = untested.where(has_previous, "")
    out["q_value"] = np.nan
    out["trend"] = ""
    out = out.sort_values(["school_id", "metric", "student_group", "school_year"], ignore_index=True)
    if label:
        out = label_gaps(out, higher_is_better)
    return out[TABLE_COLUMNS]


def bh_q_values(p_values: pd.Series) -> pd.Series:
    """Benjamini-Hochberg adjusted p-values (q-values) over the non-missing p-values; NaN stays NaN."""
    q = pd.Series(np.nan, index=p_values.index, dtype="float64")
    tested = p_values.notna()
    if tested.any():
        from scipy import stats

        q[tested] = stats.false_discovery_control(p_values[tested].to_numpy(dtype="float64"), method="bh")
    return q


def label_gaps(table: pd.DataFrame, higher_is_better: dict[str, bool] | None = None, q: float = FDR_Q) -> pd.DataFrame:
    """``q_value`` (BH across every row of ``table``: one family) and the ``trend`` label of each change.

    ``table`` is (part of) :func:`gap_table`'s output: exactly the rows shown or exported together.
    """
    higher_is_better = higher_is_better or {}
    out = table.copy()
    if out.empty:
        return out
    out["q_value"] = bh_q_values(out["p_value"])
    significant = out["q_value"] < q
    sign = out["metric"].map(lambda m: 1.0 if higher_is_better.get(m, True) else -1.0)
    own_better = (out["value"] - out["previous_value"]) * sign > 0
    reversed_sign = out["gap"] * out["previous_gap"] < 0
    narrowed = out["gap"].abs() < out["previous_gap"].abs()
    grew = out["gap"].abs() > out["previous_gap"].abs()
    out["trend"] = np.select(
        [out["gap_change"].isna(), out["untested"] != "", ~significant, reversed_sign,
         narrowed & own_better, narrowed, grew],
        ["", out["untested"], NO_CHANGE, REVERSED, CLOSING, CLOSING_REF, WIDENING],
        default=NO_CHANGE,
    )
    return out


@dataclass(frozen=True)
class GapFamily:
    """How many changes in one family (a page view or an export) were tested and labelled.

    ``expected_by_chance`` = (number of tests) x (the BH rejection threshold t* = q·N/m), i.e. the
    number of p-values a family of m true nulls would put below the threshold the procedure used:
    m·t* = q·N. It bounds the expected number of false labels (only m0 <= m nulls can be false), the
    FDR guarantee of Benjamini & Hochberg (1995) stated as a count.
    """

    n_tests: int
    n_labelled: int
    expected_by_chance: float
    counts: dict[str, int]
    q: float = FDR_Q

    @property
    def sentence(self) -> str:
        if self.n_tests == 0:
            return "No change in a gap could be tested (no consecutive years with enough students)."
        return (f"{self.n_labelled:,} of {self.n_tests:,} tested gap changes labelled, about "
                f"{self.expected_by_chance:.1f} expected by chance (Benjamini-Hochberg, q < {self.q:.2f}).")

    @property
    def summary(self) -> str:
        """The labels by kind, then :attr:`sentence` and the test used."""
        if self.n_tests == 0:
            return self.sentence
        kinds = ", ".join(f"{n} {name}" for name, n in self.counts.items() if n) or "no gap labelled"
        return (f"{kinds}. {self.sentence[:-1]}; two-proportion difference-in-differences z-test, "
                "consecutive years only.")


def gap_family(labelled: pd.DataFrame, q: float = FDR_Q) -> GapFamily:
    """Summary of a labelled family: tests, labels, and the labels chance alone would give."""
    trend = labelled["trend"] if "trend" in labelled else pd.Series(dtype=object)
    n_tests = int(trend.isin(TESTED).sum())
    counts = {name: int((trend == name).sum()) for name in LABELS}
    n_labelled = sum(counts.values())
    return GapFamily(n_tests, n_labelled, q * n_labelled, counts, q)


# --- pooled and within-school gaps ---------------------------------------------------------------------


def mantel_haenszel_rd(a: np.ndarray, n1: np.ndarray, b: np.ndarray, n0: np.ndarray,
                       z: float = 1.959964) -> tuple[float, float, float]:
    """Mantel-Haenszel risk difference over strata, with a 95% interval (proportions, not percent).

    Stratum k has ``a_k`` successes of ``n1_k`` in the group and ``b_k`` of ``n0_k`` in the reference.
    ``RD = Σ (a n0 − b n1)/N / Σ n1 n0/N`` (Greenland & Robins 1985); variance by Sato (1989),
    consistent for many small strata: ``(RD·ΣP + ΣQ) / (Σ n1 n0/N)²`` with
    ``P = (n1² b − n0² a + n1 n0 (n0 − n1)/2) / N²`` and ``Q = (a (n0 − b) + b (n1 − a)) / (2N)``.
    Returns ``(rd, low, high)``; NaN when no stratum has both sides.
    """
    a, n1, b, n0 = (np.asarray(v, dtype="float64") for v in (a, n1, b, n0))
    terms = mh_terms(a, n1, b, n0)
    if not terms["n_strata"].any():
        return (np.nan, np.nan, np.nan)
    rd, low, high = mh_from_sums(*(np.array([np.nansum(terms[k])]) for k in MH_SUMS), z=z)
    return (float(rd[0]), float(low[0]), float(high[0]))


MH_SUMS = ("mh_num", "mh_weight", "mh_p", "mh_q")  # the stratum sums behind a Mantel-Haenszel risk difference


def mh_terms(a, n1, b, n0) -> dict[str, np.ndarray]:
    """Each stratum's terms of :func:`mantel_haenszel_rd` (NaN for a stratum without both sides), and
    ``n_strata`` (1 for a stratum with both). Summed per year and group they give the within-school gap;
    ``analytics.data.aggregates.gap_trend_sums`` sums the same terms in the database."""
    keep = (n1 > 0) & (n0 > 0)
    total = np.where(keep, n1 + n0, np.nan)
    return {"mh_num": (a * n0 - b * n1) / total, "mh_weight": n1 * n0 / total,
            "mh_p": (n1**2 * b - n0**2 * a + n1 * n0 * (n0 - n1) / 2) / total**2,
            "mh_q": (a * (n0 - b) + b * (n1 - a)) / (2 * total), "n_strata": keep.astype("int64")}


def mh_from_sums(num, weight, p_term, q_term, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rd, low, high) of :func:`mantel_haenszel_rd` from its stratum sums (arrays: one entry per
    year and group); NaN where the weight is not positive (no stratum with both sides)."""
    num, weight, p_term, q_term = (np.asarray(v, dtype="float64") for v in (num, weight, p_term, q_term))
    weight = np.where(weight > 0, weight, np.nan)
    rd = num / weight
    se = np.sqrt(np.maximum(rd * p_term + q_term, 0.0)) / weight
    return rd, rd - z * se, rd + z * se


TREND_KEYS = ["school_year", "student_group"]
TREND_SUMS = ["numerator", "denominator", "ref_num", "ref_den", *MH_SUMS, "n_strata"]
TREND_COLUMNS = ["school_year", "student_group", "value", "reference_value", "gap", "gap_low", "gap_high", "n",
                 "mh_gap", "mh_low", "mh_high", "n_schools", "simpson"]


def gap_trend_sums(rows: pd.DataFrame) -> pd.DataFrame:
    """Per year and group, the sums :func:`pooled_gap_trend` needs: the group's and its reference's counts
    pooled across schools and the Mantel-Haenszel stratum sums (schools as strata).

    A school's group row enters when it and the school's ALL row have both counts and the other
    students (ALL minus the group) are a valid proportion (``0 <= ref_num <= ref_den``, ``ref_den > 0``).
    ``analytics.data.aggregates.gap_trend_sums`` computes the same in the database.
    """
    groups = rows[rows["student_group"] != "ALL"]
    all_rows = rows[rows["student_group"] == "ALL"][KEYS + ["numerator", "denominator"]]
    merged = groups.merge(all_rows, on=KEYS, suffixes=("", "_all")).dropna(
        subset=["numerator", "denominator", "numerator_all", "denominator_all"])
    merged["ref_num"] = merged["numerator_all"] - merged["numerator"]
    merged["ref_den"] = merged["denominator_all"] - merged["denominator"]
    merged = merged[(merged["ref_den"] > 0) & merged["ref_num"].between(0, merged["ref_den"])]
    if merged.empty:
        return pd.DataFrame(columns=TREND_KEYS + TREND_SUMS)
    counts = [merged[c].to_numpy("float64") for c in ("numerator", "denominator", "ref_num", "ref_den")]
    work = merged[TREND_KEYS + ["numerator", "denominator", "ref_num", "ref_den"]].assign(**mh_terms(*counts))
    return work.groupby(TREND_KEYS, as_index=False, sort=True)[TREND_SUMS].sum()


def pooled_gap_trend(rows: pd.DataFrame, z: float = 1.959964) -> pd.DataFrame:
    """Each group's pooled gap to all other students, by year, with the within-school gap beside it.

    Counts are pooled across schools (group and ALL-minus-group), so ``gap`` is a difference of two
    pooled proportions with a Wald 95% interval (``gap_low``, ``gap_high``). ``mh_gap`` (``mh_low``,
    ``mh_high``) is the Mantel-Haenszel risk difference with schools as strata (:func:`mantel_haenszel_rd`):
    the gap between a group and the other students of the *same* school. ``simpson`` is True when the
    pooled and within-school gaps have opposite signs. Returns ``TREND_COLUMNS``.
    """
    return pooled_gap_trend_from_sums(gap_trend_sums(rows), z)


def pooled_gap_trend_from_sums(sums: pd.DataFrame, z: float = 1.959964) -> pd.DataFrame:
    """:func:`pooled_gap_trend` from its sums per year and group (:func:`gap_trend_sums`, or the same summed
    by the database), so a page never holds every school's rows of every year."""
    pooled = sums[(sums["denominator"] > 0) & (sums["ref_den"] > 0)].reset_index(drop=True)
    if pooled.empty:
        return pd.DataFrame(columns=TREND_COLUMNS)
    p1 = pooled["numerator"] / pooled["denominator"]
    p2 = pooled["ref_num"] / pooled["ref_den"]
    se = np.sqrt(p1 * (1 - p1) / pooled["denominator"] + p2 * (1 - p2) / pooled["ref_den"])
    out = pooled[TREND_KEYS].copy()
    out["value"], out["reference_value"] = 100 * p1, 100 * p2
    out["gap"] = out["value"] - out["reference_value"]
    out["gap_low"], out["gap_high"] = out["gap"] - 100 * z * se, out["gap"] + 100 * z * se
    out["n"] = pooled["denominator"]
    rd, low, high = mh_from_sums(*(pooled[k] for k in MH_SUMS), z=z)
    out["mh_gap"], out["mh_low"], out["mh_high"] = 100 * rd, 100 * low, 100 * high
    out["n_schools"] = pooled["n_strata"].astype("int64")
    out["simpson"] = (np.sign(out["gap"]) * np.sign(out["mh_gap"])) < 0
    return out[TREND_COLUMNS]
