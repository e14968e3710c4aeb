"""Pooled counts summed by the database (SQL GROUP BY) equal hand-computed sums on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analytics.data import aggregates, aggregates_discipline, bulk_write, loads
from analytics.outputs.views import rates_view
from analytics.stats.rates import pool_counts

NAN = float("nan")
SCHOOLS = pd.DataFrame({"school_id": ["A", "B", "C"], "school_name": ["Ash", "Birch", "Cove"],
                        "level": ["ES", "ES", "ES"], "cluster": ["North", "North", "South"]})
# (school, year, group, numerator, denominator, value): B's BL row is value-only, C's BL row has no students
ROWS = [("A", 2024, "ALL", 30, 100, NAN), ("B", 2024, "ALL", 40, 120, NAN), ("C", 2024, "ALL", 3, 7, NAN),
        ("A", 2024, "BL", 10, 20, NAN), ("B", 2024, "BL", NAN, NAN, 50.0), ("C", 2024, "BL", 2, 0, NAN),
        ("A", 2023, "ALL", 25, 100, NAN)]


@pytest.fixture
def district(engine):
    metrics = pd.DataFrame(ROWS, columns=["school_id", "school_year", "student_group", "numerator", "denominator",
                                          "value"]).assign(metric="read_proficient")
    bulk_write.replace_all(engine, {"schools": SCHOOLS, "metrics": metrics})
    return engine


def _row(df: pd.DataFrame, **keys) -> dict:
    hit = df
    for column, value in keys.items():
        hit = hit[hit[column] == value]
    assert len(hit) == 1, keys
    return hit.iloc[0].to_dict()


def test_district_sums_by_hand(district):
    counts = aggregates.pooled_metric_counts(district, by_cluster=False)
    assert len(counts) == 3
    all_2024 = _row(counts, school_year=2024, student_group="ALL")
    assert (all_2024["numerator"], all_2024["denominator"]) == (73.0, 227.0)  # 30+40+3, 100+120+7
    assert (all_2024["n_schools"], all_2024["n_rows"]) == (3, 3)
    bl = _row(counts, school_year=2024, student_group="BL")  # only A's counts pool: B value-only, C has 0 students
    assert (bl["numerator"], bl["denominator"], bl["n_schools"], bl["n_rows"]) == (10.0, 20.0, 1, 3)


def test_cluster_sums_by_hand(district):
    counts = aggregates.pooled_metric_counts(district, by_cluster=True, years=[2024])
    north = _row(counts, cluster="North", student_group="ALL")
    assert (north["numerator"], north["denominator"], north["n_schools"]) == (70.0, 220.0, 2)
    south_bl = _row(counts, cluster="South", student_group="BL")
    assert (south_bl["numerator"], south_bl["denominator"], south_bl["n_schools"], south_bl["n_rows"]) == (0, 0, 0, 1)


def test_same_sums_as_pandas_pooling(district):
    rows = loads.load_metrics(district).merge(SCHOOLS[["school_id", "cluster"]], on="school_id")
    keys = ["cluster", *aggregates.POOL_KEYS]
    want = pool_counts(rows, keys).sort_values(keys, ignore_index=True)
    got = aggregates.pooled_metric_counts(district, by_cluster=True)
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)


def test_rates_view_district_rows_by_hand(district):
    view = rates_view(district, year=2024, metric="read_proficient")
    row = _row(view, school_id="district", student_group="ALL")
    assert math.isclose(row["value"], 100 * 73 / 227)
    assert (row["n_schools"], row["n_rows_left_out"]) == (3, 0)
    south_bl = _row(view, school_id="cluster:South", student_group="BL")
    assert math.isnan(south_bl["value"]) and south_bl["n_rows_left_out"] == 1


def test_plan_uses_the_metrics_index(district, capsys):
    stmt = aggregates.pooled_counts_statement(by_cluster=False, years=[2024], metrics=["read_proficient"])
    if district.dialect.name == "postgresql":
        with district.begin() as conn:  # a 7-row table is scanned whole; ask whether the index can serve
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in conn.exec_driver_sql(
                "EXPLAIN " + str(stmt.compile(dialect=district.dialect, compile_kwargs={"literal_binds": True}))))
    else:
        plan = aggregates.explain(district, stmt)
    with capsys.disabled():
        print(f"\n{district.dialect.name} plan of the pooled-counts query:\n{plan}")
    # year + metric: either metrics index serves it (on PostgreSQL the unique key, which leads with the metric)
    assert any(name in plan for name in ("ix_metrics_year_metric", "ix_metrics_metric_group_year", "uq_metrics_key"))


# (incident, school, date, action): A has two OSS in September and an ISS in November; B one OSS in September,
# a detention (not a suspension) in October; C an OSS in a July (no school then).
INCIDENTS = [("I1", "A", "2024-09-03", "OSS"), ("I2", "A", "2024-09-30", "OSS"), ("I3", "A", "2024-11-12", "ISS"),
             ("I4", "B", "2024-09-15", "OSS"), ("I5", "B", "2024-10-01", "DET"), ("I6", "C", "2025-07-01", "OSS")]


@pytest.fixture
def incidents(engine):
    rows = pd.DataFrame(INCIDENTS, columns=["incident_id", "school_id", "incident_date", "action"])
    rows = rows.assign(incident_date=pd.to_datetime(rows["incident_date"]).dt.date, student_key="S1")
    bulk_write.replace_all(engine, {"schools": SCHOOLS, "incidents": rows})
    return engine


def test_monthly_incident_counts_by_hand(incidents):
    def counts(**kwargs) -> dict[str, int]:
        got = aggregates_discipline.monthly_incident_counts(incidents, **kwargs)
        return {str(month): int(n) for month, n in got.sort_index().items()}

    assert counts(actions=["ISS", "OSS"], school_ids=["A", "B"]) == {"2024-09": 3, "2024-11": 1}
    assert counts(school_ids=["B"]) == {"2024-09": 1, "2024-10": 1}  # every action
    assert counts(actions=["OSS"]) == {"2024-09": 3, "2025-07": 1}  # every school
    assert counts(school_ids=["Z"]) == {}


def test_monthly_incident_counts_give_the_run_chart_series_of_the_rows(incidents):
    from analytics.stats.run_charts import monthly_incident_series, monthly_series

    rows = loads.load_incidents(incidents)
    want = monthly_incident_series(rows, school_ids=["A", "B"], actions=["ISS", "OSS"], label="north")
    got = monthly_series(aggregates_discipline.monthly_incident_counts(incidents, actions=["ISS", "OSS"],
                                                                       school_ids=["A", "B"]), label="north")
    pd.testing.assert_frame_equal(got, want)
    assert got["value"].tolist() == [3, 0, 1]  # October has no suspension: 0, inside the range


def test_monthly_counts_per_cluster_are_those_of_its_schools(incidents):
    counts = aggregates_discipline.monthly_incident_counts(incidents, actions=["ISS", "OSS"], by_cluster=True)
    # North is A and B: September 2 + 1, November 1; South is C: its July.
    assert {(c, str(m)): int(n) for (c, m), n in counts.items()} == {
        ("North", "2024-09"): 3, ("North", "2024-11"): 1, ("South", "2025-07"): 1}
    every = aggregates_discipline.monthly_incident_counts(incidents, by_cluster=True)
    north = every.xs("North", level="cluster").sort_index()
    pd.testing.assert_series_equal(north.rename_axis(None), aggregates_discipline.monthly_incident_counts(
        incidents, school_ids=["A", "B"]).sort_index())
    assert int(north.sum()) == 5  # the detention counts among every action


def test_monthly_counts_per_school_give_each_school_its_run_chart_series(incidents):
    from analytics.stats.run_charts import monthly_incident_series, monthly_series_by_school

    counts = aggregates_discipline.monthly_incident_counts(incidents, actions=["ISS", "OSS"], by_school=True)
    assert {(s, str(m)): int(n) for (s, m), n in counts.items()} == {
        ("A", "2024-09"): 2, ("A", "2024-11"): 1, ("B", "2024-09"): 1, ("C", "2025-07"): 1}
    got = monthly_series_by_school(counts)
    # A: September 2, October 0 (inside its range), November 1; B: September; C's only month is a July.
    assert list(zip(got["school_id"], got["period"].dt.strftime("%Y-%m"), got["value"], strict=True)) == [
        ("A", "2024-09", 2), ("A", "2024-10", 0), ("A", "2024-11", 1), ("B", "2024-09", 1)]
    rows = loads.load_incidents(incidents)
    for school in ("A", "B"):
        one = monthly_incident_series(rows, school_ids=[school], actions=["ISS", "OSS"], label=school)
        pd.testing.assert_frame_equal(got[got["school_id"] == school].reset_index(drop=True), one)
    assert monthly_series_by_school(counts, min_months=2)["school_id"].unique().tolist() == ["A"]


def test_monthly_incident_plan_filters_on_the_school_index(incidents):
    for by_school in (False, True):
        plan = aggregates.explain(incidents, aggregates_discipline.monthly_incidents_statement(["OSS"], ["A"],
                                                                                    by_school=by_school),
                                  index_scans_only=True)
        assert "ix_incidents_school_date" in plan
