"""One programme's evaluation on Guskey's five levels: evidence, statistics and a plain finding per level.

``evaluate`` turns a programme's tables (``ProgramData``) into five ``LevelResult``s; each says whether
it has data, what it found and how sure that is, and carries the rows of the `export learning` table
(DESIGN §7: ``program, level, measure, estimate, ci_low, ci_high, n, method``). Level 5 uses the
restorative-practices estimator (see ``analytics.learning.outcomes``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.learning import fidelity, levels, outcomes
from analytics.outputs.findings import format_p
from analytics.outputs.labels import counted, for_count
from analytics.stats.did import DiDResult, describe

EXPORT_COLUMNS = ["program", "level", "measure", "estimate", "ci_low", "ci_high", "n", "method"]
LEVELS = {
    1: ("Reactions", "Was the time well spent?"),
    2: ("Learning", "Did participants learn it?"),
    3: ("Organisation support", "Did schools support it?"),
    4: ("Use", "Is it being used in classrooms?"),
    5: ("Student outcomes", "Did students benefit?"),
}
PL_TABLES = ("pl_sessions", "pl_feedback", "pl_assessments", "pl_support", "implementation")
MIN_PAIRS = 10


@dataclass
class ProgramData:
    """A programme's rows of the PL tables (already limited to a school when one is chosen)."""

    program: str
    name: str
    goal_metrics: list[str]
    sessions: pd.DataFrame
    feedback: pd.DataFrame
    assessments: pd.DataFrame
    support: pd.DataFrame
    implementation: pd.DataFrame
    feedback_sessions: int = 0  # sessions with feedback (``feedback`` holds only the sums per item and response)


@dataclass
class LevelResult:
    level: int
    name: str
    question: str
    has_data: bool
    finding: str
    rows: list[dict] = field(default_factory=list)
    missing: str = ""  # which table would give this level its evidence


def program_data(program_row: pd.Series, tables: dict[str, pd.DataFrame], school: str | None = None) -> ProgramData:
    """Select one programme's rows (and one school's, for the school-level tables) from the PL tables.

    ``pl_feedback`` is either the imported rows (summed here) or already the sums per school, item and
    response, with the sessions behind them in ``feedback_sessions`` (``levels.feedback_by_school``).
    """
    program = str(program_row["program"])
    own = {name: tables[name][tables[name]["program"] == program] for name in PL_TABLES}
    if "session_id" in own["pl_feedback"]:
        own["pl_feedback"], held = levels.feedback_by_school(own["pl_feedback"], own["pl_sessions"])
    else:
        held = tables["feedback_sessions"][tables["feedback_sessions"]["program"] == program]
    if school is not None:
        held = held[held["school_id"] == school]
        for name in PL_TABLES:
            own[name] = own[name][own[name]["school_id"] == school]
    goals = [m.strip() for m in str(program_row.get("goal_metrics") or "").split(";") if m.strip()]
    name = program_row.get("program_name")
    return ProgramData(program, str(name) if isinstance(name, str) and name else program, goals,
                       own["pl_sessions"], own["pl_feedback"], own["pl_assessments"], own["pl_support"],
                       own["implementation"], int(held["sessions"].sum()))


def _row(data: ProgramData, level: int, measure: str, estimate: float, low: float, high: float, n: float,
         method: str) -> dict:
    return {"program": data.program, "level": level, "measure": measure, "estimate": estimate, "ci_low": low,
            "ci_high": high, "n": n, "method": method}


def _level1(data: ProgramData) -> LevelResult:
    name, question = LEVELS[1]
    summary = levels.likert_summary(data.feedback)
    if summary.empty:
        return LevelResult(1, name, question, False, "No session feedback yet.", missing="pl_feedback")
    method = "% agree or strongly agree (4-5 of 5); Wilson 95% interval; responses pooled over sessions"
    rows = [_row(data, 1, f"% agree: {r.item}", r.pct_agree, r.ci_low, r.ci_high, r.n, method)
            for r in summary.itertuples()]
    best, worst = summary.iloc[0], summary.iloc[-1]
    finding = (f"Across {counted(data.feedback_sessions, 'session')}, {best['pct_agree']:.0f}% agreed that "
               f"\u201c{best['item']}\u201d "
               f"(95% CI {best['ci_low']:.0f}-{best['ci_high']:.0f}%, n = {best['n']:,.0f} responses)")
    if len(summary) > 1:
        finding += (f"; the weakest item, \u201c{worst['item']}\u201d, had {worst['pct_agree']:.0f}% "
                    f"({worst['ci_low']:.0f}-{worst['ci_high']:.0f}%)")
    return LevelResult(1, name, question, True, finding + ".", rows)


