"""A new release decision reuses the pieces of an earlier one whose inputs did not change, and decides only the
others: the release is the one a whole decision gives, cell for cell."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.access import release, release_cells, release_decide, release_store
from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data import loads, schema, storage
from analytics.data.demo import build_demo

FRAMES = build_demo(schools=8, years=3, seed=5)
LATEST = int(FRAMES["discipline"]["school_year"].max())


@pytest.fixture(scope="module")
def whole() -> release.Release:
    return release.build_release(FRAMES["schools"], FRAMES["metrics"], FRAMES["discipline"])


@pytest.fixture
def decided(monkeypatch) -> list[tuple[float, str]]:
    """(school year, source of n) of every piece decided from here on."""
    seen: list[tuple[float, str]] = []
    decide_piece = release_decide._decide_piece

    def counted(cells, *args, **kwargs):
        seen.append((float(cells["school_year"].iloc[0]), cells["n_source"].iloc[0]))
        return decide_piece(cells, *args, **kwargs)

    monkeypatch.setattr(release_decide, "_decide_piece", counted)
    return seen


def _fewer_suspensions(discipline: pd.DataFrame, year: int, schools: int = 4) -> pd.DataFrame:
    """A corrected discipline file of one year: one fewer out-of-school suspension for a few schools."""
    ids = np.sort(discipline["school_id"].unique())[:schools]
    rows = (discipline["school_year"] == year) & discipline["school_id"].isin(ids)
    out = discipline.copy()
    out.loc[rows, "students_oss"] = (out.loc[rows, "students_oss"] - 1).clip(lower=0)
    return out


def _source_of(metric: str) -> str:
    cells, _ = release_cells.release_cells(FRAMES["schools"], FRAMES["metrics"], FRAMES["discipline"])
    return cells.loc[cells["measure"] == metric, "n_source"].iloc[0]


def _new_year(frame: pd.DataFrame) -> pd.DataFrame:
    latest = frame[frame["school_year"] == LATEST]
    return pd.concat([frame, latest.assign(school_year=LATEST + 1)], ignore_index=True)


def _moved(schools: pd.DataFrame) -> pd.DataFrame:
    """The first school moved to a cluster of its own (the demo's few schools share one)."""
    out = schools.copy()
    out.loc[out.index[0], "cluster"] = out["cluster"].iloc[0] + " East"
    return out


def _reading_changed(metrics: pd.DataFrame) -> pd.DataFrame:
    out = metrics.copy()
    rows = (out["metric"] == "read_proficient") & (out["school_year"] == LATEST) & out["numerator"].gt(0)
    out.loc[rows, "numerator"] = out.loc[rows, "numerator"] - 1
    return out


CHANGES = {
    "one year of discipline": lambda s, m, d: (s, m, _fewer_suspensions(d, LATEST)),
    "one source of metrics": lambda s, m, d: (s, _reading_changed(m), d),
    "a school moved to another cluster": lambda s, m, d: (_moved(s), m, d),
    "a new year": lambda s, m, d: (s, _new_year(m), _new_year(d)),
    "a deleted year": lambda s, m, d: (s, m[m["school_year"] != LATEST - 2], d[d["school_year"] != LATEST - 2]),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_import_gives_the_whole_decision_of_the_new_data(whole, decided, change):
    schools, metrics, discipline = CHANGES[change](FRAMES["schools"], FRAMES["metrics"], FRAMES["discipline"])
    again = release.build_release(schools, metrics, discipline, earlier=whole)
    pieces_decided = list(decided)
    from_nothing = release.build_release(schools, metrics, discipline)
    pd.testing.assert_frame_equal(again.cells, from_nothing.cells)
    assert len(pieces_decided) < len(decided) - len(pieces_decided)  # fewer than every piece
    if change == "one year of discipline":
        assert pieces_decided == [(LATEST, "enrolled")]
    if change == "one source of metrics":
        assert pieces_decided == [(LATEST, _source_of("read_proficient"))]
    if change == "a school moved to another cluster":  # every piece holding the school: each year's every source
        moved = schools["school_id"].iloc[0]
        cells = again.cells.reset_index()
        assert len(pieces_decided) == cells.loc[cells["unit"] == moved, "piece"].nunique()
    if change == "a new year":
        assert {year for year, _ in pieces_decided} == {LATEST + 1}
    if change == "a deleted year":
        assert pieces_decided == []


def test_changed_settings_decide_every_piece(whole, decided):
    stricter = Settings(privacy_min_n=12)
    again = release.build_release(FRAMES["schools"], FRAMES["metrics"], FRAMES["discipline"], stricter,
                                  earlier=whole)
    assert len(decided) == whole.cells["piece"].nunique()
    pd.testing.assert_frame_equal(again.cells, release.build_release(
        FRAMES["schools"], FRAMES["metrics"], FRAMES["discipline"], stricter).cells)
    assert (again.cells["state"] != whole.cells["state"]).any()


def test_a_piece_withheld_for_time_is_decided_again(whole, decided):
    cells, derived = release_cells.release_cells(FRAMES["schools"], FRAMES["metrics"], FRAMES["discipline"])
    rushed = release._release(release_decide.decide(cells, piece_seconds=0.0), derived).cells
    assert rushed["piece_withheld"].all()  # no time: every piece here is withheld
    one = whole.cells["piece"].cat.categories[0]
    earlier = pd.concat([whole.cells[whole.cells["piece"] != one], rushed[rushed["piece"] == one]])
    del decided[:]
    again = release.build_release(FRAMES["schools"], FRAMES["metrics"], FRAMES["discipline"],
                                  earlier=release.Release(earlier, derived))
    assert len(decided) == 1
    pd.testing.assert_frame_equal(again.cells, whole.cells)


def test_a_piece_whose_kept_cells_differ_from_its_inputs_is_decided_again(whole, decided):
    """Safety first: the same fingerprint with another count, or a cell missing, is not the same piece."""
    cells = whole.cells.copy()
    first = cells.index[0]
    cells.loc[first, "k"] += 1
    missing = cells.index[-1]
    tampered = release.Release(cells.drop(index=[missing]), whole.suspension_derived)
    again = release.build_release(FRAMES["schools"], FRAMES["metrics"], FRAMES["discipline"], earlier=tampered)
    pd.testing.assert_frame_equal(again.cells, whole.cells)
    pieces = {(cells.loc[key, "piece"]) for key in (first, missing)}
    assert len(decided) == len(pieces) and len(pieces) == 2


# --- through the store: release_for after an import ---------------------------------------------------------


def _import_fewer_suspensions(engine) -> int:
    """One fewer out-of-school suspension at the first school in every group of the latest year, as imported."""
    discipline = loads.load_discipline(engine)
    year = int(discipline["school_year"].max())
    school = discipline["school_id"].min()
    table = schema.discipline
    with storage.write_transaction(engine) as conn:
        conn.execute(sa.update(table).where((table.c.school_id == school) & (table.c.school_year == year)
                                            & (table.c.students_oss > 0))
                     .values(students_oss=table.c.students_oss - 1))
        storage.bump_version(conn, imported=True)
    release_store._CACHE.clear()
    return year


def _from_nothing(engine) -> release.Release:
    return release.build_release(loads.load_schools(engine), loads.load_metrics(engine),
                                 loads.load_discipline(engine))


def test_after_an_import_a_server_decides_only_the_changed_pieces(release_district, decided):
    release_store.release_for(release_district, apart=False)
    year = _import_fewer_suspensions(release_district)
    del decided[:]
    after = release_store.release_for(release_district, apart=False)
    assert decided == [(year, "enrolled")]
    pd.testing.assert_frame_equal(after.cells, _from_nothing(release_district).cells)


def test_the_child_process_reuses_the_pieces_of_the_stored_decision_it_is_given(release_district):
    first = release_store.release_for(release_district, apart=False)
    year = _import_fewer_suspensions(release_district)
    # A stored decision whose states the child would copy rather than decide: every unchanged piece shows
    # "low" where the true decision says otherwise, so what comes back tells which pieces were reused.
    marked = release.Release(first.cells.assign(state=release_cells.CODED_LOW), first.suspension_derived,
                             decided_under=first.decided_under)
    apart = release_store.decide_apart(loads.load_schools(release_district), loads.load_metrics(release_district),
                                 loads.load_discipline(release_district), earlier=release_store._to_blob(marked))
    from_nothing = _from_nothing(release_district)
    changed = apart.cells["piece"].isin(list(set(apart.cells["piece"].cat.categories)
                                              - set(first.cells["piece"].cat.categories))).to_numpy()
    assert set(apart.cells.index[changed].get_level_values("school_year")) == {year}
    assert (apart.cells.loc[~changed, "state"] == release_cells.CODED_LOW).all()
    pd.testing.assert_frame_equal(apart.cells[changed], from_nothing.cells[changed])
    # Through release_for (a child, from the stored decision): the whole decision of the new data, kept.
    release_store._CACHE.clear()
    pd.testing.assert_frame_equal(release_store.release_for(release_district, apart=True).cells, from_nothing.cells)
    with release_district.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.release_decisions)).scalar_one() == 2


