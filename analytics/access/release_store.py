"""The district's release per state of its data: decided once, kept in the database, read back (DESIGN §3, §8).

:func:`release_for` gives the release of a database. It is kept in this process per import version, and across
processes and restarts in the ``release_decisions`` table, as Parquet bytes (:func:`_to_blob`) under a
fingerprint of everything it is decided from (:func:`decision_fingerprint`). A new decision reuses the pieces of
the newest stored one made under the same terms (:func:`analytics.access.release.decision_terms`), and a large
one is decided in a child process (:func:`decide_apart`, :mod:`analytics.access.release_child`), so the server
never holds the decision's working memory.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access.release import (
    LOOKUP_COLUMNS,
    LOOKUP_STATES,
    CellGrid,
    Release,
    build_release,
    decision_terms,
    withheld_release,
)
from analytics.access.release_cells import KEYS
from analytics.access.release_decide import DECISION_RULES
from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data import schema

_CACHE: dict[tuple, Release] = {}
# Inputs (metric and discipline rows) from which a server decides in a child process; smaller ones are
# decided in place (a child costs a second or two of start-up, a small decision less).
APART_FROM_ROWS = 20_000
DECISION_SECONDS = 3600.0  # a child still deciding after this is stopped and everything is withheld
# The share of the child's time its pieces may use (:func:`release_decide.decide`'s ``seconds``); the rest is
# for reading the inputs, the last piece's overrun and writing the release back.
DECISION_SHARE = 0.8


def release_for(engine, settings: Settings = DEFAULT_SETTINGS, complementary: bool = True,
                apart: bool | None = None, timeout: float = DECISION_SECONDS,
                lookups: bool = False) -> Release | CellGrid:
    """The district's release decision from the database, decided once per state of its data.

    In this process it is kept per import version (only an import bumps it: a workspace edit changes no
    count, so it keeps the decision). Across processes and restarts it is kept in the ``release_decisions``
    table under a fingerprint of everything it is decided from (schools, metrics, discipline, settings and
    these rules): deciding costs about half a minute of CPU at 200 schools, reading it back well under a
    second. A new decision reuses every piece whose inputs are unchanged from the newest stored decision made
    under the same terms (:func:`release_decide.decide`), so after an import only the pieces it changed are
    decided. A decision is made in a child process
    (:func:`decide_apart`; ``apart=None``: when the inputs hold :data:`APART_FROM_ROWS` rows or more), so the
    server never holds the decision's working memory; when the child fails or runs past ``timeout``
    seconds every cell is withheld, and a decision with a piece withheld (for time, or a cell its audit left
    pinned) is kept for this process only: neither is stored, so a restart decides again.

    ``lookups=True``: only :meth:`Release.for_lookups` of it (a :class:`CellGrid`), which is all a server keeps
    for its shared views, and not kept in this process (the caller keeps it); a stored decision is then read
    back as those columns alone (:func:`_lookups_from_blob`). One kept already gives its lookups."""
    from analytics.data import storage

    key = (str(engine.url), storage.import_version(engine), id(settings), complementary)
    if key in _CACHE:
        return _CACHE[key].for_lookups() if lookups else _CACHE[key]
    release = _decided(engine, settings, complementary, apart, timeout, lookups)
    if not lookups:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = release
    return release


def _decided(engine, settings: Settings, complementary: bool, apart: bool | None, timeout: float,
             lookups: bool = False) -> Release | CellGrid:
    """:func:`release_for`'s decision (or its lookups): the stored one of the same inputs, or one decided (and
    stored) now."""
    from analytics.data import loads

    schools, metrics = loads.load_schools(engine), loads.load_metrics(engine)
    discipline = loads.load_discipline(engine)
    fingerprint = decision_fingerprint(schools, metrics, discipline, settings, complementary)
    release = _stored(engine, fingerprint, lookups)
    if release is None:
        earlier = _latest_stored(engine, decision_terms(settings, complementary))
        if apart is None:
            apart = len(metrics) + len(discipline) >= APART_FROM_ROWS
        if apart:
            release = decide_apart(schools, metrics, discipline, settings, complementary, timeout, earlier)
        else:
            release = build_release(schools, metrics, discipline, settings, complementary,
                                    earlier=_earlier_release(earlier))
        if not release.withheld and not release.cells["piece_withheld"].any():
            _store(engine, fingerprint, release)
        if lookups:
            release = release.for_lookups()
    return release


def decide_apart(schools: pd.DataFrame, metrics: pd.DataFrame, discipline: pd.DataFrame,
                 settings: Settings = DEFAULT_SETTINGS, complementary: bool = True,
                 timeout: float = DECISION_SECONDS, earlier: bytes | None = None) -> Release:
    """:func:`build_release` in a child process (``python -m analytics.access.release_child``): its memory goes
    back to the system when it ends, whatever the decision's peak. The inputs go to it as a pickle (with
    ``earlier``, a stored decision to reuse pieces of, as stored: this process never reads it) and the
    release comes back in the stored form (:func:`_to_blob`). A child that fails, or is still deciding after
    ``timeout`` seconds (then stopped), leaves the decision undecided: :func:`withheld_release`."""
    import os
    import pickle
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import analytics

    root = str(Path(analytics.__file__).resolve().parent.parent)  # the child runs this very code
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="release-") as folder:
        given, decided = Path(folder) / "inputs.pickle", Path(folder) / "release.parquet"
        with given.open("wb") as out:  # streamed: no second copy of the inputs in this process
            pickle.dump((schools, metrics, discipline, settings, complementary, DECISION_SHARE * timeout, earlier),
                        out, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            done = subprocess.run([sys.executable, "-m", "analytics.access.release_child", str(given), str(decided)],
                                  env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            why = f"the decision ran past {timeout:.0f} s"
        except OSError as error:
            why = f"the decision could not start: {error}"
        else:
            if done.returncode == 0 and decided.exists():
                return _from_blob(decided.read_bytes())
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            why = f"the decision failed (exit {done.returncode}) {tail[0]}".strip()
    return withheld_release(schools, metrics, discipline, why)


def decision_fingerprint(schools: pd.DataFrame, metrics: pd.DataFrame, discipline: pd.DataFrame,
                         settings: Settings, complementary: bool) -> str:
    """SHA-256 of every input of the decision: its rows, the settings and the rules."""
    digest = hashlib.sha256(f"{DECISION_RULES}|{settings!r}|{complementary}".encode())
    for frame in (schools, metrics, discipline):  # rows as loaded (by key); another order only misses
        digest.update(repr(list(frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _stored(engine, fingerprint: str, lookups: bool = False) -> Release | CellGrid | None:
    """The decision kept under ``fingerprint`` (``lookups``: its lookups alone), or None (none kept, or the table
    cannot be read)."""
    table = schema.release_decisions
    try:
        with engine.connect() as conn:
            blob = conn.execute(sa.select(table.c.cells).where(table.c.fingerprint == fingerprint)).scalar()
    except sa.exc.SQLAlchemyError:
        return None
    if blob is None:
        return None
    return _lookups_from_blob(blob) if lookups else _from_blob(blob)


def _latest_stored(engine, terms: str) -> bytes | None:
    """The newest stored decision made under ``terms`` (:func:`decision_terms`), as stored, or None (none kept,
    or the table cannot be read). The newest are fetched first, one at a time, and only their terms column is
    parsed to choose (the newest usually matches)."""
    table = schema.release_decisions
    try:
        with engine.connect() as conn:
            kept = conn.execute(sa.select(table.c.fingerprint).order_by(table.c.decided_at.desc())).scalars().all()
            for fingerprint in kept:
                blob = conn.execute(sa.select(table.c.cells).where(table.c.fingerprint == fingerprint)).scalar()
                if blob is not None and _terms_of(blob) == terms:
                    return blob
    except sa.exc.SQLAlchemyError:
        return None
    return None


def _terms_of(blob: bytes) -> str:
    """The terms a stored decision was made under ("" for one stored without them, or unreadable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema_ = pq.read_schema(io.BytesIO(blob))
        if "decided_under" not in schema_.names:
            return ""
        column = pq.read_table(io.BytesIO(blob), columns=["decided_under"]).column(0)
    except (pa.ArrowException, OSError, ValueError):
        return ""
    return str(column[0]) if len(column) else ""


def _earlier_release(blob: bytes | None) -> Release | None:
    """A stored decision to reuse pieces of, or None when there is none or it cannot be read (all is decided)."""
    import pyarrow as pa

    if blob is None:
        return None
    try:
        return _from_blob(blob)
    except (pa.ArrowException, OSError, ValueError, KeyError):
        return None


def _to_blob(release: Release) -> bytes:
    """A release as Parquet bytes (its cells, with whether `suspension_rate` is derived and the terms it was
    decided under in constant columns; a reader that knows neither these nor ``piece`` ignores them)."""
    buffer = io.BytesIO()
    cells = release.cells.reset_index().assign(suspension_derived=release.suspension_derived,
                                               decided_under=release.decided_under)
    cells.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _from_blob(blob: bytes) -> Release:
    """A stored release; one stored before pieces were fingerprinted reads with no piece (nothing of it reused)."""
    cells = pd.read_parquet(io.BytesIO(blob))
    derived = bool(cells.pop("suspension_derived").iloc[0]) if len(cells) else True
    terms = cells.pop("decided_under") if "decided_under" in cells.columns else pd.Series(dtype=object)
    if "piece" not in cells.columns:
        cells["piece"] = pd.Categorical([None] * len(cells))
    decided_under = str(terms.iloc[0]) if len(terms) else ""
    return Release(cells.set_index(KEYS).sort_index(), derived, decided_under=decided_under)


def _lookups_from_blob(blob: bytes) -> Release | CellGrid:
    """``_from_blob(blob).for_lookups()`` without the rest of the decision: only the keys, states and hidden n are
    read, texts as dictionaries, and the grid is made from their codes. Reading every column as text and
    indexing it peaked 370 MiB above the rest at 2,000 schools, which the C heap gives back only in part
    (DESIGN §8 memory bar)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(blob), columns=[*KEYS, *LOOKUP_COLUMNS, "suspension_derived"],
                          read_dictionary=["unit", "measure", "student_group", "state"])
    if not table.num_rows:
        return _from_blob(blob).for_lookups()
    derived = bool(table["suspension_derived"][0].as_py())
    keys = [_categories(table[key]) for key in KEYS]
    states = _categories(table["state"]).astype(LOOKUP_STATES).codes
    grid = CellGrid.made(tuple(key.categories for key in keys), tuple(key.codes for key in keys), states,
                         table["n_hidden"].to_numpy(), derived, "")
    return grid if grid is not None else _from_blob(blob).for_lookups()


def _categories(column) -> pd.Categorical:
    """An Arrow column as categories (its dictionary's values, or each distinct value)."""
    import pyarrow as pa

    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    return column.to_pandas().array


def _store(engine, fingerprint: str, release: Release, keep: int = 8) -> None:
    """Keep ``release`` under ``fingerprint`` (the ``keep`` newest decisions stay). A database that cannot be
    written (a read-only role) only loses the saving: the decision in hand is still used."""
    table = schema.release_decisions
    try:
        with engine.begin() as conn:
            if conn.execute(sa.select(table.c.fingerprint).where(table.c.fingerprint == fingerprint)).first():
                return
            conn.execute(sa.insert(table).values(fingerprint=fingerprint, decided_at=datetime.now(UTC),
                                                 cells=_to_blob(release)))
            old = sa.select(table.c.fingerprint).order_by(table.c.decided_at.desc()).offset(keep)
            conn.execute(sa.delete(table).where(table.c.fingerprint.in_(old.scalar_subquery())))
    except sa.exc.SQLAlchemyError:
        return
