"""`/plans`: School Performance Plan goals, progress, root causes and walkthroughs (URL: school, goal)."""

from datetime import date

import pandas as pd
import streamlit as st

from analytics.data import schema
from analytics.data.catalog import STUDENT_GROUPS, group_label
from analytics.outputs import charts_workspace as charts
from analytics.outputs.labels import counted
from analytics.workspace import cycles as cycle_rules
from analytics.workspace import goals as goal_rules
from analytics.workspace import notes, records
from analytics.workspace import views as workspace
from pages import ui

RULE = ("**How progress is judged.** Each year's value is compared with the goal's trajectory: the straight line "
        "from the baseline to the target (through any interim targets). **On track**: the value reaches the "
        "trajectory in the improving direction. **At risk**: it misses, but its 95% interval (Wilson, from the "
        "counts) reaches the trajectory, so the miss could be chance. **Off track**: the interval misses too. "
        "**Not yet measured**: no value for that year. Metrics published without counts have no interval: on or "
        "off track only.")
GOAL_FIELDS = {"goal_id": "Goal id", "school_id": "School", "metric": "Metric", "student_group": "Student group",
               "baseline_year": "Baseline year", "baseline_value": "Baseline value", "target_year": "Target year",
               "target_value": "Target value", "interim_targets": "Interim targets", "status": "Status",
               "strategy": "Strategy", "owner": "Owner", "priority": "District priority"}
editor = ui.can_edit()
names = ui.school_field("school_name")
grant = ui.share_grant()


@ui.cached
def progress_for(version: int, cluster: str | None, school: str | None):
    return ui.goal_progress_of(cluster, school)


def metric_text(metric: str) -> str:
    return ui.metric_label(metric)


RECENT_VISITS = 5
GOALS_COLUMNS = {  # the plan's goals table
    "metric_label": "Metric", "group": "Student group", "baseline_year": "Baseline year",
    "baseline_value": st.column_config.NumberColumn("Baseline", format="%.1f"),
    "target_year": "Target year", "target_value": st.column_config.NumberColumn("Target", format="%.1f"),
    "status": "Status", "progress": "Progress now",
    "open": st.column_config.LinkColumn("Open", display_text="Open goal →")}


def look_for_table(visit: dict) -> pd.DataFrame:
    """A visit's look-fors with the programme practice each observes (when tagged)."""
    try:
        looks = notes.parse_look_fors(visit.get("look_fors"))
        tags = {t["item"]: f"{t['program']}: {t['practice']}" for t in notes.parse_practices(visit.get("practices"),
                                                                                             looks)}
    except ValueError:
        return pd.DataFrame()
    table = pd.DataFrame(looks, columns=["item", "observed", "classrooms", "share"])
    if tags:
        table["practice"] = table["item"].map(tags).fillna("")
    return table.rename(columns={"item": "Look-for", "observed": "Classrooms where seen",
                                 "classrooms": "Classrooms visited", "share": "Share (%)",
                                 "practice": "Programme practice"})


@ui.drawn_read
def plan_of(version: int, school_id: str, editor: bool, share: str | None) -> dict:
    """What a school's plan shows this viewer at this data version: its goals (drafts for editors alone) and
    their progress, the goals list as drawn (progress now, links, the privacy rules on a shared link) and its
    walkthroughs newest first (shareable ones alone on a shared link), the most recent with their look-for
    tables. Made once per version and viewer, not on every rerun; an edit bumps the version, so the next rerun
    shows it."""
    goals, progress = ui.goal_progress_of(None, school_id)
    if not editor:
        goals = goals[goals["status"] != "draft"]
    visits = records.load(ui.engine(), "walkthroughs", school_id=[school_id]).sort_values("visit_date",
                                                                                          ascending=False)
    if not editor and share:
        visits = visits[visits["shareable"]]
    listing = goal_listing(goals, progress, school_id, share)
    counted = listing[listing["status"].isin(goal_rules.COUNTED_STATUSES)]
    return {"goals": goals, "progress": progress, "listing": listing,
            "on_track": ((counted["progress"] == "On track").sum(), len(counted)),
            # A shared link's `*` in the baseline column is drawn as the other shared tables draw a masked column.
            "shown": ui.as_shown(listed_goals(listing, progress, share), GOALS_COLUMNS), "visits": visits,
            "recent": [(visit, look_for_table(visit)) for visit in visits.head(RECENT_VISITS).to_dict("records")],
            "earlier": visits.iloc[RECENT_VISITS:][["visit_date", "visitor", "focus", "look_fors", "practices"]]}


