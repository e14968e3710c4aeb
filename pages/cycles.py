"""`/cycles`: one PDSA cycle or ramp with its run chart (URL: cycle; `school` lists a school's cycles)."""

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from analytics.data import schema
from analytics.outputs import charts_workspace as charts
from analytics.workspace import cycles as cycle_rules
from analytics.workspace import records
from pages import ui

FIELDS = {"cycle_id": "Cycle id", "change_idea": "Change idea", "start_date": "Start", "end_date": "End",
          "goal_id": "Goal", "previous_cycle_id": "Builds on cycle", "question": "Question",
          "prediction": "Prediction", "plan_who": "Who", "plan_what": "What", "plan_where": "Where",
          "plan_when": "When", "measure": "Measure", "do_notes": "What happened (Do)",
          "study_result": "Result against the prediction (Study)", "decision": "Decision (Act)",
          "learning": "Learning (Act)"}
editor = ui.can_edit()
if ui.is_public():  # cycles are internal improvement work; shared links show plans and progress instead
    ui.not_found("PDSA cycles are not part of shared links.")
names = ui.school_field("school_name")


@ui.cached_read
def all_cycles(version: int) -> pd.DataFrame:
    return records.load(ui.engine(), "pdsa_cycles")


@ui.drawn_read
def cycle_list(version: int, school_id: str | None) -> pd.DataFrame:
    """The cycles listed (a school's, else the district's) as drawn: sorted, with their links and decisions.
    Made once per data version, not on every rerun."""
    cycles = all_cycles(version)
    shown = cycles if not school_id else cycles[cycles["school_id"] == school_id]
    table = shown.assign(school=shown["school_id"].map(names),
                         open=[ui.page_url("cycles", cycle=c) for c in shown["cycle_id"]],
                         decision=shown["decision"].map(cycle_rules.DECISION_LABELS).fillna("running"))
    # The link before the dates and the wide measure, so it shows without scrolling sideways.
    columns = ["change_idea", "decision", "open", "start_date", "end_date", "measure"]
    return table.sort_values(["school", "start_date"])[columns if school_id else ["school", *columns]]


@ui.drawn_read
def school_choices(version: int, school_id: str) -> tuple[dict[str, str], dict[str, dict]]:
    """A school's cycles' change ideas by id (a new cycle builds on one of them) and goals by id (it serves one
    of them)."""
    cycles = all_cycles(version)
    goals = records.load(ui.engine(), "school_goals", school_id=[school_id])
    mine = cycles[cycles["school_id"] == school_id]
    return (dict(zip(mine["cycle_id"], mine["change_idea"], strict=True)),
            {goal["goal_id"]: goal for goal in goals.to_dict("records")})


@ui.drawn_read
def cycle_of(version: int, cycle_id: str) -> dict | None:
    """One cycle as its page shows it (None: no such cycle): its record, its ramp first to last, the ramp's
    cycles and the goal it serves (None: none, or no longer there). Made once per data version, not on every rerun (the ramp is followed through every cycle of the
    district)."""
    cycles = all_cycles(version)
    if cycle_id not in set(cycles["cycle_id"]):
        return None
    chain = cycle_rules.ramp(cycles, cycle_id)
    record = records.get(ui.engine(), "pdsa_cycles", cycle_id)
    goal = records.get(ui.engine(), "school_goals", record["goal_id"]) if record.get("goal_id") else None
    return {"record": record, "chain": chain, "ramp": cycles[cycles["cycle_id"].isin(chain)], "goal": goal}


@ui.cached_read
def measures_for(version: int, cycle_ids: tuple[str, ...]) -> pd.DataFrame:
    return records.load(ui.engine(), "cycle_measures", cycle_id=list(cycle_ids))


cycle_id = st.query_params.get("cycle")
school_id = st.query_params.get("school")


