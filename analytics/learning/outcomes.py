"""Level 5 (student outcomes) and the restorative-practices nexus (DESIGN §10).

Level 5 compares the schools that took part in a programme with the schools that did not, on a
school x year panel of a goal metric (the `ALL` group), with the restorative-practices estimator
``analytics.stats.did.staggered_did`` (Callaway-Sant'Anna difference-in-differences with randomization
inference at every scale, so its interval, p-value and verdict agree even with one school):
a school's start is the school year of its first session of the programme. Dose-response repeats the
estimate for the participating schools in each tertile of implementation fidelity (level 4).

The nexus relates, per participating school, implementation fidelity to the change in an outcome
(mean after the start minus the year before it) by ordinary least squares with a 95% confidence band
for the fitted line. It describes an association between schools, never a cause.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data.derived import suspension_metric_rows
from analytics.learning.levels import school_fidelity, school_year
from analytics.stats.did import DiDResult, staggered_did
from analytics.stats.rp_impact import SchoolRows

DID_COLUMNS = ["metric", "tertile", "estimate", "ci_low", "ci_high", "p_value", "n_rp_schools",
               "n_comparison_schools", "method"]
TERTILES = ("low", "middle", "high")


def metric_panel(metrics: pd.DataFrame, discipline: pd.DataFrame, metric: str) -> pd.DataFrame:
    """School x year values of a metric for all students: ``school_id, school_year, value``.

    `suspension_rate` comes from discipline counts when no rows of it were imported (DESIGN §2).
    """
    rows = metrics[(metrics["metric"] == metric) & (metrics["student_group"] == "ALL")]
    if rows.empty and metric == "suspension_rate" and not discipline.empty:
        derived = suspension_metric_rows(discipline)
        rows = derived[derived["student_group"] == "ALL"]
    return rows[["school_id", "school_year", "value"]].dropna().reset_index(drop=True)


def participation_starts(sessions: pd.DataFrame) -> pd.Series:
    """First school year in which each school had a session of the programme (school_id -> year)."""
    at_school = sessions.dropna(subset=["school_id"])
    if at_school.empty:
        return pd.Series(dtype="float64")
    years = school_year(at_school["session_date"]).astype("float64")
    return years.groupby(at_school["school_id"]).min()


def like_for_like(panel: pd.DataFrame, starts: pd.Series, schools: pd.DataFrame) -> pd.DataFrame:
    """Keep the participating schools and the non-participants of the school levels that took part,
    with each school's ``level``.

    A programme for elementary and middle schools is compared with elementary and middle schools only,
    and :func:`did` compares (and reassigns start years) within each level: randomization inference is
    valid only among schools that could equally have taken part, and levels trend differently on most
    metrics (participation shares often differ by level too).
    """
    levels = set(schools.loc[schools["school_id"].isin(starts.index), "level"])
    eligible = set(schools.loc[schools["level"].isin(levels), "school_id"]) | set(starts.index)
    return with_level(panel[panel["school_id"].isin(eligible)], schools)


def with_level(panel: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """The panel with each school's ``level`` (the strata of :func:`did`)."""
    return panel.assign(level=panel["school_id"].map(schools.set_index("school_id")["level"]))


def did(panel: pd.DataFrame, starts: pd.Series, metric: str, settings: Settings = DEFAULT_SETTINGS,
        event_study: bool = True) -> DiDResult:
    """Difference-in-differences of participating vs other schools (``staggered_did``).

    ``panel``: school_id, school_year, value and optionally ``level`` (then schools are compared and start
    years reassigned within levels: stratified randomization inference); ``starts``: school_id -> first
    year (others: comparison).
    """
    if panel.empty:
        return DiDResult(metric, note="no outcome data")
    work = panel.rename(columns={"value": metric}).assign(start_year=panel["school_id"].map(starts))
    strata = "level" if "level" in work and work["level"].notna().any() else None
    return staggered_did(work, metric, strata_col=strata, settings=settings, event_study=event_study)


def _row(result: DiDResult, metric: str, tertile: str) -> dict:
    return {"metric": metric, "tertile": tertile, "estimate": result.estimate, "ci_low": result.ci_low,
            "ci_high": result.ci_high, "p_value": result.p_value, "n_rp_schools": result.n_treated,
            "n_comparison_schools": result.n_comparison,
            "method": result.method if result.estimable else f"not estimable: {result.note}"}


