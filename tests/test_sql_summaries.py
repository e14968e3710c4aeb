"""Page summaries from the database's sums equal the same summaries pooled in pandas from every row.

The overview, cluster and school pages read pooled figures from ``analytics.data.aggregates`` (SQL
``GROUP BY``) and only the one group's rows they draw; these tests compute each figure both ways on a
small demo district (one metric made value-only, one school's suppressed counts, the derived suspension
rate) on SQLite and PostgreSQL, plus hand-computed sums and votes.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from analytics.data import aggregates, storage
from analytics.data.demo import build_demo
from analytics.data.derived import metrics_with_suspension
from analytics.stats.summaries import (
    MEDIAN,
    POOLED,
    cluster_table,
    cluster_table_from_counts,
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
    storage.replace_all(engine, {**frames, "metrics": metrics})
    return engine


def _every_row(engine, metric: str) -> pd.DataFrame:
    """What pages read before: every row of the metric (suspension rate derived when not imported)."""
    rows = storage.load_metrics(engine, metrics=[metric])
    if metric == "suspension_rate" and rows.empty:
        rows = metrics_with_suspension(rows, storage.load_discipline(engine))
    return rows


def _same_kpi(got, want) -> None:
    for field, value in asdict(want).items():
        other = asdict(got)[field]
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(other, float) and math.isnan(other), field
        else:
            assert other == pytest.approx(value, rel=1e-12, abs=1e-12), field


def test_kpis_and_cluster_tables_match_pandas_pooling(demo):
    schools = storage.load_schools(demo)
    years = storage.available_years(demo)
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
    years = storage.available_years(demo)
    kpi = summary_kpi_from_counts(counts, aggregates.metric_slice(demo, VALUE_ONLY, "ALL"), years[-1], "ALL", years)
    assert kpi.basis == MEDIAN and kpi.n_schools == 12


@pytest.mark.parametrize("year_index", [0, -1])
def test_district_figures_match_every_row_of_the_year(demo, year_index):
    year = storage.available_years(demo)[year_index]
    every = metrics_with_suspension(storage.load_metrics(demo, years=[year]), storage.load_discipline(demo, years=[year]))
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
    storage.replace_all(sqlite_engine, {"schools": schools, "metrics": metrics})
    got = aggregates.metric_counts(sqlite_engine, ["cluster"])
    assert got.to_dict("list") == {"cluster": ["North", "South"], "numerator": [10.0, 0.0],
                                   "denominator": [20.0, 0.0], "n_schools": [1, 0], "n_rows": [2, 1],
                                   "n_value_only": [1, 0]}
    pandas = aggregates.counts_from_rows(storage.load_metrics(sqlite_engine).merge(schools, on="school_id"),
                                         ["cluster"])
    pd.testing.assert_frame_equal(got, pandas)
    assert aggregates.metric_groups(sqlite_engine, "m") == ["BL"]


def test_page_queries_use_the_indexes(demo, capsys):
    plans = aggregates.explain_pages(demo, "math_proficient", "BL", 2025, index_scans_only=True)
    with capsys.disabled():
        print(f"\n{demo.dialect.name} plans of the page queries:")
        for name, plan in plans.items():
            print(f"-- {name}\n{plan}")
    by_metric = "ix_metrics_metric_group_year"
    for name in ("group rows, every year (metric_slice)", "pooled per year (KPI)", "district ALL (gap reference)",
                 "groups of a metric (filter bar)"):
        assert by_metric in plans[name], name
    for name in ("pooled per cluster (cluster table)", "pooled per metric x group (district figures)"):
        assert "ix_metrics_year_metric_group" in plans[name] or by_metric in plans[name], name


# --- disproportionality: the district's comparison risks from SQL, ratios per scope ---------------------


@pytest.fixture
def discipline_demo(engine):
    """A demo district whose discipline file lacks ALL rows in places (summed from races, one of them
    suppressed) and has suppressed group counts and an empty suspended count (OSS used instead)."""
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
    storage.replace_all(engine, {**frames, "discipline": discipline})
    return engine


def test_district_risks_from_sql_match_pandas(discipline_demo):
    from analytics.stats.disproportionality import district_risks

    want = district_risks(storage.load_discipline(discipline_demo))
    got = aggregates.district_risks(discipline_demo)
    assert got.outcomes == want.outcomes
    keys = ["school_year", "outcome", "student_group"]
    pd.testing.assert_frame_equal(got.risks.sort_values(keys, ignore_index=True),
                                  want.risks[got.risks.columns].sort_values(keys, ignore_index=True),
                                  check_dtype=False, rtol=1e-12)
    assert len(got.risks) > 100


def test_disproportionality_of_a_cluster_with_the_district_risks(discipline_demo):
    from analytics.stats.disproportionality import disproportionality

    every = storage.load_discipline(discipline_demo)
    whole = disproportionality(every)
    schools = storage.load_schools(discipline_demo)
    risks = aggregates.district_risks(discipline_demo)
    for cluster in schools["cluster"].unique():
        ids = schools.loc[schools["cluster"] == cluster, "school_id"]
        part = disproportionality(every[every["school_id"].isin(ids)], district=risks)
        want = whole[whole["school_id"].isin(ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, want, check_dtype=False)
    assert (whole["ratio_type"] == "alternate").any()
