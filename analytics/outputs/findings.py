"""Plain-language findings written from results, respecting significance and small numbers."""

from __future__ import annotations

import numpy as np

from analytics.config import DEFAULT_SETTINGS
from analytics.outputs.labels import counted
from analytics.stats.gaps import FDR_Q
from analytics.stats.rates import two_proportion_test

MIN_N = DEFAULT_SETTINGS.privacy_min_n  # below this, say too few students rather than a number
ALPHA = DEFAULT_SETTINGS.alpha


def format_p(p: float) -> str:
    """`p < 0.001` rather than a misleading `p = 0.000`."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def rate_change_finding(label: str, prev_num: float, prev_den: float, cur_num: float, cur_den: float,
                        higher_is_better: bool, prev_label: str = "last year") -> str:
    """One sentence on a rate's change, e.g. "Suspension rate fell 1.9 points, 6.1% → 4.2%, a significant
    change (two-proportion z-test, p = 0.003)."

    Significance uses :func:`analytics.stats.rates.two_proportion_test` (pooled z-test, Fisher's exact test
    for small cells); a change is never called real without it.
    """
    if not all(np.isfinite(v) for v in (prev_num, prev_den, cur_num, cur_den)):
        return f"{label}: no comparable counts for {prev_label} and this year."
    if min(prev_den, cur_den) < MIN_N:
        return f"{label}: too few students to say (n = {int(min(prev_den, cur_den))})."
    prev, cur = 100 * prev_num / prev_den, 100 * cur_num / cur_den
    change = cur - prev
    p = two_proportion_test(cur_num, cur_den, prev_num, prev_den)
    verb = "rose" if change > 0 else "fell" if change < 0 else "held"
    improved = (change > 0) == higher_is_better
    body = f"{label} {verb} {abs(change):.1f} points since {prev_label}, {prev:.1f}% → {cur:.1f}%"
    if p < ALPHA:
        judgement = "an improvement" if improved else "a decline"
        return f"{body}: a significant change, {judgement} (two-proportion test, {format_p(p)})."
    return f"{body}: no significant change (two-proportion test, p = {p:.2f})."


def gap_finding(group_label: str, label: str, group_value: float, reference_value: float, p_value: float,
                n: float, reference_name: str = "all other students", q_value: float | None = None) -> str:
    """One sentence on a gap between a group and its reference, stating the test.

    With ``q_value`` (the Benjamini-Hochberg q-value of the test within the family shown together,
    :func:`analytics.stats.gaps.bh_q_values`) the gap is called significant only when q < ``FDR_Q``;
    without it, when p < ``ALPHA``.
    """
    if not np.isfinite(n) or n < MIN_N:
        return f"{group_label}: too few students for {label} to compare (n < {MIN_N})."
    if not (np.isfinite(group_value) and np.isfinite(reference_value)):
        return f"{group_label}: no comparable counts for {label}."
    gap = group_value - reference_value
    if q_value is not None and np.isfinite(q_value):
        q_text = "q < 0.001" if q_value < 0.001 else f"q = {q_value:.3f}"
        stat = f"two-proportion test, {format_p(p_value)}, {q_text} after the false-discovery-rate correction"
        significant = q_value < FDR_Q
    else:
        stat = f"two-proportion test, {format_p(p_value)}"
        significant = p_value < ALPHA
    sig = f"a significant difference ({stat})" if significant else f"not a significant difference ({stat})"
    return (f"{group_label}: {label} {group_value:.1f}% vs {reference_value:.1f}% for {reference_name} "
            f"({gap:+.1f} points), {sig}.")


def nothing_found_finding(n_changes_tested: int, n_gaps_tested: int, has_previous_year: bool,
                          n_value_only: int) -> str:
    """What to say when no finding is significant, without claiming a test that was not run.

    "No significant change" is said only when at least one change was tested, "no significant gap" only
    when at least one gap was; values without counts (report-card percentages) are said to be untested.
    """
    if n_changes_tested + n_gaps_tested == 0:
        if n_value_only:
            text = ("Nothing could be tested: these files have no counts, so no intervals or significance "
                    "tests. Values are shown as published.")
        else:
            text = "Nothing could be tested: no counts for this year."
        return text + ("" if has_previous_year else " Only one school year, so no change to report.")
    if n_changes_tested:
        change = "No significant change since last year"
    elif has_previous_year:
        change = "No change could be tested (no counts in both years)"
    else:
        change = "No change to report (only one school year)"
    gap = ("no significant gap between groups" if n_gaps_tested
           else "no gap between groups could be tested (no group counts)")
    untested = (f" {counted(n_value_only, 'value')} without counts could not be tested." if n_value_only else "")
    return f"{change}, and {gap}.{untested}"
