"""`/learning`: did the professional learning work? One programme on Guskey's five levels, and the
restorative-practices nexus (URL: program, school, metric)."""

import pandas as pd
import streamlit as st

from analytics.access.privacy import suppress_learning
from analytics.learning import fidelity, levels, load, outcomes
from analytics.outputs import charts_equity, charts_learning
from pages import ui

st.title("Professional learning: did it work?")
st.caption("Each programme is evaluated on Guskey's five levels of evidence, from participants' reactions to "
           "student outcomes. Each level says what the evidence shows, how sure it is, and when there is none yet.")


@ui.shared
def pl_tables(version: int, public: bool) -> dict[str, pd.DataFrame]:
    """Shared links count only walkthroughs marked shareable towards level 4 (as on the shared /plans page)."""
    return load.pl_tables(ui.engine(), shareable_only=public)


public = ui.is_public()
tables = pl_tables(ui.data_version(), public)
programs = tables["pl_programs"]
if programs.empty:
    st.info("No professional-learning programmes yet. On the Data page, import `pl_programs`, then any of "
            "`pl_sessions`, `pl_feedback`, `pl_assessments`, `pl_support` and `implementation` (blank templates "
            "are there too).", icon=":material/info:")
    st.stop()

names = dict(zip(programs["program"], programs["program_name"].fillna(programs["program"]), strict=True))
schools = ui.schools()
school_names = dict(zip(schools["school_id"], schools["school_name"], strict=True))
repeated = set(schools.loc[schools["school_name"].duplicated(keep=False), "school_id"])
# Chart labels must be unique: a name two schools share carries its id.
school_labels = {s: f"{n} ({s})" if s in repeated else n for s, n in school_names.items()}
cols = st.columns(3)
program = ui.url_choice("Programme", "program", list(names), list(names)[0], container=cols[0],
                        format_func=lambda p: names[p], what="Programme")
row = programs.set_index("program").loc[program]
sessions = tables["pl_sessions"][tables["pl_sessions"]["program"] == program]
participating = sorted(sessions["school_id"].dropna().unique(), key=lambda s: school_names.get(s, s))
grant = ui.share_grant()
school_options = ([] if grant is not None and grant.kind != "district" else ["all"]) + participating
if not school_options:
    school_options = ["all"]
school = ui.url_choice("School", "school", school_options, school_options[0], container=cols[1], what="School",
                       format_func=lambda s: "All participating schools" if s == "all" else school_names.get(s, s))
goals = [m.strip() for m in str(row.get("goal_metrics") or "").split(";") if m.strip()] or ["suspension_rate"]
metric = ui.url_choice("Outcome (level 5)", "metric", goals, goals[0], container=cols[2], format_func=ui.metric_label,
                       what="Outcome")
chosen = None if school == "all" else school


@ui.cached
def evaluation(version: int, program: str, school: str | None, metric: str, public: bool):
    return load.evaluate_program(ui.engine(), pl_tables(version, public), program, school, metric)


with st.spinner("Estimating…"):
    ev = evaluation(ui.data_version(), program, chosen, metric, public)
data = ev.data
scope_name = school_names.get(chosen, chosen) if chosen else "all participating schools"
metric_name = ui.metric_label(metric)

# --- the chain of evidence ------------------------------------------------------------------------------
st.subheader(f"{data.name}: the chain of evidence ({scope_name})")
if isinstance(row.get("description"), str) and row.get("description"):
    st.caption(str(row["description"]))
here = data.sessions
facts = ([f"{len(participating)} participating schools"] if chosen is None else []) + [
    f"{len(here):,} session(s)",
    f"{here['hours'].fillna(0).mul(here['participants'].fillna(0)).sum():,.0f} participant-hours",
         "goal: " + ", ".join(ui.metric_label(m) for m in goals)]
