"""Workspace records on SQLite and PostgreSQL: optimistic concurrency, history, imports and exports."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.data import bulk_write, loads, schema, storage
from analytics.data.importer import import_bytes
from analytics.workspace import goals as goal_rules
from analytics.workspace import records
from analytics.workspace import views as workspace

SCHOOLS = pd.DataFrame([{"school_id": "101", "school_name": "Oak Elementary", "level": "ES", "cluster": "North"},
                        {"school_id": "102", "school_name": "Elm Middle", "level": "MS", "cluster": "North"}])
GOAL = {"goal_id": "G1", "school_id": "101", "metric": "read_proficient", "student_group": "ALL",
        "baseline_year": 2023, "baseline_value": 40.0, "target_year": 2026, "target_value": 55.0, "status": "active"}


def _fill(engine):
    metrics = pd.DataFrame({"school_id": "101", "metric": "read_proficient", "student_group": "ALL",
                            "school_year": [2023, 2024, 2025], "numerator": [40, 46, 38], "denominator": [100] * 3})
    metrics["value"] = 100.0 * metrics["numerator"] / metrics["denominator"]
    with engine.begin() as conn:
        bulk_write.upsert(conn, "schools", SCHOOLS)
        bulk_write.upsert(conn, "metrics", metrics)
    return engine


@pytest.fixture
def district(engine):
    """Two schools with reading results, on SQLite and on PostgreSQL."""
    return _fill(engine)


@pytest.fixture
def sqlite_district(sqlite_engine):
    """The same on SQLite only, for tests whose SQL is the same on both (kept fast)."""
    return _fill(sqlite_engine)


def test_second_editor_gets_a_conflict_and_nothing_is_lost(district):
    records.create(district, "school_goals", GOAL, "ana")
    opened_by_ana = records.get(district, "school_goals", "G1")["version"]
    opened_by_ben = opened_by_ana
    records.save(district, "school_goals", {**GOAL, "target_value": 58.0}, opened_by_ana, "ana")
    with pytest.raises(records.Conflict) as caught:
        records.save(district, "school_goals", {**GOAL, "strategy": "Guided reading"}, opened_by_ben, "ben")
    assert caught.value.current["version"] == 2 and caught.value.current["updated_by"] == "ana"
    assert "changed by ana" in str(caught.value) and "Nothing was overwritten" in str(caught.value)
    saved = records.get(district, "school_goals", "G1")
    assert saved["target_value"] == 58.0 and saved["strategy"] is None  # ana's save stands, untouched
    # Ben chooses to save on top of the version he has now seen.
    records.save(district, "school_goals", {**GOAL, "target_value": 58.0, "strategy": "Guided reading"}, 2, "ben")
    assert records.get(district, "school_goals", "G1")["version"] == 3
    history = records.history(district, record_ids=["G1"])
    assert history["action"].tolist() == ["update", "update", "create"]
    assert history["changed_by"].tolist() == ["ben", "ana", "ana"]
    assert records.changed_fields(history["before"].iloc[1], history["after"].iloc[1]) == "target_value: 55.0 -> 58.0"


def test_a_table_without_rows_loads_with_the_dtypes_of_its_rows(district):
    """A school with no walkthroughs: its flag column is still boolean (a mask filters rows; an empty object
    column would be read as a list of column names), dates are dates and numbers numbers."""
    visits = records.load(district, "walkthroughs", school_id=["101"])
    assert visits.empty and visits["shareable"].dtype == bool and visits["visit_date"].dtype == "datetime64[ns]"
    assert visits[visits["shareable"]].columns.tolist() == visits.columns.tolist()
    goals = records.load(district, "school_goals")
    assert goals["baseline_year"].dtype == "int64" and goals["target_value"].dtype == "float64"
    chosen = records.load(district, "walkthroughs", columns=["visit_id", "shareable"], school_id=["101"])
    assert chosen.dtypes.astype(str).to_dict() == {"visit_id": "object", "shareable": "bool"}
    records.create(district, "walkthroughs", {"visit_id": "V1", "school_id": "101", "visit_date": date(2025, 1, 9),
                                              "shareable": True}, "ana")
    assert records.load(district, "walkthroughs")["shareable"].dtype == bool


def test_a_blank_measurement_note_is_saved_as_no_note(sqlite_district):
    records.create(sqlite_district, "pdsa_cycles", {"cycle_id": "C1", "school_id": "101", "change_idea": "Greet",
                                                    "start_date": date(2024, 9, 2)}, "ana")
    records.replace_measures(sqlite_district, "C1", pd.DataFrame({
        "date": ["2024-09-02", "2024-09-09", "2024-09-16"], "value": [14, 12, 11], "note": ["", "  ", " Rain "]}),
        "ana")
    notes = records.load(sqlite_district, "cycle_measures")["note"]
    assert notes.isna().tolist() == [True, True, False] and notes.iloc[2] == "Rain"


def test_every_workspace_write_moves_the_data_version_but_not_the_import_version(sqlite_district):
    engine = sqlite_district
    start = storage.versions(engine)
    goal = records.create(engine, "school_goals", GOAL, "ana")
    records.save(engine, "school_goals", {**goal, "status": "met"}, 1, "ana")
    cycle = records.create(engine, "pdsa_cycles", {"cycle_id": "C1", "school_id": "101", "change_idea": "Reading",
                                                          "start_date": date(2025, 1, 6)}, "ana")
    records.replace_measures(engine, "C1", pd.DataFrame({"date": ["2025-01-10"], "value": [3.0]}), "ana")
    records.delete(engine, "pdsa_cycles", "C1", cycle["version"], "ana")
    records.add_meeting(engine, "district", date(2025, 2, 1), "ana")
    assert storage.versions(engine) == (start.changes + 6, start.imports)  # six writes, no imported row
    assert import_bytes(engine, WORKSPACE_FILES, who="data-office").ok  # workspace files alone: as an edit
    assert storage.versions(engine) == (start.changes + 7, start.imports)
    school = loads.load_schools(engine).iloc[[0]][["school_id", "school_name", "level", "cluster"]]
    assert import_bytes(engine, [("schools.csv", _csv(school)), *WORKSPACE_FILES[:1]], who="data-office").ok
    assert storage.versions(engine) == (start.changes + 8, start.imports + 1)  # with imported data: both


def test_delete_needs_the_current_version_and_keeps_the_last_state_in_history(sqlite_district):
    records.create(sqlite_district, "school_goals", GOAL, "ana")
    records.create(sqlite_district, "pdsa_cycles", {"cycle_id": "C1", "school_id": "101", "change_idea": "Greet at the door",
                                             "start_date": date(2024, 9, 2)}, "ana")
    records.replace_measures(sqlite_district, "C1", pd.DataFrame({"date": ["2024-09-02", "2024-09-09"], "value": [14, 12]}),
                             "ana")
    with pytest.raises(records.Conflict):
        records.delete(sqlite_district, "pdsa_cycles", "C1", 7, "ben")
    records.delete(sqlite_district, "pdsa_cycles", "C1", 1, "ana")
    assert records.get(sqlite_district, "pdsa_cycles", "C1") is None
    assert records.load(sqlite_district, "cycle_measures").empty
    last = records.history(sqlite_district, record_ids=["C1"]).iloc[0]
    assert last["action"] == "delete" and "Greet at the door" in last["before"] and "2024-09-09" in last["before"]
    with pytest.raises(records.RecordError, match="already exists"):
        records.create(sqlite_district, "school_goals", GOAL, "ben")


def _csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


WORKSPACE_FILES = [
    ("school_goals.csv", _csv(pd.DataFrame([GOAL, {**GOAL, "goal_id": "G2", "metric": "suspension_rate",
                                                   "baseline_value": 6.0, "target_value": 3.0,
                                                   "interim_targets": "2025: 4.5"}]))),
    ("pdsa_cycles.csv", _csv(pd.DataFrame([
        {"cycle_id": "C1", "school_id": "101", "change_idea": "Greet at the door", "start_date": "2024-09-02",
         "goal_id": "G1", "measure": "office referrals per week"},
        {"cycle_id": "C2", "school_id": "101", "change_idea": "Greet and check in", "start_date": "2024-10-14",
         "previous_cycle_id": "C1", "decision": "adapt"}]))),
    ("cycle_measures.csv", _csv(pd.DataFrame({"cycle_id": ["C1", "C1", "C2"], "date": ["2024-09-02", "2024-09-09",
                                                                                       "2024-10-14"],
                                              "value": [14, 13, 9]}))),
    ("walkthroughs.csv", _csv(pd.DataFrame([{"visit_id": "W1", "school_id": "101", "visit_date": "2024-11-05",
                                             "look_fors": "Target posted: 5/8", "shareable": "Y"}]))),
    ("root_causes.csv", _csv(pd.DataFrame([{"cause_id": "R1", "goal_id": "G1", "category": "process",
                                            "statement": "Small-group time is cut"}]))),
    ("meetings.csv", _csv(pd.DataFrame({"scope": ["North", "district"], "meeting_date": ["2025-02-27"] * 2}))),
]


def test_workspace_tables_import_all_or_nothing_with_history(district):
    report = import_bytes(district, WORKSPACE_FILES, who="data-office")
    assert report.ok, [p.format() for p in report.problems]
    counts = loads.table_counts(district)
    assert [counts[t] for t in schema.WORKSPACE_TABLES] == [2, 2, 3, 1, 1, 2]
    goal = records.get(district, "school_goals", "G1")
    assert goal["version"] == 1 and goal["updated_by"] == "data-office (import)"
    assert import_bytes(district, WORKSPACE_FILES[:1], who="data-office").ok  # re-import: a new version
    assert records.get(district, "school_goals", "G1")["version"] == 2
    assert len(records.history(district, table="school_goals")) == 4


def test_bad_workspace_rows_are_reported_by_file_row_and_column(district):
    bad = [
        ("school_goals.csv", _csv(pd.DataFrame([{**GOAL, "target_value": 35.0},
                                                {**GOAL, "goal_id": "G2", "target_year": 2022}]))),
        ("cycle_measures.csv", _csv(pd.DataFrame({"cycle_id": ["C9"], "date": ["2024-09-02"], "value": [3]}))),
        ("walkthroughs.csv", _csv(pd.DataFrame([{"visit_id": "W1", "school_id": "101", "visit_date": "2024-11-05",
                                                 "notes": "Mr. Smith ran the circle", "look_fors": "posted: 9/8"}]))),
    ]
    report = import_bytes(district, bad, who="data-office")
    found = {(p.file, p.row, p.column) for p in report.problems}
    assert {("school_goals.csv", 2, "target_value"), ("school_goals.csv", 3, "target_year"),
            ("cycle_measures.csv", 2, "cycle_id"), ("walkthroughs.csv", 2, "notes"),
            ("walkthroughs.csv", 2, "look_fors")} <= found
    assert not report.written
    assert all(loads.table_counts(district)[t] == 0 for t in schema.WORKSPACE_TABLES)


def test_old_improvement_cycles_import_keeps_working(sqlite_district):
    old = _csv(pd.DataFrame([{"school_id": "101", "metric": "suspension_rate", "start_date": "2024-01-08",
                              "end_date": "2024-02-16", "change_idea": "Restorative circles", "status": "adopt"}]))
    assert import_bytes(sqlite_district, [("improvement_cycles.csv", old)], who="x").ok
    assert len(loads.load_cycles(sqlite_district)) == 1


def test_goals_and_changes_views_follow_the_csv_contract(sqlite_district):
    assert import_bytes(sqlite_district, WORKSPACE_FILES, who="data-office").ok
    goals = workspace.goals_view(sqlite_district, cluster="North")
    assert list(goals.columns)[:11] == ["goal_id", "school_id", "school_name", "metric", "student_group",
                                        "school_year", "value", "ci_low", "ci_high", "trajectory", "progress"]
    g1 = goals[goals["goal_id"] == "G1"].set_index("school_year")
    # trajectory 40 -> 55 over 2023-2026: 45 in 2024, 50 in 2025; 46/100 on track, 38/100 (upper 47.8) off
    assert g1.loc[2024, "progress"] == "on_track" and g1.loc[2025, "progress"] == "off_track"
    assert g1.loc[2025, "trajectory"] == 50.0
    changes = workspace.changes_view(sqlite_district, cluster="North")  # since the North meeting, 2025-02-27
    assert list(changes.columns)[:5] == ["school_id", "school_name", "change", "detail", "since"]
    assert {"goal_off_track", "new_year"} <= set(changes["change"]) and set(changes["since"]) == {"2025-02-27"}
    with sqlite_district.begin() as conn:
        conn.execute(sa.delete(schema.meetings))
    with pytest.raises(workspace.WorkspaceViewError, match="no meeting recorded"):
        workspace.changes_view(sqlite_district, cluster="North")


def test_cli_imports_and_exports_goals_and_changes(tmp_path, monkeypatch, capsys):
    from analytics import cli

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    (tmp_path / "schools.csv").write_bytes(_csv(SCHOOLS))
    paths = [str(tmp_path / "schools.csv")]
    for name, data in WORKSPACE_FILES:
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    assert cli.main(["import", *paths]) == 0
    capsys.readouterr()
    assert cli.main(["export", "goals", "--cluster", "North"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("goal_id,school_id,school_name,metric,student_group,school_year,value,ci_low,ci_high,"
                             "trajectory,progress")
    assert cli.main(["export", "changes", "--cluster", "North", "--since", "2024-05-01"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("school_id,school_name,change,detail,since")
    assert cli.main(["export", "changes", "--since", "not-a-date"]) == 2
    assert "not a date" in capsys.readouterr().err
    # bad rows: every problem as file:row:column, exit 1, nothing written
    (tmp_path / "school_goals.csv").write_bytes(_csv(pd.DataFrame([{**GOAL, "goal_id": "G9", "target_year": 2020}])))
    assert cli.main(["import", str(tmp_path / "school_goals.csv")]) == 1
    assert "school_goals.csv:2:target_year:" in capsys.readouterr().err


def test_meeting_pack_opens_with_what_changed(sqlite_district):
    from analytics.outputs import meeting

    assert import_bytes(sqlite_district, WORKSPACE_FILES, who="data-office").ok
    specs = meeting.standard_specs("North")
    assert [s.view for s in specs][:2] == ["changes", "rates"] and specs[-1].view == "goals"
    pack = meeting.build_pack(sqlite_district, [specs[0], specs[-1]], "Data meeting: North")
    assert pack.items[0].finding.startswith("Since the meeting of 2025-02-27: 1 school with changes")
    import openpyxl
    from pptx import Presentation

    book = openpyxl.load_workbook(io.BytesIO(meeting.workbook_bytes(pack)))
    assert book.sheetnames[1] == "1 What changed"
    deck = Presentation(io.BytesIO(meeting.deck_bytes(pack)))
    assert list(deck.slides)[1].shapes.title.text == "What changed since the last meeting"


def test_public_changes_name_the_change_not_the_numbers(sqlite_district):
    assert import_bytes(sqlite_district, WORKSPACE_FILES, who="data-office").ok
    public = workspace.changes_view(sqlite_district, cluster="North", public=True)
    goal = public[public["change"] == "goal_off_track"]
    assert goal["detail"].tolist() == ["a School Performance Plan goal is now off track"]
    assert not public["detail"].str.contains(r"\d+\.\d").any()


def test_the_districts_goals_find_their_schools_in_the_goals_table_not_in_a_list_of_ids(district):
    """Every goal of the district: each metric and group's schools and those with an imported suspension rate
    are found by a subquery of the goals table (no id list to render), the same rows as from the goals' ids."""
    with district.begin() as conn:
        bulk_write.upsert(conn, "discipline", pd.DataFrame({"school_id": "102", "school_year": [2024, 2025],
                                                            "student_group": "ALL", "enrolled": [400, 410],
                                                            "students_suspended": [12, 20]}))
    for goal in (GOAL, {**GOAL, "goal_id": "G3", "school_id": "102", "metric": "suspension_rate"}):
        records.create(district, "school_goals", goal, "ana")
    goals = records.load(district, "school_goals")
    keys = ["school_id", "metric", "student_group", "school_year"]
    listed = workspace.goal_metric_rows(district, goals).sort_values(keys, ignore_index=True)
    found = workspace.goal_metric_rows(district, goals, every_goal=True).sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(found, listed)
    assert set(listed["metric"]) == {"read_proficient", "suspension_rate"}
    for stmt in loads.metrics_any_statements(workspace.goal_metric_conditions(goals, every_goal=True)):
        assert not {"101", "102"} & set(stmt.compile().params.values())
    pd.testing.assert_frame_equal(workspace.goals_progress(district)[1],
                                  goal_rules.goal_progress(goals, listed, workspace.directions(district),
                                                           dict(zip(SCHOOLS["school_id"], SCHOOLS["school_name"], strict=True)),
                                                           2025))


