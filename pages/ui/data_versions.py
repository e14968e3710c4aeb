"""The engine and the data versions a script run reads: every loader is keyed on one of them.

Raw tables are cached as shared resources (no copy per rerun; pages only read them). A result read from
imported tables alone is keyed on the import version (:func:`import_version`), so an import is visible at once
and a workspace edit (a saved goal, cycle or note) leaves it cached; a result that reads any workspace table
(goals, cycles, walkthroughs, meetings…) is keyed on the data version every write bumps (:func:`data_version`).
A run pins both once (:func:`pin_data_version`); a loader that finds newer data makes the run start again
(:func:`data_guard`)."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator

import streamlit as st
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from analytics.data import memory, storage
from pages.ui.state import start_run


@st.cache_resource(show_spinner="Preparing the database…")
def _engine() -> Engine:
    return storage.ensure_database()


def engine() -> Engine:
    """The app's engine; an empty embedded database is filled with the demo district once.

    Every read goes through here, so a run that began in Streamlit's legacy pages mode (a page script
    without the app.py shell and its access checks) is stopped and rerun before it reads anything.
    """
    leave_legacy_run()
    return _engine()


def _inside_legacy_runner() -> bool:
    """True when this script run was started by Streamlit's legacy pages runner (it is on the stack)."""
    try:
        from streamlit.runtime.scriptrunner.script_runner import _mpa_v1
    except ImportError:
        return False
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is _mpa_v1.__code__:
            return True
        frame = frame.f_back
    return False


def leave_legacy_run() -> None:
    """Rerun, through app.py's navigation, a run that Streamlit began in legacy pages mode."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)  # none on a thread of the run's own (ahead) or the preparer's
    if ctx is None:
        return
    if not _inside_legacy_runner():
        return
    try:  # rerun by page name so the deep link's page is kept (its legacy page hash means nothing now)
        from streamlit.commands.execution_control import _force_yield_point
        from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

        name = ctx.pages_manager.intended_page_name or ""
        ctx.script_requests.request_rerun(RerunData(query_string=ctx.query_string, page_name=name,
                                                    context_info=ctx.context_info))
        _force_yield_point()
    except (ImportError, AttributeError, TypeError):
        st.rerun()


_PIN = "_data_version_pin"
_RETRIES = "_data_changed_reruns"
MAX_DATA_RETRIES = 5


def pin_data_version() -> storage.Versions:
    """Read both data versions once (one SELECT) for this script run; every loader of the run then reads them.

    app.py calls this first on every run, so a page never mixes rows from before and after a write that
    lands while it is drawing: a loader that finds newer data raises `storage.DataChanged` and the run
    starts again (see :func:`run_page`).
    """
    try:
        versions = storage.versions(engine())
    except sa_exc.DBAPIError:
        database_unreachable()
    st.session_state[_PIN] = versions
    start_run()  # what this run looks up many times is looked up once (pages.ui.state.per_run)
    return versions


def database_unreachable() -> None:
    """A plain message instead of a traceback while the database is down or restarting; stops the run."""
    st.error("The database is not reachable right now (it may be restarting). Nothing was changed; reload the "
             "page in a minute. If this lasts, tell the data team.", icon=":material/cloud_off:")
    st.stop()


def pinned_versions() -> storage.Versions:
    """Both data versions of this run (read now when the run pinned none)."""
    pinned = st.session_state.get(_PIN)
    return pinned if pinned is not None else storage.versions(engine())


def data_version() -> int:
    """The run's data version, bumped by every write: the key of results that read a workspace table."""
    return pinned_versions().changes


def import_version() -> int:
    """The run's import version, bumped by imports only: the key of results read from imported tables alone."""
    return pinned_versions().imports


def _consistent(load: Callable, counter: int = storage.CHANGES) -> Callable:
    """A loader whose result is checked to belong to the version of `counter` it is cached under; on a cache
    miss what its intermediate frames held is given back (:func:`_then_release`)."""
    return _then_release(_checked_against(load, counter))


def _checked_against(fn: Callable, counter: int) -> Callable:
    """`fn(version, ...)`, its result checked to belong to `version` of `counter` (`storage.read_at_version`)."""

    @functools.wraps(fn)
    def checked(version: int, *args, **kwargs):
        return storage.read_at_version(engine(), version, lambda: fn(version, *args, **kwargs), counter)

    return checked


def _imported(load: Callable) -> Callable:
    """:func:`_consistent` for a loader that reads imported tables alone, cached under the import version."""
    return _consistent(load, storage.IMPORTS)


def _then_release(compute: Callable) -> Callable:
    """A computation after which the memory its intermediate frames used goes back to the system.

    Runs only on a cache miss (it sits inside the cache): district-wide tables are built through large
    temporary frames, and without this the server keeps its peak size (DESIGN §8 memory bar).
    """

    @functools.wraps(compute)
    def released(*args, **kwargs):
        try:
            return compute(*args, **kwargs)
        finally:
            memory.release_freed_memory()

    return released


def run_page(page, after: Callable[[], None] | None = None) -> None:
    """Run a page (then `after`, under the same guard, :func:`data_guard`). app.py runs it inside
    `pages.ui.prepare.page_in_progress`: the server's preparer starts no new piece of work meanwhile."""
    with data_guard():
        page.run()
        if after is not None:
            after()
        st.session_state[_RETRIES] = 0


@contextlib.contextmanager
def data_guard() -> Iterator[None]:
    """Run the block; when an import lands while it reads (`storage.DataChanged`), run the script again on
    the new data instead of mixing the two, and say the database is unreachable instead of failing.

    Around the page and around what the navigation shell reads before it (a shared link's scope check reads
    the district's schools): an import landing between the run's pinned version and those reads would
    otherwise end the run with an error where the page should be."""
    try:
        yield
    except storage.DataChanged:
        st.session_state.pop(_PIN, None)
        retries = st.session_state[_RETRIES] = st.session_state.get(_RETRIES, 0) + 1
        if retries > MAX_DATA_RETRIES:  # imports landing back to back: say so rather than loop
            st.session_state[_RETRIES] = 0
            st.info("New data is being imported right now; reload the page in a moment to see it.",
                    icon=":material/sync:")
            st.stop()
        st.rerun()
    except sa_exc.DBAPIError:
        database_unreachable()
