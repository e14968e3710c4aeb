"""Statistics of Guskey's levels 1-4: reactions, learning, organisation support, use (DESIGN §10).

Guskey, T. R. (2000), *Evaluating Professional Development*, Corwin: five levels of evidence, each a
condition for the next. These functions are pure: DataFrames of the import tables in, tables out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.stats.rates import wilson_arrays
from analytics.stats.run_charts import run_chart

LIKERT_LABELS = {1: "Strongly disagree", 2: "Disagree", 3: "Neutral", 4: "Agree", 5: "Strongly agree"}
AGREE = (4, 5)


# --- level 1: reactions ------------------------------------------------------------------------------


def likert_summary(feedback: pd.DataFrame) -> pd.DataFrame:
    """Per survey item: responses pooled over sessions, % at each point, % agree (4 or 5) with Wilson 95% CI.

    Columns: ``item``, ``n`` (responses), ``pct_1`` ... ``pct_5``, ``agree`` (count), ``pct_agree``,
    ``ci_low``, ``ci_high`` (Wilson score interval, Wilson 1927, in percent).
    """
    if feedback.empty:
        return pd.DataFrame(columns=["item", "n", *(f"pct_{k}" for k in LIKERT_LABELS), "agree", "pct_agree",
                                     "ci_low", "ci_high"])
    counts = feedback.pivot_table(index="item", columns="response", values="count", aggfunc="sum", fill_value=0)
    counts = counts.reindex(columns=list(LIKERT_LABELS), fill_value=0)
    n = counts.sum(axis=1)
    out = pd.DataFrame({"item": counts.index, "n": n.to_numpy()})
    for k in LIKERT_LABELS:
        out[f"pct_{k}"] = (100 * counts[k] / n.where(n > 0)).to_numpy()
    out["agree"] = counts[list(AGREE)].sum(axis=1).to_numpy()
    out["pct_agree"] = 100 * out["agree"] / out["n"].where(out["n"] > 0)
    out["ci_low"], out["ci_high"] = wilson_arrays(out["agree"].to_numpy(), out["n"].to_numpy())
    return out.sort_values("pct_agree", ascending=False, ignore_index=True)


FEEDBACK_COLUMNS = ["program", "school_id", "item", "response", "count"]
FEEDBACK_SESSION_COLUMNS = ["program", "school_id", "sessions"]


def feedback_by_school(feedback: pd.DataFrame, sessions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feedback summed per programme, school of the session, item and response (``FEEDBACK_COLUMNS``), and the
    sessions with feedback per programme and school (``FEEDBACK_SESSION_COLUMNS``).

    Level 1 needs only these sums (:func:`likert_summary` pools responses over sessions), so a view of one
    school or of the whole programme reads a few rows per school instead of every session's responses. A
    session is found by (programme, session id), the key of ``pl_sessions``; feedback on a session not in
    it (or held district-wide) has no school (missing ``school_id``). The database computes the same with
    ``GROUP BY`` (``analytics.learning.load.feedback_summary``).
    """
    where = sessions[["program", "session_id", "school_id"]].drop_duplicates(["program", "session_id"])
    rows = feedback.merge(where, on=["program", "session_id"], how="left")
    keys = ["program", "school_id"]
    counts = (rows.groupby([*keys, "item", "response"], dropna=False, as_index=False)["count"].sum()
              if len(rows) else pd.DataFrame(columns=FEEDBACK_COLUMNS))
    held = (rows.groupby(keys, dropna=False, as_index=False)["session_id"].nunique()
            .rename(columns={"session_id": "sessions"}) if len(rows) else pd.DataFrame(columns=FEEDBACK_SESSION_COLUMNS))
    return counts[FEEDBACK_COLUMNS], held[FEEDBACK_SESSION_COLUMNS]


def diverging_segments(summary: pd.DataFrame) -> pd.DataFrame:
    """Bar segments for a diverging stacked Likert chart (Robbins & Heiberger, 2011).

    Disagreement extends left of zero, agreement right; the neutral share straddles zero, half on
    each side. Columns: ``item``, ``response`` (label), ``order`` (1-5), ``start``, ``end``, ``pct``.
    """
    rows = []
    for rec in summary.itertuples(index=False):
        pct = {k: float(getattr(rec, f"pct_{k}")) for k in LIKERT_LABELS}
        left = -(pct[1] + pct[2] + pct[3] / 2)
        position = left
        for k in LIKERT_LABELS:
            rows.append({"item": rec.item, "response": LIKERT_LABELS[k], "order": k, "start": position,
                         "end": position + pct[k], "pct": pct[k]})
            position += pct[k]
    return pd.DataFrame(rows, columns=["item", "response", "order", "start", "end", "pct"])


# --- level 2: learning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedChange:
    """Paired pre/post change and Hedges' g_av with its 95% interval."""

    n: int
    n_unpaired: int
    mean_pre: float
    mean_post: float
    mean_change: float
    change_low: float
    change_high: float
    p_value: float
    g_av: float
    g_low: float
    g_high: float
    r: float