def test_goals_read_the_rows_of_their_own_metric_group_and_school_each_by_the_metric_and_group_index(district):
    more = pd.DataFrame({"school_id": ["101", "101", "102", "102"],
                         "metric": ["math_proficient", "read_proficient", "read_proficient", "math_proficient"],
                         "student_group": ["ALL", "BL", "ALL", "ALL"], "school_year": 2025,
                         "numerator": [30, 10, 50, 20], "denominator": [100, 40, 100, 100]})
    more["value"] = 100.0 * more["numerator"] / more["denominator"]
    with district.begin() as conn:
        bulk_write.upsert(conn, "metrics", more)
    goals = pd.DataFrame([GOAL, {**GOAL, "goal_id": "G2", "school_id": "102", "metric": "math_proficient"}])
    rows = workspace.goal_metric_rows(district, goals)
    # not 101's maths, 101's BL reading or 102's reading, which a read of every goal school, metric and group has
    assert sorted(zip(rows["school_id"], rows["metric"], rows["student_group"], rows["school_year"], rows["value"],
                      strict=True)) == [("101", "read_proficient", "ALL", 2023, 40.0),
                                        ("101", "read_proficient", "ALL", 2024, 46.0),
                                        ("101", "read_proficient", "ALL", 2025, 38.0),
                                        ("102", "math_proficient", "ALL", 2025, 20.0)]
    if district.dialect.name != "sqlite":
        return
    for stmt in loads.metrics_any_statements(workspace.goal_metric_conditions(goals)):
        compiled = str(stmt.compile(dialect=district.dialect, compile_kwargs={"literal_binds": True}))
        with district.connect() as conn:
            plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled)]
        reads = [step for step in plan if step.split()[:1] in (["SCAN"], ["SEARCH"])]
        assert len(reads) == 2 and all(step.startswith("SEARCH metrics USING INDEX ix_metrics_metric_group_year")
                                       for step in reads), plan
