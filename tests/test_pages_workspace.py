"""AppTest of /plans, /cycles and /changes: deep links, numbers equal to analytics, editing and conflicts."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from analytics.data import loads, storage
from analytics.data.catalog import BUILTIN_METRICS, group_label, school_labels
from analytics.workspace import changes as change_rules
from analytics.workspace import goals as goal_rules
from analytics.workspace import records
from analytics.workspace import views as workspace
from analytics.workspace.ahead import CHANGES_KEPT_AS
from tests.page_runner import run_page as _run

METRIC_LABELS = {m.metric: m.label for m in BUILTIN_METRICS}


def _active_goal(engine) -> dict:
    goals = records.load(engine, "school_goals")
    return goals[goals["status"] == "active"].iloc[0].to_dict()


def test_plans_rollup_matches_analytics(on_demo):
    at = _run("plans")
    goals, progress = workspace.goals_progress(on_demo)
    table = goal_rules.rollup(goals, progress, loads.load_schools(on_demo))
    on_track, total = int(table["on_track"].sum()), int(table["goals"].sum())
    assert f"{on_track} of {total} goals on track" in at.markdown[0].value
    assert any("How progress is judged" in c.value for c in at.caption)


def test_goal_deep_link_shows_its_progress(on_demo):
    goal = _active_goal(on_demo)
    at = _run("plans", school=goal["school_id"], goal=goal["goal_id"])
    _, progress = workspace.goals_progress(on_demo, school=goal["school_id"])
    expected = progress[progress["goal_id"] == goal["goal_id"]]
    shown = at.dataframe[1].value
    assert shown["school_year"].tolist() == expected["school_year"].tolist()
    assert shown["progress"].tolist() == expected["progress"].map(goal_rules.PROGRESS_LABELS).tolist()
    # The heading names the goal in words (metric, group, target); its code follows in the line below it.
    words = goal_rules.goal_title(METRIC_LABELS[goal["metric"]], group_label(goal["student_group"]),
                                  goal["target_value"], goal["target_year"])
    assert [h.value for h in at.header] == [words] and goal["goal_id"] not in words
    assert any(f"goal {goal['goal_id']}" in m.value for m in at.markdown)
    listed = at.dataframe[0].value
    assert listed.columns[-1] == "open" and listed["open"].str.contains(f"goal={goal['goal_id']}").any()


def test_unknown_school_goal_and_cycle_say_not_found(on_demo):
    assert "was not found" in _run("plans", school="NOPE").error[0].value
    goal = _active_goal(on_demo)
    assert "Goal “G-X” was not found" in _run("plans", school=goal["school_id"], goal="G-X").error[0].value
    assert "Cycle “C-X” was not found" in _run("cycles", cycle="C-X").error[0].value


def test_cycle_page_shows_the_ramp_and_its_run_chart(on_demo):
    cycles = records.load(on_demo, "pdsa_cycles")
    follower = cycles[cycles["previous_cycle_id"].notna()].iloc[0]
    at = _run("cycles", cycle=follower["cycle_id"])
    assert at.title[0].value == follower["change_idea"]  # the cycle in words; its id in the caption
    assert any(f"cycle {follower['cycle_id']}" in c.value for c in at.caption)
    texts = " ".join(m.value for m in at.markdown)
    before = cycles.set_index("cycle_id").loc[follower["previous_cycle_id"]]
    # The ramp's links read as each cycle's change idea, numbered in the ramp; the ids stay in their URLs.
    assert "Ramp of" in texts and f"cycle={follower['previous_cycle_id']})" in texts
    assert f"[1. {before['change_idea']}](" in texts.replace("\\", "")
    assert "shift" in texts or "No shift or trend" in texts  # the run-chart rules speak either way
    assert len(at.get("vega_lite_chart")) >= 1


def test_a_cycle_names_its_goal_and_a_goal_its_cycles_in_words(on_demo):
    cycles = records.load(on_demo, "pdsa_cycles")
    cycle = cycles[cycles["goal_id"].notna()].iloc[0]
    goal = records.get(on_demo, "school_goals", cycle["goal_id"])
    words = goal_rules.goal_title(METRIC_LABELS[goal["metric"]], group_label(goal["student_group"]),
                                  goal["target_value"], goal["target_year"])
    texts = " ".join(m.value for m in _run("cycles", cycle=cycle["cycle_id"]).markdown).replace("\\", "")
    assert f"[{words}](./plans?school={goal['school_id']}&goal={goal['goal_id']})" in texts
    plan = " ".join(m.value for m in _run("plans", school=goal["school_id"], goal=goal["goal_id"]).markdown)
    assert f". {cycle['change_idea']}](./cycles?cycle={cycle['cycle_id']})" in plan.replace("\\", "")
    assert f"[{cycle['cycle_id']}" not in plan  # no link reads as a bare code
    listed = _run("cycles", school=cycle["school_id"]).dataframe[0].value
    assert listed.columns.tolist()[:3] == ["change_idea", "decision", "open"]  # one school's: no school column


def test_a_cycles_form_offers_goals_and_earlier_cycles_in_words(own_district):
    cycles = records.load(own_district, "pdsa_cycles")
    cycle = cycles[cycles["goal_id"].notna() & cycles["previous_cycle_id"].notna()].iloc[0]
    goal = records.get(own_district, "school_goals", cycle["goal_id"])
    at = _run("cycles", cycle=cycle["cycle_id"])
    goals = at.selectbox(key=f"cycle_{cycle['cycle_id']}_goal")
    words = goal_rules.goal_title(METRIC_LABELS[goal["metric"]], group_label(goal["student_group"]),
                                  goal["target_value"], goal["target_year"])
    assert goals.value == goal["goal_id"] and words in goals.options
    before = cycles.set_index("cycle_id").loc[cycle["previous_cycle_id"], "change_idea"]
    assert f"{before} · {cycle['previous_cycle_id']}" in at.selectbox(key=f"cycle_{cycle['cycle_id']}_prev").options


def test_a_plan_and_a_schools_cycles_rerun_from_what_their_first_run_made(on_demo, monkeypatch):
    """A rerun of a school's plan (a form's widget, an expander) or of its list of cycles reads no record and
    computes no progress or look-for table again: the same goals, walkthroughs and cycles are drawn."""
    import pytest

    from analytics.workspace import notes

    school = _active_goal(on_demo)["school_id"]
    plan, cycles = _run("plans", school=school), _run("cycles", school=school)
    first = ([t.value.to_json() for t in plan.dataframe], [m.value for m in plan.markdown],
             [t.value.to_json(date_format="iso") for t in cycles.dataframe])
    assert len(first[2]) == 1 and len(plan.dataframe) >= 2  # the cycles, the goals and a walkthrough's look-fors

    def again(*_, **__):
        pytest.fail("read or computed again on a rerun")

    for module, name in ((records, "load"), (goal_rules, "latest_progress"), (notes, "parse_look_fors")):
        monkeypatch.setattr(module, name, again)
    plan.run()
    cycles.run()
    assert not plan.exception and not cycles.exception
    assert first == ([t.value.to_json() for t in plan.dataframe], [m.value for m in plan.markdown],
                     [t.value.to_json(date_format="iso") for t in cycles.dataframe])


def test_changes_page_lists_what_analytics_finds(on_demo):
    cluster = loads.load_schools(on_demo)["cluster"].iloc[0]
    at = _run("changes", cluster=cluster)
    since = workspace.last_meeting(on_demo, cluster)
    expected = workspace.changes_view(on_demo, cluster=cluster, since=since)
    assert at.query_params["since"] == [since.isoformat()] or at.query_params["since"] == since.isoformat()
    schools = loads.load_schools(on_demo)
    names = school_labels(schools[schools["cluster"] == cluster])  # told apart within the cluster
    assert change_rules.summary(expected, names) in " ".join(m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert len(table) == len(expected)
    assert table["link"].str.match(r"^(school|plans|discipline|cycles)\?").all()
    crumbs = [m.value for m in at.markdown[:5]]
    assert crumbs[0] == "[District](./)" and crumbs[2].startswith(f"[{cluster}](./cluster?cluster=")


def test_changes_page_filters_its_kinds_on_a_rerun_without_finding_or_counting_again(on_demo, monkeypatch):
    """Choosing which kinds of change to show reruns the page: it shows those rows only, from the list and summary
    made for the view (nothing is found, counted or labelled again)."""
    import pytest

    cluster = loads.load_schools(on_demo)["cluster"].iloc[0]
    at = _run("changes", cluster=cluster)
    since = workspace.last_meeting(on_demo, cluster)
    expected = workspace.changes_view(on_demo, cluster=cluster, since=since)
    kinds = [k for k in change_rules.CHANGE_KINDS if k in set(expected["change"])]
    assert at.button_group(key="change_kinds").value == kinds and len(kinds) >= 2

    def again(*_, **__):
        pytest.fail("the list was found or counted again on a rerun")

    monkeypatch.setattr(workspace, "changes_view", again)
    monkeypatch.setattr(change_rules, "summary", again)
    at.button_group(key="change_kinds").set_value(kinds[:1]).run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert sorted(shown["change"].unique()) == [change_rules.CHANGE_LABELS[kinds[0]]]
    assert len(shown) == int((expected["change"] == kinds[0]).sum())


def test_a_restarted_server_reads_the_kept_list_and_a_write_makes_it_found_again(own_district, monkeypatch):
    """The district's list is kept in the database for its data version: a server whose memory is empty (a
    restart, another process) shows the same list and summary without finding it again; after any write it is
    found again, at the new version."""
    import streamlit as st

    from analytics.data import kept

    since = workspace.last_meeting(own_district, "district")
    first = _run("changes")
    summary, tables = first.markdown[0].value, [d.value for d in first.dataframe]
    assert [name for name, _, _ in kept.kept_names(own_district)] == [CHANGES_KEPT_AS]
    found = []
    view = workspace.changes_view
    monkeypatch.setattr(workspace, "changes_view", lambda *a, **k: found.append(1) or view(*a, **k))
    st.cache_data.clear()
    st.cache_resource.clear()
    again = _run("changes")
    assert not again.exception and found == []
    assert again.markdown[0].value == summary
    for shown, table in zip([d.value for d in again.dataframe], tables, strict=True):
        pd.testing.assert_frame_equal(shown, table)
    records.add_meeting(own_district, "district", date(2025, 3, 1), "editor@district.org", None)
    after = _run("changes", since=since.isoformat())  # the same view, at the new version
    assert found == [1] and not after.exception
    assert [version for _, _, version in kept.kept_names(own_district)] == [storage.data_version(own_district)]


def test_an_import_by_the_command_line_keeps_the_district_list_the_page_then_reads(own_district, tmp_path, capsys,
                                                                                     monkeypatch):
    """After its answer, `import` keeps What changed's opening view at the new data version: the list the page would
    find itself, which a server's first view then reads without finding it. A failure there is reported and leaves
    the import's exit status alone."""
    import streamlit as st

    from analytics import cli
    from analytics.data import kept

    path = tmp_path / "meetings.csv"
    path.write_text("scope,meeting_date\ndistrict,2025-02-27\n")  # the demo's own last meeting again: a write
    before = storage.data_version(own_district)
    assert cli.main(["import", str(path)]) == 0
    said = capsys.readouterr()
    assert said.out == "meetings.csv: 1 meetings row imported\n"  # the answer, as before; the rest is on stderr
    assert "what changed kept (" in said.err
    version = storage.data_version(own_district)
    assert version > before
    assert kept.kept_names(own_district) == [(CHANGES_KEPT_AS, "(None, datetime.date(2025, 2, 27))", version)]
    cli._keep_ahead(own_district, "import")  # nothing written since: nothing found again
    assert capsys.readouterr().err.endswith("import: what changed is already kept for this data\n")

    found = []
    view = workspace.changes_view
    monkeypatch.setattr(workspace, "changes_view", lambda *a, **k: found.append(1) or view(*a, **k))
    at = _run("changes")
    assert not at.exception and found == []  # read, not found
    shown = at.dataframe[1].value
    with own_district.begin() as conn:  # the page's own finding, at the same version
        conn.execute(kept.schema.kept_results.delete())
    st.cache_data.clear()
    st.cache_resource.clear()
    again = _run("changes")
    assert found == [1] and at.markdown[0].value == again.markdown[0].value
    pd.testing.assert_frame_equal(shown, again.dataframe[1].value)

    from analytics.workspace import ahead

    monkeypatch.setattr(ahead, "changes_view", lambda *a, **k: 1 / 0)
    assert cli.main(["import", str(path)]) == 0
    assert "what changed was not kept (ZeroDivisionError" in capsys.readouterr().err

    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(ahead, "changes_view", interrupted)
    assert cli.main(["import", str(path)]) == 0  # Ctrl-C while the list is found: the import stands
    assert capsys.readouterr().err.endswith("import: stopped; the dashboard finds what changed on its first view\n")
    assert cli.main(["import", str(path), "--no-keep-ahead"]) == 0
    assert "what changed" not in capsys.readouterr().err
    assert storage.data_version(own_district) > version and kept.kept_names(own_district) == []


