"""Bulk writes on both databases: the direct COPY of a new year, its fall-back to the merge, rows sent
again unchanged left alone, indexes set aside for a write as large as its table, the demo's load-then-index
path, PostgreSQL's partition of each school year (a new year built apart and attached), and the CSV reader's
whole-text fast path."""

import queue
import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.data import bulk_write, loads, storage
from analytics.data.readers import read_csv_bytes

SCHOOLS = pd.DataFrame([{"school_id": s, "school_name": f"School {s}", "level": "ES", "cluster": "North"}
                        for s in ("101", "102")])


def _metrics(year: int, value: float = 50.0) -> pd.DataFrame:
    rows = [{"school_id": s, "school_year": year, "metric": m, "student_group": "ALL", "numerator": 5,
             "denominator": 10, "value": value} for s in ("102", "101") for m in ("read_proficient", "math_proficient")]
    return pd.DataFrame(rows)


def _values(engine) -> dict:
    got = loads.load_metrics(engine)
    return {(r.school_id, r.school_year, r.metric): r.value for r in got.itertuples()}


@pytest.fixture
def district(engine, monkeypatch):
    monkeypatch.setattr(bulk_write, "DIRECT_MIN_ROWS", 1)  # indexes set aside for these few rows too
    monkeypatch.setattr(bulk_write, "DIRECT_COPY_MIN_ROWS", 1)  # and the direct COPY
    with engine.begin() as conn:
        bulk_write.upsert(conn, "schools", SCHOOLS)
        bulk_write.upsert(conn, "metrics", _metrics(2024))
    return engine


def test_a_new_year_is_written_beside_the_old_ones(district):
    with district.begin() as conn:
        assert bulk_write.upsert(conn, "metrics", _metrics(2025, value=60.0)) == 4
    values = _values(district)
    assert len(values) == 8
    assert values[("101", 2024, "read_proficient")] == 50.0 and values[("101", 2025, "read_proficient")] == 60.0


def test_a_key_the_year_check_missed_falls_back_to_the_merge(district, monkeypatch):
    monkeypatch.setattr(bulk_write, "_years_all_new", lambda *args: True)  # as if 2024 were new: COPY collides
    with district.begin() as conn:
        bulk_write.upsert(conn, "metrics", pd.concat([_metrics(2024, value=70.0), _metrics(2025, value=80.0)]))
    values = _values(district)
    assert len(values) == 8
    assert values[("102", 2024, "math_proficient")] == 70.0 and values[("102", 2025, "math_proficient")] == 80.0


def test_only_a_new_year_of_enough_rows_is_copied_straight_in(district, monkeypatch):
    monkeypatch.setattr(bulk_write, "DIRECT_COPY_MIN_ROWS", 1_000)
    frame = pd.DataFrame({"school_id": "101", "school_year": 2025, "metric": [f"m{i}" for i in range(1_000)],
                          "student_group": "ALL"})
    with district.connect() as conn:  # the table holds 2024 only
        assert bulk_write._years_all_new(conn, "metrics", frame)
        assert not bulk_write._years_all_new(conn, "metrics", frame.iloc[:999])  # too few: the staging table
        assert not bulk_write._years_all_new(conn, "metrics", frame.assign(school_year=2024))  # a year it holds
        assert not bulk_write._years_all_new(conn, "metrics", pd.concat([frame, frame.assign(school_year=2024)]))
        assert not bulk_write._years_all_new(conn, "schools", frame)  # not keyed by year


def _row_versions(conn) -> list:
    """PostgreSQL: each row's creating transaction (a rewritten row gets a new one)."""
    return sorted(conn.exec_driver_sql("SELECT school_id, school_year, metric, xmin::text FROM metrics").all())


def test_rows_sent_again_unchanged_are_not_rewritten(district):
    with district.begin() as conn:
        if conn.dialect.name == "postgresql":
            before = _row_versions(conn)
        else:
            changes = conn.connection.driver_connection.total_changes
        bulk_write.upsert(conn, "metrics", _metrics(2024))
        if conn.dialect.name == "postgresql":
            assert _row_versions(conn) == before
        else:
            assert conn.connection.driver_connection.total_changes == changes
        bulk_write.upsert(conn, "metrics", _metrics(2024, value=51.0))  # a changed value is written
    assert set(_values(district).values()) == {51.0}


