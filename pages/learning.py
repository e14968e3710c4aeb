"""`/learning`: did the professional learning work? One programme on Guskey's five levels, and the
restorative-practices nexus (URL: program, school, metric)."""

import pandas as pd
import streamlit as st

from analytics.access.privacy import suppress_learning
from analytics.data import loads, storage
from analytics.learning import fidelity, levels, load, outcomes
from analytics.outputs import charts_equity, charts_learning
from analytics.outputs.labels import counted, for_count, learning_change_table
from pages import ui

st.title("Professional learning: did it work?")
st.caption("Each programme is evaluated on Guskey's five levels of evidence, from participants' reactions to "
           "student outcomes. Each level says what the evidence shows, how sure it is, and when there is none yet.")


@ui.shared
def pl_programs(version: int) -> pd.DataFrame:
    return load.load_programs(ui.engine())


@ui.shared
def tagged_observations(version: int, public: bool) -> pd.DataFrame:
    """Every programme's walkthrough observations, parsed once for all programmes. Shared links count only
    walkthroughs marked shareable towards level 4 (as on the shared /plans page)."""
    return load.tagged_observations(ui.engine(), shareable_only=public)


@ui.shared
def program_sessions(version: int, program: str) -> pd.DataFrame:
    """One programme's sessions: the filters and level 1 are drawn from them and the feedback sums before the
    whole evaluation is made (read at the run's data version, as the loaders' are: an import meanwhile reruns
    the page rather than mixing two states)."""
    return storage.read_at_version(ui.engine(), version,
                                   lambda: loads.load_table(ui.engine(), "pl_sessions", programs=[program]))