def test_the_district_view_counts_each_clusters_schools_and_a_long_list_waits_for_its_toggle(on_demo, monkeypatch):
    """The whole district leads with its clusters: schools with each kind of change, as analytics counts them, each
    linked to the cluster's own list. A list longer than `ROWS_AT_ONCE` is sent only when its toggle is on."""
    since = workspace.last_meeting(on_demo, "district")
    expected = workspace.changes_view(on_demo, since=since)
    counts = change_rules.by_cluster(expected, loads.load_schools(on_demo))
    at = _run("changes")
    assert [h.value for h in at.subheader] == ["Most serious first", "By cluster"]
    shown = at.dataframe[1].value
    assert shown["cluster"].tolist() == counts["cluster"].tolist()
    assert shown["with_changes"].tolist() == counts["with_changes"].tolist()
    assert shown["Status worsened"].tolist() == counts["status_worsened"].tolist()
    assert shown["link"].iloc[0] == f"changes?cluster={counts['cluster'].iloc[0]}&since={since}".replace(" ", "+")
    assert len(at.dataframe[2].value) == len(expected) and not at.toggle  # short enough to send at once

    monkeypatch.setattr(change_rules, "ROWS_AT_ONCE", 10)
    at = _run("changes")
    assert len(at.dataframe) == 2 and at.toggle[0].label == f"Every school's changes ({len(expected):,} rows)"
    at.toggle[0].set_value(True).run()
    assert len(at.dataframe) == 3 and len(at.dataframe[2].value) == len(expected)


