"""The discipline page's restorative-practices view of a scope (`/discipline`): the event study as drawn, its
rows as people read them and the table of estimates beside suspensions, made from the scope's estimates.

A cluster's first view would otherwise build its event-study chart and tables: a fifth of the page's own work
(DESIGN §8 asks a first view within 5x its warm rerun). The preparer makes every cluster's right after the
cluster's estimates (its restorative-practices step, one piece per cluster) with the function the page calls
for any other scope, so the two are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from analytics.outputs import charts_equity
from analytics.stats.did import interval_range
from analytics.stats.rp_impact import OUTCOME_LABELS, RPImpact
from pages.ui import caching, catalog_loaders, data_versions, rp_loaders
from pages.ui.charts import FinishedChart, finished, finished_now

RPView = tuple[pd.DataFrame, FinishedChart, pd.DataFrame, pd.DataFrame]


def drawable(impact: RPImpact) -> bool:
    """Whether the page draws the estimate's view (an overall estimate to show), not only its statement."""
    return not impact.summary.empty and bool(np.isfinite(impact.summary["estimate"].iloc[0]))


def rp_view(impact: RPImpact, beyond: pd.DataFrame, scope_name: str, label: Callable[[str], str], key: tuple,
            build: Callable[..., FinishedChart] = finished) -> RPView:
    """The event study's rows of suspensions, its chart finished by `build` (under `key`), those rows as people
    read them, and the table of the estimates (:attr:`RPImpact.summary`, then `beyond`: the same estimator on
    the outcomes beside suspensions) with the randomization p-value's verdict."""
    events = impact.event_study[impact.event_study["outcome"] == "suspension_rate"]
    study = build(charts_equity.event_study, events, title=f"Suspension rate: effect by years since RP start, "
                                                           f"{scope_name}", key=key)
    bounds = {c: [f"{v:+.2f}" if np.isfinite(v) else "unbounded" for v in events[c].astype(float)]
              for c in ("ci_low", "ci_high")}
    study_rows = events.assign(**bounds).rename(columns={
        "rel_year": "Years since start", "estimate": "Estimate (points)", "ci_low": "95% CI low",
        "ci_high": "95% CI high", "n_schools": "RP schools"}).drop(columns="outcome", errors="ignore")
    summary = pd.concat([impact.summary, beyond], ignore_index=True)
    shown = pd.DataFrame({
        "Outcome": summary["outcome"].map(lambda o: OUTCOME_LABELS.get(o) or f"{label(o)} (points)"),
        "Estimate": summary["estimate"],
        "95% CI": [interval_range(lo, hi) for lo, hi in zip(summary["ci_low"], summary["ci_high"], strict=True)],
        "p (randomization)": summary["p_value"],
        "Verdict": np.where(summary["p_value"] <= 0.05, "unlikely to be chance", "could be chance"),
        "RP schools": summary["n_rp_schools"],
        "Comparison schools": summary["n_comparison_schools"],
    })
    return events, study, study_rows, shown


def public_rp_view(impact: RPImpact, beyond: pd.DataFrame, scope_name: str, label: Callable[[str], str],
                   key: tuple) -> RPView:
    """:func:`rp_view` as a shared viewer may see it (privacy's ``rp-impact`` rule): an estimate resting on
    one RP school is starred in the table of estimates, and an event-study year resting on one is left out of
    the chart, its rows and its download. Numbers are given as text there, so a starred cell sits in a column
    of one type."""
    from analytics.access.privacy import SUPPRESSED, release_view

    starred = release_view(impact.event_study, "rp-impact", None)
    kept = (starred["estimate"].astype(str) != SUPPRESSED).to_numpy() if len(starred) else slice(None)
    events, study, study_rows, shown = rp_view(replace(impact, event_study=impact.event_study[kept]), beyond,
                                               scope_name, label, key)
    summary = pd.concat([impact.summary, beyond], ignore_index=True)
    one = (release_view(summary, "rp-impact", None)["estimate"].astype(str) == SUPPRESSED).to_numpy() \
        if len(summary) else np.zeros(0, dtype=bool)
    shown = shown.assign(**{
        "Estimate": [SUPPRESSED if hide else f"{v:+.2f}" for v, hide in zip(shown["Estimate"], one, strict=True)],
        "95% CI": np.where(one, SUPPRESSED, shown["95% CI"]),
        "p (randomization)": [SUPPRESSED if hide else f"{v:.3f}"
                              for v, hide in zip(shown["p (randomization)"], one, strict=True)],
        "Verdict": np.where(one, SUPPRESSED, shown["Verdict"]),
    })
    return events, study, study_rows, shown


@st.cache_resource(show_spinner=False, max_entries=rp_loaders.RP_SCOPES)
def _cluster_rp_view(version: int, cluster: str) -> RPView | None:
    impact = rp_loaders._rp_impact(version, cluster, None)
    labels = catalog_loaders._metric_labels(version)
    # Built apart from the pages' chart cache, which every cluster's would empty.
    made = rp_view(impact, rp_loaders._rp_beyond(version, cluster, None), cluster, lambda m: labels.get(m, m),
                   ("event study", version, cluster, "all"), finished_now) if drawable(impact) else None
    caching._made().add(("rp view", version, cluster))
    return made


def cluster_rp_view(cluster: str) -> RPView | None:
    """A cluster's :func:`rp_view` (its RP schools against the district's never-RP schools) when the preparer
    has made it, else None (the page makes it). Shared read-only."""
    version = data_versions.import_version()
    if ("rp view", version, cluster) not in caching._made():
        return None
    return _cluster_rp_view(version, cluster)
