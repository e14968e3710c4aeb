"""Page summaries from the database's sums equal the same summaries pooled in pandas from every row.

The overview, cluster and school pages read pooled figures from ``analytics.data.aggregates`` (SQL
``GROUP BY``) and only the one group's rows they draw; these tests compute each figure both ways on a
small demo district (one metric made value-only, one school's suppressed counts, the derived suspension
rate) on SQLite and PostgreSQL, plus hand-computed sums and votes.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.data import aggregates, aggregates_discipline, aggregates_status, bulk_write, loads, schema, storage
from analytics.data.demo import build_demo
from analytics.data.derived import metrics_with_suspension
from analytics.stats.gaps import REFERENCES, gap_table, label_gaps, pooled_gap_trend, pooled_gap_trend_from_sums
from analytics.stats.summaries import (
    MEDIAN,
    POOLED,
    cluster_table,
    cluster_table_from_counts,
    data_limits,
    district_values,
    summary_kpi,
    summary_kpi_from_counts,
)

NAN = float("nan")
VALUE_ONLY = "read_proficient"


@pytest.fixture
def demo(engine):
    """A 12-school, 3-year demo district: one metric published as values only, some counts suppressed."""
    frames = build_demo(schools=12, years=3, seed=7)
    metrics = frames["metrics"]
    metrics = metrics[metrics["metric"] != "suspension_rate"].copy()  # suspension rate derived from discipline
    value_only = metrics["metric"] == VALUE_ONLY
    metrics.loc[value_only, ["numerator", "denominator"]] = np.nan
    first = metrics["school_id"] == metrics["school_id"].iloc[0]
    metrics.loc[first & (metrics["student_group"] == "BL"), ["numerator", "denominator"]] = np.nan
    bulk_write.replace_all(engine, {**frames, "metrics": metrics})
    return engine


def _every_row(engine, metric: str) -> pd.DataFrame:
    """What pages read before: every row of the metric (suspension rate derived when not imported)."""
    rows = loads.load_metrics(engine, metrics=[metric])
    if metric == "suspension_rate" and rows.empty:
        rows = metrics_with_suspension(rows, loads.load_discipline(engine))
    return rows


def _same_kpi(got, want) -> None:
    for field, value in asdict(want).items():
        other = asdict(got)[field]
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(other, float) and math.isnan(other), field
        else:
            assert other == pytest.approx(value, rel=1e-12, abs=1e-12), field


def test_kpis_and_cluster_tables_match_pandas_pooling(demo):
    schools = loads.load_schools(demo)
    years = loads.available_years(demo)
    members = sorted(schools.loc[schools["cluster"] == schools["cluster"].iloc[0], "school_id"])
    checked = 0
    for metric in ("math_proficient", VALUE_ONLY, "suspension_rate"):
        rows = _every_row(demo, metric)
        for group in ("ALL", "BL"):
            slice_ = aggregates.metric_slice(demo, metric, group)
            want_slice = rows[rows["student_group"] == group]
            assert len(slice_) == len(want_slice) > 0, (metric, group)
            by_year = aggregates.group_counts(demo, metric, group, ["school_year"])
            in_cluster = aggregates.group_counts(demo, metric, group, ["school_year"], school_ids=members)
            cluster_rows = rows[rows["school_id"].isin(members)]
            # The cluster page sums the cluster's part of the slice it has read instead of asking again.
            pd.testing.assert_frame_equal(
                aggregates.counts_from_rows(slice_[slice_["school_id"].isin(members)], ["school_year"]), in_cluster)
            for year in years:
                district = summary_kpi(rows, year, group, years)
                _same_kpi(summary_kpi_from_counts(by_year, slice_, year, group, years), district)
                _same_kpi(summary_kpi_from_counts(in_cluster, slice_[slice_["school_id"].isin(members)], year,
                                                  group, years, basis=district.basis),
                          summary_kpi(cluster_rows, year, group, years, basis=district.basis))
                checked += 1
            by_cluster = aggregates.group_counts(demo, metric, group, ["cluster"], years=[years[-1]])
            pd.testing.assert_frame_equal(cluster_table_from_counts(by_cluster, slice_, schools, years[-1], group),
                                          cluster_table(rows, schools, years[-1], group), check_dtype=False)
    assert checked == 18
    assert summary_kpi_from_counts(by_year, slice_, years[-1], "BL", years).basis == POOLED


def test_value_only_metric_is_a_median(demo):
    counts = aggregates.group_counts(demo, VALUE_ONLY, "ALL", ["school_year"])
    assert (counts["n_schools"] == 0).all() and (counts["n_value_only"] == 12).all()
    years = loads.available_years(demo)
    kpi = summary_kpi_from_counts(counts, aggregates.metric_slice(demo, VALUE_ONLY, "ALL"), years[-1], "ALL", years)
    assert kpi.basis == MEDIAN and kpi.n_schools == 12


@pytest.mark.parametrize("year_index", [0, -1])
def test_district_figures_match_every_row_of_the_year(demo, year_index):
    year = loads.available_years(demo)[year_index]
    every = metrics_with_suspension(loads.load_metrics(demo, years=[year]), loads.load_discipline(demo, years=[year]))
    want = district_values(every, ["metric", "student_group"])
    got = aggregates.district_figures(demo, year)
    keys = ["metric", "student_group"]
    got = got.sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(got, want.sort_values(keys, ignore_index=True), check_dtype=False)
    assert set(got.loc[got["metric"] == VALUE_ONLY, "basis"]) == {MEDIAN}
    assert "suspension_rate" in set(got["metric"])


def test_counts_and_votes_by_hand(sqlite_engine):
    schools = pd.DataFrame({"school_id": ["A", "B", "C"], "school_name": ["Ash", "Birch", "Cove"],
                            "level": ["ES"] * 3, "cluster": ["North", "North", "South"]})
    # A counted, B value-only, C no students (left out, no value): 1 pooled row, 1 value-only vote
    metrics = pd.DataFrame({"school_id": ["A", "B", "C"], "school_year": 2024, "metric": "m", "student_group": "BL",
                            "numerator": [10, NAN, 0], "denominator": [20, NAN, 0], "value": [NAN, 50.0, NAN]})
    bulk_write.replace_all(sqlite_engine, {"schools": schools, "metrics": metrics})
    got = aggregates.metric_counts(sqlite_engine, ["cluster"])
    assert got.to_dict("list") == {"cluster": ["North", "South"], "numerator": [10.0, 0.0],
                                   "denominator": [20.0, 0.0], "n_schools": [1, 0], "n_rows": [2, 1],
                                   "n_value_only": [1, 0]}
    pandas = aggregates.counts_from_rows(loads.load_metrics(sqlite_engine).merge(schools, on="school_id"),
                                         ["cluster"])
    pd.testing.assert_frame_equal(got, pandas)
    assert aggregates.metric_groups(sqlite_engine, "m") == ["BL"]


def test_page_queries_use_the_indexes(demo, capsys):
    plans = aggregates.explain_pages(demo, "math_proficient", "BL", 2025, index_scans_only=True)
    with capsys.disabled():
        print(f"\n{demo.dialect.name} plans of the page queries:")
        for name, plan in plans.items():
            print(f"-- {name}\n{plan}")
    # On PostgreSQL the unique key leads with the metric and group (migration 0014) and serves these reads.
    by_metric = "ix_metrics_metric_group_year" if demo.dialect.name == "sqlite" else "uq_metrics_key"
    for name in ("group rows, every year (metric_slice)", "pooled per year (KPI)", "district ALL (gap reference)",
                 "groups of a metric (filter bar)"):
        assert by_metric in plans[name], name
    for name in ("pooled per cluster (cluster table)", "pooled per metric x group (district figures)"):
        assert "ix_metrics_year_metric" in plans[name] or by_metric in plans[name], name


# --- disproportionality: the district's comparison risks from SQL, ratios per scope ---------------------


@pytest.fixture
def discipline_demo(engine):
    """A demo district whose discipline file lacks ALL rows in places (summed from races, one of them
    suppressed) and has suppressed group counts and an empty suspended count (OSS used instead)."""
    bulk_write.replace_all(engine, _discipline_demo_frames())
    return engine


def _discipline_demo_frames() -> dict[str, pd.DataFrame]:
    frames = build_demo(schools=12, years=4, seed=3)
    discipline = frames["discipline"].copy()
    ids = sorted(discipline["school_id"].unique())
    no_all = (discipline["student_group"] == "ALL") & discipline["school_id"].isin(ids[:3])
    discipline = discipline[~no_all].copy()
    race_hidden = (discipline["school_id"] == ids[1]) & (discipline["student_group"] == "AS")
    discipline.loc[race_hidden, "students_oss"] = np.nan
    discipline.loc[discipline["school_id"] == ids[4], ["students_suspended"]] = np.nan
    hidden = (discipline["school_id"] == ids[5]) & (discipline["student_group"] == "SWD")
    discipline.loc[hidden, ["students_iss", "students_suspended"]] = np.nan
    return {**frames, "discipline": discipline}


def test_district_risks_from_sql_match_pandas(discipline_demo):
    from analytics.stats.disproportionality import district_risks

    want = district_risks(loads.load_discipline(discipline_demo))
    got = aggregates_discipline.district_risks(discipline_demo)
    assert got.outcomes == want.outcomes
    keys = ["school_year", "outcome", "student_group"]
    pd.testing.assert_frame_equal(got.risks.sort_values(keys, ignore_index=True),
                                  want.risks[got.risks.columns].sort_values(keys, ignore_index=True),
                                  check_dtype=False, rtol=1e-12)
    assert len(got.risks) > 100


def test_an_outcome_counted_in_one_row_is_an_outcome_and_one_counted_nowhere_is_not(engine):
    frames = _discipline_demo_frames()
    discipline = frames["discipline"].assign(law_referrals=np.nan, students_expelled=np.nan)
    discipline.loc[discipline.index[-1], "students_expelled"] = 1
    bulk_write.replace_all(engine, {**frames, "discipline": discipline})
    assert aggregates_discipline.discipline_outcomes(engine) == ("suspension", "iss", "oss", "expulsion")


def test_disproportionality_of_a_cluster_with_the_district_risks(discipline_demo):
    from analytics.stats.disproportionality import disproportionality

    every = loads.load_discipline(discipline_demo)
    whole = disproportionality(every)
    schools = loads.load_schools(discipline_demo)
    risks = aggregates_discipline.district_risks(discipline_demo)
    for cluster in schools["cluster"].unique():
        ids = schools.loc[schools["cluster"] == cluster, "school_id"]
        part = disproportionality(every[every["school_id"].isin(ids)], district=risks)
        want = whole[whole["school_id"].isin(ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, want, check_dtype=False)
    assert (whole["ratio_type"] == "alternate").any()


# --- gaps: the view's two years as rows, the trend over every year as sums per year and group ---------------


def test_gap_trend_sums_by_hand(engine):
    schools = pd.DataFrame({"school_id": ["A", "B", "C"], "school_name": ["Ash", "Birch", "Cove"],
                            "level": ["ES"] * 3, "cluster": ["North", "North", "South"]})
    # A: BL 10/20 of ALL 30/100 (others 20/80). B: BL 5/40 of ALL 40/120 (others 35/80); HI 45/50 is more
    # than ALL's 40 (others -5: left out). C: BL 0 of 0 (pooled, but no stratum), others 3/7. X is no known school.
    rows = [("A", "ALL", 30, 100), ("A", "BL", 10, 20), ("B", "ALL", 40, 120), ("B", "BL", 5, 40),
            ("B", "HI", 45, 50), ("C", "ALL", 3, 7), ("C", "BL", 0, 0), ("X", "ALL", 10, 10), ("X", "BL", 0, 5)]
    metrics = pd.DataFrame(rows, columns=["school_id", "student_group", "numerator", "denominator"]).assign(
        school_year=2024, metric="m", value=NAN)
    bulk_write.replace_all(engine, {"schools": schools, "metrics": metrics})
    sums = aggregates.gap_trend_sums(engine, "m")
    assert sums["student_group"].tolist() == ["BL"]
    bl = sums.iloc[0]
    assert (bl["numerator"], bl["denominator"], bl["ref_num"], bl["ref_den"], bl["n_strata"]) == (15, 60, 58, 167, 2)
    # Mantel-Haenszel terms: A (10*80 - 20*20)/100 = 4, 20*80/100 = 16; B (5*80 - 35*40)/120 = -25/3, 3200/120
    assert bl["mh_num"] == pytest.approx(4 - 25 / 3, rel=1e-12)
    assert bl["mh_weight"] == pytest.approx(16 + 80 / 3, rel=1e-12)
    # Sato's P: A (400*20 - 6400*10 + 1600*60/2)/100^2 = -0.8, B (1600*35 - 6400*5 + 3200*40/2)/120^2 = 55/9
    assert bl["mh_p"] == pytest.approx(-0.8 + 55 / 9, rel=1e-12)
    # Q: A (10*60 + 20*10)/200 = 4, B (5*45 + 35*35)/240 = 145/24
    assert bl["mh_q"] == pytest.approx(4 + 145 / 24, rel=1e-12)
    trend = pooled_gap_trend_from_sums(sums).iloc[0]
    assert trend["mh_gap"] == pytest.approx(100 * -13 / 128, rel=1e-12)  # (-13/3) / (128/3)
    assert trend["gap"] == pytest.approx(100 * (15 / 60 - 58 / 167), rel=1e-12)
    assert (trend["n_schools"], trend["simpson"]) == (2, False)
    assert aggregates.gap_trend_sums(engine, "m", ["A"])[["numerator", "ref_den", "n_strata"]].iloc[0].tolist() == [
        10, 80, 1]
    assert aggregates.gap_trend_sums(engine, "m", []).empty


def test_gap_trend_from_sql_matches_every_row(demo):
    schools = loads.load_schools(demo)
    members = sorted(schools.loc[schools["cluster"] == schools["cluster"].iloc[0], "school_id"])
    for metric in ("math_proficient", VALUE_ONLY, "suspension_rate"):
        rows = _every_row(demo, metric)
        for ids in (None, members):
            scope = rows if ids is None else rows[rows["school_id"].isin(ids)]
            got = pooled_gap_trend_from_sums(aggregates.gap_trend_sums(demo, metric, ids))
            pd.testing.assert_frame_equal(got, pooled_gap_trend(scope), check_dtype=False, rtol=1e-12)
            assert len(got) > 0 or metric == VALUE_ONLY


@pytest.mark.parametrize("reference", REFERENCES)
def test_gaps_of_a_year_need_only_that_year_and_the_one_before(demo, reference):
    """What the gaps page reads (aggregates.metric_rows of two years) gives the year's labelled gaps, status
    and change and data limits of every year's rows."""
    higher = {"math_proficient": True, "suspension_rate": False}
    year = loads.available_years(demo)[-1]
    for metric in ("math_proficient", "suspension_rate"):
        every = _every_row(demo, metric)
        two = aggregates.metric_rows(demo, metric, [year - 1, year])
        assert set(two["school_year"]) == {year - 1, year}

        def labelled(rows):
            table = gap_table(rows, reference, higher, reference_year=year, label=False)
            return label_gaps(table[table["school_year"] == year], higher).reset_index(drop=True)

        want = labelled(every)
        pd.testing.assert_frame_equal(labelled(two), want, check_dtype=False)
        assert want["gap_change"].notna().any() or reference == "target"  # the demo sets few targets
        assert data_limits(two, year, metric) == data_limits(every, year, metric)