def goal_listing(goals: pd.DataFrame, progress: pd.DataFrame, school_id: str, share: str | None) -> pd.DataFrame:
    """The plan's goals, each with its progress in the latest measured year and a link to it."""
    now = goal_rules.latest_progress(progress)
    listing = goals.merge(now[["goal_id", "school_year", "value", "progress"]], on="goal_id", how="left")
    listing["progress"] = listing["progress"].fillna("not_measured").map(goal_rules.PROGRESS_LABELS)
    listing["metric_label"] = listing["metric"].map(metric_text)
    listing["group"] = listing["student_group"].map(group_label)
    listing["open"] = [ui.page_url("plans", school=school_id, goal=g, share=share) for g in listing["goal_id"]]
    return listing


def listed_goals(listing: pd.DataFrame, progress: pd.DataFrame, share: str | None) -> pd.DataFrame:
    """The goals table as drawn; on a shared link a goal on a small group shows no baseline or progress."""
    shown = listing[["metric_label", "group", "baseline_year", "baseline_value", "target_year", "target_value",
                     "status", "progress", "open"]]
    if share:
        shown = shown.astype({"baseline_value": object})
        small = progress_table(progress)
        hidden = set(small.loc[small["progress"] == "*", "goal_id"])
        shown.loc[listing["goal_id"].isin(hidden), ["baseline_value", "progress"]] = "*"
    return shown


@ui.cached_read
def school_records(version: int, school_id: str, table: str) -> pd.DataFrame:
    return records.load(ui.engine(), table, school_id=[school_id])


@ui.cached_read
def causes_for(version: int, goal_ids: tuple[str, ...]) -> pd.DataFrame:
    return records.load(ui.engine(), "root_causes", goal_id=list(goal_ids))


def progress_table(progress: pd.DataFrame) -> pd.DataFrame:
    if ui.is_public():
        return workspace._public_goals(ui.engine(), progress, ui_settings())
    return progress


def ui_settings():
    from analytics.config import DEFAULT_SETTINGS

    return DEFAULT_SETTINGS


def show_rollup() -> None:
    st.title("School Performance Plans")
    schools = ui.schools()
    cluster = grant.target if grant is not None and grant.kind == "cluster" else None
    goals, progress = progress_for(ui.data_version(), cluster, None)
    table = goal_rules.rollup(goals, progress, schools)
    if table.empty:
        st.info("No goals yet. Open a school's plan to write its first goal." if editor else "No goals yet.")
        return
    total = table[list(goal_rules.PROGRESS)].sum()
    st.markdown(f"**{goal_rules.rollup_sentence({**total.to_dict(), 'goals': int(table['goals'].sum())})}** "
                f"across {counted(len(table), 'cluster')}.")
    st.caption(RULE)
    table["summary"] = [goal_rules.rollup_sentence(r) for r in table.to_dict("records")]
    chart = charts.rollup_chart(table)
    ui.chart(chart, None, "Goals per cluster by their progress in the latest measured year: "
             + "; ".join(f"{r['cluster']}: {goal_rules.rollup_sentence(r)}" for r in table.to_dict("records")[:5])
             + ("; …" if len(table) > 5 else "."))
    st.dataframe(table[["cluster", "goals", "on_track", "at_risk", "off_track", "not_measured"]], hide_index=True,
                 width="stretch", column_config={"cluster": "Cluster", "goals": "Goals counted",
                                                 "on_track": "On track", "at_risk": "At risk",
                                                 "off_track": "Off track", "not_measured": "Not yet measured"})
    ui.download_menu("goal-rollup", table, chart)
    in_scope = schools if cluster is None else schools[schools["cluster"] == cluster]
    with_goals = in_scope[in_scope["school_id"].isin(goals["school_id"])]
    st.subheader("Open a school's plan")
    choice = st.selectbox("School", [""] + with_goals["school_id"].tolist(), key="plans_pick",
                          format_func=lambda s: "Choose a school…" if not s else f"{names[s]} ({s})")
    if choice:
        ui.go("pages/plans.py", school=choice)