def test_the_district_view_leads_with_its_most_serious_schools(on_demo):
    """Not the whole district's list (every school has a new year of data and some worsened colour): the ten
    schools with the most serious changes first, with their clusters, as analytics ranks them; the list waits in
    its closed expander."""
    schools = loads.load_schools(on_demo)
    expected = workspace.changes_view(on_demo, since=workspace.last_meeting(on_demo, "district"))
    ranked = change_rules.most_serious_first(expected, school_labels(schools)).head(10)
    at = _run("changes")
    lead = at.dataframe[0].value
    assert lead["school"].tolist() == ranked["school"].tolist()
    assert lead["Status worsened"].tolist() == ranked["status_worsened"].tolist()
    assert "New year of data" not in lead.columns  # news, not a concern
    assert lead["cluster"].tolist() == ranked["school_id"].map(schools.set_index("school_id")["cluster"]).tolist()
    assert lead["link"].iloc[0] == f"school?school={ranked['school_id'].iloc[0]}"
    assert [e.label for e in at.expander if "table" in e.label] == ["Every school's changes, as a table"]


def test_a_clusters_schools_are_listed_most_serious_first(on_demo):
    cluster = loads.load_schools(on_demo)["cluster"].iloc[0]
    expected = workspace.changes_view(on_demo, cluster=cluster, since=workspace.last_meeting(on_demo, cluster))
    order = change_rules.most_serious_first(expected)["school_id"].tolist()
    at = _run("changes", cluster=cluster)
    headings = [m.value for m in at.markdown if m.value.startswith("**") and m.value.endswith(")")]
    assert [h.rsplit("(", 1)[1].rstrip(")") for h in headings] == order