# --- the years: a loose index scan or the partitions, never every row ------------------------------------------


def test_years_held_by_hand(engine):
    """Metrics of 2022 and 2024, discipline of 2023 and 2024: the years are 2022-2024, each table's its own;
    once 2022's metrics rows are deleted (PostgreSQL keeps the emptied partition) 2022 is gone."""
    frames = build_demo(schools=4, years=3, seed=5)
    first, _, last = sorted(int(y) for y in frames["metrics"]["school_year"].unique())
    metrics, discipline = frames["metrics"], frames["discipline"]
    bulk_write.replace_all(engine, {**frames, "metrics": metrics[metrics["school_year"] != first + 1],
                                    "discipline": discipline[discipline["school_year"] != first]})
    assert loads.table_years(engine, "metrics") == [first, last]
    assert aggregates_discipline.discipline_years(engine) == [first + 1, last]
    assert loads.available_years(engine) == [first, first + 1, last]
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.metrics).where(schema.metrics.c.school_year == first))
        if engine.dialect.name == "postgresql":
            assert first in storage.year_partitions(conn, "metrics")
    assert loads.table_years(engine, "metrics") == [last]
    assert loads.available_years(engine) == [first + 1, last]
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.metrics))
        conn.execute(sa.delete(schema.discipline))
    assert loads.available_years(engine) == [] == aggregates_discipline.discipline_years(engine)