if not st.query_params.get("school") and not st.query_params.get("goal"):
    show_rollup()
    st.stop()

school_id = st.query_params.get("school")
goal_id = st.query_params.get("goal")
if goal_id and not school_id:
    found = records.get(ui.engine(), "school_goals", goal_id)
    school_id = found["school_id"] if found else None
    if grant is not None and school_id and not grant.allows("plans", {"school": school_id}, ui.schools())[0]:
        school_id = None  # a shared link never reaches a goal outside its scope
if school_id not in names:
    ui.breadcrumb(("Plans", "pages/plans.py", {}), ("Not found", None, {}))
    ui.not_found(f"School “{school_id or goal_id}” was not found.")
cluster = ui.school_field("cluster")[school_id]
ui.breadcrumb(("Plans", "pages/plans.py", {}), (cluster, "pages/cluster.py", {"cluster": cluster}),
              (names[school_id], "pages/school.py", {"school": school_id}), ("Plan", None, {}))
st.title(f"School Performance Plan: {names[school_id]}")
plan = plan_of(ui.data_version(), school_id, editor, ui.share_token())
goals, progress = plan["goals"], plan["progress"]
if goal_id and goal_id not in set(goals["goal_id"]):
    ui.not_found(f"Goal “{goal_id}” was not found in the plan of {names[school_id]}.",
                 options=goals["goal_id"].tolist())

# --- goals list ------------------------------------------------------------------------------------------------
listing = plan["listing"]
st.caption(RULE)
if listing.empty:
    st.info("This plan has no goals yet.")
else:
    on_track, n_counted = plan["on_track"]
    st.markdown(f"**{on_track} of {n_counted} goals on track** "
                f"(active, met or not met goals; latest measured year).")
    goals_shown, goals_config = plan["shown"]
    st.dataframe(goals_shown, hide_index=True, width="stretch", column_config=goals_config)