def test_changes_page_bad_date(on_demo):
    assert "is not a date" in _run("changes", since="27/02/2025").error[0].value


def test_editor_creates_a_goal_in_the_form_with_checks(own_district):
    school = loads.load_schools(own_district)["school_id"].iloc[0]
    at = _run("plans", school=school)
    at.text_input(key="goal_new_id").set_value("G-NEW")
    at.selectbox(key="goal_new_metric").set_value("read_proficient")
    at.number_input(key="goal_new_by").set_value(2023)
    at.number_input(key="goal_new_ty").set_value(2027)
    at.number_input(key="goal_new_tv").set_value(1.0)  # below any baseline: the check refuses it
    form_submit = [b for b in at.button if b.label == "Create goal"][0]
    form_submit.click().run()
    assert any("not above the baseline" in e.value for e in at.error)
    assert records.get(own_district, "school_goals", "G-NEW") is None
    at.number_input(key="goal_new_tv").set_value(99.0)
    [b for b in at.button if b.label == "Create goal"][0].click().run()
    saved = records.get(own_district, "school_goals", "G-NEW")
    assert saved is not None and saved["target_value"] == 99.0 and saved["version"] == 1
    assert saved["baseline_value"] is not None  # taken from the data


def test_second_editor_sees_a_conflict_and_keeps_their_text(own_district):
    school = loads.load_schools(own_district)["school_id"].iloc[0]
    records.create(own_district, "school_goals", {
        "goal_id": "G-C", "school_id": school, "metric": "read_proficient", "student_group": "ALL",
        "baseline_year": 2023, "baseline_value": 40.0, "target_year": 2026, "target_value": 50.0,
        "status": "active"}, "ana")
    at = _run("plans", school=school, goal="G-C")  # ben opens the goal at version 1
    goal = records.get(own_district, "school_goals", "G-C")
    records.save(own_district, "school_goals", {**goal, "target_value": 52.0}, 1, "ana")  # ana saves first
    at.text_area(key="goal_G-C_strategy").set_value("Ben's strategy text")
    [b for b in at.button if b.label == "Save goal"][0].click().run()
    assert any("changed by ana" in e.value for e in at.error)
    assert at.text_area(key="goal_G-C_strategy").value == "Ben's strategy text"  # nothing lost
    assert records.get(own_district, "school_goals", "G-C")["target_value"] == 52.0  # nothing overwritten
    [b for b in at.button if b.label.startswith("Keep my values")][0].click().run()
    [b for b in at.button if b.label == "Save goal"][0].click().run()
    final = records.get(own_district, "school_goals", "G-C")
    assert final["strategy"] == "Ben's strategy text" and final["version"] == 3