def cycle_form(record: dict | None, school: str) -> None:
    """The whole Plan-Do-Study-Act record; new cycles can build on an earlier one (a ramp)."""
    key = record["cycle_id"] if record else "new"
    prefix = f"cycle_{key}_"
    r = record or {}
    school_cycles, goals = school_choices(ui.data_version(), school)
    same_school = [c for c in school_cycles if c != key]
    with st.form(f"cycle_form_{key}"):
        cols = st.columns([1, 2])
        cid = cols[0].text_input("Cycle id", value=r.get("cycle_id") or f"C-{school}-{len(same_school) + 1}",
                                 disabled=record is not None, key=prefix + "id")
        idea = cols[1].text_input("Change idea", value=r.get("change_idea") or "", key=prefix + "idea")
        cols = st.columns(4)
        start = cols[0].date_input("Start", value=_date(r.get("start_date")) or date.today(), key=prefix + "start")
        end = cols[1].date_input("End (empty while running)", value=_date(r.get("end_date")), key=prefix + "end")
        prev_options = ["", *same_school]
        previous = cols[2].selectbox("Builds on cycle (ramp)", prev_options,
                                     index=prev_options.index(r["previous_cycle_id"]) if r.get("previous_cycle_id")
                                     in prev_options else 0, key=prefix + "prev",
                                     format_func=lambda c: f"{cycle_rules.cycle_title(school_cycles[c])} · {c}" if c else "")
        goal_options = ["", *goals]
        goal = cols[3].selectbox("Goal it serves", goal_options, index=goal_options.index(r["goal_id"])
                                 if r.get("goal_id") in goal_options else 0, key=prefix + "goal",
                                 format_func=lambda g: ui.goal_words(goals[g]) if g else "")
        st.markdown("**Plan**")
        question = st.text_input("Question this cycle answers", value=r.get("question") or "", key=prefix + "q")
        prediction = st.text_input("Prediction", value=r.get("prediction") or "", key=prefix + "pred")
        cols = st.columns(4)
        who = cols[0].text_input("Who (roles)", value=r.get("plan_who") or "", key=prefix + "who")
        what = cols[1].text_input("What", value=r.get("plan_what") or "", key=prefix + "what")
        where = cols[2].text_input("Where", value=r.get("plan_where") or "", key=prefix + "where")
        when = cols[3].text_input("When", value=r.get("plan_when") or "", key=prefix + "when")
        measure = st.text_input("Measure (a catalog metric id or a custom measure, e.g. office referrals per week)",
                                value=r.get("measure") or "", key=prefix + "measure")
        st.markdown("**Do · Study · Act**")
        do_notes = st.text_area("What happened (Do)", value=r.get("do_notes") or "", key=prefix + "do")
        study = st.text_area("Result against the prediction (Study)", value=r.get("study_result") or "",
                             key=prefix + "study")
        cols = st.columns([1, 3])
        decisions = ["", *schema.PDSA_DECISIONS]
        decision = cols[0].selectbox("Decision (Act)", decisions, index=decisions.index(r["decision"])
                                     if r.get("decision") in decisions else 0, key=prefix + "decision",
                                     format_func=lambda d: cycle_rules.DECISION_LABELS.get(d, "not decided yet"))
        learning = cols[1].text_area("Learning (Act)", value=r.get("learning") or "", key=prefix + "learning")
        submitted = st.form_submit_button("Save cycle" if record else "Create cycle", type="primary")
    if not submitted:
        return
    values = {"cycle_id": (cid or "").strip(), "school_id": school, "change_idea": idea, "start_date": start,
              "end_date": end, "previous_cycle_id": previous or None, "goal_id": goal or None, "question": question,
              "prediction": prediction, "plan_who": who, "plan_what": what, "plan_where": where, "plan_when": when,
              "measure": measure, "do_notes": do_notes, "study_result": study, "decision": decision or None,
              "learning": learning}
    problems = []
    if not idea.strip():
        problems.append("a change idea is required")
    if end and end < start:
        problems.append("the end date is before the start date")
    if problems:
        st.error("The cycle was not saved: " + "; ".join(problems))
        return
    if not ui.store_record("pdsa_cycles", values, record, key, prefix, FIELDS):
        return
    ui.go("pages/cycles.py", cycle=values["cycle_id"])