def test_years_read_no_table_whole(discipline_demo):
    """SQLite seeks the year-first indexes (no `SCAN` of a table); PostgreSQL reads at most one row of each
    year's partition: the rows its plan's scans return add up to the number of years, not the table's rows."""
    engine = discipline_demo
    with engine.connect() as conn:
        statements = {name: loads.years_statement(conn, name) for name in loads.YEARS_TABLES}
    for name, stmt in statements.items():
        compiled = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled)]
                assert not [step for step in plan if step.split()[:2] == ["SCAN", name]], plan
                assert any(step.startswith(f"SEARCH {name} USING COVERING INDEX") for step in plan), plan
                continue
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + compiled).scalar()[0]["Plan"]
        scans = list(_scan_nodes(plan))
        assert scans and {node["Relation Name"] for node in scans} == {f"{name}_y{y}" for y in (2022, 2023, 2024, 2025)}
        assert sum(node["Actual Rows"] * node["Actual Loops"] for node in scans) == 4, scans


def _scan_nodes(node: dict):
    """The plan nodes that read a table (PostgreSQL's JSON plan)."""
    if "Relation Name" in node:
        yield node
    for child in node.get("Plans", []):
        yield from _scan_nodes(child)


# --- discipline: options by DISTINCT, disproportionality read a part at a time ------------------------------


def test_discipline_options_by_hand(discipline_demo):
    every = loads.load_discipline(discipline_demo)
    assert aggregates_discipline.discipline_years(discipline_demo) == sorted(every["school_year"].unique()) == [
        2022, 2023, 2024, 2025]
    assert set(aggregates_discipline.discipline_groups(discipline_demo)) == set(every["student_group"]) | {"ALL"}
    ids = sorted(every["school_id"].unique())
    assert aggregates_discipline.discipline_school_ids(discipline_demo) == ids
    assert aggregates_discipline.discipline_school_ids(discipline_demo, [ids[2], "nowhere", ids[0]]) == [ids[0], ids[2]]


def test_disproportionality_read_in_parts_is_the_whole_table(discipline_demo):
    from analytics.stats.disproportionality import disproportionality

    every = loads.load_discipline(discipline_demo)
    whole = disproportionality(every)
    got = pd.concat(list(aggregates_discipline.disproportionality_parts(discipline_demo, schools_per_part=5)))
    pd.testing.assert_frame_equal(got, whole, check_dtype=False, rtol=1e-12)
    schools = loads.load_schools(discipline_demo)
    ids = sorted(schools.loc[schools["cluster"] == schools["cluster"].iloc[0], "school_id"])
    part = pd.concat(list(aggregates_discipline.disproportionality_parts(discipline_demo, ids, schools_per_part=2)))
    pd.testing.assert_frame_equal(part, whole[whole["school_id"].isin(ids)].reset_index(drop=True),
                                  check_dtype=False, rtol=1e-12)
    assert list(aggregates_discipline.disproportionality_parts(discipline_demo, []))[0].empty


def test_gap_trend_and_discipline_reads_use_the_indexes(discipline_demo, capsys):
    plans = {
        "gap trend sums": aggregates.explain(discipline_demo, aggregates.gap_trend_statement("math_proficient"),
                                             index_scans_only=True),
        "a part's discipline rows": aggregates.explain(
            discipline_demo, aggregates_discipline.discipline_part_statement(["100000", "100001"]),
            index_scans_only=True),
    }
    with capsys.disabled():
        print(f"\n{discipline_demo.dialect.name} plans of the gaps and discipline reads:")
        for name, plan in plans.items():
            print(f"-- {name}\n{plan}")
    # The ALL rows are found by metric and group, the group rows without a scan of the table (SQLite names a
    # UNIQUE constraint's index sqlite_autoindex_<table>_1; on PostgreSQL the key leads with metric and group); a
    # part's rows by the school (SQLite's key leads with it, PostgreSQL has an index on it).
    trend = plans["gap trend sums"]
    assert "ix_metrics_metric_group_year" in trend or "uq_metrics_key" in trend
    assert "Seq Scan on metrics" not in trend and "SCAN g" not in trend and "SCAN metrics" not in trend
    if discipline_demo.dialect.name == "sqlite":
        assert "sqlite_autoindex_metrics_1" in trend
    else:  # the ALL rows joined as the table's rows, estimated from its statistics (no materialized CTE)
        assert "CTE Scan" not in trend and "CTE all_rows" not in trend
    assert any(name in plans["a part's discipline rows"] for name in ("ix_discipline_school",
                                                                      "sqlite_autoindex_discipline_1"))


