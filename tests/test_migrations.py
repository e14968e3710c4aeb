"""Schema migrations: fresh databases, a database made by the previous release, and no drift.

`fixtures/release_0_1.db` is a real SQLite file made by the release before migrations (its
`metadata.create_all`, then a few rows through its own upsert): two schools, metrics, discipline,
an old-style improvement cycle, an import record and a shared link.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from analytics.data import bulk_write, loads, migrations, schema, storage

FIXTURE = Path(__file__).parent / "fixtures" / "release_0_1.db"
OLD_TABLES = ("schools", "metrics", "discipline", "improvement_cycles", "imports", "shares", "data_version")


def _drift(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts=migrations.comparison_options(conn.dialect.name)),
                                schema.metadata)


def _one_school(conn, years: tuple[int, ...]) -> None:
    """One school (Hill ES, East) with its reading proficiency (40 of 80) in each of `years`."""
    bulk_write.upsert(conn, "schools", pd.DataFrame([{"school_id": "9", "school_name": "Hill ES", "level": "ES",
                                                      "cluster": "East"}]))
    bulk_write.upsert(conn, "metrics", pd.DataFrame([{"school_id": "9", "school_year": y, "metric": "read_proficient",
                                                      "student_group": "ALL", "numerator": 40, "denominator": 80,
                                                      "value": 50.0} for y in years]))


def _snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of the tables the previous release had (of `data_version`, its own row: 0012 adds the other)."""
    with engine.connect() as conn:
        return {name: sorted(map(tuple, conn.execute(sa.text(f"SELECT * FROM {name}" + (
                    " WHERE id = 1" if name == "data_version" else ""))).all()), key=repr)
                for name in OLD_TABLES}


def test_history_has_one_head_starting_at_the_baseline():
    assert len(migrations.heads()) == 1
    script = migrations._script()
    assert [r.revision for r in script.walk_revisions()][-1] == migrations.BASELINE


def test_fresh_database_is_at_head_and_matches_the_schema(engine):
    with engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head()
    assert _drift(engine) == []