def goal_form(record: dict | None) -> None:
    """Create (record None) or edit a goal; checks run on save; a stale version is a conflict, not an overwrite."""
    key = record["goal_id"] if record else "new"
    prefix = f"goal_{key}_"
    metrics = [m for m in ui.metric_ids()]
    labels = ui.metric_labels()  # looked up once: the selectbox labels every option on every rerun
    with st.form(f"goal_form_{key}"):
        cols = st.columns(3)
        gid = cols[0].text_input("Goal id", value=record["goal_id"] if record else
                                 f"G-{school_id}-{len(goals) + 1}", disabled=record is not None, key=prefix + "id")
        metric = cols[1].selectbox("Metric", metrics, index=metrics.index(record["metric"]) if record and
                                   record["metric"] in metrics else 0, format_func=lambda m: labels.get(m, m), key=prefix + "metric")
        groups = list(STUDENT_GROUPS)
        group = cols[2].selectbox("Student group", groups, index=groups.index(record["student_group"]) if record
                                  else 0, format_func=group_label, key=prefix + "group")
        cols = st.columns(4)
        years = ui.years() or [date.today().year]
        base_year = cols[0].number_input("Baseline year", 1990, 2100, int(record["baseline_year"]) if record
                                         else years[-1], key=prefix + "by")
        base_value = cols[1].number_input("Baseline value (empty: from the data)", value=float(
            record["baseline_value"]) if record else None, format="%.1f", key=prefix + "bv")
        target_year = cols[2].number_input("Target year", 1990, 2100, int(record["target_year"]) if record
                                           else years[-1] + 3, key=prefix + "ty")
        target_value = cols[3].number_input("Target value", value=float(record["target_value"]) if record else None,
                                            format="%.1f", key=prefix + "tv")
        cols = st.columns([1, 2])
        status = cols[0].selectbox("Status", schema.GOAL_STATUSES, index=schema.GOAL_STATUSES.index(
            record["status"]) if record else 0, key=prefix + "status")
        interim = cols[1].text_input("Interim targets (optional)", value=(record or {}).get("interim_targets") or "",
                                     placeholder="2025: 48; 2026: 52", key=prefix + "interim")
        strategy = st.text_area("Strategy", value=(record or {}).get("strategy") or "", key=prefix + "strategy")
        cols = st.columns(2)
        owner = cols[0].text_input("Owner (a role or team)", value=(record or {}).get("owner") or "",
                                   key=prefix + "owner")
        priority = cols[1].text_input("District priority it serves", value=(record or {}).get("priority") or "",
                                      key=prefix + "priority")
        submitted = st.form_submit_button("Save goal" if record else "Create goal", type="primary")
    if not submitted:
        return
    values = {"goal_id": (gid or "").strip(), "school_id": school_id, "metric": metric, "student_group": group,
              "baseline_year": int(base_year), "baseline_value": base_value, "target_year": int(target_year),
              "target_value": target_value, "status": status, "interim_targets": interim, "strategy": strategy,
              "owner": owner, "priority": priority}
    data_baseline = baseline_from_data(metric, group, int(base_year))
    if values["baseline_value"] is None and data_baseline is not None:
        values["baseline_value"] = round(data_baseline, 1)
    catalog = ui.metric_catalog()
    unit = str(catalog.loc[metric, "unit"]) if metric in catalog.index else "%"
    problems = goal_rules.check_goal(values, higher_is_better=bool(catalog.loc[metric, "higher_is_better"])
                                     if metric in catalog.index else None, unit=unit,
                                     known_metric=metric in catalog.index, data_baseline=data_baseline)
    if problems:
        st.error("The goal was not saved:\n" + "\n".join(f"- **{GOAL_FIELDS.get(f, f)}**: {m}" for f, m in problems))
        return
    save_record("school_goals", values, record, key, prefix, GOAL_FIELDS,
                go_to={"school": school_id, "goal": values["goal_id"]})


def baseline_from_data(metric: str, group: str, year: int) -> float | None:
    rows = ui.school_metrics(school_id)
    match = rows[(rows["metric"] == metric) & (rows["student_group"] == group) & (rows["school_year"] == year)]
    value = match["value"].dropna()
    return float(value.iloc[0]) if len(value) else None


def save_record(table: str, values: dict, record: dict | None, key: str, prefix: str, labels: dict,
                go_to: dict | None = None) -> None:
    """Create or save with the version this session opened; a conflict keeps the form as it is."""
    if not ui.store_record(table, values, record, key, prefix, labels):
        return
    st.toast("Saved.", icon=":material/check:")
    if go_to:
        ui.go("pages/plans.py", **go_to)
    st.rerun()




def goal_summary(rows: pd.DataFrame, record: dict) -> str:
    """The goal's standing in words (the chart's text alternative)."""
    measured = rows[rows["value"].notna()]
    if measured.empty:
        return f"Not yet measured after the baseline year {record['baseline_year']}."
    last = measured.iloc[-1]
    label = goal_rules.PROGRESS_LABELS[last["progress"]].lower()
    interval = (f" (95% interval {last['ci_low']:.1f} to {last['ci_high']:.1f})" if pd.notna(last["ci_low"])
                else " (no interval: value-only metric)")
    return (f"{int(last['school_year'])}: {last['value']:.1f}{interval} against a trajectory of "
            f"{last['trajectory']:.1f}: {label}.")