# --- medians of value-only metrics, computed by the database --------------------------------------------------


def test_median_values_by_hand(engine):
    schools = pd.DataFrame({"school_id": list("ABCDE"), "school_name": list("ABCDE"), "level": ["ES"] * 5,
                            "cluster": ["North", "North", "North", "South", "South"]})
    # 2024 BL: 10, 20, 40 and a suppressed value: median 20 (odd), range 10-40, one row left out.
    # 2024 HI: 1.5, 2.5, 4 and 10: median (2.5 + 4) / 2 = 3.25 (even). 2023 BL: no value at all.
    rows = [("A", 2024, "BL", 10.0), ("B", 2024, "BL", 40.0), ("C", 2024, "BL", NAN), ("D", 2024, "BL", 20.0),
            ("A", 2024, "HI", 10.0), ("B", 2024, "HI", 2.5), ("C", 2024, "HI", 1.5), ("D", 2024, "HI", 4.0),
            ("E", 2023, "BL", NAN)]
    metrics = pd.DataFrame(rows, columns=["school_id", "school_year", "student_group", "value"]).assign(
        metric="m", numerator=NAN, denominator=NAN)
    bulk_write.replace_all(engine, {"schools": schools, "metrics": metrics})
    got = aggregates.median_values(engine, ["school_year", "student_group"])
    assert got[["school_year", "student_group"]].values.tolist() == [[2023, "BL"], [2024, "BL"], [2024, "HI"]]
    assert got["value"].tolist()[1:] == [20.0, 3.25] and math.isnan(got["value"].iloc[0])
    assert got["low"].tolist()[1:] == [10.0, 1.5] and got["high"].tolist()[1:] == [40.0, 10.0]
    assert got["n_schools"].tolist() == [0, 3, 4] and got["n_rows_left_out"].tolist() == [1, 1, 0]
    by_cluster = aggregates.median_values(engine, ["cluster"], years=[2024], groups=["HI"])
    assert by_cluster[["cluster", "value"]].values.tolist() == [["North", 2.5], ["South", 4.0]]
    from analytics.stats.summaries import median_of_values

    pd.testing.assert_frame_equal(got, median_of_values(loads.load_metrics(engine),
                                                        ["school_year", "student_group"]), check_dtype=False)


def test_median_values_match_pandas_on_the_demo(demo):
    from analytics.stats.summaries import median_of_values

    rows = loads.load_metrics(demo, metrics=[VALUE_ONLY]).merge(loads.load_schools(demo)[["school_id", "cluster"]],
                                                                on="school_id")
    for keys in (["school_year", "student_group"], ["cluster", "school_year"]):
        got = aggregates.median_values(demo, keys, metrics=[VALUE_ONLY])
        want = median_of_values(rows, keys)
        assert len(got) >= 6
        pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=0, atol=0)  # the same operations


def test_median_reads_use_the_metrics_indexes(demo, capsys):
    medians, ranges = aggregates.median_statements(["metric", "student_group"], years=[2025], metrics=[VALUE_ONLY])
    plans = [aggregates.explain(demo, stmt, index_scans_only=True) for stmt in (medians, ranges)]
    with capsys.disabled():
        print(f"\n{demo.dialect.name} plans of the median reads:\n" + "\n--\n".join(plans))
    for plan in plans:
        assert any(name in plan for name in ("ix_metrics_year_metric", "ix_metrics_metric_group_year", "uq_metrics_key"))


# --- restorative practices: the rows its outcomes read, summed by the database where ALL is missing --------


def test_rp_outcome_rows_by_hand(engine):
    # A 2024 has no ALL row: its race rows (BL, WH, HI) are read for the panel to sum; its SWD row is read too,
    # its ELL row is not. B has its own ALL row, so its HI row is not read. Only the four RP counts are read.
    schools = pd.DataFrame({"school_id": ["A", "B"], "school_name": ["Ash", "Birch"], "level": ["ES"] * 2,
                            "cluster": ["North"] * 2})
    rows = [("A", "BL", 30, 3, 2, 5), ("A", "WH", 70, 4, NAN, 6), ("A", "HI", 5, 0, 0, 0), ("A", "SWD", 9, 1, 1, 1),
            ("A", "ELL", 8, 1, 1, 1), ("B", "ALL", 50, 5, 1, 2), ("B", "HI", 20, 2, 0, 1), ("B", "WH", 10, 0, 0, 0)]
    discipline = pd.DataFrame(rows, columns=["school_id", "student_group", "enrolled", "students_suspended",
                                             "students_oss", "oss_days"]).assign(school_year=2024, incidents=3)
    bulk_write.replace_all(engine, {"schools": schools, "discipline": discipline})
    got = aggregates_discipline.rp_outcome_rows(engine).set_index(["school_id", "student_group"]).sort_index()
    assert got.index.tolist() == [("A", "BL"), ("A", "HI"), ("A", "SWD"), ("A", "WH"), ("B", "ALL"), ("B", "WH")]
    assert list(got.columns) == ["school_year", "enrolled", "students_suspended", "students_oss", "oss_days"]
    assert got.loc[("A", "WH")].tolist()[1:3] == [70, 4] and math.isnan(got.loc[("A", "WH"), "students_oss"])
    assert sorted(aggregates_discipline.rp_outcome_rows(engine, ["B"])["student_group"]) == ["ALL", "WH"]


def test_rp_impact_from_sql_rows_matches_the_whole_table(discipline_demo):
    from analytics.stats.rp_impact import outcome_panel, rp_impact, rp_impact_for_cluster

    every, rows = loads.load_discipline(discipline_demo), aggregates_discipline.rp_outcome_rows(discipline_demo)
    schools = loads.load_schools(discipline_demo)
    assert len(rows) < len(every) / 2
    pd.testing.assert_frame_equal(outcome_panel(schools, rows), outcome_panel(schools, every), check_exact=True)
    for scope in (lambda d: rp_impact(schools, d),
                  lambda d: rp_impact_for_cluster(schools, d, schools["cluster"].iloc[0])):
        want, got = scope(every), scope(rows)
        pd.testing.assert_frame_equal(got.summary, want.summary, check_exact=True)
        pd.testing.assert_frame_equal(got.event_study, want.event_study, check_exact=True)
        assert got.statement == want.statement


def test_a_schools_reads_use_the_key_index(demo, capsys):
    """The school page reads its school's metric and discipline rows by an index leading with the school (SQLite:
    the unique key; PostgreSQL, whose key leads with metric and group: the school index), not by scanning the
    district's rows."""
    from analytics.data import schema

    school = loads.load_schools(demo)["school_id"].iloc[0]
    for table in (schema.metrics, schema.discipline):
        plan = aggregates.explain(demo, loads._filtered(table, school_id=[school]), index_scans_only=True)
        with capsys.disabled():
            print(f"\n{demo.dialect.name} plan of one school's {table.name} rows:\n{plan}")
        assert f"ix_{table.name}_school" in plan or f"sqlite_autoindex_{table.name}_1" in plan, plan