def test_rows_with_empty_cells_sent_again_unchanged_are_not_rewritten(district):
    held = _metrics(2024).astype({"numerator": "float64"})
    held.loc[held["school_id"] == "101", "numerator"] = np.nan  # 101's numerators unknown
    with district.begin() as conn:
        bulk_write.upsert(conn, "metrics", held)
    with district.begin() as conn:
        if conn.dialect.name == "postgresql":
            before = _row_versions(conn)
        else:
            changes = conn.connection.driver_connection.total_changes
        bulk_write.upsert(conn, "metrics", held)  # the empty cells again: nothing rewritten
        if conn.dialect.name == "postgresql":
            assert _row_versions(conn) == before
        else:
            assert conn.connection.driver_connection.total_changes == changes
        known = held.assign(numerator=held["numerator"].fillna(4.0))  # an empty cell filled is written
        bulk_write.upsert(conn, "metrics", known)
        if conn.dialect.name == "postgresql":
            after = {r[:3]: r[3] for r in _row_versions(conn)}
            assert sorted(r[:3] for r in before if after[r[:3]] != r[3]) == [
                ("101", 2024, "math_proficient"), ("101", 2024, "read_proficient")]
    got = loads.load_metrics(district)
    assert sorted(zip(got["school_id"], got["numerator"], strict=True)) == [("101", 4.0)] * 2 + [("102", 5.0)] * 2


def _indexes(engine) -> dict:
    inspector = sa.inspect(engine)
    return {"indexes": sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes("metrics")),
            "unique": sorted(c["name"] for c in inspector.get_unique_constraints("metrics"))}


def test_a_write_as_large_as_its_table_sets_indexes_aside_only_then(district):
    with district.begin() as conn:  # the table holds 4 rows
        assert bulk_write._outweighs_table(conn, "metrics", 4) and bulk_write._outweighs_table(conn, "metrics", 5)
        assert not bulk_write._outweighs_table(conn, "metrics", 3)


def test_indexes_set_aside_come_back_as_they_were(district):
    before = _indexes(district)
    names = {name for name, _ in before["indexes"]} - {"uq_metrics_key"}  # PostgreSQL lists the key's index too
    assert before["unique"] == ["uq_metrics_key"]
    # The year-first and metric-first indexes only on SQLite: on PostgreSQL each year is a partition (migration
    # 0009) and the unique key leads with the metric (0014), with an index on the school beside it.
    sqlite = district.dialect.name == "sqlite"
    assert names == ({"ix_metrics_metric_group_year", "ix_metrics_year_metric"} if sqlite else {"ix_metrics_school"})
    with storage.write_transaction(district) as conn:  # 8 new rows into a table of 4: set aside, rebuilt
        bulk_write.upsert(conn, "metrics", pd.concat([_metrics(2025, value=60.0), _metrics(2026, value=70.0)]))
    assert _indexes(district) == before
    assert len(_values(district)) == 12
    with pytest.raises(sa.exc.IntegrityError), district.begin() as conn:  # the unique key is enforced again
        bulk_write.upsert(conn, "schools", SCHOOLS)
        conn.execute(sa.insert(storage.schema.metrics), _metrics(2025).to_dict("records")[:1])


def test_a_failure_after_indexes_were_set_aside_leaves_rows_and_indexes(district):
    before, values = _indexes(district), _values(district)
    with pytest.raises(RuntimeError), storage.write_transaction(district) as conn:
        bulk_write.upsert(conn, "metrics", pd.concat([_metrics(2025), _metrics(2026)]))
        raise RuntimeError("killed after the write")
    assert _indexes(district) == before and _values(district) == values


def _metrics_csv(rows: list[tuple]) -> bytes:
    lines = ["school_id,school_year,metric,student_group,numerator,denominator,value"]
    return "\n".join(lines + [",".join(str(v) for v in row) for row in rows]).encode()


