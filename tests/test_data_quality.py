"""The data-quality view: hand-built counts, and the database counts of a small imported district."""

from __future__ import annotations

import pandas as pd

from analytics.data.quality import data_quality, quality_table


def test_quality_table_by_hand():
    metrics = pd.DataFrame({
        "metric": ["read", "read", "read", "math"], "school_year": [2021, 2021, 2024, 2024],
        "student_group": ["ALL", "BL", "ALL", "ALL"], "rows": [10, 8, 10, 5], "with_value": [9, 6, 10, 5],
        "with_counts": [9, 6, 0, 5], "value_only": [0, 0, 10, 0]})
    discipline = pd.DataFrame({"school_year": [2023, 2024], "student_group": ["ALL", "ALL"], "rows": [12, 12],
                               "missing_cells": [3, 4]})
    table = quality_table(metrics, discipline, {"read": 10, "math": 5, "discipline": 12}, 12,
                          label=str.title).set_index("data")
    read = table.loc["Read"]
    assert read["rows"] == 28 and read["years"] == "2020-21 to 2023-24"
    assert read["missing_years"] == "2021-22, 2022-23"  # a break in the series
    assert read["suppressed_cells"] == 3  # 1 + 2 rows without a value
    assert read["value_only_rows"] == 10 and read["schools_without_data"] == 2
    assert "Black" not in read["missing_groups"] and "Hispanic/Latino" in read["missing_groups"]
    assert table.loc["Math", "missing_years"] == "" and table.loc["Math", "schools_without_data"] == 7
    assert table.loc["Discipline", "suppressed_cells"] == 7 and table.loc["Discipline", "years"] == "2022-23 to 2023-24"


def test_quality_of_an_imported_report_card(tmp_path):
    from analytics.data import loads, storage
    from tests.value_only import BIG_COUNTY_SCHOOLS, N_SCHOOLS, build  # noqa: F401

    url = build(f"sqlite:///{tmp_path / 'q.db'}")
    engine = storage.get_engine(url)
    values = loads.load_metrics(engine)["value"]
    row = data_quality(engine).set_index("data").loc["read_proficient"]
    assert row["rows"] == N_SCHOOLS and row["suppressed_cells"] == values.isna().sum()
    assert row["value_only_rows"] == values.notna().sum() and row["schools_without_data"] == 0
    assert row["missing_groups"].startswith("American Indian")  # every group but All students is missing


def test_data_page_shows_quality_and_one_upload_limit(on_demo, monkeypatch):
    from tests.page_runner import run_page

    monkeypatch.setenv("SSIF_MAX_UPLOAD_MB", "12")
    at = run_page("data")
    quality = next(df.value for df in run_page("data", tab="Data quality").dataframe
                   if "missing_groups" in df.value.columns)
    assert "Reading proficient" in set(quality["data"]) and "Discipline" in set(quality["data"])
    assert any("Size limit: 12 MB per file" in c.value for c in at.caption)
    uploader = at.get("file_uploader")[0].proto
    assert uploader.max_upload_size_mb == 12