def hedges_g_av(pre: np.ndarray, post: np.ndarray) -> tuple[float, float, float, float]:
    """Hedges' g_av for paired scores with a large-sample 95% interval: (g, low, high, r).

    d_av = (mean post - mean pre) / ((sd_pre + sd_post) / 2), sample standard deviations (Cumming 2012;
    Lakens 2013, "Calculating and reporting effect sizes", Front. Psychol. 4:863), and
    g_av = d_av x J with J = 1 - 3 / (4(n - 1) - 1) (Hedges' small-sample correction; DESIGN §7).
    Interval: the standard large-sample variance for a matched-pairs standardised mean difference,
    V(d) = (1/n + d² / (2n)) x 2(1 - r), r the pre/post correlation (Borenstein, Hedges, Higgins &
    Rothstein 2009, *Introduction to Meta-Analysis*, eq. 4.28), scaled by J: g ± 1.96 J sqrt(V(d)).
    Needs n >= 3 and some spread; NaN otherwise.
    """
    pre, post = np.asarray(pre, dtype=float), np.asarray(post, dtype=float)
    n = len(pre)
    nan4 = (np.nan, np.nan, np.nan, np.nan)
    if n < 3:
        return nan4
    sd_av = (pre.std(ddof=1) + post.std(ddof=1)) / 2
    if not sd_av > 0:
        return nan4
    d = (post.mean() - pre.mean()) / sd_av
    j = 1 - 3 / (4 * (n - 1) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = float(np.corrcoef(pre, post)[0, 1]) if pre.std() > 0 and post.std() > 0 else 0.0
    variance = (1 / n + d**2 / (2 * n)) * 2 * (1 - r)
    half = 1.959964 * j * np.sqrt(max(variance, 0.0))
    g = d * j
    return float(g), float(g - half), float(g + half), r


def paired_change(assessments: pd.DataFrame) -> PairedChange:
    """Pairs with both scores: mean change with its t interval and paired t-test p, and Hedges' g_av."""
    both = assessments.dropna(subset=["pre_score", "post_score"])
    pre, post = both["pre_score"].to_numpy(float), both["post_score"].to_numpy(float)
    n = len(both)
    unpaired = len(assessments) - n
    if n < 3:
        nan = float("nan")
        return PairedChange(n, unpaired, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    diff = post - pre
    se = diff.std(ddof=1) / np.sqrt(n)
    from scipy import stats  # on first use (analytics.stats.rates says why)

    t = stats.t.ppf(0.975, n - 1)
    p = float(stats.ttest_rel(post, pre).pvalue) if se > 0 else float("nan")
    g, lo, hi, r = hedges_g_av(pre, post)
    return PairedChange(n, unpaired, float(pre.mean()), float(post.mean()), float(diff.mean()),
                        float(diff.mean() - t * se), float(diff.mean() + t * se), p, g, lo, hi, r)


# --- level 3: organisation support --------------------------------------------------------------------


def support_in_place(values: pd.Series) -> pd.Series:
    """`in_place` as 1/0: Y, or a Likert rating of 4 or 5, counts as in place."""
    text = values.astype(str).str.strip().str.upper()
    return text.isin(["Y", "4", "5"]).astype(float).where(values.notna())


def support_by_school(support: pd.DataFrame) -> pd.DataFrame:
    """Share of supports in place per school and year: ``school_id, school_year, in_place, items, share``."""
    if support.empty:
        return pd.DataFrame(columns=["school_id", "school_year", "in_place", "items", "share"])
    work = support.assign(_in=support_in_place(support["in_place"]))
    out = work.groupby(["school_id", "school_year"], as_index=False).agg(in_place=("_in", "sum"),
                                                                          items=("_in", "count"))
    out["share"] = 100 * out["in_place"] / out["items"].where(out["items"] > 0)
    return out


# --- level 4: use ------------------------------------------------------------------------------------


def fidelity_by(implementation: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Fidelity = classrooms using the practice / classrooms observed, pooled within ``by`` (percent).

    Classrooms are pooled, never school percentages averaged. Adds ``using``, ``observed``, ``fidelity``.
    """
    grouped = implementation.groupby(by, as_index=False)[["classrooms_using", "classrooms_observed"]].sum()
    grouped = grouped.rename(columns={"classrooms_using": "using", "classrooms_observed": "observed"})
    grouped["fidelity"] = 100 * grouped["using"] / grouped["observed"].where(grouped["observed"] > 0)
    return grouped


def with_month(implementation: pd.DataFrame) -> pd.DataFrame:
    return implementation.assign(period=pd.to_datetime(implementation["observed_on"]).dt.to_period("M")
                                 .dt.to_timestamp())


def fidelity_run_chart(implementation: pd.DataFrame) -> pd.DataFrame:
    """Monthly pooled fidelity with its median and shift/trend signals (``run_charts.run_chart``)."""
    if implementation.empty:
        return pd.DataFrame(columns=["period", "value", "median", "signal", "observed"])
    monthly = fidelity_by(with_month(implementation), ["period"])
    chart = run_chart(monthly.rename(columns={"fidelity": "value"})[["period", "value"]])
    return chart.merge(monthly[["period", "observed"]], on="period")


def school_fidelity(implementation: pd.DataFrame) -> pd.DataFrame:
    """Each school's pooled fidelity over every observation: the dose in the dose-response and nexus views."""
    if implementation.empty:
        return pd.DataFrame(columns=["school_id", "using", "observed", "fidelity"])
    return fidelity_by(implementation, ["school_id"])


def school_year(dates: pd.Series) -> pd.Series:
    """The school year (ending year) of each date: July onwards belongs to the next year's school year."""
    stamps = pd.to_datetime(dates)
    return (stamps.dt.year + (stamps.dt.month >= 7).astype(int)).astype("Int64")
