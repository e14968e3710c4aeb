"""Gap changes: consecutive years, labels, Benjamini-Hochberg families, best group, Mantel-Haenszel, worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.stats.gaps import (
    CLOSING,
    CLOSING_REF,
    NO_CHANGE,
    NO_COUNTS,
    REVERSED,
    WIDENING,
    bh_q_values,
    gap_family,
    gap_table,
    label_gaps,
    mantel_haenszel_rd,
    pooled_gap_trend,
)


def _school_year(year, groups, school="s", metric="m"):
    """Rows for one school-year from {group: (k, n)} for the groups plus their ALL sum (race-like groups)."""
    k_all = sum(k for k, _ in groups.values())
    n_all = sum(n for _, n in groups.values())
    out = [{"school_id": school, "school_year": year, "metric": metric, "student_group": "ALL", "numerator": k_all,
            "denominator": n_all, "value": 100 * k_all / n_all, "target": np.nan}]
    out += [{"school_id": school, "school_year": year, "metric": metric, "student_group": g, "numerator": k,
             "denominator": n, "value": 100 * k / n, "target": np.nan} for g, (k, n) in groups.items()]
    return out


def _bl(table):
    return table[table["student_group"] == "BL"].set_index("school_year")


def test_a_missing_year_breaks_the_series():
    rows = pd.DataFrame(_school_year(2016, {"BL": (20, 100), "WH": (60, 100)})
                        + _school_year(2018, {"BL": (60, 100), "WH": (60, 100)})
                        + _school_year(2019, {"BL": (62, 100), "WH": (60, 100)}))
    bl = _bl(gap_table(rows))
    # 2018 follows 2016 only across a missing year: no change, no test, no label.
    assert np.isnan(bl.loc[2018, "gap_change"]) and np.isnan(bl.loc[2018, "previous_year"])
    assert np.isnan(bl.loc[2018, "p_value"]) and bl.loc[2018, "trend"] == ""
    # 2019 vs 2018: gap 0 -> +2, previous_year 2018.
    assert bl.loc[2019, "previous_year"] == 2018 and bl.loc[2019, "gap_change"] == pytest.approx(2.0)


def test_a_gap_that_changes_sign_is_reversed_not_closing():
    # 2024: BL 80/100 = 80%, others 47/100 = 47% -> +33; 2025: BL 40/100, others 50/100 -> -10; change -43.
    rows = pd.DataFrame(_school_year(2024, {"BL": (80, 100), "WH": (47, 100)})
                        + _school_year(2025, {"BL": (40, 100), "WH": (50, 100)}))
    bl = _bl(gap_table(rows, "others", {"m": True}))
    assert bl.loc[2025, "gap"] == pytest.approx(-10.0) and bl.loc[2025, "gap_change"] == pytest.approx(-43.0)
    # Each side's change gets its two years pooled: BL p̄ = 120/200 = .6, V = .6·.4·(1/100 + 1/100) = .0048;
    # others p̄ = 97/200 = .485, V = .485·.515·.02 = .0049955. z = -.43/sqrt(.0097955) = -4.3446; p = 1.395e-5
    assert bl.loc[2025, "p_value"] == pytest.approx(1.395e-5, rel=0.01)
    assert bl.loc[2025, "trend"] == REVERSED


def test_one_year_of_the_table_keeps_its_change_from_the_year_before():
    # The same rows as above, only 2025 returned: BL's gap -10 still changes by -43 from 2024's +33, and
    # WH's (50 vs 40: +10, from 47 vs 80: -33) by +43, with the same p-value as the whole table gives it.
    rows = pd.DataFrame(_school_year(2024, {"BL": (80, 100), "WH": (47, 100)})
                        + _school_year(2025, {"BL": (40, 100), "WH": (50, 100)}))
    one = gap_table(rows, "others", {"m": True}, reference_year=2025, label=False, years=(2025,))
    assert one["school_year"].tolist() == [2025, 2025] and one["student_group"].tolist() == ["BL", "WH"]
    assert one["gap"].tolist() == pytest.approx([-10.0, 10.0]) and one["gap_change"].tolist() == pytest.approx([-43.0, 43.0])
    assert one["p_value"].tolist() == pytest.approx([1.395e-5] * 2, rel=0.01)
    whole = gap_table(rows, "others", {"m": True}, reference_year=2025, label=False)
    pd.testing.assert_frame_equal(one, whole[whole["school_year"] == 2025].reset_index(drop=True))


def test_closing_needs_the_group_to_improve():
    # Higher is better. BL 30% -> 28% (worse), others 70% -> 40%: gap -40 -> -12, narrowed by the reference falling.
    rows = pd.DataFrame(_school_year(2024, {"BL": (30, 100), "WH": (70, 100)})
                        + _school_year(2025, {"BL": (28, 100), "WH": (40, 100)}))
    bl = _bl(gap_table(rows, "others", {"m": True}))
    # V = .29·.71·.02 + .55·.45·.02 = .009068; z = .28/.095226 = 2.9404; p = .003278 (one test: q = p)
    assert bl.loc[2025, "p_value"] == pytest.approx(0.003278, rel=0.001)
    assert bl.loc[2025, "q_value"] == pytest.approx(bl.loc[2025, "p_value"])
    assert bl.loc[2025, "trend"] == CLOSING_REF
    # BL 30% -> 50%, others 70% -> 70%: the group improved, the gap narrowed: closing.
    rows = pd.DataFrame(_school_year(2024, {"BL": (30, 100), "WH": (70, 100)})
                        + _school_year(2025, {"BL": (50, 100), "WH": (70, 100)}))
    assert _bl(gap_table(rows, "others", {"m": True})).loc[2025, "trend"] == CLOSING


def test_closing_respects_lower_is_better():
    # A suspension-like rate: BL 40/200 = 20% -> 24/200 = 12%, others 10/200 = 5% -> 12/200 = 6%.
    # Gap +15 -> +6; BL's own rate fell, which is the good way for this metric: closing.
    rows = pd.DataFrame(_school_year(2024, {"BL": (40, 200), "WH": (10, 200)})
                        + _school_year(2025, {"BL": (24, 200), "WH": (12, 200)}))
    bl = _bl(gap_table(rows, "others", {"m": False}))
    assert bl.loc[2025, "gap_change"] == pytest.approx(-9.0)
    assert bl.loc[2025, "trend"] == CLOSING
    # The same numbers for a higher-is-better metric: BL fell, so only the reference made it close.
    assert _bl(gap_table(rows, "others", {"m": True})).loc[2025, "trend"] == CLOSING_REF


def test_widening_and_value_only_rows():
    rows = pd.DataFrame(_school_year(2024, {"BL": (50, 100), "WH": (60, 100)})
                        + _school_year(2025, {"BL": (30, 100), "WH": (70, 100)}))
    assert _bl(gap_table(rows)).loc[2025, "trend"] == WIDENING  # -10 -> -40
    # Value-only rows (no counts) against the target: the change is shown, never tested.
    value_only = rows.assign(numerator=np.nan, denominator=np.nan,
                             target=np.where(rows["student_group"] == "ALL", 55.0, np.nan))
    bl = _bl(gap_table(value_only, "target"))
    assert bl.loc[2025, "gap_change"] == pytest.approx(-20.0)  # 50 - 55 -> 30 - 55
    assert bl.loc[2025, "trend"] == NO_COUNTS and np.isnan(bl.loc[2025, "p_value"])


def test_bh_q_values_by_hand():
    # sorted p .01 .03 .04 .5 (m = 4): .04, .06, .0533, .5 -> step-up minimum: .04, .0533, .0533, .5
    q = bh_q_values(pd.Series([0.01, 0.04, np.nan, 0.03, 0.5]))
    assert q.tolist()[:2] == pytest.approx([0.04, 0.16 / 3])
    assert np.isnan(q.iloc[2]) and q.iloc[3] == pytest.approx(0.16 / 3) and q.iloc[4] == pytest.approx(0.5)


def _family(p_values):
    n = len(p_values)
    return pd.DataFrame({"metric": "m", "p_value": p_values, "gap": [-5.0] * n, "previous_gap": [-15.0] * n,
                         "value": [60.0] * n, "previous_value": [50.0] * n, "gap_change": [10.0] * n,
                         "untested": [""] * n})


def test_a_label_needs_q_below_ten_percent_across_the_family():
    # p .004 .045 .06 .5 .9 (m = 5): q = .02, min(.1125, .1, ...) = .1, .1, .625, .9.
    # Raw p < .05 would label two changes; BH at q < .10 labels one.
    labelled = label_gaps(_family([0.004, 0.045, 0.06, 0.5, 0.9]), {"m": True})
    assert labelled["q_value"].tolist() == pytest.approx([0.02, 0.1, 0.1, 0.625, 0.9])
    assert labelled["trend"].tolist() == [CLOSING, NO_CHANGE, NO_CHANGE, NO_CHANGE, NO_CHANGE]
    # Alone, the p = .045 change is its own family: q = .045 < .10, labelled.
    assert label_gaps(_family([0.045]), {"m": True})["trend"].tolist() == [CLOSING]


def test_family_counts_and_labels_expected_by_chance():
    labelled = label_gaps(_family([0.001, 0.002, 0.003, 0.8]), {"m": True})
    family = gap_family(labelled)
    # Three labels at q < .10: BH threshold t* = .10 * 3 / 4; 4 tests x t* = 0.3 expected by chance.
    assert (family.n_tests, family.n_labelled) == (4, 3)
    assert family.expected_by_chance == pytest.approx(0.3)
    assert "3 of 4 tested gap changes labelled, about 0.3 expected by chance" in family.sentence


def test_best_group_is_fixed_by_the_latest_year_and_never_compared_with_itself():
    # 2024: WH 90% is best; 2025: AS 92% beats WH 88%. The reference is AS in both years.
    rows = pd.DataFrame(_school_year(2024, {"AS": (85, 100), "WH": (90, 100), "BL": (60, 100)})
                        + _school_year(2025, {"AS": (92, 100), "WH": (88, 100), "BL": (62, 100)}))
    table = gap_table(rows, "best_group", {"m": True})
    assert "AS" not in set(table["student_group"])
    wh = table[table["student_group"] == "WH"].set_index("school_year")
    assert wh.loc[2024, "gap"] == pytest.approx(90 - 85) and wh.loc[2025, "gap"] == pytest.approx(88 - 92)
    # Fixed by an earlier view year instead: WH is the reference and has no row.
    assert "WH" not in set(gap_table(rows, "best_group", {"m": True}, reference_year=2024)["student_group"])


def test_mantel_haenszel_within_school_gap_and_simpson_note():
    # School A: BL 90/100, others 800/1000; school B: BL 300/1000, others 20/100. +10 points in each school.
    # Pooled: 390/1100 = 35.45% vs 820/1100 = 74.55% -> -39.1 points. MH: (9.0909 + 9.0909)/(90.909 + 90.909) = .10
    rows = pd.DataFrame(_school_year(2025, {"BL": (90, 100), "WH": (800, 1000)}, school="A")
                        + _school_year(2025, {"BL": (300, 1000), "WH": (20, 100)}, school="B"))
    trend = pooled_gap_trend(rows).set_index("student_group")
    assert trend.loc["BL", "gap"] == pytest.approx(100 * (390 - 820) / 1100)
    assert trend.loc["BL", "mh_gap"] == pytest.approx(10.0)
    assert bool(trend.loc["BL", "simpson"]) and trend.loc["BL", "n_schools"] == 2


def test_sato_variance_reduces_to_wald_in_one_stratum():
    # One stratum 30/100 vs 20/100: Var = (.1·(-2.5) + 9.5)/50² = .0037 = .3·.7/100 + .2·.8/100
    rd, low, high = mantel_haenszel_rd(np.array([30]), np.array([100]), np.array([20]), np.array([100]))
    assert rd == pytest.approx(0.1)
    assert (high - low) / 2 == pytest.approx(1.959964 * np.sqrt(0.0037))


def test_gaps_export_has_previous_year_and_q_values_over_the_exported_rows(tmp_path, monkeypatch, capsys):
    import io

    from analytics import cli

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    (tmp_path / "schools.csv").write_text("school_id,school_name,level,cluster\nS,Stone Elementary,ES,North\n")
    lines = ["school_id,school_year,metric,student_group,numerator,denominator"]
    # BL 20% (2016), 60% (2018), 30% (2019); WH 60% every year. 2018 follows a missing year.
    for year, bl in ((2016, 20), (2018, 60), (2019, 30)):
        lines += [f"S,{year},read_proficient,ALL,{bl + 60},200", f"S,{year},read_proficient,BL,{bl},100",
                  f"S,{year},read_proficient,WH,60,100"]
    (tmp_path / "metrics.csv").write_text("\n".join(lines) + "\n")
    assert cli.main(["import", str(tmp_path / "schools.csv"), str(tmp_path / "metrics.csv")]) == 0
    capsys.readouterr()
    assert cli.main(["export", "gaps", "--group", "BL"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("school_year")
    assert np.isnan(table.loc[2018, "previous_year"]) and np.isnan(table.loc[2018, "q_value"])
    # 2019: gap 0 (2018) -> -30; the only test exported, so q = p; the gap grew: widening.
    assert table.loc[2019, "previous_year"] == 2018
    assert table.loc[2019, "q_value"] == pytest.approx(table.loc[2019, "p_value"])
    assert table.loc[2019, "trend"] == WIDENING


def test_gaps_page_labels_one_family_and_suppresses_for_shared_views(on_demo):
    from tests.page_runner import run_page

    at = run_page("gaps", metric="math_growth", year="2025", level="ES")
    findings = at.markdown[0].value
    assert "labelled, about" in findings and "expected by chance" in findings
    table = at.dataframe[-1].value
    assert "q_value" in table and table["verdict"].str.contains("no significant change").any()
    shared = run_page("gaps", metric="math_growth", year="2025", level="ES", share="token-checked-by-the-app-shell")
    public = shared.dataframe[-1].value
    assert public.isin(["*"]).any().any() or public.isin(["<= 5.0%", ">= 95.0%"]).any().any()
    assert (public["gap"] != "*").any()  # released rows stay readable


def test_overview_and_cluster_rank_by_adjusted_rate(on_demo):
    from analytics.data import loads
    from tests.page_runner import run_page

    at = run_page("overview", year="2025", metric="read_proficient", group="ALL")
    attention = at.dataframe[-1].value
    assert {"adjusted", "reliability", "value"} <= set(attention.columns)
    cluster = loads.load_schools(on_demo)["cluster"].iloc[0]
    at = run_page("cluster", cluster=cluster, year="2025", metric="read_proficient", group="SWD")
    schools = at.dataframe[-1].value
    adjusted = schools["adjusted"].dropna()
    assert adjusted.is_monotonic_increasing  # worst first for a higher-is-better metric


def test_a_gap_finding_follows_its_q_value_not_its_p_value():
    from analytics.outputs.findings import gap_finding

    # p = .03 alone would be "significant"; within a family its q = .12 is not below .10.
    text = gap_finding("Asian", "Reading", 50.0, 40.0, 0.03, 200, q_value=0.12)
    assert "not a significant difference" in text and "q = 0.120" in text
    assert "q < 0.001" in gap_finding("Asian", "Reading", 50.0, 40.0, 1e-6, 200, q_value=1e-5)
    assert "a significant difference" in gap_finding("Asian", "Reading", 50.0, 40.0, 0.03, 200)  # no family given