st.markdown(" · ".join(facts))
export = ev.export_table()
released = suppress_learning(export) if public else export
small_level = {lv: bool((released.loc[released["level"] == lv, "n"].astype(str) == "*").any()) for lv in (1, 2)}
lines = []
for lv in ev.levels:
    hidden = public and small_level.get(lv.level, False)
    text = ("Fewer than 10 responses: not shown in shared views." if hidden else lv.finding)
    mark = ":material/check_circle:" if lv.has_data else ":material/hourglass_empty:"
    lines.append(f"- {mark} **Level {lv.level} · {lv.name}** ({lv.question}) " + ui._md_escape(text))
st.markdown("\n".join(lines))
if ev.missing_levels:
    st.info("No data yet for " + "; ".join(f"level {lv.level} ({lv.name.lower()}: import `{lv.missing}`)"
                                            for lv in ev.missing_levels) + ". The chain is only as strong as its "
            "weakest link: Guskey's levels each depend on the one before.", icon=":material/info:")
ui.download_menu(f"learning-{program}", released)

# --- level 1 ---------------------------------------------------------------------------------------------
st.subheader("Level 1 · Reactions")
summary = levels.likert_summary(data.feedback)
if public:
    summary = summary[summary["n"] >= 10]
if summary.empty:
    st.info("No session feedback to show.")
else:
    left, right = st.columns([3, 2])
    bars = charts_learning.likert_bars(levels.diverging_segments(summary), f"Session feedback, {scope_name}")
    agree_text = " ".join(f"{r.item}: {r.pct_agree:.0f}% agree ({r.ci_low:.0f}-{r.ci_high:.0f}%)."
                          for r in summary.itertuples())
    with left:
        ui.chart(bars, summary[["item", "n", *(f"pct_{k}" for k in range(1, 6))]].round(1), agree_text,
                 caption=False, public_safe=True, public_summary=agree_text)
    with right:
        ui.chart(charts_learning.agree_intervals(summary), summary[["item", "n", "agree", "pct_agree", "ci_low",
                                                                     "ci_high"]].round(1),
                 agree_text, caption=False, public_safe=True, public_summary=agree_text)
    st.caption("Agree = 4 or 5 on a 1-5 scale. Intervals: Wilson 95%, treating responses as independent; the same "
               "people answer after several sessions, so the true uncertainty is somewhat wider.")

# --- level 2 ---------------------------------------------------------------------------------------------
st.subheader("Level 2 · Learning")
l2 = released[released["level"] == 2]
if l2.empty:
    st.info("No pre/post assessments to show.")
else:
    shown = l2[["measure", "estimate", "ci_low", "ci_high", "n"]]
    if public:
        shown = shown.astype(str)
    with_chart = not public and len(data.assessments.dropna(subset=["pre_score", "post_score"])) >= 10
    left, right = st.columns([3, 2]) if with_chart else (None, st.container())
    right.dataframe(shown, hide_index=True, width="stretch", column_config={
        c: st.column_config.NumberColumn(format="%.2f") for c in ("estimate", "ci_low", "ci_high")} if not public else
        None)
    right.caption("Hedges' g_av: mean change / average of the pre and post standard deviations, corrected for "
                  "small samples; 0.2 small, 0.5 medium, 0.8 large (Cohen). Scores of single participants never "
                  "leave editing staff.")
    if with_chart:
        with left:  # editors only: built from single participants' scores
            ui.chart(charts_learning.pre_post(data.assessments), None, ev.levels[1].finding, caption=False)

# --- level 3 ---------------------------------------------------------------------------------------------
st.subheader("Level 3 · Organisation support")
support = levels.support_by_school(data.support)
if support.empty:
    st.info("No support checklists to show.")
else:
    year = int(support["school_year"].max())
    latest = support[support["school_year"] == year].assign(school=lambda d: d["school_id"].map(school_labels))
    ui.chart(charts_learning.support_bars(latest, f"Supports in place by school, {ui.year_label(year)}"),
             latest[["school", "school_id", "in_place", "items", "share"]].round(1), ev.levels[2].finding,
             caption=False, public_safe=True, public_summary=ev.levels[2].finding)
    st.caption("A support counts as in place when marked Y, or rated 4 or 5 of 5.")

