"""Results kept in the database for one state of the data (`analytics.data.kept`): what goes in comes back
exactly, only under the same name, arguments, data version and code, and never outlives its data version
(`engine`: SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analytics.data import kept, schema, storage
from analytics.workspace import records


def _a_list() -> pd.DataFrame:
    return pd.DataFrame({"school_id": ["100001", "100002", "100003"],
                         "school_name": ["O'Neill Elementary", "Café Middle", ""],
                         "detail": ["math proficient: Yellow → Red", None, "2 more"],
                         "count": pd.array([3, None, 1], dtype="Int64"),
                         "rate": [12.5, np.nan, 0.0],
                         "since": ["2025-02-27"] * 3})


def _version(engine) -> int:
    return storage.data_version(engine)


def test_a_kept_frame_comes_back_exactly_under_its_name_arguments_version_and_code(engine):
    frame, version = _a_list(), _version(engine)
    args = (None, date(2025, 2, 27))
    assert kept.keep(engine, "pages/changes.py:changes_for", args, version, "code-1", frame)
    pd.testing.assert_frame_equal(kept.load(engine, "pages/changes.py:changes_for", args, version, "code-1"), frame)
    assert kept.load(engine, "pages/changes.py:changes_for", ("North", date(2025, 2, 27)), version, "code-1") is None
    assert kept.load(engine, "pages/changes.py:changes_for", (None, date(2025, 3, 1)), version, "code-1") is None
    assert kept.load(engine, "pages/changes.py:changes_for", args, version, "code-2") is None  # a new release
    assert kept.load(engine, "pages/changes.py:changes_for", args, version + 1, "code-1") is None  # another state
    assert kept.load(engine, "other", args, version, "code-1") is None
    assert kept.is_kept(engine, "pages/changes.py:changes_for", args, version, "code-1")
    assert not kept.is_kept(engine, "pages/changes.py:changes_for", args, version, "code-2")
    assert not kept.is_kept(engine, "pages/changes.py:changes_for", args, version + 1, "code-1")


def test_keeping_again_replaces_and_a_version_no_longer_current_is_not_kept(engine):
    version, args = _version(engine), ("North",)
    kept.keep(engine, "view", args, version, "c", _a_list())
    kept.keep(engine, "view", args, version, "c", _a_list().head(1))
    assert len(kept.load(engine, "view", args, version, "c")) == 1
    assert not kept.keep(engine, "view", ("South",), version - 1, "c", _a_list())  # a run pinned before a write
    assert [(name, key) for name, key, _ in kept.kept_names(engine)] == [("view", "('North',)")]


def test_every_write_forgets_what_older_versions_kept(engine):
    """A workspace edit bumps the version in its own transaction, which deletes every result kept before it."""
    version = _version(engine)
    kept.keep(engine, "view", ("North",), version, "c", _a_list())
    records.add_meeting(engine, "district", date(2025, 2, 27), "editor@district.org", None)
    assert _version(engine) == version + 1
    assert kept.kept_names(engine) == []
    assert kept.load(engine, "view", ("North",), version, "c") is None


def test_an_unreadable_or_missing_store_only_loses_the_keeping(engine):
    version = _version(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.kept_results).values(name="view", args="()", version=version, code="c",
                                                           made_at=pd.Timestamp.now(tz="UTC"), frame=b"not parquet"))
    assert kept.load(engine, "view", (), version, "c") is None
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE kept_results"))
    assert kept.load(engine, "view", (), version, "c") is None
    assert kept.is_kept(engine, "view", (), version, "c") is False
    assert kept.keep(engine, "view", (), version, "c", _a_list()) is False


def test_the_code_fingerprint_follows_every_source_of_the_given_folders(tmp_path):
    (tmp_path / "page.py").write_text("x = 1\n")
    before = kept.code_fingerprint(tmp_path)
    assert before == kept.code_fingerprint(tmp_path) and len(before) == 64
    kept.code_fingerprint.cache_clear()
    (tmp_path / "page.py").write_text("x = 2\n")
    assert kept.code_fingerprint(tmp_path) != before
    assert kept.code_fingerprint() != kept.code_fingerprint(tmp_path)  # the pages count beside analytics/


def test_an_upgrade_of_pandas_makes_kept_results_unread(tmp_path, monkeypatch):
    before = kept.code_fingerprint(tmp_path)
    kept.code_fingerprint.cache_clear()
    monkeypatch.setattr(pd, "__version__", "99.0")
    try:
        assert kept.code_fingerprint(tmp_path) != before
    finally:
        kept.code_fingerprint.cache_clear()


def test_a_frame_whose_column_names_are_not_text_is_not_kept(engine):
    """Parquet names columns by text: a column named 1 would come back named "1", another frame than was kept."""
    frame = pd.DataFrame({1: [1.0], "school_id": ["100001"]})
    assert kept.keep(engine, "view", (), _version(engine), "c", frame) is False
    assert kept.kept_names(engine) == []


def test_a_write_landing_while_a_result_is_kept_still_forgets_it(engine):
    """A write that commits between `keep`'s check of the version and its insert would leave a row of a replaced
    version behind (read by no run, replacing the newer one's): the check holds the version until the insert
    commits, so the write waits and then forgets it."""
    version, fired = _version(engine), []
    writer = threading.Thread(target=records.add_meeting,
                              args=(engine, "district", date(2025, 3, 3), "editor@district.org", None))

    def write_after_the_check(conn, cursor, statement, *_):
        if not fired and statement.lstrip().upper().startswith("SELECT") and "data_version" in statement:
            fired.append(statement)
            writer.start()
            writer.join(timeout=1)  # done at once when nothing holds the version; else it waits for the keep

    sa.event.listen(engine, "after_cursor_execute", write_after_the_check)
    try:
        kept.keep(engine, "view", ("North",), version, "c", _a_list())
    finally:
        sa.event.remove(engine, "after_cursor_execute", write_after_the_check)
    writer.join(timeout=60)
    assert fired and not writer.is_alive() and _version(engine) == version + 1
    assert kept.kept_names(engine) == []


def test_keeping_does_not_wait_for_a_write_in_progress(engine):
    """A write that has bumped the version but not committed replaces the version being kept: `keep` gives up at
    once (the page shows the result in hand) instead of waiting for the write (an import holds it for minutes)."""
    version, done = _version(engine), []
    with engine.connect() as writer, writer.begin():
        storage.serialise_writes(writer)
        storage.bump_version(writer)
        keeping = threading.Thread(target=lambda: done.append(
            kept.keep(engine, "view", ("North",), version, "c", _a_list())))
        keeping.start()
        keeping.join(timeout=5)
        assert done == [False]
    keeping.join(timeout=60)
    assert kept.kept_names(engine) == []


def test_a_frame_parquet_cannot_hold_is_used_but_not_kept(engine):
    """A column Parquet has no type for (complex numbers) only loses the keeping, as an unreadable store does."""
    version = _version(engine)
    assert kept.keep(engine, "view", (), version, "c", pd.DataFrame({"z": [1 + 2j]})) is False
    assert kept.kept_names(engine) == []