def test_discipline_scope_sums_by_hand(engine):
    # A 2024 has no ALL row: ALL = BL + WH = 30 + 70 enrolled, 3 + 4 suspended; WH's OSS count is unknown, so
    # ALL's is too, but its suspension count is known (students suspended). B: ALL 50 (5 suspended) and BL 10
    # with an unknown suspended count (OSS 2 used for its suspension count, not for students_suspended).
    schools = pd.DataFrame({"school_id": ["A", "B"], "school_name": ["Ash", "Birch"], "level": ["ES"] * 2,
                            "cluster": ["North"] * 2})
    rows = [("A", "BL", 30, 3, 2), ("A", "WH", 70, 4, NAN), ("B", "ALL", 50, 5, 1), ("B", "BL", 10, NAN, 2)]
    discipline = pd.DataFrame(rows, columns=["school_id", "student_group", "enrolled", "students_suspended",
                                             "students_oss"]).assign(school_year=2024)
    bulk_write.replace_all(engine, {"schools": schools, "discipline": discipline})
    sums = aggregates_discipline.discipline_scope_sums(engine).set_index("student_group")
    all_row, bl = sums.loc["ALL"], sums.loc["BL"]
    assert (all_row["enrolled"], all_row["suspended"], all_row["s"], all_row["s_enrolled"]) == (150, 12, 12, 150)
    assert (all_row["derived"], all_row["derived_unknown"], all_row["n_students_oss"], all_row["students_oss"]) == (1, 0, 1, 1)
    assert (bl["students_suspended"], bl["students_suspended_enrolled"], bl["n_students_suspended"]) == (3, 30, 1)
    assert (bl["suspended"], bl["enrolled"], bl["s"], bl["s_enrolled"], bl["n_s"]) == (3, 40, 5, 40, 2)
    assert (sums["n_oss_days"] == 0).all() and (sums["n_law_referrals"] == 0).all()
    only_b = aggregates_discipline.discipline_scope_sums(engine, ["B"]).set_index("student_group")
    assert (only_b.loc["ALL", "enrolled"], only_b.loc["ALL", "derived"], only_b.loc["BL", "enrolled"]) == (50, 0, 10)


def test_every_clusters_discipline_sums_in_one_read_by_hand(engine):
    # North is A alone (no ALL row: ALL = BL + WH = 30 + 70, suspended 3 + 4); South is B (ALL 50, 5 suspended;
    # BL 10 whose suspension count is its OSS count, 2).
    schools = pd.DataFrame({"school_id": ["A", "B"], "school_name": ["Ash", "Birch"], "level": ["ES"] * 2,
                            "cluster": ["North", "South"]})
    rows = [("A", "BL", 30, 3, 2), ("A", "WH", 70, 4, NAN), ("B", "ALL", 50, 5, 1), ("B", "BL", 10, NAN, 2)]
    discipline = pd.DataFrame(rows, columns=["school_id", "student_group", "enrolled", "students_suspended",
                                             "students_oss"]).assign(school_year=2024)
    bulk_write.replace_all(engine, {"schools": schools, "discipline": discipline})
    sums = aggregates_discipline.discipline_cluster_sums(engine)
    assert sums[["cluster", "student_group"]].values.tolist() == [["North", "ALL"], ["North", "BL"], ["North", "WH"],
                                                                  ["South", "ALL"], ["South", "BL"]]
    north, south = (sums[sums["cluster"] == c].set_index("student_group") for c in ("North", "South"))
    assert (north.loc["ALL", "enrolled"], north.loc["ALL", "s"], north.loc["ALL", "derived"]) == (100, 7, 1)
    assert (south.loc["ALL", "enrolled"], south.loc["ALL", "s"], south.loc["ALL", "derived"]) == (50, 5, 0)
    assert (south.loc["BL", "s"], south.loc["BL", "n_students_suspended"], south.loc["BL", "suspended"]) == (2, 0, 0)
    for cluster, ids in (("North", ["A"]), ("South", ["B"])):  # the rows of the cluster's own read
        part = sums[sums["cluster"] == cluster].drop(columns="cluster").reset_index(drop=True)
        pd.testing.assert_frame_equal(part, aggregates_discipline.discipline_scope_sums(engine, ids), check_exact=True)


def test_every_clusters_discipline_sums_are_its_schools_sums(discipline_demo):
    schools = loads.load_schools(discipline_demo)
    sums = aggregates_discipline.discipline_cluster_sums(discipline_demo)
    assert set(sums["cluster"]) == set(schools["cluster"])
    for cluster, part in sums.groupby("cluster"):
        ids = schools.loc[schools["cluster"] == cluster, "school_id"].tolist()
        pd.testing.assert_frame_equal(part.drop(columns="cluster").reset_index(drop=True),
                                      aggregates_discipline.discipline_scope_sums(discipline_demo, ids),
                                      check_exact=True)


def test_discipline_scope_sums_match_pandas(discipline_demo):
    from analytics.data.derived import discipline_with_all, suspension_counts

    full, derived = discipline_with_all(loads.load_discipline(discipline_demo))
    sums = aggregates_discipline.discipline_scope_sums(discipline_demo).set_index(["school_year", "student_group"])
    by = full.groupby(["school_year", "student_group"])
    for column in aggregates_discipline.SCOPE_COUNTS:
        known = full.dropna(subset=[column]).groupby(["school_year", "student_group"])[[column, "enrolled"]].sum()
        assert sums.loc[known.index, column].tolist() == known[column].tolist()
        assert sums.loc[known.index, f"{column}_enrolled"].tolist() == known["enrolled"].tolist()
    assert sums["enrolled"].tolist() == by["enrolled"].sum().reindex(sums.index).tolist()
    alls = full[full["student_group"] == "ALL"].assign(s=suspension_counts)
    by_year = alls.dropna(subset=["s", "enrolled"]).groupby("school_year")[["s", "enrolled"]].sum()
    got = sums.xs("ALL", level="student_group")
    assert got.loc[by_year.index, "s"].tolist() == by_year["s"].tolist()
    assert got.loc[by_year.index, "s_enrolled"].tolist() == by_year["enrolled"].tolist()
    unknown = int(suspension_counts(alls.merge(derived, on=["school_id", "school_year"])).isna().sum())
    assert (int(got["derived"].sum()), int(got["derived_unknown"].sum())) == (len(derived), unknown) == (12, 0)


# --- status colours of what changed: coloured in SQL, only worsened cells read -----------------------


def _colours(engine, rows: pd.DataFrame, year: int) -> pd.DataFrame:
    from analytics.stats.rates import add_rate_columns
    from analytics.stats.status_change import status_change
    from analytics.workspace.views import directions

    schools = loads.load_schools(engine)
    rows = add_rate_columns(rows)
    return status_change(rows[rows["school_year"] == year], rows[rows["school_year"] == year - 1],
                         dict(zip(schools["school_id"], schools["level"], strict=True)), directions(engine))


