"""The caches pages put their own computations in (`cached`, `shared`, `drawn` and their `_read` kinds, `kept_read`),
work started ahead on a thread (`ahead`), and the flags of which every-cluster results are made (`_made`)."""

from __future__ import annotations

import collections
import contextlib
import functools
import threading
from collections.abc import Callable

import streamlit as st

from analytics.data import kept, storage
from pages.ui.data_versions import _checked_against, _then_release, engine
from pages.ui.state import per_run


def _identity(fn: Callable) -> str:
    """A function's name and code, the same on every rerun of its page (Streamlit keeps a page's bytecode)
    and different once its code changes."""
    code = fn.__code__
    return f"{code.co_filename}:{code.co_firstlineno}:{fn.__qualname__}:{hash(code)}"


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_call(identity: str, args: tuple, kwargs: dict, _fn: Callable):
    return _then_release(_fn)(*args, **kwargs)


@st.cache_resource(show_spinner=False, max_entries=24)  # large tables: the memory bar (DESIGN §8)
def _shared_call(identity: str, args: tuple, kwargs: dict, _fn: Callable):
    return _then_release(_fn)(*args, **kwargs)


def cached(fn: Callable, counter: int | None = None) -> Callable:
    """Cache a pure computation on its arguments (callers pass the data version among them).

    Pages define their cached functions anew on every rerun; wrapping each in ``st.cache_data`` again
    would read and hash its source every time, so every function shares one cache, keyed on the
    function's identity (:func:`_identity`) and its arguments; the function itself is passed along
    unhashed, so each session runs its own. With `counter`, the first argument is that data version and the
    result is checked to belong to it (:func:`cached_read`).
    """
    identity = _identity(fn)
    compute = fn if counter is None else _checked_against(fn, counter)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return _cached_call(identity, args, kwargs, compute)

    return call


def cached_read(fn: Callable) -> Callable:
    """:func:`cached` for a page's function that reads the database itself (workspace records), called with the
    data version every write bumps first: a write landing while it reads raises `storage.DataChanged` and
    the page runs again on the new data, as with the loaders, instead of caching newer rows under the old
    version beside the run's other reads."""
    return cached(fn, storage.CHANGES)


def kept_read(name: str) -> Callable[[Callable], Callable]:
    """:func:`cached_read` whose result is also kept in the database as `name` under the run's data version
    (:mod:`analytics.data.kept`): a server started later, another process of the deployment, or the command line
    after an import (:mod:`analytics.workspace.ahead`) keeps it, and a first view reads it instead of computing it.
    For a district-wide result of seconds that stores small (What changed's list: 24,000 rows, under a megabyte,
    at 10,000 schools). Its arguments after the version are positional and read the same in every process
    (dates, strings, None)."""

    def decorate(fn: Callable) -> Callable:
        identity = _identity(fn)
        checked = _checked_against(fn, storage.CHANGES)

        def load_or_compute(version: int, *args):
            code = kept.app_fingerprint()
            found = kept.load(engine(), name, args, version, code)
            if found is not None:
                return found
            made = checked(version, *args)  # belongs to `version`, or DataChanged
            kept.keep(engine(), name, args, version, code, made)
            return made

        @functools.wraps(fn)
        def call(*args):
            return _cached_call(identity, args, {}, load_or_compute)

        return call

    return decorate


def shared(fn: Callable) -> Callable:
    """Like :func:`cached` but without copying the result on each use: for large read-only tables.

    `st.cache_data` unpickles a fresh copy on every rerun (about a second for district-wide
    disproportionality at 2,000 schools); callers must not modify what this returns.
    """
    identity = _identity(fn)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return _shared_call(identity, args, kwargs, fn)

    return call


DRAWN_ENTRIES = 128  # small: what one view draws


@st.cache_resource(show_spinner=False, max_entries=DRAWN_ENTRIES)
def _drawn_call(identity: str, args: tuple, kwargs: dict, _fn: Callable):
    return _fn(*args, **kwargs)


class _DrawnIndex:
    """The drawn views by (function, arguments), found by Python's own hashing: Streamlit hashes every
    argument of a cached call on each lookup, which costs more than drawing a small view. Filled from
    :func:`_drawn_call` (which computes each entry once) and as bounded; shared by sessions."""

    def __init__(self):
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple):
        with self._lock:
            value = self._entries.get(key, _MISSING)
            if value is not _MISSING:
                self._entries.move_to_end(key)
            return value

    def put(self, key: tuple, value) -> None:
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > DRAWN_ENTRIES:
                self._entries.popitem(last=False)


_MISSING = object()


@st.cache_resource(show_spinner=False)
def _drawn_index() -> _DrawnIndex:
    """One index per cache generation: clearing Streamlit's caches empties it too."""
    return _DrawnIndex()


def drawn(fn: Callable, counter: int | None = None) -> Callable:
    """Like :func:`shared`, for what a page draws from its cached results: the tables people read (links,
    formatting, renamed columns), finished charts and their summaries, made once per data version and view
    so a warm rerun only draws them. Kept apart from the large shared tables so these small entries never
    push those out. Callers pass every view parameter (and the share token where the view depends on it)
    and must not modify what this returns. Arguments Python can hash are looked up without Streamlit's
    hashing (:class:`_DrawnIndex`). With `counter`, the first argument is that data version and the result
    is checked to belong to it (:func:`drawn_read`).
    """
    identity = _identity(fn)
    compute = fn if counter is None else _checked_against(fn, counter)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        key = (identity, args, tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:  # e.g. a DataFrame among the arguments
            return _drawn_call(identity, args, kwargs, compute)
        index = per_run("drawn_index", _drawn_index)
        value = index.get(key)
        if value is _MISSING:
            value = _drawn_call(identity, args, kwargs, compute)
            index.put(key, value)
        return value

    return call


def drawn_read(fn: Callable) -> Callable:
    """:func:`drawn` for a view that reads workspace records itself (a school's plan, its cycles), called with
    the data version every write bumps first: as :func:`cached_read`, a write landing while it reads makes
    the page run again instead of keeping newer rows under the run's version; the next version is made anew,
    so a colleague's edit shows on the next rerun."""
    return drawn(fn, storage.CHANGES)


@st.cache_resource(show_spinner=False)
def _made() -> set[tuple]:
    """Which every-cluster results are made so far: ("sums", version), ("rates", version, year),
    ("months", version, actions), ("run charts", version), ("year ratios", version, year) and the district's
    flagged rows ("flags", version), and every goal's progress ("goals", data version). Kept with the caches
    they flag, so clearing Streamlit's caches clears
    the flags too (a flag never outlives what it says is made)."""
    return set()


def ahead(name: str, make: Callable, *args) -> None:
    """Start `make(*args)`, a cached result given the run's versions among `args`, on a thread of its own: the
    run's later call of it reads the result, or waits for it (Streamlit makes each cached entry once), so what
    the database reads for it overlaps what the run draws meanwhile. A failure is left to that call to raise."""

    def run() -> None:
        with contextlib.suppress(Exception):
            make(*args)

    threading.Thread(target=run, name=name, daemon=True).start()