@ui.shared
def program_feedback(version: int, program: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One programme's feedback sums per school, item and response, and the sessions behind them, summed by the
    database (:func:`analytics.learning.load.feedback_summary`): level 1 is drawn from them first."""
    return storage.read_at_version(ui.engine(), version, lambda: load.feedback_summary(ui.engine(), [program]))


@ui.shared
def program_tables(version: int, program: str, public: bool) -> dict[str, pd.DataFrame]:
    """One programme's PL tables (level 1 as sums per school), its sessions and feedback sums those already
    read for the first draw, all at the run's data version."""
    feedback, feedback_sessions = program_feedback(version, program)
    read = {"pl_sessions": program_sessions(version, program), "pl_feedback": feedback,
            "feedback_sessions": feedback_sessions}
    return storage.read_at_version(ui.engine(), version, lambda: load.pl_tables(
        ui.engine(), shareable_only=public, programs=[program], tagged=tagged_observations(version, public),
        read=read))


@ui.drawn
def program_names(version: int) -> dict[str, str]:
    programs = pl_programs(version)
    return dict(zip(programs["program"], programs["program_name"].fillna(programs["program"]), strict=True))


@ui.drawn
def labels(version: int) -> dict[str, str]:
    """School names by id as every page shows them (unique, so they can label a chart: a name two schools
    share carries its cluster)."""
    return ui.school_names().to_dict()


@ui.drawn
def program_facts(version: int, program: str, public: bool) -> tuple[dict, list[str], list[str]]:
    """The programme's row, its participating schools (in name order) and its goal metrics."""
    row = pl_programs(version).set_index("program").loc[program].to_dict()
    sessions = program_sessions(version, program)
    names = labels(version)
    participating = sorted(sessions["school_id"].dropna().unique(), key=lambda s: names.get(s, s))
    goals = [m.strip() for m in str(row.get("goal_metrics") or "").split(";") if m.strip()] or ["suspension_rate"]
    return row, participating, goals


version = ui.data_version()
public = ui.is_public()
names = program_names(version)
if not names:
    st.info("No professional-learning programmes yet. On the Data page, import `pl_programs`, then any of "
            "`pl_sessions`, `pl_feedback`, `pl_assessments`, `pl_support` and `implementation` (blank templates "
            "are there too).", icon=":material/info:")
    st.stop()

school_names = labels(version)
cols = st.columns(3)
program = ui.url_choice("Programme", "program", list(names), list(names)[0], container=cols[0],
                        format_func=lambda p: names[p], what="Programme")
# Level 1, the page's first figure, is drawn from the programme's feedback sums: the database sums them on a
# thread of their own while the other filters are read and drawn.
ui.ahead("level 1", program_feedback, version, program)
row, participating, goals = program_facts(version, program, public)
grant = ui.share_grant()
school_options = ([] if grant is not None and grant.kind != "district" else ["all"]) + participating
if not school_options:
    school_options = ["all"]
school = ui.url_choice("School", "school", school_options, school_options[0], container=cols[1], what="School",
                       format_func=lambda s: "All participating schools" if s == "all" else school_names.get(s, s))
metric = ui.url_choice("Outcome (level 5)", "metric", goals, goals[0], container=cols[2], format_func=ui.metric_label,
                       what="Outcome")
chosen = None if school == "all" else school
scope_ids = None
if grant is not None and grant.kind != "district":
    schools = ui.schools()
    scope_ids = tuple(schools.loc[schools["cluster"] == grant.target, "school_id"]) if grant.kind == "cluster" \
        else (grant.target,)


@ui.shared
def program_outcome(version: int, program: str, school: str | None, metric: str) -> load.ProgramOutcome:
    """Level 5's outcome panel and participating schools, from the programme's sessions and the outcomes alone."""
    sessions = program_sessions(version, program)
    return storage.read_at_version(ui.engine(), version, lambda: load.program_outcome(
        ui.engine(), sessions, program, school, metric))


@ui.shared
def overall_effect(version: int, program: str, school: str | None, metric: str):
    """Level 5's overall estimate, the largest part of the evaluation: made on a thread of its own from the page's
    start, beside the PL tables and walkthroughs the evaluation reads and the fidelity tertiles it makes."""
    return load.overall_effect(program_outcome(version, program, school, metric))


@ui.shared
def evaluation(version: int, program: str, school: str | None, metric: str, public: bool):
    """The programme's evaluation at the run's data version: it reads the catalogue, the schools and the outcome
    panel itself (on threads of its own from the page's start), so an import landing meanwhile reruns the page
    rather than keeping newer outcomes under the version level 1 was drawn at."""
    tables = program_tables(version, program, public)
    outcome = program_outcome(version, program, school, metric)
    return storage.read_at_version(ui.engine(), version, lambda: load.evaluate_program(
        ui.engine(), tables, program, school, metric, outcome=outcome,
        overall=lambda: overall_effect(version, program, school, metric)))


def _key(*parts) -> tuple:
    """A finished chart's cache key: the view it belongs to and which chart it is."""
    return (version, program, chosen, metric, public, *parts)


@ui.drawn
def chain_view(version: int, program: str, school: str | None, metric: str, public: bool) -> dict:
    """The chain of evidence: the facts line, one line per level, what is missing and the released table."""
    ev = evaluation(version, program, school, metric, public)
    here = ev.data.sessions
    facts = ([counted(len(participating), "participating school")] if school is None else []) + [
        counted(len(here), "session"),
        f"{here['hours'].fillna(0).mul(here['participants'].fillna(0)).sum():,.0f} participant-hours",
        "goal: " + ", ".join(ui.metric_label(m) for m in goals)]
    export = ev.export_table()
    released = suppress_learning(export) if public else export
    small = {lv: bool((released.loc[released["level"] == lv, "n"].astype(str) == "*").any()) for lv in (1, 2)}
    lines = []
    for lv in ev.levels:
        hidden = public and small.get(lv.level, False)
        text = ("Fewer than 10 responses: not shown in shared views." if hidden else lv.finding)
        mark = ":material/check_circle:" if lv.has_data else ":material/hourglass_empty:"
        lines.append(f"- {mark} **Level {lv.level} · {lv.name}** ({lv.question}) " + ui._md_escape(text))
    missing = ("No data yet for " + "; ".join(f"level {lv.level} ({lv.name.lower()}: import `{lv.missing}`)"
                                              for lv in ev.missing_levels) + ". The chain is only as strong as its "
               "weakest link: Guskey's levels each depend on the one before.") if ev.missing_levels else None
    return {"facts": " · ".join(facts), "lines": "\n".join(lines), "missing": missing, "released": released,
            "level2": released[released["level"] == 2]}


scope_name = school_names.get(chosen, chosen) if chosen else "all participating schools"
metric_name = ui.metric_label(metric)
# The chain of evidence states every level, down to the outcomes (a district-wide panel and a difference in
# differences): level 1 is drawn first, from the feedback sums alone, and the chain is filled in above it
# once the evaluation is made, in the same run (until then it says so: a rerun never shows the last view's chain).
# The evaluation is made on a thread of its own meanwhile: what it reads (the programme's tables, every
# walkthrough, the outcome panel) overlaps level 1's drawing, and level 5's overall estimate (the largest part of
# its work) is made on another from the sessions and outcomes alone while the rest is read; the walkthroughs
# (level 4's evidence, which the fidelity tertiles of level 5 wait for) are read and parsed on a third meanwhile.
# They start once level 1's sums are read (the evaluation reads them too): on two cores their reads and estimates
# beside it made the first figure of a first view at 10,000 schools wait a second more.
program_feedback(version, program)
ui.ahead("level 5", overall_effect, version, program, chosen, metric)
ui.ahead("walkthroughs", tagged_observations, version, public)
ui.ahead("evaluation", evaluation, version, program, chosen, metric, public)
chain_slot = st.empty()
chain_slot.caption("Working out the chain of evidence…")


# --- level 1 ---------------------------------------------------------------------------------------------
@ui.drawn
def reactions_view(version: int, program: str, school: str | None, metric: str, public: bool) -> dict | None:
    """Level 1's two charts with their tables and summary (items with 10 or more responses in shared views)."""
    feedback = program_feedback(version, program)[0]  # as `load.evaluate_program` selects it: the school's rows
    summary = levels.likert_summary(feedback if school is None else feedback[feedback["school_id"] == school])
    if public:
        summary = summary[summary["n"] >= 10]
    if summary.empty:
        return None
    return {"bars": ui.finished(charts_learning.likert_bars, levels.diverging_segments(summary),
                                f"Session feedback, {scope_name}", key=_key("likert")),
            "bars_table": summary[["item", "n", *(f"pct_{k}" for k in range(1, 6))]].round(1),
            "intervals": ui.finished(charts_learning.agree_intervals, summary, key=_key("agree")),
            "intervals_table": summary[["item", "n", "agree", "pct_agree", "ci_low", "ci_high"]].round(1),
            "text": " ".join(f"{r.item}: {r.pct_agree:.0f}% agree ({r.ci_low:.0f}-{r.ci_high:.0f}%)."
                             for r in summary.itertuples())}


st.subheader("Level 1 · Reactions")
reactions = reactions_view(version, program, chosen, metric, public)
if reactions is None:
    st.info("No session feedback to show.")
else:
    left, right = st.columns([3, 2])
    agree_text = reactions["text"]
    with left:
        ui.chart(reactions["bars"], reactions["bars_table"], agree_text, caption=False, public_safe=True,
                 public_summary=agree_text)
    with right:
        ui.chart(reactions["intervals"], reactions["intervals_table"], agree_text, caption=False, public_safe=True,
                 public_summary=agree_text)
    st.caption("Agree = 4 or 5 on a 1-5 scale. Intervals: Wilson 95%, treating responses as independent; the same "
               "people answer after several sessions, so the true uncertainty is somewhat wider.")

ev = evaluation(version, program, chosen, metric, public)
data = ev.data
chain = chain_view(version, program, chosen, metric, public)

# --- the chain of evidence ------------------------------------------------------------------------------
with chain_slot.container():
    st.subheader(f"{data.name}: the chain of evidence ({scope_name})")
    if isinstance(row.get("description"), str) and row.get("description"):
        st.caption(str(row["description"]))
    st.markdown(chain["facts"])
    st.markdown(chain["lines"])
    if chain["missing"]:
        st.info(chain["missing"], icon=":material/info:")
    ui.download_menu(f"learning-{program}", chain["released"])


# --- level 2 ---------------------------------------------------------------------------------------------
@ui.drawn
def learning_view(version: int, program: str, school: str | None, metric: str, public: bool) -> dict:
    """Level 2's table (text in shared views) and, for editors with 10 or more pairs, the pre/post chart."""
    shown = learning_change_table(chain_view(version, program, school, metric, public)["level2"])
    assessments = evaluation(version, program, school, metric, public).data.assessments
    with_chart = not public and len(assessments.dropna(subset=["pre_score", "post_score"])) >= 10
    return {"table": shown,
            "chart": ui.finished(charts_learning.pre_post, assessments, key=_key("pre_post")) if with_chart else None}


st.subheader("Level 2 · Learning")
if chain["level2"].empty:
    st.info("No pre/post assessments to show.")
else:
    learned = learning_view(version, program, chosen, metric, public)
    with_chart = learned["chart"] is not None
    left, right = st.columns(2) if with_chart else (None, st.container())
    right.dataframe(learned["table"], hide_index=True, width="stretch", column_config={
        "n": st.column_config.TextColumn(help="Participants with both a pre and a post score")})
    right.caption("Effect size g (Hedges' g_av): the average gain in standard deviations (the mean change divided by "
                  "the average of the pre and post standard deviations), corrected for small samples; 0.2 small, "
                  "0.5 medium, 0.8 large (Cohen). n: participants with both scores. Scores of single participants "
                  "never leave editing staff.")
    if with_chart:
        with left:  # editors only: built from single participants' scores
            ui.chart(learned["chart"], None, ev.levels[1].finding, caption=False)


# --- level 3 ---------------------------------------------------------------------------------------------
@ui.drawn
def support_view(version: int, program: str, school: str | None, metric: str, public: bool) -> dict | None:
    """Level 3's chart of the latest year's supports by school, with its table."""
    support = levels.support_by_school(evaluation(version, program, school, metric, public).data.support)
    if support.empty:
        return None
    year = int(support["school_year"].max())
    latest = support[support["school_year"] == year].assign(school=lambda d: d["school_id"].map(school_names))
    return {"chart": ui.finished(charts_learning.support_bars, latest,
                                 f"Supports in place by school, {ui.year_label(year)}", key=_key("support")),
            "table": latest[["school", "school_id", "in_place", "items", "share"]].round(1)}


st.subheader("Level 3 · Organisation support")
supports = support_view(version, program, chosen, metric, public)
if supports is None:
    st.info("No support checklists to show.")
else:
    ui.chart(supports["chart"], supports["table"], ev.levels[2].finding, caption=False, public_safe=True,
             public_summary=ev.levels[2].finding)
    st.caption("A support counts as in place when marked Y, or rated 4 or 5 of 5.")


# --- level 4 ---------------------------------------------------------------------------------------------
@ui.drawn
def use_view(version: int, program: str, school: str | None, metric: str, public: bool) -> dict | None:
    """Level 4: the run chart, fidelity by practice, the series by school and practice with their sources,
    and (all schools) fidelity by school and year."""
    imp = evaluation(version, program, school, metric, public).data.implementation
    if imp.empty:
        return None
    imp = imp.assign(school_year=levels.school_year(imp["observed_on"]).astype(int))
    run = levels.fidelity_run_chart(imp)
    by_practice = levels.fidelity_by(imp, ["practice", "school_year"])
    signals = int((run["signal"] != "").sum())
    series = fidelity.series_sources(imp).assign(school=lambda d: d["school_id"].map(school_names))
    counts = fidelity.source_counts(imp)
    view = {"run": ui.finished(charts_learning.fidelity_run_chart, run, f"Fidelity per month, {scope_name}",
                               key=_key("run")),
            "run_table": run.assign(period=run["period"].dt.strftime("%Y-%m")).round(1),
            "practice": ui.finished(charts_learning.fidelity_lines, by_practice, "practice", "Practice",
                                    "Fidelity by practice and school year", key=_key("practice")),
            "practice_table": by_practice.round(1),
            "caption": f"Run chart median {run['median'].iloc[0]:.0f}%. " + (
                f"{counted(signals, 'month')} {for_count(signals, 'is', 'are')} part of a shift (6+ on one side of "
                "the median) or trend (5+ rising or falling)." if signals
                else "No shift or trend: the variation looks like noise."),
            "sources": (f"**Sources:** {counted(counts[fidelity.WALKTHROUGHS], 'walkthrough look-for')} tagged "
                        "with a practice of this programme and "
                        f"{counted(counts[fidelity.IMPORTED], 'imported observation')} (the implementation file "
                        "on the Data page)." + (" Shared view: only walkthroughs marked shareable count."
                                                if public else "")),
            "walkthroughs": counts[fidelity.WALKTHROUGHS],
            "series": series[["school", "practice", "source", "fidelity", "observations", "observed", "using",
                              "first", "last"]],
            "wide": None}
    if school is None:
        per_school = levels.fidelity_by(imp, ["school_id", "school_year"])
        wide = per_school.pivot(index="school_id", columns="school_year", values="fidelity")
        wide.index = [school_names.get(s, s) for s in wide.index]
        wide.columns = [ui.year_label(y) for y in wide.columns]
        view["wide"] = wide.round(0)
        view["wide_title"] = (f"Fidelity by school and year ({len(wide)} schools; median of the latest year "
                              f"{wide.iloc[:, -1].median():.0f}%)")
    return view


st.subheader("Level 4 · Use")
use = use_view(version, program, chosen, metric, public)
if use is None:
    st.info("No implementation observations to show. Import `implementation`, or tag the look-fors of a "
            "walkthrough on a school's plan (/plans) with this programme's practices.")
else:
    left, right = st.columns(2)
    with left:
        ui.chart(use["run"], use["run_table"], ev.levels[3].finding, caption=False, public_safe=True,
                 public_summary=ev.levels[3].finding)
    with right:
        ui.chart(use["practice"], use["practice_table"], "Fidelity by practice and school year.", caption=False,
                 public_safe=True, public_summary="Fidelity by practice and school year.")
    st.caption(use["caption"])
    st.markdown(use["sources"])
    with st.expander(f"Series by school and practice ({len(use['series'])})"):
        st.dataframe(use["series"], hide_index=True, width="stretch", column_config={
            "school": "School", "practice": "Practice", "source": "Source", "observations": "Observations",
            "observed": "Classrooms observed", "using": "Classrooms using it",
            "fidelity": st.column_config.NumberColumn("Fidelity (%)", format="%.0f"),
            "first": st.column_config.DateColumn("First"), "last": st.column_config.DateColumn("Last")})
        st.caption("A walkthrough look-for counts when it is tagged `look-for = PROGRAMME: practice` on /plans or in "
                   "the `walkthroughs` import: observed in k of n classrooms. When an imported observation and a "
                   "look-for share programme, school, date and practice they describe the same visit: the imported "
                   "row counts and the look-for does not. Only the counts leave a walkthrough: its notes stay on "
                   "/plans.")
    if chosen is not None and use["walkthroughs"] and not public:
        ui.link(f"Walkthroughs of {school_names.get(chosen, chosen)}", "pages/plans.py", school=chosen)
    if use["wide"] is not None:
        with st.expander(use["wide_title"]):
            st.dataframe(use["wide"], width="stretch")


# --- level 5 ---------------------------------------------------------------------------------------------
@ui.drawn
def outcomes_view(version: int, program: str, school: str | None, metric: str, public: bool) -> dict:
    """Level 5: the dose-response chart and its table, and the event study when it has estimates."""
    result = evaluation(version, program, school, metric, public)
    events = result.events.dropna(subset=["estimate"])
    return {"dose": ui.finished(charts_learning.dose_response, result.effects, metric_name, key=_key("dose")),
            "dose_table": result.effects.drop(columns="method").round(3),
            "events": ui.finished(charts_equity.event_study, events, title="Effect by years since the start", x_title=(
                "Years relative to the start (-1 = reference; n = participating schools behind the year)"),
                key=_key("events")) if len(events) else None,
            "events_table": events.round(3)}


st.subheader(f"Level 5 · Student outcomes: {metric_name}")
l5 = next(lv for lv in ev.levels if lv.level == 5)
if not l5.has_data:
    st.info(l5.finding)
else:
    left, right = st.columns(2)
    shown5 = outcomes_view(version, program, chosen, metric, public)
    with left:
        ui.chart(shown5["dose"], shown5["dose_table"], l5.finding, caption=False, public_safe=True,
                 public_summary=l5.finding)
    if shown5["events"] is not None:
        with right:
            ui.chart(shown5["events"], shown5["events_table"],
                     "Estimates by years since the start; before the start they should sit near zero.",
                     caption=False, public_safe=True,
                     public_summary="Estimates by years since the start; before the start they should sit near zero.")
    with left:
        ui.download_menu(f"learning-{program}-outcomes", ev.effects)
    st.caption(f"{ev.effects['method'].iloc[0]}. Participating schools start in the school year of their first "
               "session; schools of the same levels that never took part are the comparison. Dose-response splits "
               "participating schools into thirds by their implementation fidelity (level 4).")

# --- nexus -------------------------------------------------------------------------------------------------
st.subheader("Nexus: implementation and change, school by school")
st.caption("For each participating school: its implementation fidelity against how much an outcome changed "
           "since the year before it started. This shows whether schools that use the practice more also changed "
           "more: an association between schools, not proof that the practice caused the change.")


@ui.drawn
def nexus_view(version: int, program: str, outcome_metrics: tuple[str, ...], scope: tuple[str, ...] | None,
               public: bool) -> tuple[list[dict], pd.DataFrame | None]:
    """Per outcome: the fit of change on fidelity as a finished scatter with its sentences (None below four
    schools), and the table of the schools behind all fits."""
    tables = program_tables(version, program, public)
    starts = outcomes.participation_starts(tables["pl_sessions"])
    if scope is not None:
        starts = starts[starts.index.isin(scope)]
    parts, views = [], []
    for m in outcome_metrics:
        fit = outcomes.nexus(load.goal_panel(ui.engine(), m), starts, tables["implementation"])
        label = ui.metric_label(m)
        if fit is None:
            views.append({"none": f"{label}: fewer than 4 participating schools with both observations and outcome "
                                  "data in this view: no fit."})
            continue
        points = fit.points.assign(school=lambda d: d["school_id"].map(school_names))
        direction = "rose" if fit.slope > 0 else "fell"
        sure = ("the interval excludes zero" if fit.slope_low > 0 or fit.slope_high < 0
                else "the interval includes zero, so no association can be claimed")
        views.append({
            "chart": ui.finished(charts_learning.nexus_scatter, points, fit.band, label,
                                 key=(version, program, outcome_metrics, scope, public, "nexus", m)),
            "summary": f"{label}: {fit.n} schools, slope {fit.slope:+.2f} points per 10 points of fidelity "
                       f"(95% CI {fit.slope_low:+.2f} to {fit.slope_high:+.2f}).",
            "public_summary": f"{label}: {fit.n} schools.",
            "text": f"Across {fit.n} schools, for every 10 points more fidelity the change in {label.lower()} "
                    f"{direction} by {abs(fit.slope):.2f} points on average (95% CI {fit.slope_low:+.2f} to "
                    f"{fit.slope_high:+.2f}; r = {fit.r:.2f}; {ui.fmt_p(fit.p_value)}): {sure}. Schools differ in "
                    "many ways besides fidelity."})
        parts.append(points.assign(outcome=label)[["school", "school_id", "outcome", "fidelity", "before", "after",
                                                   "change"]])
    return views, pd.concat(parts, ignore_index=True) if parts else None


climate = [m for m in goals if m.startswith("climate_")] or ["climate_relationships"]
nexus_metrics = (climate[0], "suspension_rate") if program.upper().startswith("RP") else (metric,)
fits, nexus_table = nexus_view(version, program, nexus_metrics, scope_ids, public)
for col, fit in zip(st.columns(len(nexus_metrics)), fits, strict=True):
    if "none" in fit:
        col.info(fit["none"])
        continue
    with col:
        ui.chart(fit["chart"], None, fit["summary"], caption=False, public_safe=True,
                 public_summary=fit["public_summary"])
    col.markdown(fit["text"])
if nexus_table is not None:
    with st.expander("Schools in the nexus view"):
        st.dataframe(nexus_table, hide_index=True, width="stretch", column_config={
            c: st.column_config.NumberColumn(format="%.1f") for c in ("fidelity", "before", "after", "change")})
        ui.download_menu(f"learning-{program}-nexus", nexus_table)
if chosen is not None and not public:
    ui.link(f"{school_names.get(chosen, chosen)}: school profile", "pages/school.py", school=chosen)
