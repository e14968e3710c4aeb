"""Privacy as one release (DESIGN §3 rules 1-4): each rule by hand, then the attack suite on whole releases.

Every hand-made case is one the issue reported leaking before the release-level decision existed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import cli
from analytics.access import attack
from analytics.access.privacy import SUPPRESSED, release_view
from analytics.access.release import build_release
from analytics.access.release_cells import metric_cells, pooled_cells, shared_denominators
from analytics.access.release_store import release_for
from analytics.data import loads, storage
from analytics.data.demo import load_demo
from analytics.stats.disproportionality import disproportionality
from analytics.stats.gaps import gap_table
from analytics.stats.rates import add_rate_columns, pooled_rates
from analytics.stats.status_change import status_change

NO_METRICS = pd.DataFrame(columns=["school_id", "school_year", "metric", "student_group", "numerator", "denominator",
                                   "value", "target"])
NO_DISCIPLINE = pd.DataFrame(columns=["school_id", "school_year", "student_group", "enrolled", "students_suspended"])


def _schools(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"school_id": [r[0] for r in rows], "cluster": [r[1] for r in rows], "level": "ES"})


def _discipline(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["school_id", "school_year", "student_group", "enrolled", "students_suspended"])


def _metrics(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["school_id", "school_year", "metric", "student_group", "numerator", "denominator"])
    df["value"] = 100 * df["numerator"] / df["denominator"]
    df["target"] = np.nan
    return df


# --- rule 1: primary suppression with everything derived ----------------------------------------------------


def test_a_suspension_count_of_4_of_18_is_hidden_with_its_risk_ratio_and_share():
    # Issue: "43 suspension counts between 1 and 9 (e.g. 4 of 18 students), with the exact risk beside them".
    discipline = _discipline([("A", 2025, "ALL", 200, 40), ("A", 2025, "BL", 18, 4), ("A", 2025, "WH", 182, 36)])
    release = build_release(_schools(("A", "North")), NO_METRICS, discipline)
    table = release_view(disproportionality(discipline), "disproportionality", release)
    bl = table[table["student_group"] == "BL"].iloc[0]
    assert bl["count"] == SUPPRESSED and bl["risk"] == SUPPRESSED
    assert bl["composition"] == SUPPRESSED and bl["rate_difference"] == SUPPRESSED and bl["ratio_type"] == SUPPRESSED
    assert bl["enrolled"] == 18  # n >= 10 stays
    # WH = ALL - BL: 36 of 182 would give BL = 40 - 36 = 4, so WH is hidden too (complementary).
    wh = table[table["student_group"] == "WH"].iloc[0]
    assert wh["count"] == SUPPRESSED and wh["risk"] == SUPPRESSED


def test_seven_enrolled_none_suspended_shows_neither_number():
    # Issue: a shared school page showed "7 enrolled / 0 suspended".
    discipline = _discipline([("A", 2025, "ALL", 207, 30), ("A", 2025, "AM", 7, 0), ("A", 2025, "WH", 200, 30)])
    release = build_release(_schools(("A", "North")), NO_METRICS, discipline)
    table = release_view(disproportionality(discipline), "disproportionality", release)
    am = table[table["student_group"] == "AM"].iloc[0]
    assert am["enrolled"] == SUPPRESSED and am["count"] == SUPPRESSED and am["risk"] == SUPPRESSED
    wh = table[table["student_group"] == "WH"].iloc[0]
    assert wh["enrolled"] == SUPPRESSED  # 207 - 200 would give AM's 7 back


# --- rule 2: coding hides what is derived from the exact rate -------------------------------------------------


def _status_release(prev: tuple[int, int], cur: tuple[int, int]):
    rows = _metrics([("A", 2024, "read_proficient", "ALL", *prev), ("A", 2025, "read_proficient", "ALL", *cur),
                     ("B", 2024, "read_proficient", "ALL", 60, 120), ("B", 2025, "read_proficient", "ALL", 60, 120),
                     ("D", 2024, "read_proficient", "ALL", 300, 600), ("D", 2025, "read_proficient", "ALL", 300, 600)])
    release = build_release(_schools(("A", "North"), ("B", "North"), ("D", "North")), rows, NO_DISCIPLINE)
    current = add_rate_columns(rows[rows["school_year"] == 2025])
    table = status_change(current, rows[rows["school_year"] == 2024], {"A": "ES", "B": "ES", "D": "ES"},
                          {"read_proficient": True})
    return release_view(table.assign(school_year=2025), "status-change", release).set_index("school_id")


def test_a_coded_status_releases_no_level_change_or_colour():
    # Issue: `status-change --public` released levels for coded rows, narrowing "<= 5.0%" to 1.0-3.0.
    a = _status_release((12, 150), (3, 150)).loc["A"]  # 8.0% -> 2.0%
    assert a["status"] == "<= 5.0%"
    assert (a[["status_level", "change", "change_level", "color"]] == SUPPRESSED).all()


def test_a_change_is_released_only_when_both_years_are():
    # Issue: 136 hidden statuses were next year's status minus its change.
    a = _status_release((4, 9), (60, 150)).loc["A"]  # last year n = 9: hidden
    assert a["status"] == pytest.approx(40.0)
    assert a["change"] == SUPPRESSED and a["change_level"] == SUPPRESSED and a["color"] == SUPPRESSED
    out = _status_release((4, 9), (60, 150))
    assert out.loc["B", "change"] == SUPPRESSED  # North 2024 minus D would give A + B: B is hidden with A
    assert out.loc["D", "change"] == 0.0  # both years released: the change is shown


def test_a_band_that_leaves_one_possible_count_hides_the_cell():
    # "<= 5.0%" of 15 students can only be 0 of 15: the cell and its n are hidden.
    rows = _metrics([("A", 2025, "read_proficient", "ALL", 0, 15), ("B", 2025, "read_proficient", "ALL", 0, 400),
                     ("C", 2025, "read_proficient", "ALL", 200, 400)])
    release = build_release(_schools(("A", "N"), ("B", "N"), ("C", "S")), rows, NO_DISCIPLINE)
    out = release_view(add_rate_columns(rows), "rates", release).set_index("school_id")
    assert out.loc["A", "value"] == SUPPRESSED and out.loc["A", "denominator"] == SUPPRESSED
    # Cluster N's n (415) minus B's 400 would give A's 15: B's n goes, and with it B's whole cell.
    assert out.loc["B", "denominator"] == SUPPRESSED and out.loc["B", "value"] == SUPPRESSED
    # Cluster N's count is then coded and the district minus cluster S would pin it: S and its one school go too.
    assert release.disclosed == 0 and out.loc["C", "value"] == SUPPRESSED


def test_gap_change_needs_both_years_exact():
    # Issue: 236 hidden gaps were next year's gap minus `gap_change`.
    rows = _metrics([("A", 2024, "read_proficient", "ALL", 100, 200), ("A", 2024, "read_proficient", "BL", 5, 9),
                     ("A", 2024, "read_proficient", "WH", 95, 191),
                     ("A", 2025, "read_proficient", "ALL", 100, 200), ("A", 2025, "read_proficient", "BL", 20, 50),
                     ("A", 2025, "read_proficient", "WH", 80, 150)])
    release = build_release(_schools(("A", "N")), rows, NO_DISCIPLINE)
    gaps = gap_table(rows, "others", {"read_proficient": True})
    out = release_view(gaps, "gaps", release)
    bl25 = out[(out["student_group"] == "BL") & (out["school_year"] == 2025)].iloc[0]
    assert bl25["gap"] == pytest.approx(40.0 - 80 / 150 * 100)  # this year's gap is released
    assert bl25["gap_change"] == SUPPRESSED and bl25["p_value"] == SUPPRESSED and bl25["trend"] == SUPPRESSED
    bl24 = out[(out["student_group"] == "BL") & (out["school_year"] == 2024)].iloc[0]
    assert bl24["gap"] == SUPPRESSED and bl24["reference_value"] == SUPPRESSED


# --- rule 3: complementary suppression across the release ------------------------------------------------------


def test_a_lone_hidden_cluster_is_not_the_district_minus_the_others():
    # Issue: "A lone hidden cluster row equals the district row minus the other clusters."
    rows = _metrics([("A1", 2025, "read_proficient", "ALL", 50, 100), ("A2", 2025, "read_proficient", "ALL", 60, 110),
                     ("B1", 2025, "read_proficient", "ALL", 40, 90), ("B2", 2025, "read_proficient", "ALL", 45, 95),
                     ("C1", 2025, "read_proficient", "ALL", 4, 8)])
    schools = _schools(("A1", "A"), ("A2", "A"), ("B1", "B"), ("B2", "B"), ("C1", "C"))
    release = build_release(schools, rows, NO_DISCIPLINE)
    assert release.disclosed == 0
    cells = release.cells.xs(("read_proficient", "ALL"), level=("measure", "student_group"))["state"]
    assert cells[("cluster:C", 2025.0)] == "hidden"
    # District 199 of 403 minus clusters A and B would give C: a second cluster (the smaller, B) is hidden, and
    # then one of B's schools, or B = B1 + B2 would give it back.
    assert cells[("cluster:B", 2025.0)] == "hidden" and cells[("cluster:A", 2025.0)] == "exact"
    assert (cells[[("B1", 2025.0), ("B2", 2025.0)]] == "hidden").sum() >= 1
    # The attack on the public rates (every school, cluster and district row) recovers nothing.
    table = pd.concat([add_rate_columns(rows),
                       pooled_rates(rows.merge(schools, on="school_id"), ["cluster", "school_year", "metric",
                                                                           "student_group"])
                       .assign(school_id=lambda d: "cluster:" + d["cluster"]),
                       pooled_rates(rows, ["school_year", "metric", "student_group"]).assign(school_id="district")])
    public = release_view(table.reset_index(drop=True), "rates", release)
    truth = pooled_cells(metric_cells(rows), schools)
    report = attack.attack({"rates": public}, truth, schools, decision=release)
    assert report.hidden >= 3 and report.recovered == 0


# --- rule 4: the attack suite on whole releases -----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('privacy') / 'demo.db'}"
    engine = storage.get_engine(url)
    storage.create_schema(engine)
    load_demo(engine, schools=24, years=3, seed=11)
    return engine


def _scopes(engine) -> list[dict]:
    schools = loads.load_schools(engine)
    return [{}, {"cluster": schools["cluster"].iloc[0]}, {"school": schools["school_id"].iloc[2]}]


def test_the_demo_release_gives_nothing_back(small_demo):
    release = release_for(small_demo)
    assert release.disclosed == 0
    released = attack.collect(small_demo, _scopes(small_demo), release)
    report = attack.attack(released, attack.truth_cells(small_demo), loads.load_schools(small_demo),
                           decision=release)
    assert report.hidden > 1000 and report.recovered == 0 and report.recovered_n == 0, report.examples


def test_the_attack_has_teeth_without_complementary_suppression(small_demo):
    release = release_for(small_demo, complementary=False)
    released = attack.collect(small_demo, _scopes(small_demo)[:1], release)
    report = attack.attack(released, attack.truth_cells(small_demo), loads.load_schools(small_demo))
    assert report.recovered + report.recovered_n > 0


def test_crdc_shaped_files_give_nothing_back(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'crdc.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert cli.main(["import", *attack.crdc_like_files(tmp_path)]) == 0
    engine = storage.get_engine(url)
    release = release_for(engine)
    assert release.disclosed == 0
    released = attack.collect(engine, _scopes(engine), release)
    report = attack.attack(released, attack.truth_cells(engine), loads.load_schools(engine), decision=release)
    assert report.hidden > 100 and report.recovered == 0 and report.recovered_n == 0, report.examples
    dispro = released["disproportionality"]
    count = pd.to_numeric(dispro["count"], errors="coerce")
    assert not ((count >= 1) & (count <= 9)).any()


# --- the 3-year flag rests on the earlier years' ratios -----------------------------------------------------------


def _flag_rows(bl_2023: tuple[int, int], wh_2023: tuple[int, int]) -> pd.Series:
    """School A, BL against WH: risk ratio 60/300 over 60/1000 = 3.33 in 2024 and 2025."""
    rows = []
    for year, (bl, wh) in {2023: (bl_2023, wh_2023), 2024: ((60, 300), (60, 1000)),
                           2025: ((60, 300), (60, 1000))}.items():
        rows += [("A", year, "ALL", bl[1] + wh[1], bl[0] + wh[0]), ("A", year, "BL", bl[1], bl[0]),
                 ("A", year, "WH", wh[1], wh[0])]
    discipline = _discipline(rows)
    release = build_release(_schools(("A", "North")), NO_METRICS, discipline)
    table = disproportionality(discipline)
    table = table[(table["outcome"] == "suspension") & (table["student_group"] == "BL")]
    return release_view(table.reset_index(drop=True), "disproportionality", release).set_index("school_year")


def test_a_flag_resting_on_a_hidden_earlier_ratio_is_withheld():
    # 2023: BL 12 of 300 = 4.0% and WH 10 of 1000 = 1.0%, both coded "<= 5.0%": ratio 4.0 hidden.
    # 2025 is flagged (>= 3 in 2023, 2024 and 2025): "flagged" would tell the hidden 2023 ratio was >= 3.
    out = _flag_rows((12, 300), (10, 1000))
    assert out.loc[2025, "risk_ratio"] == pytest.approx((60 / 300) / (60 / 1000))  # 3.33, released
    assert out.loc[2025, "flagged"] == SUPPRESSED
    # 2024 is not flagged (two years only) but "not flagged" beside 3.33 would tell 2023 was below 3.
    assert out.loc[2024, "flagged"] == SUPPRESSED
    assert out.loc[2023, "risk_ratio"] == SUPPRESSED
    # 2023 has no earlier year: its flag (False) rests on nothing hidden beyond its own ratio, hidden too.
    assert out.loc[2023, "flagged"] == SUPPRESSED


def test_a_flag_resting_on_released_ratios_is_shown():
    # 2023: BL 60 of 300 = 20%, WH 60 of 1000 = 6%: every ratio is released, the flag is shown.
    out = _flag_rows((60, 300), (60, 1000))
    assert out.loc[2025, "flagged"] == True  # noqa: E712 - the cell holds a released bool
    assert out.loc[2024, "flagged"] == False  # noqa: E712


# --- cells that share an n are decided together ------------------------------------------------------------------


SHARED_ENROLMENT = ["suspension", "iss", "oss", "expulsion", "law_referral", "incidents", "attendance_rate",
                    "chronic_absence"]


def test_measures_counting_the_same_students_hide_their_n_together(small_demo):
    # Discipline outcomes, attendance and chronic absence all count the school's enrolment: an n hidden in
    # one and shown in another would be given back (the attack ties them: `attack._same_n`).
    cells = release_for(small_demo).cells.reset_index()
    shared = cells[cells["measure"].isin(SHARED_ENROLMENT)]
    decisions = shared.groupby(["unit", "school_year", "student_group", "n"])["n_hidden"].nunique()
    assert len(decisions) > 100 and (decisions == 1).all()


def test_shared_denominators_are_found_from_the_data():
    cells = pd.DataFrame({"school_id": ["A"] * 6, "school_year": 2025, "student_group": ["ALL", "BL"] * 3,
                          "measure": ["suspension"] * 2 + ["attendance_rate"] * 2 + ["read_proficient"] * 2,
                          "k": 1.0, "n": [100.0, 20.0, 100.0, 20.0, 90.0, 20.0], "n_source": "x"})
    named = shared_denominators(cells).drop_duplicates("measure").set_index("measure")["n_source"]
    # Attendance's n equals enrolment on every row; reading's on half of them (a coincidence, not a source).
    assert named.to_dict() == {"suspension": "enrolled", "attendance_rate": "enrolled",
                               "read_proficient": "read_proficient"}


# --- the exact audit (integer program) ------------------------------------------------------------------------


def test_the_integer_program_pins_what_interval_reasoning_cannot():
    # x + y + z = 2 with x = y and every value in 0..1: intervals leave each in 0..1, but 2x + z = 2 with
    # z <= 1 leaves x = y = 1, z = 0 as the only integer solution.
    from analytics.access.exact_audit import System, exact_unique
    from analytics.access.release_audit import propagate

    rel = np.array([0, 0, 0, 1, 1])
    var = np.array([0, 1, 2, 0, 1])
    coef = np.array([1.0, 1.0, 1.0, 1.0, -1.0])
    lo, hi = np.zeros(4), np.array([1.0, 1.0, 1.0, 2.0])  # variable 3 is the released total, 2
    lo[3] = 2.0
    rel_p, var_p, coef_p = np.r_[rel, 0], np.r_[var, 3], np.r_[coef, -1.0]
    none = (np.empty(0, dtype=np.int64),) * 2
    p_lo, p_hi = propagate(lo, hi, rel_p, var_p, coef_p, none, (*none, 0.0), (*none, 0.0))
    assert (p_lo[:3] == 0).all() and (p_hi[:3] == 1).all()  # bounds propagation pins nothing
    system = System(lo, hi)
    system.add(rel_p, var_p, coef_p, np.zeros(2), np.zeros(2))
    report = exact_unique(system, np.array([0, 1, 2]))
    assert report.unique == {0: 1.0, 1: 1.0, 2: 0.0}
    assert report.components == 1 and report.audited == 3 and report.undecided == 0
    # Past its deadline (a CPU-clock reading) nothing is solved and nothing is shown safe.
    late = exact_unique(system, np.array([0, 1, 2]), deadline=0.0)
    assert late.unique == {} and late.undecided_vars == [0, 1, 2] and late.audited == 0


def test_one_model_answers_each_solve_after_its_objective_bounds_or_integrality_change():
    # x + y + z = 2 and x = y, each in 0..1. The relaxation's furthest z is 1 (x = y = 0.5); over integers x = y
    # = 1 and z = 0 is the only solution, so z = 1 is infeasible there; bounds given with a solve replace
    # the model's until others are given.
    from scipy.sparse import csr_matrix

    from analytics.access.exact_audit import _Model

    a = csr_matrix(np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0]]))
    model = _Model(a, np.array([2.0, 0.0]), np.array([2.0, 0.0]), np.zeros(3), np.ones(3), time_limit=10.0)
    status, x = model.solve(np.array([0.0, 0.0, -1.0]), integer=False)
    assert status == "ok" and np.allclose(x, [0.5, 0.5, 1.0])
    status, x = model.solve(np.array([0.0, 0.0, -1.0]), integer=True)
    assert status == "ok" and x.tolist() == [1.0, 1.0, 0.0]
    assert model.solve(np.zeros(3), True, np.array([0.0, 0.0, 1.0]), np.ones(3)) == ("infeasible", None)
    status, x = model.solve(np.array([0.0, 0.0, 1.0]), integer=False)  # z >= 1 still holds: z is 1
    assert status == "ok" and np.allclose(x, [0.5, 0.5, 1.0])
    status, x = model.solve(np.array([0.0, 0.0, 1.0]), integer=False, lo=np.zeros(3), hi=np.ones(3))
    assert status == "ok" and np.allclose(x, [1.0, 1.0, 0.0])


def test_the_solver_leaves_standard_output_to_the_command_line():
    # HiGHS prints a banner on the C library's stdout when a process makes its first solver; results written
    # to stdout (an export piped elsewhere) must not start with it.
    import subprocess
    import sys

    script = ("import numpy as np\nfrom scipy.sparse import csr_matrix\nfrom analytics.access.exact_audit import _Model\n"
              "m = _Model(csr_matrix(np.ones((1, 2))), np.ones(1), np.ones(1), np.zeros(2), np.ones(2), 5.0)\n"
              "print(m.solve(np.array([1.0, 0.0]), True)[0])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == "ok\n"


def test_a_sub_matrix_folds_the_columns_outside_it_into_each_row():
    from scipy.sparse import csr_matrix

    from analytics.access.exact_audit import _submatrix

    # Rows 0 and 2 over columns 1 and 3; held values 10, 20, 30, 40 for columns 0..3.
    a = csr_matrix(np.array([[1.0, 2.0, 0.0, 3.0], [4.0, 0.0, 5.0, 0.0], [0.0, 6.0, 7.0, 0.0]]))
    sub, outside = _submatrix(a, np.array([0, 2]), np.array([1, 3]), held=np.array([10.0, 20.0, 30.0, 40.0]))
    assert sub.toarray().tolist() == [[2.0, 3.0], [6.0, 0.0]]
    assert outside.tolist() == [10.0, 210.0]  # 1 x 10; 7 x 30
    assert _submatrix(a, np.array([0, 2]), np.array([1, 3]))[1].tolist() == [1.0, 1.0]  # entries outside, counted


def test_the_exact_audit_runs_inside_the_attack():
    rows = _metrics([("A1", 2025, "read_proficient", "ALL", 50, 100), ("A2", 2025, "read_proficient", "ALL", 60, 110),
                     ("B1", 2025, "read_proficient", "ALL", 40, 90), ("B2", 2025, "read_proficient", "ALL", 45, 95),
                     ("C1", 2025, "read_proficient", "ALL", 4, 8)])
    schools = _schools(("A1", "A"), ("A2", "A"), ("B1", "B"), ("B2", "B"), ("C1", "C"))
    release = build_release(schools, rows, NO_DISCIPLINE)
    public = release_view(add_rate_columns(rows), "rates", release)
    report = attack.attack({"rates": public}, pooled_cells(metric_cells(rows), schools), schools, decision=release,
                           exact=True)
    assert report.recovered == 0 and report.exact["audited"] >= 2 and report.exact["recovered"] == 0


def test_the_decision_hides_what_only_the_integer_program_pins():
    # One school (its cluster and district rows repeat it). ALL: 13 of 51 proficient, released. HI: 39
    # students, 1 proficient: 2.6%, released as "<= 5.0%", so 100 k <= 5 * 39 and k is 0 or 1. BL (4 of 4)
    # and WH (8 of 8) are hidden with their n (n < 10). Their n add up to 51 - 39 = 12, so
    # k_BL + k_WH <= 12 and k_HI = 13 - (k_BL + k_WH) >= 1: k_HI = 1, the only integer solution. Bounds
    # propagation sees k_BL <= 12 and k_WH <= 12 one at a time and leaves k_HI in 0..1.
    rows = _metrics([("S0", 2025, "read_proficient", "ALL", 13, 51), ("S0", 2025, "read_proficient", "HI", 1, 39),
                     ("S0", 2025, "read_proficient", "BL", 4, 4), ("S0", 2025, "read_proficient", "WH", 8, 8)])
    schools = _schools(("S0", "A"))
    truth = pooled_cells(metric_cells(rows), schools)
    table = pd.concat([add_rate_columns(rows).assign(school_id=unit) for unit in ("S0", "cluster:A", "district")],
                      ignore_index=True)

    def attacked(release):
        public = release_view(table, "rates", release)
        return attack.attack({"rates": public}, truth, schools, decision=release, exact=True)

    propagation_only = build_release(schools, rows, NO_DISCIPLINE, exact=False)
    states = propagation_only.cells.xs(("read_proficient", 2025.0), level=("measure", "school_year"))["state"]
    assert propagation_only.disclosed == 0 and states[("S0", "ALL")] == "exact" and states[("S0", "HI")] == "low"
    report = attacked(propagation_only)
    # The attack's own exact audit recovers it, at the school and in the two rows that repeat it.
    assert report.recovered == 3
    assert {(e["unit"], e["student_group"], e["k"]) for e in report.examples} == {
        ("S0", "HI", 1.0), ("cluster:A", "HI", 1.0), ("district", "HI", 1.0)}

    release = build_release(schools, rows, NO_DISCIPLINE)
    states = release.cells.xs(("read_proficient", 2025.0), level=("measure", "school_year"))["state"]
    # One more cell: ALL's count (the only released member of the sum), with the cluster and district rows
    # that repeat it. HI keeps its band and k_HI is 0 or 1 again.
    assert release.disclosed == 0 and states[("S0", "HI")] == "low"
    assert (states.xs("ALL", level="student_group") == "hidden").all()
    changed = (release.cells["state"] != propagation_only.cells["state"]) | (
        release.cells["n_hidden"] != propagation_only.cells["n_hidden"])
    assert sorted(changed[changed].index.get_level_values("unit")) == ["S0", "cluster:A", "district"]
    report = attacked(release)
    assert report.recovered == 0 and report.exact["recovered"] == 0


def _status_link_audit(n_2025: int, change: float):
    """BL at school A reads 10 of 40 (25.0%) in 2024; 2025's n is known and its count hidden; the released
    change is `change` points (rounded to 0.1). The attack's exact audit asks about 2025's count."""
    from analytics.access.attack import _Knowledge, _status_links
    from analytics.access.exact_audit import System, exact_unique
    from analytics.config import DEFAULT_SETTINGS

    keys = pd.MultiIndex.from_tuples([("A", 2024.0, "read_proficient", "BL"), ("A", 2025.0, "read_proficient", "BL")])
    kn = _Knowledge(keys)
    kn.tighten(keys, "n", [40, n_2025], [40, n_2025])
    kn.tighten(keys, "k", [10, 0], [10, n_2025])
    status = pd.DataFrame({"school_id": ["A"], "school_year": [2025], "metric": ["read_proficient"],
                           "student_group": ["BL"], "change": [change], "change_level": [""]})
    system = System(np.r_[kn.a["k_lo"], kn.a["n_lo"]], np.r_[kn.a["k_hi"], kn.a["n_hi"]])
    _status_links(system, kn, status, lambda m: m, pd.Series({"A": "ES"}), DEFAULT_SETTINGS)
    assert system.n_rows == 1
    return exact_unique(system, np.array([1]))


def test_a_released_change_between_known_n_pins_a_count():
    # 100 k / 50 - 25.0 lies in [2.95, 3.05]: 2k in [27.95, 28.05], so k = 14 and nothing else.
    assert _status_link_audit(50, 3.0).unique == {1: 14.0}
    # Of 2,000 students: k / 20 - 25 in [2.95, 3.05] leaves 559, 560 and 561: nothing is pinned.
    report = _status_link_audit(2000, 3.0)
    assert report.unique == {} and report.undecided == 0


def test_a_cell_still_pinned_after_its_sum_was_opened_gets_the_next_sum_and_its_n_in_one_round():
    from analytics.access.release_cells import _problem
    from analytics.access.release_decide import _exact_complements, _Memberships

    # Two schools of cluster C, FEMALE + MALE = ALL. Counts are variables 0-8 in row order (S1 F, M, ALL;
    # S2 F, M, ALL; C F, M, ALL), n are 9-17. S1 FEMALE's count (0) is pinned; S1 MALE's (1) was opened for
    # it last round, which opened S1's partition and the MALE hierarchy sum. Left: the FEMALE hierarchy sum
    # 0 + 3 = 6, whose released child 3 goes first, and the cell's own n (9), opened in the same round.
    groups, ks, ns = ["FEMALE", "MALE", "ALL"], [1, 2, 3, 4, 5, 9, 5, 7, 12], [10, 12, 22, 15, 16, 31, 25, 28, 53]
    units = [("S1", 0), ("S2", 0), ("cluster:C", 1)]
    cells = pd.DataFrame([{"unit": u, "cluster": "C", "level": lv, "school_year": 2025.0, "measure": "m",
                           "student_group": g, "n_source": "m", "k": float(ks[3 * i + j]), "n": float(ns[3 * i + j])}
                          for i, (u, lv) in enumerate(units) for j, g in enumerate(groups)])
    problem = _problem(cells)
    hidden = np.zeros(len(problem.k_true), dtype=bool)
    hidden[[0, 1]] = True
    tried = {0: {1}}
    chosen = _exact_complements(problem, _Memberships(problem), hidden, np.array([0]), tried)
    assert chosen.tolist() == [3, 9] and tried[0] == {1, 3, 9}
    # The first time a cell is pinned, one sum only: the nearest, its released child with fewest students.
    tried = {}
    assert _exact_complements(problem, _Memberships(problem), hidden, np.array([0]), tried).tolist() == [3]