# --- one goal ---------------------------------------------------------------------------------------------------
if goal_id:
    record = records.get(ui.engine(), "school_goals", goal_id)
    rows = progress[progress["goal_id"] == goal_id]
    metric = record["metric"]
    catalog = ui.metric_catalog()
    unit = str(catalog.loc[metric, "unit"]) if metric in catalog.index else ""
    shown_rows = progress_table(rows)
    hidden = ui.is_public() and (shown_rows["progress"] == "*").any()
    baseline = "\\*" if hidden else f"{record['baseline_value']:.1f}"  # hidden as in the goals list above
    st.header(ui.goal_words(record))
    st.markdown(f"From **{baseline}** in {record['baseline_year']} to **{record['target_value']:.1f}**"
                f" by {record['target_year']} · status **{record['status']}** · goal {goal_id}"
                + (f" · interim targets {record['interim_targets']}" if record.get("interim_targets") else "")
                + (f"  \nStrategy: {record['strategy']}" if record.get("strategy") else "")
                + (f"  \nOwner: {record['owner']}" if record.get("owner") else "")
                + (f" · serves: {record['priority']}" if record.get("priority") else ""))
    if hidden:
        st.info("Fewer than 10 students in this group: the goal's values are not shown on shared links.")
    else:
        chart = charts.goal_chart(rows, record, metric_text(metric), unit)
        ui.chart(chart, None, goal_summary(rows, record))
    table = shown_rows.assign(progress=shown_rows["progress"].map(lambda p: goal_rules.PROGRESS_LABELS.get(p, p)))
    st.dataframe(table[["school_year", "value", "ci_low", "ci_high", "trajectory", "progress"]], hide_index=True,
                 width="stretch", column_config={"school_year": "School year",
                                                 "value": st.column_config.NumberColumn("Value", format="%.1f"),
                                                 "ci_low": st.column_config.NumberColumn("95% low", format="%.1f"),
                                                 "ci_high": st.column_config.NumberColumn("95% high", format="%.1f"),
                                                 "trajectory": st.column_config.NumberColumn("Trajectory",
                                                                                             format="%.1f"),
                                                 "progress": "Progress"})
    ui.download_menu(f"goal-{goal_id}", shown_rows, None if hidden else charts.goal_chart(rows, record,
                                                                                          metric_text(metric), unit))

    st.subheader("Root causes")
    causes = causes_for(ui.data_version(), (goal_id,))
    if causes.empty:
        st.caption("No root causes recorded for this goal.")
    for cause in causes.to_dict("records"):
        whys = notes.parse_whys(cause.get("whys"))
        st.markdown(f"**{cause['category'].capitalize()}**: {cause['statement']}"
                    + "".join(f"\n{i}. Why? {w}" for i, w in enumerate(whys, start=1)))
        if editor and st.button("Delete this cause", key=f"del_cause_{cause['cause_id']}"):
            records.delete(ui.engine(), "root_causes", cause["cause_id"], cause["version"], ui.current_user())
            st.rerun()
    if editor:
        with st.expander("Add a root cause"), st.form(f"cause_form_{goal_id}", clear_on_submit=True):
            category = st.selectbox("Category", schema.CAUSE_CATEGORIES, format_func=str.capitalize)
            statement = st.text_input("Cause statement")
            whys = st.text_area("5 whys (optional, one per line)")
            if st.form_submit_button("Add cause"):
                cause = {"cause_id": f"RC-{goal_id}-{len(causes) + 1}-{date.today():%y%m%d}", "goal_id": goal_id,
                         "category": category, "statement": statement, "whys": whys}
                problems = notes.check_root_cause(cause)
                if problems:
                    st.error("; ".join(m for _, m in problems))
                else:
                    try:
                        records.create(ui.engine(), "root_causes", cause, ui.current_user())
                        st.rerun()
                    except records.RecordError as exc:
                        st.error(str(exc))

    cycles = school_records(ui.data_version(), school_id, "pdsa_cycles")
    linked = cycles[cycles["goal_id"] == goal_id]
    if len(linked) and not ui.is_public():  # cycles are not part of shared links: no link that leads nowhere
        linked = linked.sort_values("start_date")
        ui.link_row("PDSA cycles for this goal", [(cycle_rules.cycle_title(idea, step), "pages/cycles.py", {"cycle": c})
                                                   for step, (c, idea) in enumerate(zip(
                                                       linked["cycle_id"], linked["change_idea"], strict=True), 1)])
    if editor:
        st.subheader("Edit this goal")
        ui.conflict_actions(goal_id, f"goal_{goal_id}_")
        ui.seen_version(goal_id, record)
        goal_form(record)
        cols = st.columns(2)
        if record["status"] != "retired" and cols[0].button("Retire this goal", key="retire_goal"):
            try:
                records.save(ui.engine(), "school_goals", {**record, "status": "retired"},
                             ui.seen_version(goal_id, record), ui.current_user())
                ui.forget(goal_id, f"goal_{goal_id}_")
                st.rerun()
            except records.Conflict as conflict:
                ui.conflict_panel(conflict, {**record, "status": "retired"}, GOAL_FIELDS)
        if cols[1].button("Delete this goal", key="delete_goal", type="secondary") and ui.delete_record(
                "school_goals", goal_id, record, GOAL_FIELDS):
            ui.forget(goal_id, f"goal_{goal_id}_")
            ui.go("pages/plans.py", school=school_id)
        with st.expander("History of this goal"):
            ui.record_history(goal_id, ["changed_at", "changed_by", "action", "version", "what"])
