"""The release decision is kept in the database per state of the data and read back by other processes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.access import release, release_cells, release_decide, release_store
from analytics.data import loads, schema, storage


def _decisions(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(schema.release_decisions)).scalar_one()


def test_a_new_process_reads_the_kept_decision_instead_of_deciding(release_district, monkeypatch):
    first = release_store.release_for(release_district)
    assert _decisions(release_district) == 1
    release_store._CACHE.clear()  # as a new server process starts
    monkeypatch.setattr(release_store, "build_release", lambda *a, **k: pytest.fail("decided again"))
    monkeypatch.setattr(release_store, "decide_apart", lambda *a, **k: pytest.fail("decided again"))
    again = release_store.release_for(release_district)
    pd.testing.assert_frame_equal(first.cells, again.cells)
    assert again.suspension_derived == first.suspension_derived


def test_changed_counts_are_decided_again_and_an_edit_elsewhere_is_not(release_district, monkeypatch):
    before = release_store.release_for(release_district)
    with storage.write_transaction(release_district) as conn:  # a workspace-like edit: new version, same counts
        storage.bump_version(conn)
    release_store._CACHE.clear()
    monkeypatch.setattr(release_store, "build_release", lambda *a, **k: pytest.fail("decided again"))
    monkeypatch.setattr(release_store, "decide_apart", lambda *a, **k: pytest.fail("decided again"))
    assert release_store.release_for(release_district).cells.equals(before.cells)
    monkeypatch.undo()

    metrics = loads.load_metrics(release_district)
    row = metrics.dropna(subset=["numerator"]).iloc[0]
    with storage.write_transaction(release_district) as conn:
        conn.execute(sa.update(schema.metrics).where(
            (schema.metrics.c.school_id == row["school_id"]) & (schema.metrics.c.metric == row["metric"])
            & (schema.metrics.c.student_group == row["student_group"])
            & (schema.metrics.c.school_year == int(row["school_year"]))).values(numerator=row["numerator"] + 1))
        storage.bump_version(conn, imported=True)  # imported data changed: both versions move
    after = release_store.release_for(release_district)
    assert _decisions(release_district) == 2
    key = (row["school_id"], float(row["school_year"]), row["metric"], row["student_group"])
    assert after.cells.loc[key, "k"] == row["numerator"] + 1


def test_a_decision_made_in_a_child_process_is_the_one_made_in_place_and_is_kept(release_district, monkeypatch):
    in_place = release.build_release(loads.load_schools(release_district), loads.load_metrics(release_district),
                                     loads.load_discipline(release_district))
    monkeypatch.setattr(release_store, "build_release", lambda *a, **k: pytest.fail("decided in the server process"))
    apart = release_store.release_for(release_district, apart=True)
    pd.testing.assert_frame_equal(apart.cells, in_place.cells)
    assert apart.withheld == "" and apart.suspension_derived == in_place.suspension_derived
    assert _decisions(release_district) == 1


def test_a_child_that_runs_past_its_time_withholds_every_cell_and_nothing_is_kept(release_district):
    withheld = release_store.release_for(release_district, apart=True, timeout=0.01)
    assert "ran past" in withheld.withheld
    cells = withheld.cells
    assert len(cells) > 0 and (cells["state"] == release_cells.HIDDEN).all() and cells["n_hidden"].all()
    assert _decisions(release_district) == 0  # a later process decides again
    # The same cells as a decision would have (nothing outside the model is added or lost).
    release_store._CACHE.clear()
    assert release_store.release_for(release_district).cells.index.equals(cells.index)


def test_a_decision_with_a_piece_withheld_is_used_but_not_kept(release_district, monkeypatch):
    decide = release_decide.decide
    # Patched where build_release reads it.
    monkeypatch.setattr(release, "decide", lambda cells, *a, **k: decide(cells, *a, **{**k, "piece_seconds": 0.0}))
    rushed = release_store.release_for(release_district, apart=False)
    assert rushed.cells["piece_withheld"].any() and _decisions(release_district) == 0
    monkeypatch.undo()
    release_store._CACHE.clear()  # the next start decides again, with time
    given = release_store.release_for(release_district, apart=False)
    assert not given.cells["piece_withheld"].any() and _decisions(release_district) == 1


def _keys_of(whole: release.Release) -> tuple:
    """Every cell's keys, and three that are no cell."""
    cells = whole.cells.reset_index()
    keys = pd.concat([cells, cells.head(3).assign(student_group="NOT A GROUP")], ignore_index=True)
    return keys["unit"], keys["school_year"], keys["measure"], keys["student_group"]