def test_editor_records_a_walkthrough_and_names_are_refused(own_district):
    school = loads.load_schools(own_district)["school_id"].iloc[0]
    at = _run("plans", school=school)
    assert any("no teacher or student names" in w.value for w in at.warning)
    areas = {a.label: a for a in at.text_area}
    areas["Notes"].set_value("Ms. Lopez led the circle")
    areas[[k for k in areas if k.startswith("Look-fors")][0]].set_value("Target posted: 4/6")
    [b for b in at.button if b.label == "Save walkthrough"][0].click().run()
    assert any("looks like a name" in e.value for e in at.error)
    before = len(records.load(own_district, "walkthroughs", school_id=[school]))
    areas = {a.label: a for a in at.text_area}
    areas["Notes"].set_value("Partner talk in most rooms")
    [b for b in at.button if b.label == "Save walkthrough"][0].click().run()
    visits = records.load(own_district, "walkthroughs", school_id=[school])
    assert len(visits) == before + 1 and "Target posted: 4/6" in set(visits["look_fors"])


def test_meeting_recorded_on_changes_page(own_district):
    at = _run("changes", cluster=loads.load_schools(own_district)["cluster"].iloc[0])
    at.date_input[-1].set_value(date(2025, 3, 1))
    [b for b in at.button if b.label == "Record meeting"][0].click().run()
    meetings = records.load(own_district, "meetings")
    assert pd.Timestamp("2025-03-01") in set(meetings["meeting_date"])


def test_shared_plan_is_read_only_with_shareable_walkthroughs_only(own_district):
    visits = records.load(own_district, "walkthroughs")
    school = visits.groupby("school_id")["shareable"].agg(["any", "all"]).query("any and not all").index
    school = school[0] if len(school) else visits["school_id"].iloc[0]
    shared = set(visits.loc[(visits["school_id"] == school) & visits["shareable"], "visit_id"])
    at = _run("plans", school=school, share="read-only-token")
    labels = {b.label for b in at.button}
    assert not {"Create goal", "Save walkthrough", "Save goal"} & labels  # nothing to edit
    assert not [w for w in at.warning if "no teacher or student names" in w.value]  # no walkthrough form
    dated = [m.value for m in at.markdown if "· not shared" in m.value]
    assert not dated  # unshared visits are not shown
    shown = sum(1 for m in at.markdown if m.value.startswith("**") and " · " in m.value and "20" in m.value[:12])
    assert shown == min(len(shared), 5)  # the latest five in full, the rest in a table
    if len(shared) > 5:
        assert any(e.label == f"Earlier walkthroughs ({len(shared) - 5})" for e in at.expander)