def _level2(data: ProgramData) -> LevelResult:
    name, question = LEVELS[2]
    change = levels.paired_change(data.assessments)
    if change.n == 0:
        return LevelResult(2, name, question, False, "No pre/post assessments yet.", missing="pl_assessments")
    method = ("Hedges' g_av = (mean post - mean pre) / mean of the two SDs x (1 - 3/(4(n-1)-1)); 95% CI from the "
              "large-sample variance for matched pairs (Borenstein et al. 2009)")
    rows = [_row(data, 2, "Hedges' g_av (post vs pre)", change.g_av, change.g_low, change.g_high, change.n, method),
            _row(data, 2, "mean change (score points)", change.mean_change, change.change_low, change.change_high,
                 change.n, "paired mean difference; t 95% interval; paired t-test")]
    if change.n < MIN_PAIRS or not np.isfinite(change.g_av):
        return LevelResult(2, name, question, True, f"Only {counted(change.n, 'participant')} "
                           f"{for_count(change.n, 'has', 'have')} both a pre and a post score: too few to estimate "
                           f"learning (at least {MIN_PAIRS} are needed).", rows)
    size = ("negligible" if abs(change.g_av) < 0.2 else "small" if abs(change.g_av) < 0.5
            else "medium" if abs(change.g_av) < 0.8 else "large")
    sure = ("the interval excludes zero" if change.g_low > 0 or change.g_high < 0
            else "the interval includes zero: no learning gain can be claimed")
    finding = (f"{change.n} participants scored {change.mean_change:+.1f} points on average after the programme "
               f"({change.mean_pre:.1f} \u2192 {change.mean_post:.1f}; paired t-test, {format_p(change.p_value)}): "
               f"an average gain of g = {change.g_av:.2f} standard deviations (Hedges' g; 95% CI "
               f"{change.g_low:.2f} to {change.g_high:.2f}), a {size} effect by Cohen's benchmarks; {sure}.")
    if change.n_unpaired:
        finding += (f" {counted(change.n_unpaired, 'participant')} without both scores "
                    f"{for_count(change.n_unpaired, 'is', 'are')} left out.")
    return LevelResult(2, name, question, True, finding, rows)


def _level3(data: ProgramData) -> LevelResult:
    name, question = LEVELS[3]
    by_school = levels.support_by_school(data.support)
    if by_school.empty:
        return LevelResult(3, name, question, False, "No support checklists yet.", missing="pl_support")
    year = int(by_school["school_year"].max())
    latest = by_school[by_school["school_year"] == year]
    pooled = 100 * latest["in_place"].sum() / latest["items"].sum()
    complete = int((latest["in_place"] == latest["items"]).sum())
    rows = [_row(data, 3, f"supports in place {year - 1}-{str(year)[-2:]} (% of checklist items)", pooled,
                 np.nan, np.nan, latest["items"].sum(), "items in place (Y, or 4-5 of 5) / items rated, pooled over "
                 "schools"),
            _row(data, 3, f"schools with every support in place {year - 1}-{str(year)[-2:]}", complete, np.nan,
                 np.nan, len(latest), "count of schools")]
    low = latest.nsmallest(1, "share")
    if len(latest) == 1:
        finding = (f"In {year - 1}-{str(year)[-2:]}, {latest['in_place'].iloc[0]:.0f} of {latest['items'].iloc[0]:.0f} "
                   "support items were in place.")
    else:
        finding = (f"In {year - 1}-{str(year)[-2:]}, {pooled:.0f}% of support items were in place across "
                   f"{len(latest)} schools; {complete} had every support in place, the fewest at one school was "
                   f"{low['share'].iloc[0]:.0f}%.")
    return LevelResult(3, name, question, True, finding, rows)


def _level4(data: ProgramData) -> LevelResult:
    name, question = LEVELS[4]
    imp = data.implementation
    if imp.empty:
        return LevelResult(4, name, question, False, "No implementation observations yet: import `implementation`, "
                           "or tag walkthrough look-fors with the programme's practices.", missing="implementation")
    imp = imp.assign(school_year=levels.school_year(imp["observed_on"]))
    year = int(imp["school_year"].max())
    latest = imp[imp["school_year"] == year]
    pooled = levels.fidelity_by(latest, ["program"]).iloc[0]
    per_school = levels.fidelity_by(latest, ["school_id"])
    median = float(per_school["fidelity"].median())
    chart = levels.fidelity_run_chart(imp)
    signals = chart[chart["signal"] != ""]
    label = f"{year - 1}-{str(year)[-2:]}"
    sources = fidelity.describe_sources(latest)
    rows = [_row(data, 4, f"implementation fidelity {label} (% of classrooms observed)", pooled["fidelity"],
                 np.nan, np.nan, pooled["observed"], "classrooms using the practice / classrooms observed, pooled; "
                 + sources),
            _row(data, 4, f"median school fidelity {label}", median, per_school["fidelity"].min(),
                 per_school["fidelity"].max(), len(per_school), "median of school fidelity; ci_low/ci_high give "
                 "the range across schools")]
    finding = (f"In {label} the practices were seen in {pooled['fidelity']:.0f}% of {pooled['observed']:,.0f} "
               f"classroom observations ({sources})")
    finding += (f"; the median school was at {median:.0f}% (range {per_school['fidelity'].min():.0f}-"
                f"{per_school['fidelity'].max():.0f}%, {len(per_school)} schools). " if len(per_school) > 1 else ". ")
    rising = signals["signal"].str.contains("shift").any() and chart["value"].iloc[-1] > chart["median"].iloc[-1]
    finding += ("The run chart shows a shift above the median: use is growing beyond chance variation."
                if rising else f"The run chart has {counted(len(signals), 'point')} in a shift or trend signal."
                if len(signals) else "The run chart shows no shift or trend: month-to-month changes look like noise.")
    return LevelResult(4, name, question, True, finding, rows)


