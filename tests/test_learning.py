"""Professional-learning evaluation (DESIGN §10): hand-computed statistics, levels with and without data,
level 5 on a planted effect, the export contract, privacy and sharing rules."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from analytics.access.privacy import suppress_learning
from analytics.access.sharing import ShareGrant
from analytics.data import loads, storage
from analytics.data.demo import build_demo
from analytics.data.importer import import_bytes
from analytics.learning import evaluation, levels, load, outcomes

EXPORT = ["program", "level", "measure", "estimate", "ci_low", "ci_high", "n", "method"]


def _feedback(counts: dict[int, int], item: str = "Time well spent") -> pd.DataFrame:
    return pd.DataFrame({"program": "P", "session_id": "S1", "item": item, "response": list(counts),
                         "count": list(counts.values())})


def test_likert_percentages_and_wilson_interval_by_hand():
    # 20 responses: 2, 3, 5, 6, 4 -> 10%, 15%, 25%, 30%, 20%; agree (4-5) = 10 of 20 = 50%.
    summary = levels.likert_summary(_feedback({1: 2, 2: 3, 3: 5, 4: 6, 5: 4}))
    row = summary.iloc[0]
    assert [row[f"pct_{k}"] for k in range(1, 6)] == pytest.approx([10, 15, 25, 30, 20])
    assert row["n"] == 20 and row["agree"] == 10 and row["pct_agree"] == pytest.approx(50)
    # Wilson: centre (p + z²/2n)/(1 + z²/n) = 0.5; half-width z sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n) = 0.20070.
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((29.930, 70.070), abs=1e-3)


def test_diverging_segments_centre_neutral_on_zero():
    segments = levels.diverging_segments(levels.likert_summary(_feedback({1: 2, 2: 3, 3: 5, 4: 6, 5: 4})))
    # Disagreement 10 + 15 and half the neutral 25 lie left of zero: the bar starts at -37.5.
    assert segments["start"].iloc[0] == pytest.approx(-37.5)
    neutral = segments[segments["order"] == 3].iloc[0]
    assert (neutral["start"], neutral["end"]) == pytest.approx((-12.5, 12.5))
    assert segments["end"].iloc[-1] == pytest.approx(62.5)


def test_missing_responses_count_zero_and_items_pool_over_sessions():
    fb = pd.concat([_feedback({4: 3}), _feedback({5: 1, 2: 1}).assign(session_id="S2")])
    row = levels.likert_summary(fb).iloc[0]
    assert row["n"] == 5 and row["pct_agree"] == pytest.approx(80) and row["pct_1"] == 0


def test_hedges_g_av_by_hand():
    pre, post = [10, 12, 14, 16, 18], [13, 14, 18, 19, 21]
    # Means 14 and 17; SDs sqrt(10) = 3.16228 and sqrt(11.5) = 3.39116, average 3.27672: d_av = 0.91555.
    # J = 1 - 3 / (4 x 4 - 1) = 0.8: g_av = 0.73244. r = 10.5 / (3.16228 x 3.39116) = 0.97913.
    # V(d) = (1/5 + 0.91555² / 10) x 2 x (1 - 0.97913) = 0.011847; half-width 1.96 x 0.8 x 0.10884 = 0.17066.
    g, low, high, r = levels.hedges_g_av(pre, post)
    assert g == pytest.approx(0.73244, abs=1e-4)
    assert r == pytest.approx(0.97913, abs=1e-4)
    assert (low, high) == pytest.approx((0.56178, 0.90310), abs=1e-4)


def test_paired_change_leaves_out_unpaired_and_refuses_tiny_samples():
    frame = pd.DataFrame({"pre_score": [10, 12, 14, 16, 18, 11], "post_score": [13, 14, 18, 19, 21, np.nan]})
    change = levels.paired_change(frame)
    assert change.n == 5 and change.n_unpaired == 1 and change.mean_change == pytest.approx(3.0)
    assert np.isnan(levels.paired_change(frame.head(2)).g_av)


def test_support_and_fidelity_pool_counts():
    assert levels.support_in_place(pd.Series(["Y", "N", "4", "2", "5"])).tolist() == [1, 0, 1, 0, 1]
    imp = pd.DataFrame({"school_id": ["A", "A", "B"], "observed_on": pd.to_datetime(["2024-10-01", "2024-11-01",
                                                                                      "2024-10-02"]),
                        "classrooms_using": [3, 6, 1], "classrooms_observed": [10, 10, 5]})
    pooled = levels.fidelity_by(imp, ["school_id"]).set_index("school_id")["fidelity"]
    assert pooled["A"] == pytest.approx(45.0) and pooled["B"] == pytest.approx(20.0)
    assert levels.school_year(pd.Series(pd.to_datetime(["2024-09-01", "2025-03-01", "2025-07-01"]))).tolist() == [
        2025, 2025, 2026]


def test_nexus_recovers_a_known_slope_and_needs_four_schools():
    starts = pd.Series(2023.0, index=list("ABCDE"))
    fidelity = dict(zip("ABCDE", [20, 40, 50, 60, 80], strict=True))
    panel = pd.DataFrame([{"school_id": s, "school_year": y, "value": 50 + (0.1 * f if y >= 2023 else 0)}
                          for s, f in fidelity.items() for y in (2021, 2022, 2023, 2024)])
    imp = pd.DataFrame({"school_id": list(fidelity), "classrooms_using": list(fidelity.values()),
                        "classrooms_observed": 100, "observed_on": pd.Timestamp("2023-01-10")})
    fit = outcomes.nexus(panel, starts, imp)
    assert fit.slope == pytest.approx(1.0) and fit.n == 5 and fit.r == pytest.approx(1.0)
    assert outcomes.nexus(panel, starts.head(3), imp) is None


def test_every_level_says_when_it_has_no_data():
    empty = {name: pd.DataFrame(columns=["program", "school_id", "session_id", "session_date"]) for name in
             evaluation.PL_TABLES}
    data = evaluation.program_data(pd.Series({"program": "P", "goal_metrics": "math_proficient"}),
                                   {n: _schema_frame(n) for n in empty})
    result = evaluation.evaluate(data, pd.DataFrame(columns=["school_id", "school_year", "value"]),
                                 pd.Series(dtype=float), "math_proficient", "Math proficient", True)
    assert [lv.has_data for lv in result.levels] == [False] * 5
    assert [lv.missing for lv in result.levels] == ["pl_feedback", "pl_assessments", "pl_support", "implementation",
                                                    "pl_sessions"]
    assert list(result.export_table().columns) == EXPORT and result.export_table().empty


def _schema_frame(name: str) -> pd.DataFrame:
    from analytics.data.schema import TABLES

    return pd.DataFrame(columns=TABLES[name].column_names)


@pytest.fixture(scope="module")
def small_demo():
    return {effect: build_demo(schools=60, years=6, seed=7, pl_effect=effect) for effect in (0.0, 6.0)}


def _level5(frames: dict, program: str = "MATH-TALK") -> pd.DataFrame:
    sessions = frames["pl_sessions"][frames["pl_sessions"]["program"] == program]
    imp = frames["implementation"][frames["implementation"]["program"] == program]
    starts = outcomes.participation_starts(sessions)
    panel = outcomes.like_for_like(outcomes.metric_panel(frames["metrics"], frames["discipline"], "math_proficient"),
                                   starts, frames["schools"])
    effects, _ = outcomes.outcome_effects(panel, starts, imp, "math_proficient")
    return effects


def test_planted_effect_is_found_and_none_is_planted_with_zero(small_demo):
    found = _level5(small_demo[6.0]).iloc[0]
    assert found["ci_low"] > 0 and found["ci_low"] <= 6.0 <= found["ci_high"] + 1.5
    null = _level5(small_demo[0.0]).iloc[0]
    assert null["ci_low"] <= 0 <= null["ci_high"]
    assert abs(null["estimate"]) < abs(found["estimate"])


def test_demo_pl_tables_import_through_the_contracts(tmp_path):
    """The generated PL tables are valid input: written as CSV and imported all or nothing."""
    frames = build_demo(schools=12, years=3, seed=3)
    engine = storage.get_engine(f"sqlite:///{tmp_path / 'pl.db'}")
    storage.create_schema(engine)
    assert frames["implementation"].empty  # level 4 of the demo comes from tagged walkthrough look-fors
    files = [(f"{name}.csv", frames[name].to_csv(index=False).encode()) for name in
             ("schools", "pl_programs", "pl_sessions", "pl_feedback", "pl_assessments", "pl_support",
              "walkthroughs")]
    report = import_bytes(engine, files)
    assert report.ok, [p.format() for p in report.problems[:5]]
    counts = loads.table_counts(engine)
    assert all(counts[name] == len(frames[name]) for name in ("pl_feedback", "walkthroughs", "pl_support"))
    assert frames["walkthroughs"]["practices"].notna().sum() > 0


def test_export_learning_contract_and_privacy(on_demo):
    table = load.learning_table(on_demo, "MATH-TALK", all_goals=False)
    assert list(table.columns) == EXPORT
    assert set(table["level"]) == {1, 2, 3, 4, 5}
    g = table[table["measure"].str.startswith("Hedges")].iloc[0]
    assert g["ci_low"] < g["estimate"] < g["ci_high"] and g["n"] >= 10
    did = table[table["level"] == 5].iloc[0]
    assert did["ci_low"] > 0  # the demo's planted effect (3 points) is found
    small = table.copy()
    small.loc[small["level"] == 1, "n"] = 8
    released = suppress_learning(small)
    assert (released.loc[released["level"] == 1, "estimate"] == "*").all()
    assert released.loc[released["level"] == 5, "estimate"].iloc[0] == did["estimate"]


def test_cli_export_learning(on_demo, capsys):
    from analytics import cli

    assert cli.main(["export", "learning", "--program", "NOPE"]) == 2
    assert "not found" in capsys.readouterr().err
    assert cli.main(["export", "rates", "--program", "RP"]) == 2


def test_cluster_links_show_learning_only_for_their_schools():
    schools = pd.DataFrame({"school_id": ["A", "B"], "cluster": ["North", "South"]})
    grant = ShareGrant("t", "/learning?program=RP&school=A", "cluster:North", pd.Timestamp("2100-01-01"))
    assert grant.allows("learning", {"program": "RP", "school": "A"}, schools)[0]
    assert not grant.allows("learning", {"program": "RP", "school": "B"}, schools)[0]
    assert not grant.allows("learning", {"program": "RP"}, schools)[0]
    school_grant = ShareGrant("t", "/learning?school=A", "school:A", pd.Timestamp("2100-01-01"))
    assert school_grant.allows("learning", {"school": "A"}, schools)[0]


def test_templates_are_header_rows_the_importer_reads():
    from openpyxl import load_workbook

    from analytics.data.dictionary import template_csv, templates_xlsx

    assert template_csv("implementation").decode().strip().split(",") == [
        "program", "school_id", "observed_on", "practice", "classrooms_observed", "classrooms_using"]
    book = load_workbook(io.BytesIO(templates_xlsx()))
    assert "pl_feedback" in book.sheetnames and "schools" in book.sheetnames


def test_level5_null_rarely_excludes_zero_small_version_of_the_benchmark():
    """benchmarks/pl_coverage.py in miniature: 4 null districts, both programmes; at most one false claim."""
    from analytics.config import Settings

    settings = Settings(permutations=199)
    claims = 0
    for seed in range(4):
        frames = build_demo(schools=40, years=6, seed=500 + seed, pl_effect=0.0)
        for program, metric in (("MATH-TALK", "math_proficient"), ("RP", "climate_relationships")):
            sessions = frames["pl_sessions"][frames["pl_sessions"]["program"] == program]
            starts = outcomes.participation_starts(sessions)
            panel = outcomes.like_for_like(outcomes.metric_panel(frames["metrics"], frames["discipline"], metric),
                                           starts, frames["schools"])
            result = outcomes.did(panel, starts, metric, settings, event_study=False)
            claims += bool(result.ci_low > 0 or result.ci_high < 0)
    assert claims <= 1


def test_rp_impact_beside_suspensions_on_climate_and_chronic_absence(small_demo):
    frames = small_demo[6.0]
    table = outcomes.rp_metric_impact(frames["schools"], frames["metrics"])
    assert list(table["outcome"]) == list(outcomes.RP_METRIC_OUTCOMES)
    climate = table.set_index("outcome").loc["climate_relationships"]
    assert climate["ci_low"] > 0 and climate["n_rp_schools"] == frames["schools"]["rp_start_year"].notna().sum()
    one = frames["schools"].dropna(subset=["rp_start_year"])["school_id"].iloc[0]
    single = outcomes.rp_metric_impact(frames["schools"], frames["metrics"], one, outcomes=("climate_safety",))
    assert single["n_rp_schools"].iloc[0] == 1 and single["p_value"].iloc[0] > 0


def test_pack_sheet_names_programmes_and_metrics(on_demo):
    from analytics.outputs.meeting import TITLES, ViewSpec, build_pack

    item = build_pack(on_demo, [ViewSpec("learning", TITLES["learning"], {})], "PL").items[0]
    assert set(item.sheet["Programme"]) == {"Restorative practices", "Math talk"}
    assert item.sheet["Measure"].str.contains("Math proficient").any()
    assert not item.sheet["Measure"].str.contains("math_proficient").any()
    assert "Math talk: evidence at 5 of Guskey's 5 levels" in item.finding and item.chart is not None


def test_level5_compares_within_school_level(small_demo):
    frames = small_demo[0.0]
    sessions = frames["pl_sessions"][frames["pl_sessions"]["program"] == "MATH-TALK"]
    starts = outcomes.participation_starts(sessions)
    panel = outcomes.like_for_like(outcomes.metric_panel(frames["metrics"], frames["discipline"], "math_proficient"),
                                   starts, frames["schools"])
    participating = set(frames["schools"].set_index("school_id").loc[starts.index, "level"])
    assert set(panel["level"]) == participating and participating <= {"ES", "MS"}  # Math talk: ES and MS only
    result = outcomes.did(panel, starts, "math_proficient", event_study=False)
    assert result.strata == "level" and "reassigned within each level" in result.method
    assert result.n_treated + result.n_comparison == panel["school_id"].nunique()


def test_long_run_of_the_benchmark_draws_the_demo_districts_tables():
    """benchmarks/pl_coverage.py's long run builds only what Math-talk level 5 reads; same draws as build_demo."""
    import importlib.util
    import sys
    from pathlib import Path

    from analytics.config import Settings

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "pl_coverage.py"
    spec = importlib.util.spec_from_file_location("pl_coverage", path)
    bench = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    spec.loader.exec_module(bench)
    settings = Settings(permutations=99, random_seed=5)
    full = bench.level5(build_demo(schools=40, years=6, seed=501, pl_effect=0.0), "MATH-TALK", "math_proficient",
                        settings)
    assert bench.math_talk_null(501, 40, settings) == pytest.approx(full)


