"""Level 4 from walkthrough look-fors tagged with a programme practice: hand-computed fidelity, the no-double-count
rule, the import columns, /learning stating the source, the /plans form saving a tag, and shared views counting
shareable walkthroughs only."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics.data import loads
from analytics.data.importer import import_bytes
from analytics.learning import fidelity, levels, load
from analytics.outputs.views import build_view
from analytics.workspace import notes, records
from tests.page_runner import run_page as _run

VISITS = pd.DataFrame([
    {"visit_id": "V1", "school_id": "A", "visit_date": pd.Timestamp("2024-10-02"), "shareable": True,
     "look_fors": "Circle held: 3/8; Target posted: 5/8", "practices": "Circle held = RP: Restorative circles"},
    {"visit_id": "V2", "school_id": "A", "visit_date": pd.Timestamp("2024-11-05"), "shareable": True,
     "look_fors": "Circle held: 6/8; Calm redirection: 1/4",
     "practices": "circle held = RP: Restorative circles; Calm redirection = RP: Affective statements"},
    {"visit_id": "V3", "school_id": "B", "visit_date": pd.Timestamp("2024-10-10"), "shareable": False,
     "look_fors": "Circle held: 1/5", "practices": "Circle held = RP: Restorative circles"},
    {"visit_id": "V4", "school_id": "B", "visit_date": pd.Timestamp("2024-10-11"), "shareable": True,
     "look_fors": "Target posted: 4/4", "practices": None},  # untagged: no evidence of a programme
])
IMPORTED = pd.DataFrame([  # the first row describes V2's circle look-for: same visit, counted once
    {"program": "RP", "school_id": "A", "observed_on": pd.Timestamp("2024-11-05").date(),
     "practice": "restorative circles ", "classrooms_observed": 8, "classrooms_using": 6},
    {"program": "RP", "school_id": "A", "observed_on": pd.Timestamp("2024-12-03").date(),
     "practice": "Restorative circles", "classrooms_observed": 10, "classrooms_using": 4},
])


def _combined(shareable_only: bool = False) -> pd.DataFrame:
    return fidelity.combine(IMPORTED, fidelity.walkthrough_observations(VISITS, shareable_only))


def test_observations_of_named_programmes_only():
    tagged = VISITS.assign(practices=VISITS["practices"].replace({"Circle held = RP: Restorative circles":
                                                                  "Circle held = RPX: Restorative circles"}))
    rp = fidelity.walkthrough_observations(tagged, programs=["RP"])
    assert rp[["visit_id", "program", "practice"]].values.tolist() == [["V2", "RP", "Restorative circles"],
                                                                       ["V2", "RP", "Affective statements"]]
    assert fidelity.walkthrough_observations(tagged, programs=["RPX"])["visit_id"].tolist() == ["V1", "V3"]
    assert fidelity.walkthrough_observations(tagged, programs=[]).empty


def test_known_practices_from_each_distinct_pair_of_texts_once_are_those_of_every_visit():
    # V5 repeats V1's texts at another school and date, V6 spells the circles as imported rows would not,
    # V7 tags a look-for it does not have (evidence of nothing): the form's hint is that of every visit.
    more = pd.DataFrame([
        {**VISITS.iloc[0].to_dict(), "visit_id": "V5", "school_id": "C", "visit_date": pd.Timestamp("2025-01-07")},
        {"visit_id": "V6", "school_id": "C", "visit_date": pd.Timestamp("2025-01-08"), "shareable": True,
         "look_fors": "Check-in: 2/6", "practices": "Check-in = PBIS: Morning check-in"},
        {"visit_id": "V7", "school_id": "C", "visit_date": pd.Timestamp("2025-01-09"), "shareable": True,
         "look_fors": "Circle held: 2/6", "practices": "Check-in = PBIS: Never seen"},
    ])
    visits = pd.concat([VISITS, more], ignore_index=True)
    every = fidelity.known_practices(fidelity.combine(IMPORTED, fidelity.walkthrough_observations(visits)))
    assert every == {"PBIS": ["Morning check-in"], "RP": ["Affective statements", "restorative circles"]}
    assert fidelity.practices_known(IMPORTED, visits) == every
    assert fidelity.practices_known(IMPORTED.iloc[:0], visits) == {
        "PBIS": ["Morning check-in"], "RP": ["Affective statements", "Restorative circles"]}  # V1's spelling first
    assert fidelity.practices_known(IMPORTED.iloc[:0], visits.iloc[:0]) == {}


def test_visits_that_repeat_their_texts_give_each_visit_its_own_observations_in_visit_order():
    # V1's texts again at school C (V5), V2's at school D (V6) and V1's once more (V7), V8 unreadable (k > n)
    # between them: each visit's rows are those of the visit parsed alone, with its own school, date and id.
    again = [("V5", "C", VISITS.iloc[0]), ("V6", "D", VISITS.iloc[1]), ("V7", "C", VISITS.iloc[0])]
    more = [{**row.to_dict(), "visit_id": vid, "school_id": school, "visit_date": pd.Timestamp("2025-02-03")}
            for vid, school, row in again]
    bad = {**VISITS.iloc[0].to_dict(), "visit_id": "V8", "look_fors": "Circle held: 9/8"}
    visits = pd.concat([VISITS, pd.DataFrame([more[0], bad, *more[1:]])], ignore_index=True)
    obs = fidelity.walkthrough_observations(visits)
    each = [fidelity.walkthrough_observations(visits.iloc[[i]]) for i in range(len(visits))]
    alone = pd.concat([rows for rows in each if len(rows)], ignore_index=True)
    pd.testing.assert_frame_equal(obs, alone)
    assert obs[["visit_id", "school_id", "practice", "classrooms_using"]].values.tolist()[4:] == [
        ["V5", "C", "Restorative circles", 3], ["V6", "D", "Restorative circles", 6],
        ["V6", "D", "Affective statements", 1], ["V7", "C", "Restorative circles", 3]]
    assert fidelity.walkthrough_observations(visits.iloc[[5]]).empty  # V8: evidence of nothing


def test_tagged_look_fors_become_observations_and_are_counted_once():
    obs = fidelity.walkthrough_observations(VISITS)
    assert obs[["visit_id", "practice", "classrooms_using", "classrooms_observed"]].values.tolist() == [
        ["V1", "Restorative circles", 3, 8], ["V2", "Restorative circles", 6, 8], ["V2", "Affective statements", 1, 4],
        ["V3", "Restorative circles", 1, 5]]
    imp = _combined()
    assert len(imp) == 5  # 4 look-fors + 2 imported - V2's circle (the imported row of the same visit)
    assert fidelity.source_counts(imp) == {fidelity.IMPORTED: 2, fidelity.WALKTHROUGHS: 3, "matched": 1}
    assert set(imp["practice"]) == {"restorative circles", "Affective statements"}  # first spelling: imported
    series = fidelity.series_sources(imp).set_index(["school_id", "practice"])
    # A, circles: V1 3/8 + imported 6/8 + imported 4/10 = 13/26 = 50%; A, affective: 1/4; B: 1/5.
    circles = series.loc[("A", "restorative circles")]
    assert (circles["using"], circles["observed"], circles["fidelity"]) == (13, 26, 50.0)
    assert circles["source"] == "imported observations and walkthroughs" and circles["observations"] == 3
    assert series.loc[("A", "Affective statements"), "fidelity"] == 25.0
    assert series.loc[("A", "Affective statements"), "source"] == fidelity.WALKTHROUGHS
    assert series.loc[("B", "restorative circles"), "fidelity"] == 20.0
    # The dose of the dose-response and nexus views: A = 14/30, B = 1/5.
    dose = levels.school_fidelity(imp).set_index("school_id")["fidelity"]
    assert dose["A"] == pytest.approx(100 * 14 / 30) and dose["B"] == 20.0
    # Run chart months: Oct (3 + 1) / (8 + 5), Nov (6 + 1) / (8 + 4), Dec 4 / 10.
    run = levels.fidelity_run_chart(imp)
    assert run["value"].round(2).tolist() == [round(400 / 13, 2), round(700 / 12, 2), 40.0]
    assert "counted once" in fidelity.describe_sources(imp)


def test_shared_views_count_shareable_walkthroughs_only():
    imp = _combined(shareable_only=True)
    assert "B" not in set(imp["school_id"])  # V3 is not shareable
    assert fidelity.source_counts(imp)[fidelity.WALKTHROUGHS] == 2
    assert "notes" not in imp.columns and "next_steps" not in imp.columns


def test_practice_tags_are_checked():
    looks = notes.parse_look_fors("Circle held: 3/8; Calm redirection: 1/4")
    assert notes.parse_practices("CIRCLE HELD = RP: Restorative circles", looks) == [
        {"item": "Circle held", "program": "RP", "practice": "Restorative circles"}]
    for bad, words in (("Partner talk = RP: Circles", "not one of this visit's look-fors"),
                       ("Circle held = RP: Circles; Calm redirection = RP: circles", "tagged on two look-fors"),
                       ("Restorative circles", "not `look-for = PROGRAM: practice`")):
        with pytest.raises(ValueError, match=words):
            notes.parse_practices(bad, looks)
    problems = notes.check_walkthrough({"look_fors": "Circle held: 3/8", "practices": "Circle held = XX: Circles"},
                                       programs={"RP"})
    assert problems == [("practices", "unknown programme XX (not in pl_programs; known: RP)")]
    assert notes.format_practices(notes.parse_practices(" Circle held =RP:Circles ", looks)) == "Circle held = RP: Circles"


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def test_walkthroughs_import_with_practices_feeds_level_4(engine):
    schools = pd.DataFrame({"school_id": ["A", "B"], "school_name": ["Adams", "Banneker"], "level": "ES",
                            "cluster": "North"})
    programs = pd.DataFrame({"program": ["RP"], "program_name": ["Restorative practices"]})
    visits = VISITS.assign(visit_date=VISITS["visit_date"].dt.strftime("%Y-%m-%d"),
                           shareable=VISITS["shareable"].map({True: "Y", False: "N"}))
    implementation = IMPORTED.assign(observed_on=IMPORTED["observed_on"].astype(str))
    report = import_bytes(engine, [("schools.csv", _csv(schools)), ("pl_programs.csv", _csv(programs)),
                                   ("walkthroughs.csv", _csv(visits)), ("implementation.csv", _csv(implementation))])
    assert report.ok, [p.format() for p in report.problems]
    stored = records.get(engine, "walkthroughs", "V2")
    assert stored["practices"].startswith("circle held = RP: Restorative circles")
    tables = load.pl_tables(engine)
    assert fidelity.source_counts(tables["implementation"]) == {fidelity.IMPORTED: 2, fidelity.WALKTHROUGHS: 3,
                                                                "matched": 1}
    assert len(load.pl_tables(engine, shareable_only=True)["implementation"]) == 4
    # One programme's tables, with the look-fors parsed here or once for every programme, hold the same rows.
    tagged = load.tagged_observations(engine)
    # The visits are read without their notes (only the columns tags are parsed from): the same observations.
    visits = records.load(engine, "walkthroughs", columns=fidelity.VISIT_COLUMNS)
    assert list(visits.columns) == list(fidelity.VISIT_COLUMNS) and len(visits) == len(VISITS)
    for shareable in (False, True):
        pd.testing.assert_frame_equal(load.tagged_observations(engine, shareable), fidelity.walkthrough_observations(
            records.load(engine, "walkthroughs"), shareable))
    for given in (None, tagged):
        rp = load.pl_tables(engine, programs=["RP"], tagged=given)["implementation"]
        pd.testing.assert_frame_equal(rp, tables["implementation"][tables["implementation"]["program"] == "RP"]
                                      .reset_index(drop=True))
    # Tables already read (the learning page's first draw) are used as they are, the others read as before.
    alone = load.pl_tables(engine, programs=["RP"])
    given = {name: alone[name] for name in ("pl_sessions", "pl_feedback", "feedback_sessions")}
    reused = load.pl_tables(engine, programs=["RP"], read=given)
    assert all(reused[name] is frame for name, frame in given.items())
    for name, frame in alone.items():
        pd.testing.assert_frame_equal(reused[name], frame)
    level4 = load.evaluate_program(engine, tables, "RP").levels[3]
    assert level4.has_data and "walkthrough look-for" in level4.finding and "imported observation" in level4.finding
    # `export learning`: classrooms observed 8 (V1) + 8 + 10 (imported) + 4 (V2) + 5 (V3); --public drops V3.
    for public, classrooms in ((False, 35), (True, 30)):
        table = build_view(engine, "learning", public=public)
        row = table[table["measure"].astype(str).str.startswith("implementation fidelity")].iloc[0]
        assert int(row["n"]) == classrooms


def test_learning_page_states_the_walkthrough_source(on_demo):
    at = _run("learning", program="RP")
    expected = fidelity.source_counts(load.pl_tables(on_demo)["implementation"].query("program == 'RP'"))
    assert expected[fidelity.WALKTHROUGHS] > 0 and expected[fidelity.IMPORTED] == 0  # the demo: walkthroughs only
    sources = next(m.value for m in at.markdown if m.value.startswith("**Sources:**"))
    assert f"{expected[fidelity.WALKTHROUGHS]:,} walkthrough look-fors" in sources
    findings = next(m.value for m in at.markdown if "Level 4" in m.value)
    assert "walkthrough look-for" in findings
    series = next(d.value for d in at.dataframe if "source" in d.value.columns)
    assert set(series["source"]) == {fidelity.WALKTHROUGHS}


def test_shared_learning_counts_shareable_walkthroughs_only(on_demo):
    at = _run("learning", program="RP", share="read-only-token")
    shareable = fidelity.source_counts(load.pl_tables(on_demo, shareable_only=True)["implementation"]
                                       .query("program == 'RP'"))[fidelity.WALKTHROUGHS]
    everything = fidelity.source_counts(load.pl_tables(on_demo)["implementation"]
                                        .query("program == 'RP'"))[fidelity.WALKTHROUGHS]
    assert 0 < shareable < everything
    sources = next(m.value for m in at.markdown if m.value.startswith("**Sources:**"))
    assert f"{shareable:,} walkthrough look-fors" in sources and "only walkthroughs marked shareable" in sources
    shown = " ".join(m.value for m in at.markdown)
    assert "Routines looked the same" not in shown  # walkthrough notes never reach /learning


def test_walkthrough_form_saves_a_tagged_look_for(own_district):
    engine = own_district
    school = loads.load_schools(engine)["school_id"].iloc[0]
    at = _run("plans", school=school)
    areas = {a.label: a for a in at.text_area}
    look_fors = next(k for k in areas if k.startswith("Look-fors"))
    tags = next(k for k in areas if k.startswith("Programme practices observed"))
    areas[look_fors].set_value("Circle held: 4/6\nTarget posted: 5/6")
    areas[tags].set_value("Circle held = NOPE: Circles")
    [b for b in at.button if b.label == "Save walkthrough"][0].click().run()
    assert any("unknown programme NOPE" in e.value for e in at.error)
    areas = {a.label: a for a in at.text_area}
    areas[tags].set_value("circle held = RP: Restorative circles")
    [b for b in at.button if b.label == "Save walkthrough"][0].click().run()
    assert not at.error
    visits = records.load(engine, "walkthroughs", school_id=[school])
    saved = visits[visits["practices"] == "Circle held = RP: Restorative circles"]
    assert len(saved) == 1 and saved["look_fors"].iloc[0] == "Circle held: 4/6; Target posted: 5/6"
    imp = load.pl_tables(engine)["implementation"]
    mine = imp[imp["visit_id"] == saved["visit_id"].iloc[0]]
    assert mine[["program", "practice", "classrooms_using", "classrooms_observed"]].values.tolist() == [
        ["RP", "Restorative circles", 4, 6]]


def test_an_existing_walkthrough_is_tagged_in_its_edit_form(own_district):
    engine = own_district
    school = loads.load_schools(engine)["school_id"].iloc[1]
    records.create(engine, "walkthroughs", {"visit_id": "W-TAG", "school_id": school, "visit_date": date(2030, 1, 15),
                                            "look_fors": "Partner talk: 3/7; Target posted: 6/7"}, "specialist")
    at = _run("plans", school=school)
    at.text_area(key="visit_W-TAG_practices").set_value("Partner talk = MATH-TALK: Students explain their reasoning")
    next(b for b in at.button if b.label == "Save changes to this walkthrough"
         and b.proto.form_id == "visit_form_W-TAG").click().run()
    assert not at.error
    saved = records.get(engine, "walkthroughs", "W-TAG")
    assert saved["practices"] == "Partner talk = MATH-TALK: Students explain their reasoning" and saved["version"] == 2
    imp = load.pl_tables(engine)["implementation"]
    assert imp.loc[imp["visit_id"] == "W-TAG", ["classrooms_using", "classrooms_observed"]].values.tolist() == [[3, 7]]