def _level5(data: ProgramData, panel: pd.DataFrame, starts: pd.Series, metric: str, metric_label: str,
            higher_is_better: bool, settings: Settings,
            overall: Callable[[], DiDResult | None] | None = None) -> tuple[LevelResult, pd.DataFrame, pd.DataFrame]:
    name, question = LEVELS[5]
    empty = pd.DataFrame(columns=outcomes.DID_COLUMNS)
    if starts.empty:
        return (LevelResult(5, name, question, False, "No school has had a session of this programme yet, so "
                            "participating schools cannot be compared with the rest.", missing="pl_sessions"),
                empty, empty)
    if panel.empty:
        return (LevelResult(5, name, question, False, f"No {metric_label} data to compare schools on.",
                            missing="metrics"), empty, empty)
    effects, main = outcomes.outcome_effects(panel, starts, data.implementation, metric, settings, overall)
    events = main.event_study
    if not main.estimable:
        return LevelResult(5, name, question, False, f"{metric_label}: not estimable ({main.note}).",
                           missing="metrics"), effects, events
    rows = [_row(data, 5, f"difference-in-differences: {metric} ({r.tertile} participating schools)"
                 if r.tertile == "all" else f"dose-response: {metric}, {r.tertile} tertile", r.estimate, r.ci_low,
                 r.ci_high, r.n_rp_schools, f"{r.method}; {counted(r.n_comparison_schools, 'comparison school')}")
            for r in effects.itertuples()]
    finding = describe(main, subject="participating schools", outcome_label=metric_label,
                       comparison="schools that did not take part", alpha=settings.alpha) + " "
    if main.significant(settings.alpha):
        good = (main.estimate > 0) == higher_is_better
        finding += "That is an improvement. " if good else "That is a worsening. "
    tertiles = effects.iloc[1:]
    if len(tertiles) == 3:
        ests = tertiles["estimate"].to_numpy()
        ordered = bool(np.all(np.diff(ests) > 0) if higher_is_better else np.all(np.diff(ests) < 0))
        ordered = ordered and main.significant(settings.alpha)
        finding += ("By fidelity tertile the estimates are " + ", ".join(f"{e:+.1f}" for e in ests)
                    + (" (low to high): larger where use is higher, as a dose-response would be; the intervals "
                       "overlap, so this pattern is suggestive, not proof." if ordered else
                       " (low to high): no steady dose-response pattern.")
                    + " Each tertile's interval stands alone (three comparisons, not adjusted for multiplicity).")
    return LevelResult(5, name, question, True, finding.strip(), rows), effects, events


@dataclass
class Evaluation:
    data: ProgramData
    levels: list[LevelResult]
    effects: pd.DataFrame  # level 5: overall and by fidelity tertile
    events: pd.DataFrame  # level 5 event study

    def export_table(self) -> pd.DataFrame:
        rows = [r for level in self.levels for r in level.rows]
        return pd.DataFrame(rows, columns=EXPORT_COLUMNS)

    @property
    def missing_levels(self) -> list[LevelResult]:
        return [lv for lv in self.levels if not lv.has_data]


def evaluate(data: ProgramData, panel: pd.DataFrame, starts: pd.Series, metric: str, metric_label: str,
             higher_is_better: bool, settings: Settings = DEFAULT_SETTINGS,
             overall: Callable[[], DiDResult | None] | None = None) -> Evaluation:
    """The five levels for one programme; level 5 on ``metric`` (its school x year ``panel``) with the
    participating schools' start years ``starts`` (``outcomes.participation_starts``). ``overall``: gives level
    5's overall estimate on them (``outcomes.did``), e.g. made on another thread (else made here)."""
    level5, effects, events = _level5(data, panel, starts, metric, metric_label, higher_is_better, settings,
                                      overall)
    return Evaluation(data, [_level1(data), _level2(data), _level3(data), _level4(data), level5], effects, events)