def outcome_effects(panel: pd.DataFrame, starts: pd.Series, implementation: pd.DataFrame, metric: str,
                    settings: Settings = DEFAULT_SETTINGS,
                    overall: Callable[[], DiDResult | None] | None = None) -> tuple[pd.DataFrame, DiDResult]:
    """Overall DiD (``tertile`` = "all") and dose-response by fidelity tertile, and the overall result
    (with its event study).

    Tertiles split the participating schools with observations by their pooled fidelity (ranks cut
    in three); each tertile is compared with the same non-participating schools, the other
    participants being left out. They are shown only when the overall effect is estimable.

    The four estimates are independent of each other (each reassigns start years by its own seeded draws),
    so they are made side by side on threads: their randomization inference is numpy work that releases the
    interpreter (at 10,000 schools the four took four seconds one after another). ``overall``: gives the
    overall estimate (``did(panel, starts, metric, settings)``), e.g. made on another thread: asked for once the
    tertiles' estimates have started (None: made here).
    """
    fidelity = school_fidelity(implementation)
    fidelity = fidelity[fidelity["school_id"].isin(starts.index)].dropna(subset=["fidelity"])
    tertiles = []
    if len(fidelity) >= 3 * 2:
        bins = pd.qcut(fidelity["fidelity"].rank(method="first"), 3, labels=list(TERTILES))
        for tertile in TERTILES:
            members = fidelity.loc[bins == tertile, "school_id"]
            lo, hi = fidelity.loc[bins == tertile, "fidelity"].agg(["min", "max"])
            keep = panel[~panel["school_id"].isin(starts.index) | panel["school_id"].isin(members)]
            tertiles.append((f"{tertile} ({lo:.0f}-{hi:.0f}% fidelity)", keep, starts[starts.index.isin(members)]))
    with ThreadPoolExecutor(max_workers=min(1 + len(tertiles), os.cpu_count() or 1),
                            thread_name_prefix="outcome-effects") as estimates:
        made = estimates.submit(did, panel, starts, metric, settings) if overall is None else None
        by_tertile = [(label, estimates.submit(did, keep, members, metric, settings, event_study=False))
                      for label, keep, members in tertiles]
        main = made.result() if made is not None else overall()
        rows = [_row(main, metric, "all")]
        if main.estimable:
            rows += [_row(result.result(), metric, label) for label, result in by_tertile]
        else:
            for _, result in by_tertile:
                result.cancel()
    return pd.DataFrame(rows)[DID_COLUMNS], main


# --- nexus ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NexusFit:
    points: pd.DataFrame  # school_id, fidelity, change
    band: pd.DataFrame  # fidelity, fit, fit_low, fit_high
    slope: float  # change per 10 points of fidelity
    slope_low: float
    slope_high: float
    p_value: float
    r: float
    n: int


def outcome_change(panel: pd.DataFrame, starts: pd.Series) -> pd.DataFrame:
    """Per participating school: mean value in its start year and after, minus the year before the start.

    One pass over the panel's rows of the participating schools (not one scan of the panel per school)."""
    columns = ["school_id", "before", "after", "change"]
    if starts.empty or panel.empty:
        return pd.DataFrame(columns=columns)
    start = panel["school_id"].map(starts)
    rows = panel[start.notna()].assign(_start=start[start.notna()])
    after = rows[rows["school_year"] >= rows["_start"]].groupby("school_id", sort=False)["value"].mean()
    before = rows[rows["school_year"] == rows["_start"] - 1].drop_duplicates("school_id", keep="last")
    before = before.set_index("school_id")["value"]
    order = pd.Index(starts.index).drop_duplicates()
    out = pd.DataFrame({"school_id": order, "before": before.reindex(order).to_numpy(float),
                        "after": after.reindex(order).to_numpy(float)})
    out = out[np.isfinite(out["before"]) & out["after"].notna()].reset_index(drop=True)
    out["change"] = out["after"] - out["before"]
    return out[columns]