def _date(value):
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    return pd.Timestamp(value).date() if not pd.isna(value) else None


# --- the list ---------------------------------------------------------------------------------------------------
if not cycle_id:
    ui.breadcrumb(("District", "pages/overview.py", {}), ("PDSA cycles", None, {}))
    st.title("PDSA cycles")
    if school_id and school_id not in names:
        ui.not_found(f"School “{school_id}” was not found.")
    if school_id:
        st.caption(f"Cycles of {names[school_id]}. [All cycles](cycles)")
    st.caption("Plan-Do-Study-Act cycles test one change at a time; a ramp is a series of cycles, each building on "
               "the one before. Open a cycle for its full record and run chart.")
    listed, listed_config = ui.no_none(cycle_list(ui.data_version(), school_id), {
        "school": "School", "change_idea": "Change idea", "start_date": st.column_config.DateColumn("Start"),
        "end_date": st.column_config.DateColumn("End"), "measure": "Measure", "decision": "Decision",
        "open": st.column_config.LinkColumn("Open", display_text="Open cycle →")})
    st.dataframe(listed, hide_index=True, width="stretch", column_config=listed_config)  # a running cycle: "–"
    if editor:
        with st.expander("New cycle", icon=":material/add:"):
            pick = school_id or st.selectbox("School", list(names), key="new_cycle_school",
                                             format_func=lambda s: f"{names[s]} ({s})")
            cycle_form(None, pick)
    st.stop()

# --- one cycle --------------------------------------------------------------------------------------------------
found = cycle_of(ui.data_version(), cycle_id)
if found is None:
    ui.breadcrumb(("PDSA cycles", "pages/cycles.py", {}), ("Not found", None, {}))
    ui.not_found(f"Cycle “{cycle_id}” was not found.", options=all_cycles(ui.data_version())["cycle_id"].tolist())
record, chain = found["record"], found["chain"]
school_id = record["school_id"]
title = cycle_rules.cycle_title(record["change_idea"])
ui.breadcrumb(("PDSA cycles", "pages/cycles.py", {}),
              (names.get(school_id, school_id), "pages/cycles.py", {"school": school_id}), (title, None, {}))
st.title(title)
status = cycle_rules.DECISION_LABELS.get(record.get("decision") or "", "Not decided yet (running)")
period = f"{record['start_date']:%d %b %Y} – " + (f"{record['end_date']:%d %b %Y}" if record.get("end_date")
                                                  else "running")
st.caption(f"{names.get(school_id, school_id)} · {period} · decision: {status} · cycle {cycle_id}")
if len(chain) > 1:
    ideas = dict(zip(found["ramp"]["cycle_id"], found["ramp"]["change_idea"], strict=True))
    ui.link_row(f"Ramp of {len(chain)} cycles", [
        (("▶ " if c == cycle_id else "") + cycle_rules.cycle_title(ideas.get(c), step), "pages/cycles.py",
         {"cycle": c}) for step, c in enumerate(chain, start=1)])
if found["goal"]:
    ui.link_row("Goal", [(ui.goal_words(found["goal"]), "pages/plans.py",
                          {"school": school_id, "goal": record["goal_id"]})])
elif record.get("goal_id"):
    st.caption(f"Goal {record['goal_id']} (no longer in the plan)")

with st.container(border=True):
    st.markdown("**Plan**")
    st.markdown(f"- *Question:* {record.get('question') or '–'}\n- *Prediction:* {record.get('prediction') or '–'}\n"
                f"- *Who:* {record.get('plan_who') or '–'} · *What:* {record.get('plan_what') or '–'} · "
                f"*Where:* {record.get('plan_where') or '–'} · *When:* {record.get('plan_when') or '–'}\n"
                f"- *Measure:* {record.get('measure') or '–'}")