@pytest.mark.parametrize("suspension", ["derived", "imported"])
def test_colours_made_in_sql_worsen_as_the_whole_tables_do(engine, suspension):
    from analytics.data.derived import suspension_metric_rows
    from analytics.outputs.views import _metric_rows
    from analytics.workspace.changes import worsened_cells, worsened_status
    from analytics.workspace.views import directions

    frames = _discipline_demo_frames()
    if suspension == "imported":  # the same rates imported as metrics rows: read from the metrics table
        rates = suspension_metric_rows(frames["discipline"])
        metrics = frames["metrics"]
        frames["metrics"] = pd.concat([metrics, rates.loc[rates["denominator"].notna(), metrics.columns]],
                                      ignore_index=True)
    bulk_write.replace_all(engine, frames)
    keys = ["school_id", "metric", "student_group"]
    worsened, metrics_seen = 0, set()
    for then, now in ((2023, 2025), (2024, 2025)):
        every = _metric_rows(engine, None, sorted({then - 1, then, now - 1, now}), None)
        whole = worsened_status(_colours(engine, every, then), _colours(engine, every, now), now, {})
        cells = aggregates_status.worsened_colours(engine, then, now, directions(engine))
        assert set(cells["color"]) <= {"Orange", "Red"} and len(cells) == len(whole)
        got = worsened_cells(cells, now, {})  # what changed's: the cells have both colours
        pd.testing.assert_frame_equal(got.sort_values(["school_id", "detail"], ignore_index=True),
                                      whole.sort_values(["school_id", "detail"], ignore_index=True))
        worsened += len(whole)
        metrics_seen |= set(cells["metric"])
        ids = sorted(every["school_id"].unique())[:5]  # a cluster's cells are the district's of its schools
        some = aggregates_status.worsened_colours(engine, then, now, directions(engine), school_ids=ids)
        pd.testing.assert_frame_equal(some.sort_values(keys, ignore_index=True),
                                      cells[cells["school_id"].isin(ids)].sort_values(keys, ignore_index=True))
    assert worsened > 0 and "suspension_rate" in metrics_seen


@pytest.mark.parametrize(("value", "previous", "level", "colour"), [
    (94.04, 93.55, "ES", "Green"),  # 94.0 is Medium (<= 94), +0.49 rounds to +0.5: Increased
    (94.05, 92.0, "ES", "Blue"),  # 94.05 rounds to 94.1: High; +2.05 to +2.1: Increased significantly
    (87.95, 90.0, "ES", "Red"),  # 87.95 rounds to 88.0: Very Low; -2.05 to -2.1: Declined significantly
    (90.0, 90.45, "OTHER", "Orange"),  # Low; -0.45 rounds to -0.5, not above it: Declined (ES cut points)
    (90.0, None, "ES", None),  # no change without last year's value: no colour
])
def test_colours_made_in_sql_round_ties_as_the_dashboard_does(engine, value, previous, level, colour):
    """Attendance (higher is better; status cut points 88/91/94/96, change -2/-0.5/0.5/2) at values that round
    onto or just past a cut point: the database compares the raw values, the grid rounds them first."""
    def number(x: float | None) -> sa.ColumnElement:
        return sa.cast(sa.null(), sa.Float) if x is None else sa.literal(x, sa.Float)

    rank = aggregates_status.status_rank_sql(number(value), number(previous), sa.literal("attendance_rate"),
                                      sa.literal(level), {"attendance_rate": True})
    with engine.connect() as conn:
        got = conn.execute(sa.select(rank)).scalar_one()
    assert aggregates_status.RANK_COLORS.get(got) == colour



@pytest.mark.parametrize("bounds", [(88.04999999999998, 91.04999999999998, 94.05, 96.04999999999998),
                                    (-2.0500000000000003, -0.45, 0.44999999999999996, 2.05)])
def test_levels_count_the_bounds_below_a_value_to_the_last_bit(engine, bounds):
    """A status or change level is how many cut points the value is above: PostgreSQL counts them with
    ``width_bucket`` (the value written once), SQLite with a ``CASE``; the same level at each bound, at the
    doubles on either side of it, far from them and with no value."""
    values = [None, -1e9, 1e9, *[x for b in bounds for x in (math.nextafter(b, -math.inf), b, math.nextafter(b, math.inf))]]
    with engine.connect() as conn:
        for v in values:
            number = sa.cast(sa.null(), sa.Float) if v is None else sa.literal(v, sa.Float)
            got = conn.execute(sa.select(aggregates_status._BoundsBelow(number, bounds))).scalar_one()
            assert got == (None if v is None else sum(v > b for b in bounds)), v
    compiled = str(sa.select(aggregates_status._BoundsBelow(sa.literal(1.0, sa.Float), bounds)).compile(engine))
    assert ("width_bucket" in compiled) is (engine.dialect.name == "postgresql")


@pytest.mark.parametrize(("metric", "value", "possible"), [
    ("attendance_rate", 94.04, True),  # rounds to 94.0: Medium, Orange when it declined
    ("attendance_rate", 94.05, False),  # rounds to 94.1: High, Yellow at worst
    ("attendance_rate", None, False),
    ("chronic_absence", 5.04, False),  # lower is better (cut points 2.5/5/10/20): 5.0 is Low, Yellow at worst
    ("chronic_absence", 5.05, True),  # rounds to 5.1: Medium, Orange when it increased
])
def test_rows_that_can_never_be_orange_or_red_are_left_out_before_the_joins(engine, metric, value, possible):
    number = sa.cast(sa.null(), sa.Float) if value is None else sa.literal(value, sa.Float)
    test = aggregates_status.may_be_orange_or_red_sql(number, sa.literal(metric),
                                               {"attendance_rate": True, "chronic_absence": False})
    with engine.connect() as conn:
        assert bool(conn.execute(sa.select(sa.case((test, True), else_=False))).scalar_one()) is possible

def test_status_rows_read_the_years_by_index(discipline_demo, capsys):
    stmt = aggregates_status.worsened_statement(2024, 2025, {"suspension_rate": False}, derived_suspension=True)
    plan = aggregates.explain(discipline_demo, stmt, index_scans_only=True)
    with capsys.disabled():
        print(f"\n{discipline_demo.dialect.name} plan of the status rows:\n{plan}")
    assert any(name in plan for name in ("ix_metrics_year_metric", "ix_metrics_metric_group_year", "uq_metrics_key"))
    assert "ix_discipline_year" in plan or "uq_discipline_key" in plan  # PostgreSQL's leads with the group