def test_an_import_partly_held_rewrites_only_changed_rows_and_is_all_or_nothing(district):
    from analytics.data.importer import import_bytes

    held = [(s, 2024, m, "ALL", 5, 10, 50.0) for s in ("101", "102") for m in ("read_proficient", "math_proficient")]
    changed = [("101", 2024, "read_proficient", "ALL", 6, 10, 60.0), *held[1:]]
    new = [(s, 2025, "read_proficient", "ALL", 7, 10, 70.0) for s in ("101", "102")]
    with district.begin() as conn:  # which rows an import rewrites: PostgreSQL row versions, a SQLite trigger
        if conn.dialect.name == "postgresql":
            before = _row_versions(conn)
        else:
            conn.exec_driver_sql("CREATE TABLE rewritten (school_id TEXT, metric TEXT)")
            conn.exec_driver_sql("CREATE TRIGGER note_update AFTER UPDATE ON metrics BEGIN "
                                 "INSERT INTO rewritten VALUES (new.school_id, new.metric); END")
    indexes = _indexes(district)
    assert import_bytes(district, [("metrics.csv", _metrics_csv(changed + new))]).ok  # 6 rows into a table of 4
    values = _values(district)
    assert len(values) == 6 and values[("101", 2024, "read_proficient")] == 60.0
    assert values[("102", 2024, "math_proficient")] == 50.0 and values[("102", 2025, "read_proficient")] == 70.0
    with district.begin() as conn:
        if conn.dialect.name == "postgresql":
            after = {r[:3]: r[3] for r in _row_versions(conn)}
            kept = [r for r in before if after[r[:3]] == r[3]]
            assert sorted(r[:3] for r in before if r not in kept) == [("101", 2024, "read_proficient")]
        else:
            assert conn.exec_driver_sql("SELECT * FROM rewritten").all() == [("101", "read_proficient")]
    bad = [*changed, ("102", 2026, "read_proficient", "ALL", 11, 10, "")]  # numerator above denominator
    report = import_bytes(district, [("metrics.csv", _metrics_csv([*new, *bad]))])
    assert [(p.row, p.column) for p in report.problems] == [(8, "numerator")]
    assert _values(district) == values and _indexes(district) == indexes


def test_demo_load_rebuilds_every_index_it_dropped(engine, monkeypatch):
    from analytics.data.demo import load_demo

    monkeypatch.setattr(bulk_write, "BULK_LOAD_ROWS", 1000)
    inspector = sa.inspect(engine)
    storage.create_schema(engine)
    before = {t: sorted(i["name"] for i in inspector.get_indexes(t)) for t in ("metrics", "discipline", "incidents")}
    counts = load_demo(engine, schools=12, years=3)
    inspector = sa.inspect(engine)
    after = {t: sorted(i["name"] for i in inspector.get_indexes(t)) for t in before}
    assert after == before
    assert sorted(c["name"] for c in inspector.get_unique_constraints("metrics")) == ["uq_metrics_key"]
    assert loads.table_counts(engine)["metrics"] == counts["metrics"]
    if engine.dialect.name == "postgresql":  # a partition for each year, loaded apart, nothing else
        with engine.connect() as conn:
            assert sorted(storage.year_partitions(conn, "metrics")) == loads.available_years(engine)
        assert set(_layout(engine)[0]) == {f"metrics_y{y}" for y in loads.available_years(engine)}