do, study, act = st.columns(3, border=True)
with do:
    st.markdown("**Do**: what happened")
    st.markdown(record.get("do_notes") or "–")
with study:
    st.markdown("**Study**: result against the prediction")
    st.markdown(record.get("study_result") or "–")
with act:
    st.markdown("**Act**: decision and learning")
    st.markdown(f"*{status}*" + (f"  \n{record['learning']}" if record.get("learning") else ""))

measures = measures_for(ui.data_version(), tuple(chain))
scope = st.radio("Run chart of", ["the whole ramp", "this cycle"], horizontal=True, key="chart_scope") \
    if len(chain) > 1 else "this cycle"
ids = chain if scope == "the whole ramp" else [cycle_id]
points, spans = cycle_rules.ramp_run_chart(found["ramp"], measures, ids, chain)
measure_name = record.get("measure") or "custom measure"
if points.empty:
    st.info("No measurements yet." + (" Add them below." if editor else ""))
else:
    chart = charts.cycle_run_chart(points, spans, measure_name)
    ui.chart(chart, None, cycle_rules.signal_summary(points), caption=False)
    st.markdown(cycle_rules.signal_summary(points))
    ui.download_menu(f"run-chart-{cycle_id}", points.assign(period=points["period"].dt.date), chart)

if editor:
    st.subheader("Measurements of this cycle")
    mine = measures[measures["cycle_id"] == cycle_id][["date", "value", "note"]].reset_index(drop=True)
    if mine.empty:
        start = pd.Timestamp(record["start_date"])
        mine = pd.DataFrame({"date": [start], "value": [None], "note": [None]})
    mine["note"] = mine["note"].fillna("")  # blank, not "None"; a blank note is saved as none
    edited = st.data_editor(mine.assign(date=pd.to_datetime(mine["date"]).dt.date), num_rows="dynamic",
                            key=f"measures_{cycle_id}", width="stretch",
                            column_config={"date": st.column_config.DateColumn("Date", required=True),
                                           "value": st.column_config.NumberColumn("Value", required=True),
                                           "note": st.column_config.TextColumn("Note (no student names)")})
    if st.button("Save measurements", key="save_measures"):
        n = records.replace_measures(ui.engine(), cycle_id, pd.DataFrame(edited), ui.current_user())
        st.toast(f"{n} measurements saved.")
        st.rerun()
    st.subheader("Edit this cycle")
    ui.conflict_actions(cycle_id, f"cycle_{cycle_id}_")
    ui.seen_version(cycle_id, record)
    cycle_form(record, school_id)
    cols = st.columns(2)
    with cols[0].popover("Start the next cycle of this ramp", icon=":material/add:"):
        next_id = st.text_input("New cycle id", value=f"C-{school_id}-{len(school_choices(ui.data_version(), school_id)[0]) + 1}")
        idea = st.text_input("Change idea for the next cycle", value=record["change_idea"])
        if st.button("Create next cycle", key="next_cycle"):
            start = (pd.Timestamp(record["end_date"]).date() if record.get("end_date") else date.today()) \
                + timedelta(days=1)
            try:
                records.create(ui.engine(), "pdsa_cycles", {
                    "cycle_id": next_id, "school_id": school_id, "change_idea": idea, "start_date": start,
                    "previous_cycle_id": cycle_id, "goal_id": record.get("goal_id"),
                    "measure": record.get("measure")}, ui.current_user())
                ui.go("pages/cycles.py", cycle=next_id)
            except records.RecordError as exc:
                st.error(str(exc))
    if cols[1].button("Delete this cycle", key="delete_cycle") and ui.delete_record("pdsa_cycles", cycle_id,
                                                                                  record, FIELDS):
        ui.forget(cycle_id, f"cycle_{cycle_id}_")
        ui.go("pages/cycles.py", school=school_id)
    with st.expander("History of this cycle"):
        ui.record_history(cycle_id, ["changed_at", "changed_by", "table_name", "action", "version", "what"])