def _straightforward_estimates(panels: np.ndarray, years: np.ndarray, strata: np.ndarray, assign, event_times: list):
    """The estimator written out plainly: every reassignment as a dense row of start years, every column of every
    ATT(g, t) cell summed, each row's treated units added one at a time in ascending order within the stratum
    (the order the sparse sums take), never-treated sums as the column totals minus the treated sums."""
    dense = assign.dense()
    rows, k = len(dense), panels.shape[2]
    overall = [np.zeros((rows, k)), np.zeros((rows, 1))]
    events = {e: [np.zeros((rows, k)), np.zeros((rows, 1))] for e in event_times}
    counts = {}
    for s in np.unique(strata):
        values, starts = panels[strata == s], dense[:, strata == s]
        for g in np.unique(starts[0][starts[0] > 0]):
            base = list(years).index(g - 1)
            for t_index, t in enumerate(years):
                e = int(t - g)
                if t_index == base or (e < 0 and e not in events):
                    continue
                diff = values[:, t_index, :] - values[:, base, :]
                ok = np.isfinite(diff[:, 0])
                both = np.column_stack([ok, np.where(ok[:, None], diff, 0.0)])
                treated, cohort = np.zeros((rows, k + 1)), np.zeros((rows, k + 1))
                for unit in range(len(both)):
                    treated += np.where((starts[:, unit] > 0)[:, None], both[unit], 0.0)
                    cohort += np.where((starts[:, unit] == g)[:, None], both[unit], 0.0)
                never = both.sum(axis=0)[None, :] - treated
                with np.errstate(invalid="ignore", divide="ignore"):
                    att = cohort[:, 1:] / cohort[:, :1] - never[:, 1:] / never[:, :1]
                weight = np.where(np.isfinite(att[:, :1]) & (never[:, :1] > 0), cohort[:, :1], 0.0)
                att = np.where(weight > 0, att, 0.0)
                for sums, adds in ((overall, e >= 0), (events.get(e), e in events)):
                    if adds:
                        sums[0] += weight * att
                        sums[1] += weight
                if e in events:
                    counts[e] = counts.get(e, 0) + int(weight[0, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        # as returned: the overall outcome and post-start indicator, each event time's outcome and own indicator
        return ((overall[0] / overall[1])[:, :2],
                {e: (events[e][0] / events[e][1])[:, [0, 2 + i]] for i, e in enumerate(event_times)}, counts)


@pytest.mark.parametrize("program", ["MATH-TALK", "RP"])
def test_level5_as_the_page_makes_it_equals_the_straightforward_computation_to_the_last_digit(on_demo, monkeypatch,
                                                                                            program):
    """The page's level 5 (overall estimate made ahead, tertiles side by side on threads, only the columns the
    tests read summed, drawn cells kept stratum by stratum) equals the estimates made one after another from the
    dense seeded draws, every column summed plainly: the same draws, the same sums, every digit."""
    from analytics.stats import did

    tables = load.pl_tables(on_demo)
    metric = load.load_programs(on_demo).set_index("program").loc[program, "goal_metrics"].split(";")[0].strip()
    outcome = load.program_outcome(on_demo, tables["pl_sessions"], program, None, metric)
    overall = load.overall_effect(outcome)
    fast = load.evaluate_program(on_demo, tables, program, metric=metric, outcome=outcome, overall=lambda: overall)

    did._design.cache_clear()
    monkeypatch.setattr(did, "_treated_assignments", lambda labels, strata, limit, seed: (lambda dense, exact: (
        did._Treated.of(dense), exact))(*did._assignments(labels, strata, limit, np.random.default_rng(seed))))
    monkeypatch.setattr(did, "_estimates", _straightforward_estimates)
    monkeypatch.setattr(outcomes, "ThreadPoolExecutor", lambda **kwargs: __import__(
        "concurrent.futures").futures.ThreadPoolExecutor(max_workers=1))  # one after another
    plain = load.evaluate_program(on_demo, tables, program, metric=metric)
    assert len(fast.effects) == 4 and fast.effects["estimate"].notna().all()
    pd.testing.assert_frame_equal(fast.effects, plain.effects, check_exact=True)
    pd.testing.assert_frame_equal(fast.events, plain.events, check_exact=True)
    pd.testing.assert_frame_equal(fast.export_table(), plain.export_table(), check_exact=True)
    assert [lv.finding for lv in fast.levels] == [lv.finding for lv in plain.levels]


def test_level_1_counts_its_sessions_with_thousands_separated():
    """3,249 sessions read as the facts line above the chain writes them, not 3249."""
    empty = {n: _schema_frame(n) for n in evaluation.PL_TABLES}
    data = evaluation.program_data(pd.Series({"program": "P", "goal_metrics": "math_proficient"}), empty)
    data.feedback_sessions = 3249
    data.feedback = pd.DataFrame({"item": "The facilitator was well prepared", "response": [4, 5, 2],
                                  "count": [1200, 900, 300]})
    finding = evaluation._level1(data).finding
    assert finding.startswith("Across 3,249 sessions, 88% agreed that \u201cThe facilitator was well prepared\u201d")
    assert "n = 2,400 responses" in finding
