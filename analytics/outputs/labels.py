"""Names people read: human column headers and values for the tables of DESIGN §7 (DESIGN §5).

The CSV exports keep the contract's codes; everything meant for people (pack sheets and slides, chart
labels, page tables) goes through here, so `school_id` reads "School", `BL` reads "Black or African
American", `law_referral` reads "Referral to law enforcement" and `within_school` reads "Within school".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.data.catalog import group_label, outcome_label, school_labels

RATIO_TYPES = {"within_school": "Within school", "alternate": "Alternate (district comparison)",
               "none": "Too small to compute"}
REFERENCE_NAMES = {"others": "All other students in the school", "district_all": "District, all students",
                   "best_group": "Best-performing group in the school", "target": "The school's target"}
SIGNAL_NAMES = {"": "No signal", "shift": "Shift", "trend": "Trend", "shift,trend": "Shift and trend"}
NO_COLOUR = "No colour (n < 30 or not rated)"
# Column headers of a table of discipline rates by outcome, short enough for six columns side by side; the
# outcome's full name (catalog.OUTCOME_NAMES) goes in the column's help. Most-used first: the table's order.
OUTCOME_COLUMNS = {"suspension": "Any suspension (%)", "iss": "In-school (%)", "oss": "Out-of-school (%)",
                   "expulsion": "Expulsion (%)", "law_referral": "Law referral (%)"}
RP_OUTCOMES = {"suspension_rate": "Suspension rate (points)", "oss_days_per_100": "OSS days per 100 students",
               "risk_ratio_black_white": "Black/White suspension risk ratio",
               "risk_ratio_swd": "SWD/non-SWD suspension risk ratio"}

HEADERS = {
    "school": "School", "school_id": "School ID", "cluster": "Cluster", "school_year": "School year",
    "metric": "Metric", "student_group": "Student group", "numerator": "Students counted (n)",
    "denominator": "Students (n)", "value": "Value (%)", "ci_low": "95% CI low (%)", "ci_high": "95% CI high (%)",
    "n_schools": "Schools pooled", "n_rows_left_out": "Rows left out (no counts)",
    "reference": "Compared with", "reference_value": "Reference (%)", "gap": "Gap (points)",
    "gap_change": "Gap change since previous year (points)", "p_value": "p-value", "q_value": "q-value (FDR)",
    "trend": "Trend", "previous_year": "Previous year", "status": "Status (%)", "change": "Change (points)",
    "status_level": "Status level", "change_level": "Change level", "color": "Colour", "outcome": "Outcome",
    "enrolled": "Enrolled (n)", "count": "Students with the outcome (n)", "risk": "Risk (%)",
    "comparison_risk": "Comparison risk (%)", "risk_ratio": "Risk ratio", "ratio_type": "Ratio type",
    "rate_difference": "Rate difference (points)", "composition": "Share of students with the outcome (%)",
    "flagged": "Flagged (3.0 or more, 3 years)", "estimate": "Estimate", "n_rp_schools": "RP schools",
    "n_comparison_schools": "Comparison schools", "method": "Method", "period": "Month", "median": "Median",
    "signal": "Signal",
}
VIEW_HEADERS = {
    "rates": {"value": "Rate (%)"},
    "rp-impact": {"estimate": "Estimate (outcome's units)", "ci_low": "95% CI low", "ci_high": "95% CI high"},
    "run-chart": {"school": "Scope", "value": "Count in the month", "median": "Median per month"},
}


def chance_text(p: float) -> str:
    """A probability as people read it: whole percents, but never "100%" or "0%" (a posterior is never
    certain): ">99%" and "<1%" where rounding would say so."""
    if p >= 0.995:
        return ">99%"
    if p < 0.005:
        return "<1%"
    return f"{p:.0%}"


def year_label(year) -> str:
    """A school year by its end year as people write it: 2025 -> "2024-25"; missing -> ""."""
    if year is None or (isinstance(year, float) and np.isnan(year)) or str(year) in ("", "*"):
        return "" if year is None or str(year) != "*" else "*"
    y = int(float(year))
    return f"{y - 1}-{str(y)[-2:]}"


def for_count(n, singular: str, plural: str | None = None) -> str:
    """The form a word takes beside a count: `singular` for exactly one, else `plural` (default
    `singular` + "s"); verbs too: `for_count(n, "has", "have")`."""
    return singular if n == 1 else plural or f"{singular}s"


def counted(n, singular: str, plural: str | None = None) -> str:
    """A count in words as people write it: "1 school", "3 schools", "1,200 schools", "0 schools"."""
    return f"{int(n):,} {for_count(n, singular, plural)}"


def scope_label(school_id: str, names: pd.Series) -> str:
    """A table's row id as a name: a school's name, `cluster:North` -> "North cluster (pooled)"."""
    text = str(school_id)
    if text == "district":
        return "District (pooled)"
    if text.startswith("cluster:"):
        return f"{text.removeprefix('cluster:')} cluster (pooled)"
    return str(names.get(text, text))


def trend_text(trend: str, previous_year, gap) -> str:
    """The gap-trend label with the true reason when there is none: a group that had a previous year
    but no comparable gap in one of the two years is not "no previous year"."""
    if isinstance(trend, str) and trend:
        return trend
    if previous_year is None or pd.isna(previous_year):
        return "no previous year"
    if gap is None or pd.isna(gap):
        return "no comparison group this year"
    return "no comparison group last year"


def _mapped(values: pd.Series, mapping) -> pd.Series:
    """Codes replaced by names; suppression marks and unknown values kept as they are."""
    return values.map(lambda v: mapping(v) if isinstance(v, str) and v not in ("*", "") else v)


def people_table(view: str, table: pd.DataFrame, schools: pd.DataFrame,
                 metric_names: dict[str, str] | None = None, names: pd.Series | None = None) -> pd.DataFrame:
    """A view's table for people: school names first (ids beside), labels for codes, human headers.

    `names` (school_id -> name) overrides the district-wide names, e.g. names told apart within a
    cluster only. Numbers and the suppression marks of a public table are kept as they are.
    """
    out = table.copy()
    names = school_labels(schools) if names is None else names
    if "school_id" in out:
        ids = out["school_id"].astype(str)
        out.insert(0, "school", ids.map(lambda s: scope_label(s, names)))
        is_school = ids.isin(names.index)
        out["school_id"] = ids.where(is_school, "")
        if "cluster" not in out and "cluster" in schools:
            out.insert(2, "cluster", ids.map(schools.set_index(schools["school_id"].astype(str))["cluster"]))
        if view == "run-chart":
            out["school"] = out["school"].str.removesuffix(" (pooled)")
            out = out.drop(columns=["school_id", "cluster"], errors="ignore")
    for col, mapping in (("metric", lambda m: (metric_names or {}).get(m, m)), ("student_group", group_label),
                         ("ratio_type", RATIO_TYPES.get), ("reference", REFERENCE_NAMES.get)):
        if col in out:
            out[col] = _mapped(out[col], lambda v, f=mapping: f(v) or v)
    if "outcome" in out:
        out["outcome"] = _mapped(out["outcome"], lambda v: RP_OUTCOMES.get(v) or outcome_label(v))
    if "trend" in out:
        previous = out["previous_year"] if "previous_year" in out else pd.Series(np.nan, index=out.index)
        known = "previous_year" in table
        out["trend"] = [t if t or not known else trend_text(t, p, g) for t, p, g in
                        zip(out["trend"].fillna(""), previous, out.get("gap", previous), strict=True)]
    for col in ("school_year", "previous_year"):  # after the trend text, which reads previous_year
        if col in out:
            out[col] = out[col].map(year_label)
    if "flagged" in out:
        out["flagged"] = out["flagged"].map(lambda v: v if v == "*" else "Yes" if str(v).lower() == "true" else "No")
    if "color" in out:
        out["color"] = out["color"].fillna("").replace("", NO_COLOUR)
    if "signal" in out:
        out["signal"] = out["signal"].fillna("").map(lambda v: SIGNAL_NAMES.get(v, v))
    headers = {**HEADERS, **VIEW_HEADERS.get(view, {})}
    return out.rename(columns=lambda c: headers.get(c, str(c).replace("_", " ").capitalize()))


LEARNING_MEASURES = {"Hedges' g_av (post vs pre)": "Effect size g",
                     "mean change (score points)": "Mean change (points)"}


def _number(value, digits: int, signed: bool) -> str:
    """A number as the learning table shows it; a suppression mark or a blank stays as it is."""
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number):
        return "*" if str(value) == "*" else ""
    return f"{number:{'+' if signed else ''}.{digits}f}"


def learning_change_table(level2: pd.DataFrame) -> pd.DataFrame:
    """Level 2's rows of the `learning` view for people: the measure in words, the effect size to 2 decimals and
    the mean change to 1 (signed), the 95% interval as "low to high", n (participants) whole; the
    suppression marks of a shared view kept."""
    rows = []
    for r in level2.itertuples(index=False):
        effect = str(r.measure).startswith("Hedges")
        digits, signed = (2, False) if effect else (1, True)
        low, high = (_number(v, digits, signed) for v in (r.ci_low, r.ci_high))
        rows.append({"Measure": LEARNING_MEASURES.get(r.measure, str(r.measure)),
                     "Estimate": _number(r.estimate, digits, signed),
                     "95% interval": "*" if "*" in (low, high) else f"{low} to {high}" if low and high else "",
                     "n": _number(r.n, 0, False)})
    return pd.DataFrame(rows, columns=["Measure", "Estimate", "95% interval", "n"])