def test_a_districts_status_rows_read_the_years_from_their_keys_alone(discipline_demo):
    """PostgreSQL: a district's worsened colours read each year's counts from its unique key alone (index-only, in
    the key's order: the key carries the counts), with nothing sorted (a state's years are merged as read; this
    district's few rows may be hashed)."""
    if discipline_demo.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's plan")
    part = aggregates_status.worsened_statements(2024, 2025, {"suspension_rate": False})[0]
    compiled = part.compile(dialect=discipline_demo.dialect, compile_kwargs={"literal_binds": True})
    with discipline_demo.begin() as conn:
        for name, value in {**aggregates_status.YEAR_JOIN_PLANNER, "enable_seqscan": "off"}.items():
            conn.execute(sa.text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
        plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {compiled}").scalars())
    assert [f"metrics_y{y}" for y in (2023, 2024, 2025)] == sorted(
        re.findall(r"Index Only Scan using uq_metrics_key_y\d+ on (metrics_y\d+)", plan))
    assert "Sort" not in plan


def test_new_flags_need_only_the_schools_that_can_be_flagged(discipline_demo):
    """What changed computes risk ratios only for schools with a group of 30 students and an outcome count
    of 10 in each of the three years up to the latest: the new flags are those of every school."""
    from analytics.config import DEFAULT_SETTINGS
    from analytics.workspace.changes import new_rr_flags
    from analytics.workspace.views import _dispro

    schools = sorted(loads.load_schools(discipline_demo)["school_id"])
    found = 0
    for ids in (None, schools[:6]):
        whole = aggregates_discipline.scope_disproportionality(discipline_demo, ids)
        able = set(aggregates_discipline.flag_candidate_groups(discipline_demo, 2025, school_ids=ids)["school_id"])
        flagged = sorted(whole.loc[whole["flagged"] & (whole["school_year"] == 2025), "school_id"].unique())
        assert set(flagged) <= set(able) and set(able) <= set(ids or schools)
        groups = aggregates_discipline.flag_candidate_groups(discipline_demo, 2025, school_ids=ids)
        pairs = set(zip(groups["school_id"], groups["student_group"], strict=True))
        now = whole[whole["flagged"] & (whole["school_year"] == 2025)]
        assert set(zip(now["school_id"], now["student_group"], strict=True)) <= pairs and "ALL" not in set(groups["student_group"])
        # Only the candidate groups are computed, each exactly as in the whole table (their school's ALL row read).
        years = [2021, 2022, 2023, 2024, 2025]
        some = aggregates_discipline.scope_disproportionality(discipline_demo, settings=DEFAULT_SETTINGS, years=years,
                                                   groups=groups)
        assert set(zip(some["school_id"], some["student_group"], strict=True)) == pairs
        of_years = aggregates_discipline.scope_disproportionality(discipline_demo, ids or schools, years=years)
        mine = [(s, g) in pairs for s, g in zip(of_years["school_id"], of_years["student_group"], strict=True)]
        pd.testing.assert_frame_equal(some, of_years[mine].reset_index(drop=True))
        for then in (2022, 2023, 2024):
            want = new_rr_flags(whole, then, 2025).reset_index(drop=True)
            got = new_rr_flags(_dispro(discipline_demo, ids, DEFAULT_SETTINGS, then, 2025), then, 2025)
            pd.testing.assert_frame_equal(got.reset_index(drop=True), want)
            found += len(want)
    assert found > 0
    low = DEFAULT_SETTINGS.__class__(n_size=10**6)  # no group that large: no school to compute
    assert aggregates_discipline.flag_candidate_groups(discipline_demo, 2025, low).empty


def test_the_rows_of_the_groups_that_can_be_flagged_are_read_with_their_schools_all_rows(discipline_demo):
    """What changed reads the candidate groups' rows and their schools' ALL rows (summed from races where a
    school-year has none) in one statement: their ratios are those computed from every row of their schools."""
    from analytics.config import DEFAULT_SETTINGS
    from analytics.stats.disproportionality import disproportionality

    schools = sorted(loads.load_schools(discipline_demo)["school_id"])
    years = [2022, 2023, 2024, 2025]
    risks = aggregates_discipline.district_risks(discipline_demo, years)
    for ids in (None, schools[:6]):
        groups = aggregates_discipline.flag_candidate_groups(discipline_demo, 2025, school_ids=ids)
        rows = aggregates_discipline.flag_candidate_rows(discipline_demo, 2025, years, school_ids=ids)
        of_groups = rows[rows["student_group"] != "ALL"]
        assert set(zip(of_groups["school_id"], of_groups["student_group"], strict=True)) == set(
            zip(groups["school_id"], groups["student_group"], strict=True))
        all_rows = rows[rows["student_group"] == "ALL"]
        assert set(zip(all_rows["school_id"], all_rows["school_year"], strict=True)) == set(
            zip(of_groups["school_id"], of_groups["school_year"], strict=True))
        assert set(schools[:3]) & set(all_rows["school_id"])  # ALL rows summed from races are among them
        want = aggregates_discipline.scope_disproportionality(discipline_demo, settings=DEFAULT_SETTINGS, years=years,
                                                   groups=groups)
        pd.testing.assert_frame_equal(disproportionality(rows, DEFAULT_SETTINGS, district=risks), want)
    low = DEFAULT_SETTINGS.__class__(n_size=10**6)  # no group that large: no row
    assert aggregates_discipline.flag_candidate_rows(discipline_demo, 2025, years, low).empty


def test_the_years_after_a_meeting_are_those_of_every_row(discipline_demo):
    """What changed finds the district's schools with a newer year (on PostgreSQL one seek per school and year,
    not every row of the year read): the same pairs as a DISTINCT over every row of both tables."""
    from analytics.workspace.views import _data_years

    keys = ["school_id", "school_year"]
    for after in (2021, 2024, 2025):
        stmts = [sa.select(t.c.school_id, t.c.school_year).distinct().where(t.c.school_year > after)
                 for t in (schema.metrics, schema.discipline)]
        with discipline_demo.connect() as conn:
            want = pd.DataFrame(conn.execute(sa.union(*stmts)).all(), columns=keys)
        got = _data_years(discipline_demo, None, after)
        pd.testing.assert_frame_equal(got.sort_values(keys, ignore_index=True), want.sort_values(keys, ignore_index=True))
        assert len(want) or after == 2025
        some = sorted(want["school_id"].unique())[:3]
        mine = _data_years(discipline_demo, some, after)
        pd.testing.assert_frame_equal(mine.sort_values(keys, ignore_index=True),
                                      want[want["school_id"].isin(some)].sort_values(keys, ignore_index=True))


def test_the_district_risks_and_the_monthly_counts_are_hashed_in_memory(discipline_demo, monkeypatch):
    """Their grouped reads run with PostgreSQL settings of their own (the planner sorted both on disk at 10,000
    schools): the same rows as without them."""
    settings = {}
    original = aggregates_discipline._read

    def read(engine, stmt, planner=None):
        settings[len(settings)] = planner
        return original(engine, stmt, planner)

    without = (aggregates_discipline.district_risks(discipline_demo, [2024, 2025]).risks,
               aggregates_discipline.monthly_incident_counts(discipline_demo, actions=["ISS", "OSS"], by_school=True))
    monkeypatch.setattr(aggregates_discipline, "_read", read)
    risks = aggregates_discipline.district_risks(discipline_demo, [2024, 2025]).risks
    counts = aggregates_discipline.monthly_incident_counts(discipline_demo, actions=["ISS", "OSS"], by_school=True)
    assert aggregates_discipline.RISK_SUMS_PLANNER in settings.values()
    assert aggregates_discipline.MONTH_COUNTS_PLANNER in settings.values()
    pd.testing.assert_frame_equal(risks, without[0])
    pd.testing.assert_series_equal(counts, without[1])
    assert len(counts) and risks["district_comparison_risk"].notna().any()


def test_a_scope_with_no_group_that_can_be_flagged_sums_no_district_risks(discipline_demo, monkeypatch):
    """A scope none of whose groups can be flagged reads no rows, so its ratios need no district risks: the
    database is not asked to sum them (about two seconds at 10,000 schools), and the table is empty as before."""
    from analytics.config import DEFAULT_SETTINGS

    summed, original = [], aggregates_discipline.district_risks
    monkeypatch.setattr(aggregates_discipline, "district_risks",
                        lambda *args: summed.append(args[1:]) or original(*args))
    low = DEFAULT_SETTINGS.__class__(n_size=10**6)  # no group that large
    groups = aggregates_discipline.flag_candidate_groups(discipline_demo, 2025, low)
    assert groups.empty
    none = aggregates_discipline.scope_disproportionality(discipline_demo, settings=low, years=[2023, 2024, 2025],
                                                          groups=groups)
    assert none.empty and summed == []
    ids = sorted(loads.load_schools(discipline_demo)["school_id"])[:2]  # some schools: their risks are summed
    some = aggregates_discipline.scope_disproportionality(discipline_demo, ids, years=[2025])
    assert set(some["school_id"]) == set(ids) and summed == [([2025],)]


def test_what_changed_for_a_scope_with_no_group_that_can_be_flagged_sums_no_district_risks(discipline_demo,
                                                                                          monkeypatch):
    """What changed reads a scope's candidate rows before the district's risks: a scope none of whose groups can
    be flagged does not wait for the database to sum them (about two seconds at 10,000 schools); the district
    sums them while its rows are read."""
    from analytics.config import DEFAULT_SETTINGS
    from analytics.workspace.views import _dispro

    summed, original = [], aggregates_discipline.district_risks
    monkeypatch.setattr(aggregates_discipline, "district_risks",
                        lambda *args: summed.append(args[1:]) or original(*args))
    ids = sorted(loads.load_schools(discipline_demo)["school_id"])[:3]
    none = _dispro(discipline_demo, ids, DEFAULT_SETTINGS.__class__(n_size=10**6), 2024, 2025)
    assert none.empty and summed == []
    some = _dispro(discipline_demo, ids, DEFAULT_SETTINGS, 2024, 2025)
    district = _dispro(discipline_demo, None, DEFAULT_SETTINGS, 2024, 2025)
    assert len(summed) == 2 and not some.empty and set(some["school_id"]) <= set(ids) and len(district) > len(some)
    mine = district[district["school_id"].isin(ids)].sort_values(list(some.columns[:4])).reset_index(drop=True)
    pd.testing.assert_frame_equal(some.sort_values(list(some.columns[:4])).reset_index(drop=True), mine,
                                  check_dtype=False)


def test_what_changed_finds_the_same_new_flags_among_the_prepared_flagged_rows(discipline_demo):
    """The app passes the flagged rows it made for the discipline page (every year, every group): what changed
    lists the same changes as when it computes the ratios of the groups that can be flagged itself."""
    from datetime import date

    from analytics.workspace.views import changes_view

    every = pd.concat(aggregates_discipline.disproportionality_parts(discipline_demo), ignore_index=True)
    flagged = every[every["flagged"]]
    schools = loads.load_schools(discipline_demo)
    cluster = sorted(schools["cluster"])[0]
    mine = set(schools.loc[schools["cluster"] == cluster, "school_id"])
    new_flags = 0
    for scope, rows in ((None, flagged), (cluster, flagged[flagged["school_id"].isin(mine)])):
        for since in (date(2023, 3, 1), date(2024, 9, 1)):  # the meeting saw 2022, then 2024
            want = changes_view(discipline_demo, cluster=scope, since=since)
            pd.testing.assert_frame_equal(changes_view(discipline_demo, cluster=scope, since=since, flagged=rows), want)
            new_flags += int((want["change"] == "new_rr_flag").sum())
    assert new_flags > 0


def test_a_years_flags_need_only_it_and_the_two_years_before(discipline_demo):
    schools = loads.load_schools(discipline_demo)
    cluster = sorted(schools.loc[schools["cluster"] == schools["cluster"].iloc[0], "school_id"])
    for ids in (None, cluster):  # a cluster's alternate ratios divide by the district's risks of those years
        whole = aggregates_discipline.scope_disproportionality(discipline_demo, ids)
        some = aggregates_discipline.scope_disproportionality(discipline_demo, ids, years=[2023, 2024, 2025])
        assert set(some["school_year"]) == {2023, 2024, 2025}
        want = whole[whole["school_year"] == 2025].reset_index(drop=True)
        got = some[some["school_year"] == 2025].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want)
        assert want["flagged"].any() and (want["ratio_type"] == "alternate").any()
    risks = aggregates_discipline.district_risks(discipline_demo)
    of_years = aggregates_discipline.district_risks(discipline_demo, years=[2024, 2025])
    assert of_years.outcomes == risks.outcomes
    keys = ["school_year", "outcome", "student_group"]
    want = risks.risks[risks.risks["school_year"].isin([2024, 2025])].sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(of_years.risks.sort_values(keys, ignore_index=True), want)