def test_a_shared_link_to_a_goal_of_a_school_without_walkthroughs_shows_the_plan(on_demo):
    """Many schools have no walkthroughs: a shared link to one of their goals draws the plan and says none are
    shared, instead of failing on the walkthroughs it has none of."""
    goals = records.load(on_demo, "school_goals")
    visited = set(records.load(on_demo, "walkthroughs")["school_id"])
    goal = goals[~goals["school_id"].isin(visited) & (goals["status"] == "active")].iloc[0]
    at = _run("plans", school=goal["school_id"], goal=goal["goal_id"], share="read-only-token")
    assert not at.error
    assert "No walkthroughs shared." in [c.value for c in at.caption]
    assert any("goals on track" in m.value for m in at.markdown)


def test_a_running_cycle_and_a_measurement_without_a_note_show_no_none(own_district):
    """A cycle still running has no end date, a measurement no note: the list shows a dash, the editor a blank
    cell, never the word "None"."""
    cycles = records.load(own_district, "pdsa_cycles")
    running = cycles[cycles["end_date"].isna()].iloc[0]
    listed = _run("cycles", school=running["school_id"]).dataframe[0].value
    assert listed.loc[listed["open"].str.endswith(running["cycle_id"]), "end_date"].tolist() == ["–"]
    assert listed["end_date"].notna().all()
    measured = records.load(own_district, "cycle_measures")
    notes_shown = _run("cycles", cycle=measured["cycle_id"].iloc[0]).dataframe[0].value["note"]
    assert measured["note"].isna().all() and (notes_shown == "").all()


def test_a_shared_goal_on_a_small_group_hides_its_baseline_and_links_no_cycles(on_demo):
    """The goal's line hides its baseline as the goals list does (fewer than 10 students), and the cycles that
    serve it, not part of shared links, are not linked."""
    goal = records.get(on_demo, "school_goals", "G-100139-SUSP-BL")
    at = _run("plans", school=goal["school_id"], goal=goal["goal_id"], share="read-only-token")
    assert any("Fewer than 10 students" in i.value for i in at.info)
    line = next(m.value for m in at.markdown if m.value.startswith("From "))
    assert line.startswith("From **\\***") and f"{goal['baseline_value']:.1f}" not in line
    assert not any("cycles?cycle=" in m.value for m in at.markdown)
    listed = [d for d in at.dataframe if "baseline_value" in d.value.columns][0]
    baselines = listed.value.set_index(listed.value["open"].str.extract(r"goal=([^&]+)")[0])["baseline_value"]
    assert baselines[goal["goal_id"]] == "*"  # drawn as text beside the others, not a number column holding "*"
    assert all(v == "*" or v == "–" or v == f"{float(v):.1f}" for v in baselines)
    config = json.loads(listed.proto.columns)
    assert (config.get("col:baseline_value") or config["baseline_value"]).get("alignment") == "right", config
    staff = _run("plans", school=goal["school_id"], goal=goal["goal_id"])
    assert any("cycles?cycle=" in m.value for m in staff.markdown)


def test_a_plan_drawn_for_an_editor_is_not_what_a_shared_link_of_it_shows(own_district):
    """A school's plan is made once per data version and viewer and kept for every session: opened first by an
    editor (a draft goal, a walkthrough not shared), the same plan on a shared link still lists neither."""
    visits = records.load(own_district, "walkthroughs")
    school = visits.groupby("school_id")["shareable"].agg(["any", "all"]).query("any and not all").index[0]
    latest = visits[visits["school_id"] == school].sort_values("visit_date", ascending=False).iloc[0]
    records.save(own_district, "walkthroughs", {**latest.to_dict(), "shareable": False}, int(latest["version"]), "ana")
    records.create(own_district, "school_goals", {"goal_id": "G-DRAFT", "school_id": school,
                                                  "metric": "read_proficient", "student_group": "ALL",
                                                  "baseline_year": 2023, "baseline_value": 40.0, "target_year": 2027,
                                                  "target_value": 60.0, "status": "draft"}, "ana")

    def goals_listed(at) -> str:
        return " ".join(link for t in at.dataframe if "open" in t.value.columns for link in t.value["open"])

    staff = _run("plans", school=school)
    assert "goal=G-DRAFT" in goals_listed(staff)
    assert [m.value for m in staff.markdown if "· not shared" in m.value]
    shared = _run("plans", school=school, share="read-only-token")
    assert "G-DRAFT" not in goals_listed(shared)
    assert not [m.value for m in shared.markdown if "· not shared" in m.value]
    assert goals_listed(shared).count("share=read-only-token") == goals_listed(staff).count("goal=") - 1