def test_the_newest_decision_under_the_same_settings_is_reused(release_district, decided):
    release_store.release_for(release_district, apart=False)
    release_store.release_for(release_district, settings=Settings(privacy_min_n=12), apart=False)  # stored last
    year = _import_fewer_suspensions(release_district)
    del decided[:]
    after = release_store.release_for(release_district, apart=False)
    assert decided == [(year, "enrolled")]
    pd.testing.assert_frame_equal(after.cells, _from_nothing(release_district).cells)


def _stored_before_pieces(engine, whole: release.Release) -> None:
    """``whole`` kept as decisions were stored before pieces were fingerprinted (no piece, no terms)."""
    buffer = io.BytesIO()
    whole.cells.drop(columns=["piece"]).reset_index().assign(suspension_derived=whole.suspension_derived).to_parquet(
        buffer, index=False)
    fingerprint = release_store.decision_fingerprint(loads.load_schools(engine), loads.load_metrics(engine),
                                               loads.load_discipline(engine), DEFAULT_SETTINGS, True)
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.release_decisions))
        conn.execute(sa.insert(schema.release_decisions).values(
            fingerprint=fingerprint, decided_at=pd.Timestamp.now(tz="UTC").to_pydatetime(), cells=buffer.getvalue()))


def test_a_decision_stored_before_pieces_is_read_and_a_new_one_decides_every_piece(release_district, decided):
    whole = _from_nothing(release_district)
    _stored_before_pieces(release_district, whole)
    del decided[:]
    kept = release_store.release_for(release_district, apart=False)
    assert decided == []
    pd.testing.assert_frame_equal(kept.cells.drop(columns=["piece"]), whole.cells.drop(columns=["piece"]))
    assert kept.cells["piece"].isna().all()
    _import_fewer_suspensions(release_district)
    after = release_store.release_for(release_district, apart=False)
    assert len(decided) == whole.cells["piece"].nunique()
    pd.testing.assert_frame_equal(after.cells, _from_nothing(release_district).cells)


def test_a_stored_decision_reads_as_before_its_pieces_were_kept(release_district):
    """A reader that knows only the columns kept before (a server not yet upgraded) gets the same states."""
    whole = release_store.release_for(release_district, apart=False)
    with release_district.connect() as conn:
        blob = conn.execute(sa.select(schema.release_decisions.c.cells)).scalar_one()
    cells = pd.read_parquet(io.BytesIO(blob))
    derived = bool(cells.pop("suspension_derived").iloc[0])
    older = release.Release(cells.set_index(release_cells.KEYS).sort_index(), derived)
    keys = whole.cells.index
    args = [keys.get_level_values(level) for level in release_cells.KEYS]
    for got, expected in zip(older.states(*args), whole.states(*args), strict=True):
        assert list(got) == list(expected)
    assert older.suspension_derived == whole.suspension_derived