elif editor:
    with st.expander("New goal", icon=":material/add:"):
        goal_form(None)

# --- walkthroughs -----------------------------------------------------------------------------------------------
st.subheader("Walkthroughs")
visits = plan["visits"]
if visits.empty:
    st.caption("No walkthroughs recorded." if not ui.is_public() else "No walkthroughs shared.")
VISIT_FIELDS = {"visit_id": "Visit id", "visit_date": "Date", "visitor": "Visitor", "focus": "Focus",
                "look_fors": "Look-fors", "practices": "Programme practices", "notes": "Notes",
                "next_steps": "Next steps", "shareable": "Shareable"}


def visit_form(record: dict | None) -> None:
    """Record a walkthrough (record None) or edit one, e.g. to tag its look-fors with programme practices."""
    key = record["visit_id"] if record else "new_visit"
    prefix = f"visit_{key}_"
    old = {k: v for k, v in (record or {}).items() if isinstance(v, str | bool | pd.Timestamp | date)}  # no NaN
    if record:
        ui.conflict_actions(key, prefix)
        ui.seen_version(key, record)
    with st.form(f"visit_form_{key}"):
        if not record:
            st.warning("Walkthroughs are non-evaluative: describe practice, never people. Write no teacher or "
                       "student names.", icon=":material/privacy_tip:")
        cols = st.columns(3)
        visit_date = cols[0].date_input("Date of the visit", value=old["visit_date"].date() if record else
                                        date.today(), key=prefix + "date")
        visitor = cols[1].text_input("Visitor (role)", value=old.get("visitor") or "", key=prefix + "visitor")
        focus = cols[2].text_input("Focus (a goal or a practice)", value=old.get("focus") or "", key=prefix + "focus")
        look_fors = st.text_area("Look-fors: `item: k/n` (observed in k of n classrooms), one per line",
                                 value=(old.get("look_fors") or "").replace("; ", "\n"), key=prefix + "look_fors",
                                 placeholder="Learning target posted: 5/8\nStudents talking with a partner: 3/8")
        program_ids, practices_known = ui.pl_practices()
        practices = st.text_area(
            "Programme practices observed (optional): `look-for = PROGRAMME: practice`, one per line",
            value=(old.get("practices") or "").replace("; ", "\n"), key=prefix + "practices",
            placeholder="Students talking with a partner = MATH-TALK: Students explain their reasoning",
            help="A tagged look-for counts towards level 4 (use) of that professional-learning programme on the "
                 "Professional learning page: observed in k of n classrooms.")
        if program_ids:
            st.caption("Programmes: " + "; ".join(
                f"**{p}**" + (f" ({', '.join(practices_known[p])})" if practices_known.get(p) else "")
                for p in program_ids))
        visit_notes = st.text_area("Notes", value=old.get("notes") or "", key=prefix + "notes")
        next_steps = st.text_area("Next steps", value=old.get("next_steps") or "", key=prefix + "next_steps")
        shareable = st.checkbox("May appear on shared links", value=bool(old.get("shareable")), key=prefix + "share")
        submitted = st.form_submit_button("Save changes to this walkthrough" if record else "Save walkthrough",
                                          type="primary")
    if not submitted:
        return
    visit = {"visit_id": key if record else f"W-{school_id}-{visit_date:%Y%m%d}-{len(visits) + 1}",
             "school_id": school_id, "visit_date": visit_date, "visitor": visitor, "focus": focus,
             "look_fors": look_fors, "practices": practices, "notes": visit_notes, "next_steps": next_steps,
             "shareable": shareable}
    problems = notes.check_walkthrough(visit, set(program_ids))
    if problems:
        st.error("The walkthrough was not saved:\n" + "\n".join(f"- **{VISIT_FIELDS.get(f, f)}**: {m}"
                                                              for f, m in problems))
        return
    looks = notes.parse_look_fors(look_fors)  # stored in the canonical form
    visit.update(look_fors=notes.format_look_fors(looks),
                 practices=notes.format_practices(notes.parse_practices(practices, looks)))
    if ui.store_record("walkthroughs", visit, record, key, prefix, VISIT_FIELDS):
        st.toast("Saved.", icon=":material/check:")
        st.rerun()