def test_previous_release_sqlite_file_upgrades_in_place_keeping_every_row(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    old = sa.create_engine(f"sqlite:///{path}")
    with old.connect() as conn:
        assert not sa.inspect(conn).has_table("alembic_version")
    before = _snapshot(old)
    old.dispose()

    engine = storage.get_engine(f"sqlite:///{path}")
    assert migrations.upgrade(engine) == migrations.BASELINE
    storage.ensure_database(engine)  # the app's start-up path: no demo over existing data
    with engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head()
    assert _snapshot(engine) == before
    assert _drift(engine) == []
    assert loads.load_schools(engine)["school_name"].tolist() == ["O'Brien Elementary", "Lakeview Middle"]
    assert loads.table_counts(engine)["metrics"] == 6
    assert storage.versions(engine) == (1, 1)  # the import version starts where the file's version was


def test_previous_release_database_upgrades_in_place(engine):
    with engine.begin() as conn:  # rebuilt as the previous release left it: the baseline, no version table
        schema.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE alembic_version"))
        command.upgrade(migrations.alembic_config(conn), migrations.BASELINE)
        conn.execute(sa.text("DROP TABLE alembic_version"))
        conn.execute(sa.insert(schema.data_version).values(id=1, version=7))
        _one_school(conn, (2024,))
    before = _snapshot(engine)
    storage.create_schema(engine)
    with engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head()
    assert _snapshot(engine) == before
    assert storage.versions(engine) == (7, 7)
    assert _drift(engine) == []


def test_upgrading_twice_changes_nothing(engine):
    with engine.begin() as conn:
        bulk_write.upsert(conn, "schools", pd.DataFrame([{"school_id": "1", "school_name": "A", "level": "ES",
                                                          "cluster": "C"}]))
    before = _snapshot(engine)
    assert migrations.upgrade(engine) == migrations.head()
    storage.create_schema(engine)
    assert _snapshot(engine) == before


def _relkind(conn, table: str) -> str:
    return conn.exec_driver_sql(f"SELECT relkind FROM pg_class WHERE oid = '{table}'::regclass").scalar_one()


def test_postgresql_tables_held_at_0007_are_partitioned_by_year_with_every_row(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps its tables as they are")
    with engine.begin() as conn:  # rebuilt at 0007 with rows of two years
        schema.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE alembic_version"))
        command.upgrade(migrations.alembic_config(conn), "0007")
        conn.execute(sa.insert(schema.data_version).values(id=1, version=3))
        _one_school(conn, (2023, 2024))
        bulk_write.upsert(conn, "discipline", pd.DataFrame([{"school_id": "9", "school_year": 2024,
                                                             "student_group": "ALL", "enrolled": 300}]))
        assert _relkind(conn, "metrics") == "r"
    before = _snapshot(engine)
    storage.create_schema(engine)
    with engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head()
        assert _relkind(conn, "metrics") == "p" and _relkind(conn, "discipline") == "p"
        assert storage.year_partitions(conn, "metrics") == {2023: "metrics_y2023", 2024: "metrics_y2024"}
        assert storage.year_partitions(conn, "discipline") == {2024: "discipline_y2024"}
        indexes = sorted(conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE tablename = 'metrics_y2023'")
                         .scalars())
    assert indexes == ["ix_metrics_school_y2023", "uq_metrics_key_y2023"]  # year-first gone (0009), school (0014)
    assert _snapshot(engine) == before
    assert _drift(engine) == []
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0007")
        assert _relkind(conn, "metrics") == "r" and _relkind(conn, "discipline") == "r"
    assert _snapshot(engine) == before


def _metrics_indexes(conn) -> list[str]:
    return sorted(i["name"] for i in sa.inspect(conn).get_indexes("metrics") if i["name"].startswith("ix_"))


def _partition_indexes(conn, partition: str) -> list[str]:
    return sorted(conn.exec_driver_sql(f"SELECT indexname FROM pg_indexes WHERE tablename = '{partition}'").scalars())


def test_the_year_first_metrics_index_is_kept_on_sqlite_only_and_comes_back_going_down(engine):
    both = ["ix_metrics_metric_group_year", "ix_metrics_year_metric_group"]
    sqlite = engine.dialect.name == "sqlite"
    at_head = ["ix_metrics_metric_group_year", "ix_metrics_year_metric"] if sqlite else ["ix_metrics_school"]
    with engine.begin() as conn:
        _one_school(conn, (2023, 2024))
    before = _snapshot(engine)
    with engine.connect() as conn:
        assert _metrics_indexes(conn) == at_head
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0008")
        assert _metrics_indexes(conn) == both
        if not sqlite:  # each year's index named as imports name theirs, taken over by the parent's
            assert _partition_indexes(conn, "metrics_y2024") == [
                "ix_metrics_metric_group_year_y2024", "ix_metrics_year_metric_group_y2024", "uq_metrics_key_y2024"]
    assert _snapshot(engine) == before
    storage.create_schema(engine)
    with engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head()
        assert _metrics_indexes(conn) == at_head
        if not sqlite:
            assert _partition_indexes(conn, "metrics_y2024") == ["ix_metrics_school_y2024", "uq_metrics_key_y2024"]
    assert _snapshot(engine) == before
    assert _drift(engine) == []


def _key_collations(conn) -> dict[str, str | None]:
    """Each text key column's collation on every table and partition of metrics and discipline (None: default)."""
    rows = conn.exec_driver_sql(
        "SELECT c.relname || '.' || a.attname, CASE WHEN a.attcollation = t.typcollation THEN NULL "
        "ELSE co.collname END FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_type t ON t.oid = a.atttypid JOIN pg_collation co ON co.oid = a.attcollation "
        "WHERE (c.relname ~ '^(metrics|discipline)(_y[0-9]+)?$') AND c.relkind IN ('r', 'p') "
        "AND a.attname IN ('school_id', 'metric', 'student_group')").all()
    return dict(rows)


def test_postgresql_key_text_compares_as_bytes_and_goes_back(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite compares text as bytes already")
    ids = ["b", "B", "a_1", "a1"]
    with engine.begin() as conn:
        bulk_write.upsert(conn, "schools", pd.DataFrame([{"school_id": s, "school_name": f"School {s}", "level": "ES",
                                                          "cluster": "East"} for s in ids]))
        bulk_write.upsert(conn, "metrics", pd.DataFrame([{"school_id": s, "school_year": y, "metric": "read_proficient",
                                                          "student_group": "ALL", "numerator": 40, "denominator": 80,
                                                          "value": 50.0} for s in ids for y in (2023, 2024)]))
        bulk_write.upsert(conn, "discipline", pd.DataFrame([{"school_id": s, "school_year": 2024,
                                                             "student_group": "ALL", "enrolled": 300} for s in ids]))
    before = _snapshot(engine)
    columns = ["discipline.school_id", "discipline.student_group", "discipline_y2024.school_id",
               "discipline_y2024.student_group", "metrics.metric", "metrics.school_id", "metrics.student_group",
               *(f"metrics_y{y}.{c}" for y in (2023, 2024) for c in ("metric", "school_id", "student_group"))]
    with engine.connect() as conn:
        assert _key_collations(conn) == dict.fromkeys(columns, "C")
        assert conn.exec_driver_sql("SELECT school_id FROM metrics WHERE school_year = 2024 ORDER BY school_id"
                                    ).scalars().all() == ["B", "a1", "a_1", "b"]  # bytes: B 0x42, 1 0x31, _ 0x5f
        assert _partition_indexes(conn, "metrics_y2024") == ["ix_metrics_school_y2024", "uq_metrics_key_y2024"]
        assert _partition_indexes(conn, "discipline_y2024") == ["ix_discipline_school_y2024",
                                                                "uq_discipline_key_y2024"]
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0009")
        assert _key_collations(conn) == dict.fromkeys(columns)
        assert _partition_indexes(conn, "metrics_y2023") == ["ix_metrics_metric_group_year_y2023",
                                                              "uq_metrics_key_y2023"]
    assert _snapshot(engine) == before
    storage.create_schema(engine)
    with engine.connect() as conn:
        assert _key_collations(conn) == dict.fromkeys(columns, "C")
        assert _partition_indexes(conn, "discipline_y2024") == ["ix_discipline_school_y2024",
                                                                "uq_discipline_key_y2024"]
    assert _snapshot(engine) == before
    assert _drift(engine) == []


def _keys(conn) -> dict[str, str]:
    """Each unique constraint of metrics and discipline and of their 2024 partitions, as PostgreSQL defines it."""
    return dict(conn.exec_driver_sql(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'u' "
        "AND conrelid::regclass::text IN ('metrics', 'metrics_y2024', 'discipline', 'discipline_y2024')").all())


def test_postgresql_unique_keys_lead_with_metric_and_group_and_go_back(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps its keys in the declared order")
    with engine.begin() as conn:
        bulk_write.upsert(conn, "schools", pd.DataFrame([{"school_id": s, "school_name": f"School {s}", "level": "ES",
                                                          "cluster": "East"} for s in ("8", "9")]))
        bulk_write.upsert(conn, "metrics", pd.DataFrame([{"school_id": s, "school_year": 2024, "metric": m,
                                                          "student_group": "ALL", "value": 50.0}
                                                         for s in ("9", "8")
                                                         for m in ("read_proficient", "attendance_rate")]))
        bulk_write.upsert(conn, "discipline", pd.DataFrame([{"school_id": s, "school_year": 2024,
                                                             "student_group": "ALL", "enrolled": 300}
                                                            for s in ("9", "8")]))
    before = _snapshot(engine)
    metric_first = "UNIQUE (metric, student_group, school_id, school_year) INCLUDE (numerator, denominator, value)"
    group_first = "UNIQUE (student_group, school_id, school_year)"
    with engine.connect() as conn:
        assert _keys(conn) == {"uq_metrics_key": metric_first, "uq_metrics_key_y2024": metric_first,
                               "uq_discipline_key": group_first, "uq_discipline_key_y2024": group_first}
        assert _partition_indexes(conn, "metrics_y2024") == ["ix_metrics_school_y2024", "uq_metrics_key_y2024"]
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN SELECT * FROM metrics WHERE school_id = '9'").scalars())
        assert "ix_metrics_school_y2024" in plan
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0012")
        assert _keys(conn) == {"uq_metrics_key": "UNIQUE (school_id, school_year, metric, student_group)",
                               "uq_metrics_key_y2024": "UNIQUE (school_id, school_year, metric, student_group)",
                               "uq_discipline_key": "UNIQUE (school_id, school_year, student_group)",
                               "uq_discipline_key_y2024": "UNIQUE (school_id, school_year, student_group)"}
        assert _partition_indexes(conn, "metrics_y2024") == ["ix_metrics_metric_group_year_y2024",
                                                              "uq_metrics_key_y2024"]
        assert _partition_indexes(conn, "discipline_y2024") == ["ix_discipline_year_y2024", "uq_discipline_key_y2024"]
    assert _snapshot(engine) == before
    storage.create_schema(engine)
    with engine.connect() as conn:
        assert _keys(conn)["uq_metrics_key_y2024"] == metric_first
    assert _snapshot(engine) == before
    assert _drift(engine) == []


def test_postgresql_metrics_key_carries_the_counts_for_index_only_reads_and_goes_back(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps its keys as they are")
    with engine.begin() as conn:
        _one_school(conn, (2023, 2024))
    before = _snapshot(engine)
    key = "UNIQUE (metric, student_group, school_id, school_year)"
    carrying = f"{key} INCLUDE (numerator, denominator, value)"
    counts = ("SELECT numerator, denominator, value FROM metrics WHERE school_year = 2024 "
              "AND metric = 'read_proficient' ORDER BY metric, student_group, school_id")
    with engine.connect() as conn:
        assert _keys(conn)["uq_metrics_key"] == _keys(conn)["uq_metrics_key_y2024"] == carrying
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {counts}").scalars())
        assert "Index Only Scan using uq_metrics_key_y2024" in plan
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0014")
        assert _keys(conn)["uq_metrics_key"] == _keys(conn)["uq_metrics_key_y2024"] == key
        assert _partition_indexes(conn, "metrics_y2024") == ["ix_metrics_school_y2024", "uq_metrics_key_y2024"]
    assert _snapshot(engine) == before
    storage.create_schema(engine)
    with engine.connect() as conn:
        assert _keys(conn)["uq_metrics_key_y2024"] == carrying
        assert _partition_indexes(conn, "metrics_y2023") == ["ix_metrics_school_y2023", "uq_metrics_key_y2023"]
    assert _snapshot(engine) == before
    assert _drift(engine) == []


def test_the_import_version_row_starts_at_the_data_version_and_goes_away_going_down(engine):
    with engine.begin() as conn:
        conn.execute(sa.update(schema.data_version).where(schema.data_version.c.id == 1).values(version=12))
        command.downgrade(migrations.alembic_config(conn), "0011")
        assert conn.execute(sa.text("SELECT id, version FROM data_version")).all() == [(1, 12)]
        command.upgrade(migrations.alembic_config(conn), "0012")
        assert sorted(conn.execute(sa.text("SELECT id, version FROM data_version")).all()) == [(1, 12), (2, 12)]
        command.upgrade(migrations.alembic_config(conn), "0012")  # at 0012 already: nothing runs again
        command.upgrade(migrations.alembic_config(conn), "head")
    with engine.begin() as conn:
        storage.bump_version(conn)  # a workspace edit
    assert storage.versions(engine) == (13, 12)
    with engine.begin() as conn:
        storage.bump_version(conn, imported=True)  # an import
    assert storage.versions(engine) == (14, 13)
    assert storage.import_version(engine) == 13 and storage.data_version(engine) == 14
    assert _drift(engine) == []