def _same_states(kept, whole: release.Release) -> None:
    (whole_state, whole_hidden), (kept_state, kept_hidden) = whole.states(*_keys_of(whole)), kept.states(
        *_keys_of(whole))
    assert list(kept_state) == list(whole_state) and list(kept_state[-3:]) == ["none"] * 3
    assert list(kept_hidden) == list(whole_hidden) and kept_hidden.dtype == bool


def test_a_server_keeps_only_the_lookups_and_they_give_the_same_states(release_district):
    """What a server keeps for its shared views: states and hidden n as the whole decision gives them, for cells
    of every state and for keys that are no cell, a byte for each combination of the keys' values."""
    kept = release_store.release_for(release_district, lookups=True)
    assert not release_store._CACHE  # neither the decision nor its lookups are kept in the process
    whole = release_store.release_for(release_district)
    assert isinstance(kept, release.CellGrid) and kept.grid.dtype == np.int8
    assert kept.grid.size <= release.GRID_PER_CELL * len(whole.cells)
    assert {release_cells.EXACT, release_cells.HIDDEN} <= set(whole.cells["state"])  # both kinds are looked up
    _same_states(kept, whole)
    assert kept.suspension_derived == whole.suspension_derived and kept.withheld == ""
    assert kept.measure_of("suspension_rate") == whole.measure_of("suspension_rate")
    _same_states(release_store.release_for(release_district, lookups=True), whole)  # one kept already gives its lookups
    assert kept.states([], [], [], [])[0].shape == (0,)


def test_a_kept_decision_is_read_back_as_its_lookups_alone(release_district, monkeypatch):
    """A server reading a stored decision for its shared views reads the lookups' columns alone, and gets what
    the whole decision read back would give it."""
    whole = release_store.release_for(release_district)
    release_store._CACHE.clear()  # as a new server process starts
    for whole_read in ("_from_blob", "build_release", "decide_apart"):
        monkeypatch.setattr(release_store, whole_read, lambda *a, **k: pytest.fail("the whole decision was read"))
    lean = release_store.release_for(release_district, lookups=True)
    assert isinstance(lean, release.CellGrid)
    _same_states(lean, whole)
    assert lean.suspension_derived == whole.suspension_derived and lean.withheld == ""
    assert not release_store._CACHE


def test_sparse_or_withheld_releases_give_the_same_states(release_district, monkeypatch):
    """A grid that would be mostly empty is not made: the cells are kept indexed, with the same states; a
    release withheld whole hides every cell in its grid too, and says why."""
    whole = release_store.release_for(release_district)
    monkeypatch.setattr(release, "GRID_PER_CELL", 0)
    indexed = whole.for_lookups()
    assert isinstance(indexed, release.Release) and list(indexed.cells.columns) == ["state", "n_hidden"]
    _same_states(indexed, whole)
    monkeypatch.undo()
    withheld = release.Release(whole.cells.assign(state=release_cells.HIDDEN, n_hidden=True), whole.suspension_derived,
                               "the decision ran past 1 s")
    kept = withheld.for_lookups()
    assert isinstance(kept, release.CellGrid) and kept.withheld == "the decision ran past 1 s"
    _same_states(kept, withheld)


def test_a_release_with_a_repeated_key_is_not_made_a_grid(release_district):
    """One byte per key would keep only the last of a repeated key's cells (a hidden cell would read exact):
    such cells stay indexed, whose lookups refuse the ambiguous key rather than choose one of its states."""
    whole = release_store.release_for(release_district)
    first = whole.cells.iloc[[0]]
    twice = pd.concat([first.assign(state=release_cells.HIDDEN, n_hidden=True), whole.cells.iloc[1:],
                       first.assign(state=release_cells.EXACT, n_hidden=False)])
    repeated = release.Release(twice, whole.suspension_derived)
    for kept in (repeated.for_lookups(), release_store._lookups_from_blob(release_store._to_blob(repeated))):
        assert isinstance(kept, release.Release)
        with pytest.raises(ValueError):
            kept.states(*([value] for value in first.index[0]))