def nexus(panel: pd.DataFrame, starts: pd.Series, implementation: pd.DataFrame) -> NexusFit | None:
    """Least-squares line of each participating school's outcome change on its fidelity (needs 4 schools).

    Simple linear regression (``scipy.stats.linregress``); the slope's 95% interval is b ± t(n-2) SE(b)
    and the band is the 95% confidence interval of the fitted mean, fit ± t(n-2) s sqrt(1/n + (x - x̄)² / Sxx)
    (Draper & Smith, *Applied Regression Analysis*, 3rd ed., §3.1).
    """
    from scipy import stats

    points = school_fidelity(implementation)[["school_id", "fidelity"]].merge(outcome_change(panel, starts),
                                                                               on="school_id")
    points = points.dropna(subset=["fidelity", "change"])
    if len(points) < 4 or points["fidelity"].nunique() < 2:
        return None
    x, y = points["fidelity"].to_numpy(float), points["change"].to_numpy(float)
    n = len(x)
    fit = stats.linregress(x, y)
    t = stats.t.ppf(0.975, n - 2)
    residual_sd = np.sqrt(np.sum((y - (fit.intercept + fit.slope * x)) ** 2) / (n - 2))
    grid = np.linspace(x.min(), x.max(), 40)
    half = t * residual_sd * np.sqrt(1 / n + (grid - x.mean()) ** 2 / np.sum((x - x.mean()) ** 2))
    line = fit.intercept + fit.slope * grid
    band = pd.DataFrame({"fidelity": grid, "fit": line, "fit_low": line - half, "fit_high": line + half})
    low, high = fit.slope - t * fit.stderr, fit.slope + t * fit.stderr
    return NexusFit(points.reset_index(drop=True), band, 10 * float(fit.slope), 10 * float(low), 10 * float(high),
                    float(fit.pvalue), float(fit.rvalue), n)


def scope_to_school(panel: pd.DataFrame, starts: pd.Series, school: str | None) -> tuple[pd.DataFrame, pd.Series]:
    """One participating school against the non-participating schools (other participants left out)."""
    if school is None:
        return panel, starts
    others = starts.index.difference([school])
    return panel[~panel["school_id"].isin(others)], starts[starts.index == school]


# --- restorative practices beyond suspensions ---------------------------------------------------------

RP_METRIC_OUTCOMES = ("climate_belonging", "climate_safety", "climate_relationships", "chronic_absence")


def rp_metric_panels(metrics: pd.DataFrame, schools: pd.DataFrame,
                     outcomes: tuple[str, ...] = RP_METRIC_OUTCOMES) -> dict[str, SchoolRows]:
    """Each outcome's school x year panel of the district (`schools`, for each school's level), made once for
    every scope's :func:`rp_metric_impact`: a scope's panel is its schools' rows of it."""
    return {metric: SchoolRows(with_level(metric_panel(metrics, pd.DataFrame(), metric), schools))
            for metric in outcomes}


def rp_metric_impact(schools: pd.DataFrame, metrics: pd.DataFrame | None, school: str | None = None,
                     outcomes: tuple[str, ...] = RP_METRIC_OUTCOMES,
                     settings: Settings = DEFAULT_SETTINGS,
                     panels: dict[str, SchoolRows] | None = None) -> pd.DataFrame:
    """RP schools (``rp_start_year``) vs never-treated schools on school-climate and chronic absence, with
    the RP estimator; rows shaped like ``rp_impact.SUMMARY_COLUMNS`` (estimates in percentage points).

    ``schools`` is the scope (district or a cluster); with ``school`` that one RP school is compared with
    every never-treated school of ``schools``, as ``rp_impact_for_school`` does. ``panels``: the district's
    :func:`rp_metric_panels` (else made from ``metrics`` and ``schools``; with them ``metrics`` is not read).
    """
    starts = schools.set_index("school_id")["rp_start_year"].dropna()
    panels = panels if panels is not None else rp_metric_panels(metrics, schools, outcomes)
    rows = []
    for metric in outcomes:
        panel = panels[metric].rows(schools["school_id"])
        if panel.empty:
            continue
        scoped_panel, scoped_starts = scope_to_school(panel, starts, school)
        result = did(scoped_panel, scoped_starts, metric, settings, event_study=False)
        row = _row(result, metric, "all")
        rows.append({"outcome": metric, "estimate": row["estimate"], "ci_low": row["ci_low"],
                     "ci_high": row["ci_high"], "p_value": row["p_value"], "n_rp_schools": row["n_rp_schools"],
                     "n_comparison_schools": row["n_comparison_schools"], "method": row["method"]})
    return pd.DataFrame(rows, columns=["outcome", "estimate", "ci_low", "ci_high", "p_value", "n_rp_schools",
                                       "n_comparison_schools", "method"])