def _layout(engine) -> tuple[dict, int]:
    """PostgreSQL: each partition of metrics with its indexes (and whether each belongs to the parent's), and
    the number of CHECK constraints left on the partitions."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT t.relname, i.relname, EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.oid) "
            "FROM pg_inherits p JOIN pg_class t ON t.oid = p.inhrelid JOIN pg_index x ON x.indrelid = t.oid "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE p.inhparent = 'metrics'::regclass ORDER BY 1, 2").all()
        checks = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_constraint c JOIN pg_inherits p ON p.inhrelid = c.conrelid "
            "WHERE p.inhparent = 'metrics'::regclass AND c.contype = 'c'").scalar_one()
    layout: dict = {}
    for partition, index, attached in rows:
        layout.setdefault(partition, []).append((index, attached))
    return layout, checks


def _year_layout(year: int) -> list:
    return [(f"ix_metrics_school_y{year}", True), (f"uq_metrics_key_y{year}", True)]


@pytest.fixture
def pg_district(district):
    if district.dialect.name != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    return district


def test_a_new_year_is_a_partition_of_its_own_with_the_parents_indexes(pg_district):
    assert _layout(pg_district) == ({"metrics_y2024": _year_layout(2024)}, 0)
    with storage.write_transaction(pg_district) as conn:
        bulk_write.upsert(conn, "metrics", pd.concat([_metrics(2025, value=60.0), _metrics(2026, value=70.0)]))
    assert _layout(pg_district) == ({f"metrics_y{y}": _year_layout(y) for y in (2024, 2025, 2026)}, 0)
    values = _values(pg_district)
    assert len(values) == 12 and values[("102", 2026, "math_proficient")] == 70.0
    with pytest.raises(sa.exc.IntegrityError), pg_district.begin() as conn:  # the parent's key holds on it
        conn.execute(sa.insert(storage.schema.metrics), _metrics(2025).to_dict("records")[:1])


def test_a_new_years_partition_is_filled_in_the_order_of_its_unique_key():
    metrics = pd.DataFrame({"school_id": ["B", "A", "A", "B", "A"], "school_year": 2025,
                            "metric": ["m2", "m2", "m1", "m1", "m1"], "student_group": ["BL", "BL", "BL", "BL", "ALL"]})
    got = bulk_write._in_partition_order("metrics", metrics)
    assert got[["metric", "student_group", "school_id"]].values.tolist() == [
        ["m1", "ALL", "A"], ["m1", "BL", "A"], ["m1", "BL", "B"], ["m2", "BL", "A"], ["m2", "BL", "B"]]
    discipline = pd.DataFrame({"school_id": ["A", "B", "A"], "school_year": 2025, "student_group": ["WH", "ALL", "ALL"]})
    got = bulk_write._in_partition_order("discipline", discipline)
    assert got[["student_group", "school_id"]].values.tolist() == [["ALL", "A"], ["ALL", "B"], ["WH", "A"]]


def test_a_years_rows_are_put_in_partition_order_as_sort_values_puts_them():
    rng = np.random.default_rng(7)
    rows = pd.DataFrame({"school_id": rng.choice(["S1", "S10", "s2", "Z", "\u00e9"], 400),
                         "metric": rng.choice(["m1", "m2", "M1", "m10"], 400),
                         "student_group": rng.choice(["ALL", "BL", "AM"], 400), "value": np.arange(400.0)})
    order = ["metric", "student_group", "school_id"]
    expected = rows.sort_values(order, kind="stable")  # stable: a repeated key keeps its rows' order
    pd.testing.assert_frame_equal(bulk_write._in_partition_order("metrics", rows), expected)
    labels = bulk_write._in_partition_order("metrics", rows, columns=False)
    assert labels.columns.empty and labels.index.tolist() == expected.index.tolist()
    raw = read_csv_bytes("metrics.csv", rows.to_csv(index=False).encode())  # factorized once, for the checks too
    assert raw.factorized("metric") is raw.factorized("metric")
    ordered = bulk_write._in_partition_order("metrics", raw.frame, columns=False, factorized=raw.factorized)
    assert ordered.index.tolist() == expected.index.tolist()


def test_an_imports_transaction_alone_sorts_index_builds_in_more_memory(pg_district):
    def memory(conn) -> str:
        return conn.exec_driver_sql("SHOW maintenance_work_mem").scalar_one()

    with pg_district.connect() as conn:
        default = memory(conn)
    with storage.write_transaction(pg_district) as conn:
        assert memory(conn) == storage.WRITE_MAINTENANCE_MEM == "256MB"
    with pg_district.connect() as conn:
        assert memory(conn) == default != "256MB"


def test_a_failed_write_leaves_no_partition_behind(pg_district):
    values = _values(pg_district)
    with pytest.raises(RuntimeError), storage.write_transaction(pg_district) as conn:
        bulk_write.upsert(conn, "metrics", _metrics(2025))
        raise RuntimeError("killed after the write")
    assert _layout(pg_district) == ({"metrics_y2024": _year_layout(2024)}, 0)
    assert _values(pg_district) == values


def test_stored_years_merge_and_an_emptied_year_is_built_again(pg_district):
    with storage.write_transaction(pg_district) as conn:  # 2024 held: merged; 2025 new: a partition
        bulk_write.upsert(conn, "metrics", pd.concat([_metrics(2024, value=55.0), _metrics(2025, value=65.0)]))
    assert set(_values(pg_district).items()) == {((s, y, m), v) for s in ("101", "102") for (y, v) in
                                                  ((2024, 55.0), (2025, 65.0)) for m in ("read_proficient",
                                                                                        "math_proficient")}
    with pg_district.begin() as conn:
        conn.exec_driver_sql("DELETE FROM metrics WHERE school_year = 2024")
        oid = conn.exec_driver_sql("SELECT 'metrics_y2024'::regclass::oid").scalar_one()
    with storage.write_transaction(pg_district) as conn:
        bulk_write.upsert(conn, "metrics", _metrics(2024, value=45.0))
        assert conn.exec_driver_sql("SELECT 'metrics_y2024'::regclass::oid").scalar_one() != oid  # a new table
    assert _values(pg_district)[("101", 2024, "read_proficient")] == 45.0
    assert _layout(pg_district) == ({f"metrics_y{y}": _year_layout(y) for y in (2024, 2025)}, 0)


def test_a_few_rows_of_a_new_year_are_merged_into_an_empty_partition(pg_district, monkeypatch):
    monkeypatch.setattr(bulk_write, "DIRECT_COPY_MIN_ROWS", 1_000)
    with storage.write_transaction(pg_district) as conn:
        bulk_write.upsert(conn, "metrics", _metrics(2025, value=60.0))
    assert _layout(pg_district) == ({f"metrics_y{y}": _year_layout(y) for y in (2024, 2025)}, 0)
    assert _values(pg_district)[("102", 2025, "read_proficient")] == 60.0


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_csv_read_whole_or_line_by_line_gives_the_same_table(ending):
    lines = ["school_id,school_year,metric,student_group,value", "101,2024,read_proficient,ALL,50",
             '102,2024,read_proficient,ALL,"61,5"', "103,2024,read_proficient,ALL,"]
    plain = read_csv_bytes("metrics.csv", ending.join(lines).encode())
    titled = read_csv_bytes("metrics.csv", ending.join(["District metrics 2024", "", *lines]).encode())
    assert plain.frame.values.tolist() == titled.frame.values.tolist()
    assert plain.frame.columns.tolist() == titled.frame.columns.tolist()
    assert (plain.first_data_line, titled.first_data_line) == (2, 4)
    assert plain.frame["value"].tolist() == ["50", "61,5", ""]


def test_a_new_years_key_is_built_without_parallel_workers_and_the_setting_comes_back(pg_district):
    def workers(conn) -> str:
        return conn.exec_driver_sql("SHOW max_parallel_maintenance_workers").scalar_one()

    with storage.write_transaction(pg_district) as conn:
        before = workers(conn)
        with bulk_write._serial_index_build(conn):
            assert workers(conn) == "0"
        assert workers(conn) == before
        bulk_write.upsert(conn, "metrics", _metrics(2025))
        assert workers(conn) == before != "0"


@pytest.mark.parametrize(("text", "lines"), [
    ("a,b\n1,2\n3,4", [b"1,2\n", b"3,4\n"]),  # the last line's end added
    ("a,b\r\n1,2\r\n3,4\r\n", [b"1,2\n", b"3,4\n"]),  # read with `\n` ends
    ('a,b\n1,"2"\n', None),  # a quote
    ("a;b\n1;2\n", None),  # another delimiter
    ("a,b\n1,2\n,\n3,4\n", None),  # an empty row dropped
])
def test_a_plain_csv_files_own_lines_are_kept_one_a_row(text, lines):
    raw = read_csv_bytes("metrics.csv", text.encode())
    if lines is None:
        assert raw.csv_lines is None
    else:
        assert raw.csv_lines.columns == ["a", "b"]
        assert [b"".join(raw.csv_lines.chunks(np.array([i]))) for i in range(len(raw.frame))] == lines


def test_an_ascii_files_lines_are_its_own_bytes_and_another_files_its_text_encoded():
    data = b"a,b\n1,2\n3,4\n"
    assert read_csv_bytes("metrics.csv", data).csv_lines.body is data  # no copy of a state's 62 MB
    accented = "a,b\n1,\u00e9\n".encode()
    raw = read_csv_bytes("metrics.csv", accented)
    assert raw.csv_lines.body == accented and raw.frame["b"].tolist() == ["\u00e9"]
    latin = "a,b\n1,\u00e9\n".encode("cp1252")  # read as Windows-1252, its lines sent as UTF-8
    assert read_csv_bytes("metrics.csv", latin).csv_lines.body == accented


def test_a_utf16_file_without_a_byte_order_mark_is_read_as_its_text_encoded():
    text = "school_id,school_year,metric,student_group,value\nS1,2024,read_proficient,ALL,30"  # no final line end
    expected = read_csv_bytes("metrics.csv", text.encode())
    for encoding in ("utf-16-le", "utf-16-be"):  # ASCII bytes, a NUL beside each character
        raw = read_csv_bytes("metrics.csv", text.encode(encoding))
        pd.testing.assert_frame_equal(raw.frame, expected.frame)
        assert raw.csv_lines.body == expected.csv_lines.body == text.encode() + b"\n"


@pytest.fixture
def early_writes(monkeypatch) -> list[bool | None]:
    """What became of each early write of a new year's file: finished (True), not written so left to the write
    after the checks (False), or abandoned because the checks found the file not stored as written (None)."""
    writes: list[bulk_write.EarlyYearWrite] = []
    outcomes: list[bool | None] = []
    finish, abandon = bulk_write.EarlyYearWrite.finish, bulk_write.EarlyYearWrite.abandon

    def slot(write) -> int:
        if not any(seen is write for seen in writes):
            writes.append(write)
            outcomes.append(None)
        return next(i for i, seen in enumerate(writes) if seen is write)

    def finished(self, rest):
        outcomes[slot(self)] = finish(self, rest)
        return outcomes[slot(self)]

    def abandoned(self):
        slot(self)
        abandon(self)

    monkeypatch.setattr(bulk_write.EarlyYearWrite, "finish", finished)
    monkeypatch.setattr(bulk_write.EarlyYearWrite, "abandon", abandoned)
    return outcomes


def _history(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(storage.schema.imports)).scalar_one()


NEW_YEAR = [(s, 2025, m, g, n, 10, n * 10) for s, n in (("102", 7), ("101", 3))
            for m in ("read_proficient", "math_proficient") for g in ("ALL", "BL")]


def test_a_new_years_file_is_written_while_it_is_checked(pg_district, early_writes):
    from analytics.data.importer import import_bytes

    version = storage.import_version(pg_district)
    report = import_bytes(pg_district, [("metrics.csv", _metrics_csv(NEW_YEAR))])
    assert report.ok and report.written and early_writes == [True]
    values = _values(pg_district)  # the year beside 2024's four rows
    assert len(values) == 4 + 4 and values[("102", 2025, "math_proficient")] == 70.0
    assert values[("101", 2025, "read_proficient")] == 30.0
    got = loads.load_metrics(pg_district, years=[2025])
    assert sorted(got[["school_id", "metric", "student_group", "numerator"]].itertuples(index=False, name=None)) == [
        (s, m, g, n) for s, n in (("101", 3), ("102", 7)) for m in ("math_proficient", "read_proficient")
        for g in ("ALL", "BL")]
    assert _layout(pg_district) == ({f"metrics_y{y}": _year_layout(y) for y in (2024, 2025)}, 0)
    assert _history(pg_district) == 1 and storage.import_version(pg_district) == version + 1


def test_a_new_years_file_with_problems_written_early_leaves_nothing_and_reports_them_all(pg_district, early_writes,
                                                                                        monkeypatch):
    from analytics.data import importer
    from analytics.data.importer import import_bytes

    monkeypatch.setattr(importer, "EARLY_SAMPLE_ROWS", 2)  # the first two rows pass: the write starts

    values, version = _values(pg_district), storage.import_version(pg_district)
    bad = [*NEW_YEAR[:2], ("103", 2025, "read_proficient", "ALL", 1, 10, 10), *NEW_YEAR[3:5],
           ("101", 2025, "math_proficient", "BL", 12, 10, 100)]  # an unknown school, a numerator above 10
    report = import_bytes(pg_district, [("metrics.csv", _metrics_csv(bad))])
    assert [(p.row, p.column) for p in report.problems] == [(4, "school_id"), (7, "numerator")]
    assert not report.written and early_writes == [None]
    assert _values(pg_district) == values and storage.import_version(pg_district) == version
    assert _layout(pg_district) == ({"metrics_y2024": _year_layout(2024)}, 0) and _history(pg_district) == 0
    assert import_bytes(pg_district, [("metrics.csv", _metrics_csv(NEW_YEAR))]).ok  # the import lock was let go
    assert early_writes == [None, True] and len(_values(pg_district)) == 8


def test_a_new_years_file_not_stored_as_written_is_written_after_the_checks(pg_district, early_writes, monkeypatch):
    from analytics.data import importer
    from analytics.data.importer import import_bytes

    lower = [(s, y, m, g.lower(), n, d, v) for s, y, m, g, n, d, v in NEW_YEAR]  # groups stored in capitals
    assert import_bytes(pg_district, [("metrics.csv", _metrics_csv(lower))]).ok
    assert early_writes == []  # its first rows said so: no early write
    with pg_district.begin() as conn:
        conn.exec_driver_sql("DELETE FROM metrics WHERE school_year = 2025")
    monkeypatch.setattr(importer, "EARLY_SAMPLE_ROWS", 2)  # the first two rows as written, the rest not
    assert import_bytes(pg_district, [("metrics.csv", _metrics_csv(NEW_YEAR[:2] + lower[2:]))]).ok
    assert early_writes == [None]  # started, then abandoned
    got = loads.load_metrics(pg_district, years=[2025])
    assert sorted(set(got["student_group"])) == ["ALL", "BL"] and len(got) == 8
    assert _layout(pg_district) == ({f"metrics_y{y}": _year_layout(y) for y in (2024, 2025)}, 0)


def test_a_file_of_a_year_already_held_is_merged_after_the_checks(pg_district, early_writes):
    from analytics.data.importer import import_bytes

    held = [(s, 2024, m, "ALL", 6, 10, 60) for s in ("101", "102") for m in ("read_proficient", "math_proficient")]
    assert import_bytes(pg_district, [("metrics.csv", _metrics_csv(held))]).ok
    assert early_writes == [False]
    assert set(_values(pg_district).values()) == {60.0} and _history(pg_district) == 1


def test_a_new_years_file_whose_early_write_fails_is_written_after_the_checks(pg_district, early_writes,
                                                                            monkeypatch):
    import threading

    from analytics.data.importer import import_bytes

    replace = bulk_write._replace_year

    def failing_early(*args, **kwargs):  # the early write's COPY fails (say, the server's disk is full a moment)
        if threading.current_thread().name == "ssif-early-write":
            raise sa.exc.OperationalError("COPY metrics_y2025", None, Exception("could not extend file"))
        return replace(*args, **kwargs)

    monkeypatch.setattr(bulk_write, "_replace_year", failing_early)
    report = import_bytes(pg_district, [("metrics.csv", _metrics_csv(NEW_YEAR))])
    assert report.ok and report.written and early_writes == [False]  # left to the write after the checks
    values = _values(pg_district)
    assert len(values) == 8 and values[("102", 2025, "math_proficient")] == 70.0
    assert _layout(pg_district) == ({f"metrics_y{y}": _year_layout(y) for y in (2024, 2025)}, 0)
    assert _history(pg_district) == 1


def test_a_new_years_file_whose_import_fails_as_it_commits_leaves_nothing(pg_district, early_writes, monkeypatch):
    import threading

    from analytics.access import audit
    from analytics.data.importer import import_bytes

    record, failed = audit.record, []

    def failing_once(*args, **kwargs):  # the import's audit row fails in the early write's transaction
        if threading.current_thread().name == "ssif-early-write" and not failed:
            failed.append(True)
            raise RuntimeError("audit row refused")
        return record(*args, **kwargs)

    monkeypatch.setattr(audit, "record", failing_once)
    values, version = _values(pg_district), storage.import_version(pg_district)
    with pytest.raises(RuntimeError, match="audit row refused"):
        import_bytes(pg_district, [("metrics.csv", _metrics_csv(NEW_YEAR))])
    assert _values(pg_district) == values and storage.import_version(pg_district) == version
    assert _layout(pg_district) == ({"metrics_y2024": _year_layout(2024)}, 0) and _history(pg_district) == 0
    assert import_bytes(pg_district, [("metrics.csv", _metrics_csv(NEW_YEAR))]).written  # the lock was let go
    assert early_writes == [None, True] and len(_values(pg_district)) == 8


def test_a_new_years_file_that_fails_its_checks_while_written_early_has_the_write_cancelled(pg_district, early_writes,
                                                                                          monkeypatch):
    import threading

    from analytics.data import importer
    from analytics.data.importer import import_bytes

    monkeypatch.setattr(importer, "EARLY_SAMPLE_ROWS", 2)  # the first two rows pass: the write starts
    replace, ended = bulk_write._replace_year, []

    def slow_early(conn, *args, **kwargs):  # a COPY still running when the checks end
        if threading.current_thread().name == "ssif-early-write":
            try:
                conn.exec_driver_sql("SELECT pg_sleep(60)")
            except sa.exc.DBAPIError as exc:
                ended.append(type(exc.orig).__name__)
                raise
        return replace(conn, *args, **kwargs)

    monkeypatch.setattr(bulk_write, "_replace_year", slow_early)
    values = _values(pg_district)
    bad = [*NEW_YEAR[:2], ("103", 2025, "read_proficient", "ALL", 1, 10, 10), *NEW_YEAR[3:]]  # an unknown school
    report = import_bytes(pg_district, [("metrics.csv", _metrics_csv(bad))])
    assert [(p.row, p.column) for p in report.problems] == [(4, "school_id")] and not report.written
    assert ended == ["QueryCanceled"] and early_writes == [None]  # stopped, not waited for, and rolled back
    assert _values(pg_district) == values and _layout(pg_district) == ({"metrics_y2024": _year_layout(2024)}, 0)
    assert _history(pg_district) == 0


class _Driver:
    def __init__(self, write):
        self.write, self.cancels = write, 0

    def cancel(self):  # the running statement is cancelled: the write ends
        self.cancels += 1
        self.write._written.set()


class _EndsAsWaitTimesOut(threading.Event):
    """The write ends just after abandon's wait for it timed out: the connection may be back in the pool."""

    def wait(self, timeout=None):
        if self.is_set():
            return True
        super().set()
        return False


def _early_write_at(written) -> bulk_write.EarlyYearWrite:
    write = object.__new__(bulk_write.EarlyYearWrite)
    write._written, write._ending, write._rest = written, threading.Lock(), queue.SimpleQueue()
    write._thread = threading.Thread(target=lambda: None)
    write._thread.start()
    write._driver = _Driver(write)
    return write


def test_an_abandoned_early_write_cancels_its_statement_while_it_runs_and_never_once_it_has_ended():
    running = _early_write_at(threading.Event())
    running.abandon()
    assert running._driver.cancels == 1 and running._rest.get_nowait() is None
    ended = _early_write_at(_EndsAsWaitTimesOut())
    ended.abandon()
    assert ended._driver.cancels == 0  # another session's statement on that connection is left alone
