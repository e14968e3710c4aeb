"""Restorative-practices impact: staggered difference-in-differences with honest uncertainty (DESIGN §3).

Schools start restorative practices (RP) in different years, so a plain two-way fixed-effects
regression is biased when effects differ across cohorts or grow over time (Goodman-Bacon, 2021).
This module follows Callaway & Sant'Anna (2021, "Difference-in-differences with multiple time
periods", J. Econometrics 225:200-230) with never-treated comparison schools:

    ATT(g, t) = mean over cohort g of (Y_t - Y_{g-1}) - mean over never-treated schools of (Y_t - Y_{g-1})

for each cohort g (first RP year) and year t, school-level and unweighted. The overall effect averages
the post-start ATT(g, t) (t >= g) weighted by cohort size; the event study averages ATT(g, g + e) by
years relative to start e, with e = -1 the reference (0 by construction) and e < -1 placebo checks of
parallel trends.

Uncertainty: a school-clustered bootstrap (schools resampled with replacement within the RP cohorts
and within the comparison group; ``settings.bootstrap_resamples`` replicates; percentile 95% interval)
and a permutation p-value for the overall effect (cohort labels reassigned at random across schools,
the estimate recomputed; p = share of permuted |estimates| >= the observed |estimate|; Fisher's
randomisation test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data.derived import discipline_with_all, suspension_counts

SUMMARY_COLUMNS = ["outcome", "estimate", "ci_low", "ci_high", "p_value", "n_rp_schools", "n_comparison_schools",
                   "method"]
EVENT_COLUMNS = ["outcome", "rel_year", "estimate", "ci_low", "ci_high", "n_schools"]
OUTCOME_LABELS = {
    "suspension_rate": "suspension rate (points)",
    "oss_days_per_100": "OSS days per 100 students",
    "risk_ratio_black_white": "Black/White suspension risk ratio",
    "risk_ratio_swd": "SWD/non-SWD suspension risk ratio",
}
METHOD = ("Callaway-Sant'Anna group-time DiD vs never-treated schools; school-clustered bootstrap "
          "percentile 95% CI; permutation p-value")
SMALL = 10


@dataclass(frozen=True)
class RPImpact:
    summary: pd.DataFrame
    event_study: pd.DataFrame
    statement: str


def outcome_panel(schools: pd.DataFrame, discipline: pd.DataFrame) -> pd.DataFrame:
    """School x year outcomes: suspension rate, OSS days per 100, Black/White and SWD risk ratios."""
    full, _ = discipline_with_all(discipline)
    full = full.assign(_susp=suspension_counts(full))
    values = [c for c in ("enrolled", "_susp", "oss_days") if c in full]
    wide = full.pivot_table(index=["school_id", "school_year"], columns="student_group", values=values,
                            aggfunc="sum", dropna=False)

    def col(value: str, group: str) -> pd.Series:
        return wide[(value, group)] if (value, group) in wide.columns else pd.Series(np.nan, index=wide.index)

    def risk(count: pd.Series, enrolled: pd.Series) -> pd.Series:
        return count / enrolled.where(enrolled > 0)

    all_n, all_s = col("enrolled", "ALL"), col("_susp", "ALL")
    panel = pd.DataFrame({
        "suspension_rate": 100 * risk(all_s, all_n),
        "oss_days_per_100": 100 * col("oss_days", "ALL") / all_n.where(all_n > 0),
        "risk_ratio_black_white": risk(col("_susp", "BL"), col("enrolled", "BL"))
        / risk(col("_susp", "WH"), col("enrolled", "WH")).where(lambda r: r > 0),
        "risk_ratio_swd": risk(col("_susp", "SWD"), col("enrolled", "SWD"))
        / risk(all_s - col("_susp", "SWD"), all_n - col("enrolled", "SWD")).where(lambda r: r > 0),
    }).reset_index()
    starts = schools.set_index("school_id")["rp_start_year"]
    panel["rp_start_year"] = panel["school_id"].map(starts)
    return panel


def _att(values: np.ndarray, years: np.ndarray, cohort: np.ndarray, weights: np.ndarray) -> dict:
    """Group-time ATTs aggregated; `weights` (replicates x schools) are bootstrap or permutation counts.

    values: schools x years; cohort: start year per school (0 = never treated). Returns arrays per
    replicate: overall effect and event-study effects keyed by e.
    """
    never = cohort == 0
    overall_num = np.zeros(weights.shape[0])
    overall_den = 0.0
    event: dict[int, list] = {}
    for g in np.unique(cohort[cohort > 0]):
        if g - 1 not in years:
            continue
        base = values[:, list(years).index(g - 1)]
        members = cohort == g
        for t_index, t in enumerate(years):
            if t == g - 1:
                continue
            diff = values[:, t_index] - base
            ok = np.isfinite(diff)
            w_treat = weights * (members & ok)
            w_ctrl = weights * (never & ok)
            n_treat, n_ctrl = w_treat.sum(axis=1), w_ctrl.sum(axis=1)
            d = np.where(ok, diff, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                att = w_treat @ d / n_treat - w_ctrl @ d / n_ctrl
            size = float(members.sum())
            event.setdefault(int(t - g), []).append((att, size))
            if t >= g:
                overall_num = overall_num + att * size
                overall_den += size
    overall = overall_num / overall_den if overall_den else np.full(weights.shape[0], np.nan)
    events = {e: sum(a * s for a, s in parts) / sum(s for _, s in parts) for e, parts in event.items()}
    return {"overall": overall, "events": events}


def _estimate_outcome(panel: pd.DataFrame, outcome: str, settings: Settings,
                      rng: np.random.Generator) -> tuple[dict, pd.DataFrame]:
    wide = panel.pivot(index="school_id", columns="school_year", values=outcome)
    years = np.array(sorted(wide.columns))
    starts = panel.drop_duplicates("school_id").set_index("school_id")["rp_start_year"].reindex(wide.index)
    cohort = starts.fillna(0).astype(int).to_numpy()
    # Only cohorts observed the year before they start can be compared; others are left out.
    cohort = np.where((cohort > 0) & ~np.isin(cohort - 1, years), -1, cohort)
    keep = cohort >= 0
    values, cohort = wide.to_numpy(dtype=float)[keep], cohort[keep]
    n_rp, n_comp = int((cohort > 0).sum()), int((cohort == 0).sum())
    row = {"outcome": outcome, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
           "n_rp_schools": n_rp, "n_comparison_schools": n_comp, "method": METHOD}
    if n_rp == 0 or n_comp == 0:
        row["method"] = "not estimable: " + ("no RP schools" if n_rp == 0 else "no comparison schools")
        return row, pd.DataFrame(columns=EVENT_COLUMNS)
    point = _att(values, years, cohort, np.ones((1, len(cohort))))
    # School-clustered bootstrap, resampling within RP cohorts and within comparison schools.
    b = settings.bootstrap_resamples
    weights = np.zeros((b, len(cohort)))
    for group in np.unique(cohort):
        idx = np.flatnonzero(cohort == group)
        weights[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=b)
    boot = _att(values, years, cohort, weights)
    # Permutation test: cohort labels shuffled across schools.
    perms = np.stack([rng.permutation(cohort) for _ in range(b)])
    perm_overall = np.array([
        _att(values, years, labels, np.ones((1, len(cohort))))["overall"][0] for labels in perms[: min(b, 499)]
    ])
    estimate = float(point["overall"][0])
    low, high = np.nanpercentile(boot["overall"], [2.5, 97.5])
    finite = perm_overall[np.isfinite(perm_overall)]
    p_value = (1 + np.sum(np.abs(finite) >= abs(estimate) - 1e-12)) / (1 + len(finite)) if len(finite) else np.nan
    row.update(estimate=estimate, ci_low=float(low), ci_high=float(high), p_value=float(p_value))
    events = []
    for e, att in sorted(point["events"].items()):
        lo, hi = np.nanpercentile(boot["events"][e], [2.5, 97.5])
        events.append({"outcome": outcome, "rel_year": e, "estimate": float(att[0]), "ci_low": float(lo),
                       "ci_high": float(hi), "n_schools": n_rp})
    events.append({"outcome": outcome, "rel_year": -1, "estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0,
                   "n_schools": n_rp})
    return row, pd.DataFrame(events).sort_values("rel_year").reset_index(drop=True)


def _statement(summary: pd.DataFrame) -> str:
    if summary.empty:
        return "Restorative-practices impact cannot be estimated: no discipline data."
    main = summary.iloc[0]
    if not np.isfinite(main["estimate"]):
        return f"Restorative-practices impact cannot be estimated: {main['method'].removeprefix('not estimable: ')}."
    direction = "lower" if main["estimate"] < 0 else "higher"
    excludes = main["ci_low"] > 0 or main["ci_high"] < 0
    text = (f"Suspension rates at the {main['n_rp_schools']} restorative-practices schools were "
            f"{abs(main['estimate']):.2f} points {direction} after they started than the "
            f"{main['n_comparison_schools']} comparison schools' trend predicts (95% CI {main['ci_low']:.2f} to "
            f"{main['ci_high']:.2f}; permutation p = {main['p_value']:.3f}). ")
    text += ("The interval excludes zero: the drop is unlikely to be chance alone. " if excludes else
             "The interval includes zero: no change can be claimed. ")
    if main["n_rp_schools"] < SMALL or main["n_comparison_schools"] < SMALL:
        text += "Caution: the sample is small (fewer than 10 schools in a group), so the estimate is fragile. "
    text += "Method: Callaway-Sant'Anna difference-in-differences against never-treated schools."
    return text


def rp_impact(schools: pd.DataFrame, discipline: pd.DataFrame, settings: Settings = DEFAULT_SETTINGS,
              outcomes: list[str] | None = None) -> RPImpact:
    """Estimate the effect of restorative practices on each outcome (see the module docstring)."""
    outcomes = outcomes or list(OUTCOME_LABELS)
    if discipline.empty or schools.empty:
        empty = pd.DataFrame(columns=SUMMARY_COLUMNS)
        return RPImpact(empty, pd.DataFrame(columns=EVENT_COLUMNS), _statement(empty))
    panel = outcome_panel(schools, discipline)
    rng = np.random.default_rng(settings.random_seed)
    rows, events = [], []
    for outcome in outcomes:
        if panel[outcome].notna().sum() == 0:
            continue
        row, event = _estimate_outcome(panel, outcome, settings, rng)
        rows.append(row)
        events.append(event)
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    event_study = pd.concat(events, ignore_index=True) if events else pd.DataFrame(columns=EVENT_COLUMNS)
    return RPImpact(summary, event_study, _statement(summary))