# --- level 4 ---------------------------------------------------------------------------------------------
def show_sources(imp: pd.DataFrame) -> None:
    """One series per school and practice, with where its observations come from."""
    series = fidelity.series_sources(imp).assign(school=lambda d: d["school_id"].map(school_labels))
    counts = fidelity.source_counts(imp)
    st.markdown(f"**Sources:** {counts[fidelity.WALKTHROUGHS]:,} walkthrough look-fors tagged with a practice of "
                f"this programme and {counts[fidelity.IMPORTED]:,} imported observations (`implementation`)."
                + (" Shared view: only walkthroughs marked shareable count." if public else ""))
    with st.expander(f"Series by school and practice ({len(series)})"):
        st.dataframe(series[["school", "practice", "source", "fidelity", "observations", "observed", "using",
                             "first", "last"]], hide_index=True, width="stretch", column_config={
            "school": "School", "practice": "Practice", "source": "Source", "observations": "Observations",
            "observed": "Classrooms observed", "using": "Classrooms using it",
            "fidelity": st.column_config.NumberColumn("Fidelity (%)", format="%.0f"),
            "first": st.column_config.DateColumn("First"), "last": st.column_config.DateColumn("Last")})
        st.caption("A walkthrough look-for counts when it is tagged `look-for = PROGRAMME: practice` on /plans or in "
                   "the `walkthroughs` import: observed in k of n classrooms. When an imported observation and a "
                   "look-for share programme, school, date and practice they describe the same visit: the imported "
                   "row counts and the look-for does not. Only the counts leave a walkthrough: its notes stay on "
                   "/plans.")
    if chosen is not None and counts[fidelity.WALKTHROUGHS] and not public:
        ui.link(f"Walkthroughs of {school_names.get(chosen, chosen)}", "pages/plans.py", school=chosen)


st.subheader("Level 4 · Use")
imp = data.implementation
if imp.empty:
    st.info("No implementation observations to show. Import `implementation`, or tag the look-fors of a "
            "walkthrough on a school's plan (/plans) with this programme's practices.")
else:
    imp = imp.assign(school_year=levels.school_year(imp["observed_on"]).astype(int))
    left, right = st.columns(2)
    run = levels.fidelity_run_chart(imp)
    with left:
        ui.chart(charts_learning.fidelity_run_chart(run, f"Fidelity per month, {scope_name}"),
                 run.assign(period=run["period"].dt.strftime("%Y-%m")).round(1), ev.levels[3].finding,
                 caption=False, public_safe=True, public_summary=ev.levels[3].finding)
    by_practice = levels.fidelity_by(imp, ["practice", "school_year"])
    with right:
        ui.chart(charts_learning.fidelity_lines(by_practice, "practice", "Practice", "Fidelity by practice and school year"),
                 by_practice.round(1), "Fidelity by practice and school year.", caption=False, public_safe=True,
                 public_summary="Fidelity by practice and school year.")
    signals = int((run["signal"] != "").sum())
    st.caption(f"Run chart median {run['median'].iloc[0]:.0f}%. "
               + (f"{signals} month(s) are part of a shift (6+ on one side of the median) or trend (5+ rising or "
                  "falling)." if signals else "No shift or trend: the variation looks like noise."))
    show_sources(imp)
    if chosen is None:
        per_school = levels.fidelity_by(imp, ["school_id", "school_year"])
        wide = per_school.pivot(index="school_id", columns="school_year", values="fidelity")
        wide.index = [school_labels.get(s, s) for s in wide.index]
        wide.columns = [ui.year_label(y) for y in wide.columns]
        with st.expander(f"Fidelity by school and year ({len(wide)} schools; median of the latest year "
                         f"{wide.iloc[:, -1].median():.0f}%)"):
            st.dataframe(wide.round(0), width="stretch")

