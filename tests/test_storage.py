"""Storage on both databases: schema, upsert on natural keys, data version, filtered loaders."""

import math

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.config import database_url
from analytics.data import bulk_write, loads, schema, storage

SCHOOLS = pd.DataFrame(
    [
        {"school_id": "101", "school_name": "O'Brien Elementary", "level": "ES", "cluster": "North"},
        {"school_id": "102", "school_name": "Lakeview Middle", "level": "MS", "cluster": "South"},
    ]
)


def _metric_rows(value_101=50.0):
    return pd.DataFrame(
        [
            {"school_id": "101", "school_year": 2024, "metric": "read_proficient", "student_group": "ALL",
             "numerator": 50, "denominator": 100, "value": value_101},
            {"school_id": "102", "school_year": 2024, "metric": "read_proficient", "student_group": "ALL",
             "numerator": None, "denominator": None, "value": 61.5},
            {"school_id": "102", "school_year": 2023, "metric": "math_proficient", "student_group": "BL",
             "numerator": 7, "denominator": 20, "value": 35.0},
        ]
    )


def test_upsert_replaces_rows_on_the_natural_key(engine):
    with engine.begin() as conn:
        bulk_write.upsert(conn, "schools", SCHOOLS)
        bulk_write.upsert(conn, "metrics", _metric_rows())
        bulk_write.upsert(conn, "metrics", _metric_rows(value_101=55.0))  # same keys again
    assert loads.table_counts(engine)["metrics"] == 3
    got = loads.load_metrics(engine, school_ids=["101"])
    assert got["value"].tolist() == [55.0]


def test_tables_present_says_which_tables_hold_a_row_as_their_counts_do(engine):
    assert not any(loads.tables_present(engine).values())
    with engine.begin() as conn:
        bulk_write.upsert(conn, "schools", SCHOOLS)
        bulk_write.upsert(conn, "metrics", _metric_rows())
    present = loads.tables_present(engine)
    assert list(present) == list(schema.DATA_TABLES)
    assert {name for name, held in present.items() if held} == {"schools", "metrics"}
    assert present == {name: count > 0 for name, count in loads.table_counts(engine).items()}


def test_missing_counts_load_as_nan_never_zero(engine):
    with engine.begin() as conn:
        bulk_write.upsert(conn, "schools", SCHOOLS)
        bulk_write.upsert(conn, "metrics", _metric_rows())
    row = loads.load_metrics(engine, school_ids=["102"], years=[2024]).iloc[0]
    assert math.isnan(row["numerator"]) and math.isnan(row["denominator"])
    assert row["value"] == 61.5


def test_loaders_filter_in_sql(engine):
    with engine.begin() as conn:
        bulk_write.upsert(conn, "schools", SCHOOLS)
        bulk_write.upsert(conn, "metrics", _metric_rows())
    assert len(loads.load_metrics(engine, years=[2024])) == 2
    assert len(loads.load_metrics(engine, metrics=["math_proficient"], groups=["BL"])) == 1
    assert loads.load_schools(engine, clusters=["North"])["school_name"].tolist() == ["O'Brien Elementary"]
    assert loads.available_years(engine) == [2023, 2024]


def test_data_version_increases_with_each_write(engine):
    before = storage.data_version(engine)
    with engine.begin() as conn:
        storage.bump_version(conn)
    assert storage.data_version(engine) == before + 1


def test_a_fresh_schema_has_both_counters_and_an_import_bumps_both(engine):
    assert storage.versions(engine) == (0, 0)
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.data_version))  # a table emptied by hand: create_schema makes both rows
    storage.create_schema(engine)
    assert storage.versions(engine) == (0, 0)
    bulk_write.replace_all(engine, {"schools": SCHOOLS})  # the demo loader writes imported data
    assert storage.versions(engine) == (1, 1)
    with engine.begin() as conn:
        storage.bump_version(conn)
    assert storage.versions(engine) == (2, 1)
    assert (storage.data_version(engine), storage.import_version(engine)) == (2, 1)


def test_a_read_keyed_on_the_import_version_outlives_an_edit_but_not_an_import(engine):
    def bump(imported: bool):
        def read():
            with engine.begin() as conn:  # a write that lands while the view is being read
                storage.bump_version(conn, imported=imported)
            return "rows"
        return read

    assert storage.read_at_version(engine, 0, bump(False), storage.IMPORTS) == "rows"  # an edit: imports at 0
    with pytest.raises(storage.DataChanged, match="while it was being read"):
        storage.read_at_version(engine, 0, bump(True), storage.IMPORTS)
    with pytest.raises(storage.DataChanged, match="before it was read"):  # imports is 1 now
        storage.read_at_version(engine, 0, lambda: "rows", storage.IMPORTS)
    with pytest.raises(storage.DataChanged, match="while it was being read"):  # the any-change counter: 2, then 3
        storage.read_at_version(engine, 2, bump(False))
    assert storage.versions(engine) == (3, 1)


def test_unique_key_rejects_plain_duplicate_insert(engine):
    row = SCHOOLS.iloc[[0]].to_dict("records")
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.schools), row)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(schema.schools), row)


def test_database_url_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert database_url() == "postgresql+psycopg://u@h/db"
    monkeypatch.delenv("DATABASE_URL")
    assert database_url().startswith("sqlite:///") and database_url().endswith("data/ssif.db")