for visit, looks in plan["recent"]:  # the most recent visits, each with its look-fors as drawn
    with st.container(border=True):
        st.markdown(f"**{visit['visit_date']:%d %b %Y}** · {visit.get('visitor') or 'visitor not recorded'}"
                    + (f" · focus: {visit['focus']}" if visit.get("focus") else "")
                    + ("" if visit["shareable"] else " · not shared"))
        if len(looks):
            st.dataframe(ui.arrow_ready(looks), hide_index=True, width="stretch",
                         column_config={"Share (%)": st.column_config.ProgressColumn(
                             "Share of classrooms", format="%.0f%%", min_value=0, max_value=100)})
        if visit.get("notes"):
            st.markdown(f"*Notes:* {visit['notes']}")
        if visit.get("next_steps"):
            st.markdown(f"*Next steps:* {visit['next_steps']}")
        if editor:
            with st.expander("Edit this walkthrough (e.g. tag its look-fors with programme practices)"):
                visit_form(visit)
            if st.button("Delete this walkthrough", key=f"del_visit_{visit['visit_id']}"):
                records.delete(ui.engine(), "walkthroughs", visit["visit_id"], visit["version"], ui.current_user())
                st.rerun()
if len(visits) > RECENT_VISITS:
    with st.expander(f"Earlier walkthroughs ({len(visits) - RECENT_VISITS})"):
        st.dataframe(plan["earlier"], hide_index=True,
                     width="stretch", column_config={
                         "visit_date": st.column_config.DateColumn("Date", format="YYYY-MM-DD"),
                         "visitor": "Visitor", "focus": "Focus", "look_fors": "Look-fors (k of n classrooms)",
                         "practices": "Programme practices observed"})
if editor:
    with st.expander("Record a walkthrough", icon=":material/add:"):
        visit_form(None)