# --- level 5 ---------------------------------------------------------------------------------------------
st.subheader(f"Level 5 · Student outcomes: {metric_name}")
l5 = next(lv for lv in ev.levels if lv.level == 5)
if not l5.has_data:
    st.info(l5.finding)
else:
    left, right = st.columns(2)
    dose = charts_learning.dose_response(ev.effects, metric_name)
    with left:
        ui.chart(dose, ev.effects.drop(columns="method").round(3), l5.finding, caption=False, public_safe=True,
                 public_summary=l5.finding)
    events = ev.events.dropna(subset=["estimate"])
    if len(events):
        with right:
            study = charts_equity.event_study(events, title="Effect by years since the start", x_title=(
                "Years relative to the start (-1 = reference; n = participating schools behind the year)"))
            ui.chart(study, events.round(3),
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


@ui.cached
def nexus_fits(version: int, program: str, outcome_metrics: tuple[str, ...], scope: tuple[str, ...] | None,
               public: bool):
    all_sessions = pl_tables(version, public)["pl_sessions"]
    starts = outcomes.participation_starts(all_sessions[all_sessions["program"] == program])
    if scope is not None:
        starts = starts[starts.index.isin(scope)]
    imp_all = pl_tables(version, public)["implementation"]
    imp_all = imp_all[imp_all["program"] == program]
    return {m: outcomes.nexus(load.goal_panel(ui.engine(), m), starts, imp_all) for m in outcome_metrics}


climate = [m for m in goals if m.startswith("climate_")] or ["climate_relationships"]
nexus_metrics = (climate[0], "suspension_rate") if program.upper().startswith("RP") else (metric,)
scope_ids = None
if grant is not None and grant.kind != "district":
    scope_ids = tuple(schools.loc[schools["cluster"] == grant.target, "school_id"]) if grant.kind == "cluster" \
        else (grant.target,)
fits = nexus_fits(ui.data_version(), program, nexus_metrics, scope_ids, public)
columns = st.columns(len(nexus_metrics))
table_parts = []
for col, m in zip(columns, nexus_metrics, strict=True):
    fit = fits[m]
    label = ui.metric_label(m)
    if fit is None:
        col.info(f"{label}: fewer than 4 participating schools with both observations and outcome data in this "
                 "view: no fit.")
        continue
    points = fit.points.assign(school=lambda d: d["school_id"].map(school_labels))
    with col:
        ui.chart(charts_learning.nexus_scatter(points, fit.band, label), None,
                 f"{label}: {fit.n} schools, slope {fit.slope:+.2f} points per 10 points of fidelity "
                 f"(95% CI {fit.slope_low:+.2f} to {fit.slope_high:+.2f}).", caption=False, public_safe=True,
                 public_summary=f"{label}: {fit.n} schools.")
    direction = "rose" if fit.slope > 0 else "fell"
    sure = ("the interval excludes zero" if fit.slope_low > 0 or fit.slope_high < 0
            else "the interval includes zero, so no association can be claimed")
    col.markdown(f"Across {fit.n} schools, for every 10 points more fidelity the change in {label.lower()} "
                 f"{direction} by {abs(fit.slope):.2f} points on average (95% CI {fit.slope_low:+.2f} to "
                 f"{fit.slope_high:+.2f}; r = {fit.r:.2f}; {ui.fmt_p(fit.p_value)}): {sure}. Schools differ in many "
                 "ways besides fidelity.")
    table_parts.append(points.assign(outcome=label)[["school", "school_id", "outcome", "fidelity", "before", "after",
                                                     "change"]])
if table_parts:
    nexus_table = pd.concat(table_parts, ignore_index=True)
    with st.expander("Schools in the nexus view"):
        st.dataframe(nexus_table, hide_index=True, width="stretch", column_config={
            c: st.column_config.NumberColumn(format="%.1f") for c in ("fidelity", "before", "after", "change")})
        ui.download_menu(f"learning-{program}-nexus", nexus_table)
if chosen is not None and not public:
    ui.link(f"{school_names.get(chosen, chosen)}: school profile", "pages/school.py", school=chosen)
