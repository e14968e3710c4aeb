"""The demo district: deterministic, valid against DESIGN §2, realistic where the product relies on it."""

import numpy as np
import pandas as pd
import pytest

from analytics.data import loads
from analytics.data.catalog import RACE_GROUPS
from analytics.data.demo import build_demo, load_demo
from analytics.data.schema import TABLES


@pytest.fixture(scope="module")
def demo():
    return build_demo()


def test_same_seed_same_district_other_seed_other_district():
    a, b, c = build_demo(schools=30, years=3, seed=7), build_demo(schools=30, years=3, seed=7), build_demo(
        schools=30, years=3, seed=8)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["discipline"].equals(c["discipline"])


def test_columns_and_unique_natural_keys(demo):
    for name, frame in demo.items():
        spec = TABLES[name]
        assert list(frame.columns) == spec.column_names
        assert not frame.duplicated(list(spec.key)).any(), name


def test_size_and_shape_of_the_district(demo):
    schools = demo["schools"]
    assert len(schools) == 200 and schools["cluster"].nunique() == 25
    assert sorted(demo["metrics"]["school_year"].unique()) == [2020, 2021, 2022, 2023, 2024, 2025]
    per_cluster = schools.groupby("cluster")["level"].value_counts().unstack(fill_value=0)
    assert (per_cluster["HS"] == 1).all() and per_cluster["MS"].between(1, 2).all()
    assert schools["school_name"].duplicated().any(), "real districts repeat school names"
    assert schools["school_name"].str.contains("'").any()


def test_counts_follow_the_import_rules(demo):
    m, d = demo["metrics"], demo["discipline"]
    assert (m["numerator"] <= m["denominator"]).all() and (m["numerator"] >= 0).all()
    counts = ["students_suspended", "students_iss", "students_oss", "students_expelled", "law_referrals"]
    assert (d[counts].le(d["enrolled"], axis=0)).all().all()
    assert (d["enrolled"] > 0).all()
    assert (d["students_suspended"] <= d["students_iss"] + d["students_oss"]).all()


def test_race_rows_add_up_to_all(demo):
    d = demo["discipline"]
    race = d[d["student_group"].isin(RACE_GROUPS)].groupby(["school_id", "school_year"])[
        ["enrolled", "students_suspended"]].sum()
    total = d[d["student_group"] == "ALL"].set_index(["school_id", "school_year"])[["enrolled", "students_suspended"]]
    pd.testing.assert_frame_equal(race.sort_index(), total.sort_index(), check_dtype=False)


def test_small_groups_and_staggered_restorative_practices(demo):
    d, s = demo["discipline"], demo["schools"]
    assert (d["enrolled"] < 10).sum() > 50
    rp = s["rp_start_year"].dropna()
    assert 0.15 <= len(rp) / len(s) <= 0.25 and rp.nunique() == 3


def _naive_did(frames) -> float:
    """Mean change in ALL suspension rate (first to last year): RP schools minus comparison schools."""
    d, s = frames["discipline"], frames["schools"].set_index("school_id")
    a = d[d["student_group"] == "ALL"].assign(rate=lambda x: 100 * x["students_suspended"] / x["enrolled"])
    wide = a.pivot(index="school_id", columns="school_year", values="rate")
    change = wide[wide.columns.max()] - wide[wide.columns.min()]
    rp = s["rp_start_year"].notna().reindex(change.index)
    return float(change[rp].mean() - change[~rp].mean())


def test_planted_restorative_effect_shows_and_vanishes_with_zero():
    assert _naive_did(build_demo(rp_effect=1.5)) < -0.8
    assert abs(_naive_did(build_demo(rp_effect=0))) < 0.6


def test_incident_keys_are_pseudonymous(demo):
    keys = demo["incidents"]["student_key"]
    assert keys.str.fullmatch(r"S[0-9a-f]{10}").all()
    assert set(demo["incidents"]["action"]) <= {"ISS", "OSS", "EXP", "LAW_REFERRAL", "RESTORATIVE", "OTHER"}


def test_load_demo_round_trips(engine):
    counts = load_demo(engine, schools=20, years=2, seed=3)
    assert loads.table_counts(engine) == {**counts, "metric_definitions": 0}
    assert np.isclose(loads.load_discipline(engine)["enrolled"].sum(),
                      build_demo(schools=20, years=2, seed=3)["discipline"]["enrolled"].sum())