def test_what_changed_slices_the_districts_colours_and_monthly_suspensions(engine):
    """The app passes the district's worsened colours of the meeting's year and every school's suspensions per
    month, made once: each scope's list is the one it computes itself. Suspension rates are imported for the
    first cluster's schools only, so another cluster's are derived from discipline where the district's are
    not: its colours are then read for itself, not sliced."""
    from datetime import date

    from analytics.data.derived import suspension_metric_rows
    from analytics.workspace.changes import year_of_record
    from analytics.workspace.views import changes_view, district_colours, monthly_suspensions

    frames = _discipline_demo_frames()
    schools = frames["schools"]
    first, second = sorted(schools["cluster"].unique())[:2]
    mine = set(schools.loc[schools["cluster"] == first, "school_id"])
    rates = suspension_metric_rows(frames["discipline"])
    rates = rates[rates["denominator"].notna() & rates["school_id"].isin(mine)]
    frames["metrics"] = pd.concat([frames["metrics"], rates[frames["metrics"].columns]], ignore_index=True)
    bulk_write.replace_all(engine, frames)
    others = sorted(schools.loc[schools["cluster"] == second, "school_id"])
    assert not aggregates.suspension_derived(engine, [2022, 2023, 2024, 2025])
    assert aggregates.suspension_derived(engine, [2022, 2023, 2024, 2025], others)
    months = monthly_suspensions(engine, None)
    kinds: set[str] = set()
    for since in (date(2023, 3, 1), date(2024, 9, 1)):  # the meeting saw 2022, then 2024
        colours = district_colours(engine, year_of_record(since), loads.available_years(engine)[-1])
        for scope in (None, first, second):
            want = changes_view(engine, cluster=scope, since=since)
            got = changes_view(engine, cluster=scope, since=since, colours=colours, monthly=months)
            pd.testing.assert_frame_equal(got, want)
            kinds |= set(want["change"])
    assert {"status_worsened", "run_chart_signal"} <= kinds
