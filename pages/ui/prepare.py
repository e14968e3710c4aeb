"""Compute ahead after an import: a background thread fills the caches of a new data version.

An import (from the Data page, the command line or another server) bumps both data versions, and every cached
view then belongs to an old one. A workspace edit (a saved goal, cycle or note) bumps only the version every
write bumps: the thread notices it the same way and runs the same list, but each result read from imported
tables alone is keyed on the import version, which did not move, so those steps find their results made and
only the steps that read the workspace (every goal's progress, the practices a walkthrough form offers, what
changed) compute; no progress note is shown for it (the preparer's ``quiet``). One `Preparer` per server process notices the new version (each script
run reports the version it pinned; a poll every few seconds catches imports nobody has looked at yet) and
fills the expensive district-wide caches in the work list of `analytics.data.prepare`, one after another,
in a daemon thread: the import's answer never waits for it. The list ends with the pages' opening views,
each run on that thread with no session attached (:func:`_draw_opening_view`): what a first view would
build (charts validated and serialised, tables people read and their Arrow form) is then in the caches,
under the same keys, before anyone opens the page. Pages do not wait either: a page that needs a
result being prepared waits on that one cache entry (Streamlit computes each entry once), and pages show
"Preparing the new data: 3 of 15" until the list is done. When a newer version lands mid-way, the rest of
the list is dropped and the new version is prepared instead.

The thread gives way to the people it prepares for. Its steps are cut into pieces (one cached result
each), and before each piece it sleeps a moment and then waits while a page is being drawn, and for a moment
after it while its browser still fetches what the page drew (:data:`GRACE_S`; up to :data:`MAX_WAIT_S` in all):
a Python thread holds the interpreter lock through pandas' long C calls, so a page drawn beside a
district-wide step shares the interpreter with it and takes longer than alone. A run that reports a new
version counts as a page run from before it does, so a version's first piece never starts beside it. A page that
needs the result being computed waits for that one piece only; a piece already started is not
interrupted (the privacy release is one piece).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType

import pandas as pd
import streamlit as st
from sqlalchemy import exc as sa_exc

from analytics.background_imports import import_ahead
from analytics.data import memory, storage
from analytics.data.prepare import Step, work_list

PAGES_DIR = Path(__file__).resolve().parent.parent  # where app.py's st.Page("pages/...") scripts are
POLL_S = 3.0  # how often the thread looks for an import made elsewhere (one single-row SELECT)
THREAD_NAME = "ssif-prepare"
PAUSE_S = 0.02  # the sleep between two pieces: threads waiting for the interpreter lock take it
MAX_WAIT_S = 20.0  # the longest a piece waits for page runs to end (busy servers still get prepared)
# How long a piece waits after the last page run ended: the browser is still fetching that page's messages and the
# code of its charts and tables from the server's event loop, which a piece keeping the interpreter holds up (at
# 10,000 schools a page whose run had ended painted 3.8 s later, as a 3.3 s piece ended).
GRACE_S = 2.0
PROGRESS_EVERY_S = 2.0  # how often an open page's progress note redraws itself
# How long a thread computing in Python keeps the interpreter before one waiting for it takes over (Python's
# default is 5 ms). The server's event loop needs it for every file and message it sends: beside the preparer's
# thread, each handover waited up to 5 ms, and on a busy machine the browser then waited 3-16 s for the code of
# a page's widgets (the slowest file of a first page; 2-4 s with 1 ms).
SWITCH_INTERVAL_S = 0.001
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    version: Hashable
    done: int
    total: int
    label: str  # the step being prepared


class Preparer:
    """Prepares each new data version once, in the background; `notice()` never blocks.

    A version is any value compared by equality (the app's is :class:`storage.Versions`, both counters).
    `plan(version)` gives the steps of a version and `run(step, version)` fills one step's caches; both may
    raise `storage.DataChanged` when the version is replaced meanwhile (the newer one is prepared next).
    `run` may be a generator: each `yield` ends a piece, after which the thread gives way to page runs
    (those inside :meth:`page_run`). `quiet(prepared, version)` says when preparing `version` after
    `prepared` shows no progress (the app's: the import version did not move, so the list is mostly cache
    hits and pages are not cold).
    """

    def __init__(self, current_version: Callable[[], Hashable], plan: Callable[[Hashable], list[Step]],
                 run: Callable[[Step, Hashable], object], poll_s: float = POLL_S, pause_s: float = PAUSE_S,
                 quiet: Callable[[Hashable, Hashable], bool] | None = None, grace_s: float = GRACE_S):
        self._current, self._plan, self._run, self._poll_s = current_version, plan, run, poll_s
        self._pause_s, self._quiet, self._grace_s = pause_s, quiet, grace_s
        self._wake = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._latest: Hashable | None = None  # the newest version noticed or begun
        self._past_shown: Hashable | None = None  # the version whose steps with progress to show are done
        self._pages = 0  # page runs in progress
        self._last_page_end: float | None = None  # when the last page run ended (time.monotonic)
        self.pauses = 0  # pieces that waited for a page run to end (tests and benchmarks)
        self.prepared: Hashable | None = None  # the last version prepared to the end
        self.seconds: dict[Hashable, float] = {}  # version -> seconds its preparation took
        self.step_seconds: dict[Hashable, dict[str, float]] = {}  # version -> each step's seconds (pauses included)
        self.piece_seconds: dict[Hashable, dict[str, list[float]]] = {}  # version -> each step's pieces' seconds
        self.failed: dict[Hashable, list[str]] = {}  # version -> the labels of the steps that raised
        self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def notice(self, version: Hashable) -> None:
        """A script run saw `version`: prepare it if it is new (returns at once)."""
        if version != self.prepared:
            self._begin(version)
            self._wake.set()

    def progress(self, version: Hashable) -> Progress | None:
        """How far the preparation of `version` is, or None when nothing is being prepared for it."""
        with self._lock:
            current = self._progress
        if current is None or not self._same_data(version, current.version):
            return None
        return current

    def shows_progress(self, version: Hashable) -> bool:
        """Whether a page run of `version` (noticed first) should hold a progress note: it is being prepared with
        progress to show, or it is the newest version and the thread has not reached its steps yet (a run that
        only woke the thread would otherwise show nothing until the user's next click). False once its shown
        steps are done, for an edit (quiet), and for a version a newer one replaced: the note's timer stops."""
        if self.progress(version) is not None:
            return True
        with self._lock:
            latest, past_shown = self._latest, self._past_shown
        newest = latest is not None and self._same_data(version, latest)
        past = past_shown is not None and self._same_data(version, past_shown)
        return newest and not past and version != self.prepared and not self._is_quiet(version)

    def _is_quiet(self, version: Hashable) -> bool:
        return self.prepared is not None and self._quiet is not None and self._quiet(self.prepared, version)

    def _same_data(self, version: Hashable, other: Hashable) -> bool:
        """`other` is `version`, or differs from it only by what `quiet` says shows no progress (an edit): a note
        drawn for `version` follows `other`'s preparation (a colleague's edit while an import is prepared
        restarts the list under the new version; the note goes on rather than going blank)."""
        return version == other or (self._quiet is not None and self._quiet(version, other))

    @contextlib.contextmanager
    def page_run(self) -> Iterator[None]:
        """Mark a page being drawn: the thread starts no new piece until it ends and its grace has passed (or
        :data:`MAX_WAIT_S`)."""
        with self._lock:
            self._pages += 1
        try:
            yield
        finally:
            with self._lock:
                self._pages -= 1
                self._last_page_end = time.monotonic()

    def wait_for_pages(self, timeout: float) -> bool:
        """Return once no page is being drawn and the grace after the last one has passed, or after `timeout`,
        or when the thread is stopped; True if it waited."""
        deadline = time.monotonic() + timeout
        waited = False
        while self._busy() and not self._stopped and time.monotonic() < deadline:
            waited = True
            time.sleep(self._pause_s)
        return waited

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the current version is prepared (tests and benchmarks); True if it is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.prepared == self._current() and self._progress is None:
                    return True
            except sa_exc.DBAPIError:
                pass
            self._wake.set()
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """End the thread after its current step (the cache entry holding this preparer was released)."""
        self._stopped = True
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopped:
            self._wake.wait(self._poll_s)
            self._wake.clear()
            if self._stopped:
                return
            version = None
            try:
                version = self._current()
                if version != self.prepared:
                    self._prepare(version)
            except sa_exc.DBAPIError:  # database restarting: try again at the next poll
                self._set(None)
            except Exception:  # noqa: BLE001 - never let the thread die; pages compute what they need
                log.exception("preparing data version failed")
                self._set(None)
                if version is not None:  # nothing is being prepared for it: its note clears and stops its timer
                    self._past(version)

    def _prepare(self, version: Hashable) -> None:
        started = time.monotonic()
        quiet = self._is_quiet(version)
        self._begin(version)
        try:
            steps = self._plan(version)
            shown = sum(not step.background for step in steps)  # background steps come last
            timed = self.step_seconds[version] = {}
            self.piece_seconds[version] = {}
            for done, step in enumerate(steps):
                if step.background and done == shown:
                    self._past(version)
                self._set(None if step.background or quiet else Progress(version, done, shown, step.label))
                self._give_way(version)
                step_started = time.monotonic()
                self._run_step(step, version)
                timed[step.label] = _took(step, step_started)
                memory.release_freed_memory()  # what the step's temporaries held, before the next step's
        except storage.DataChanged:
            self._set(None)
            self._wake.set()
            return
        _give_back_memory()
        self._past(version)
        self.prepared = version
        self.seconds[version] = round(time.monotonic() - started, 3)
        self._set(None)

    def _begin(self, version: Hashable) -> None:
        """`version` is the newest seen, unless a newer one was seen already: a page run that read its version
        just before an import, and reports it just after a run that read the import's, or the thread beginning
        a version it read just before, would otherwise make the newer version's note stop its timer before the
        thread reached its steps. Versions that do not compare (tests' own) are taken as they come."""
        with self._lock:
            try:
                older = self._latest is not None and version < self._latest
            except TypeError:
                older = False
            if not older:
                self._latest = version

    def _past(self, version: Hashable) -> None:
        with self._lock:
            self._past_shown = version

    def _run_step(self, step: Step, version: Hashable) -> None:
        """Run one step, giving way between its pieces. A step that fails is logged and left to its pages (they
        compute what they need when opened): the steps after it are still prepared, and the version counts as
        prepared, so a failing step is not retried at every poll."""
        timed = self.piece_seconds[version][step.label] = []
        started = time.monotonic()
        try:
            pieces = self._run(step, version)
            for _ in pieces if isinstance(pieces, Iterator) else ():
                _piece_took(step, timed, started)
                self._give_way(version)
                started = time.monotonic()
            _piece_took(step, timed, started)
        except (storage.DataChanged, sa_exc.DBAPIError):
            raise
        except ViewNotPrepared:  # logged with its exception where the view failed
            self.failed.setdefault(version, []).append(step.label)
        except Exception:  # noqa: BLE001 - one step's bug must not leave the others unprepared
            log.exception("preparing %r failed", step.label)
            self.failed.setdefault(version, []).append(step.label)

    def _give_way(self, version: Hashable) -> None:
        """Before a piece: let page runs, and their browsers for the grace after them, have the interpreter (the
        first view after a server start or an import is drawn alone), then check the version is still current."""
        time.sleep(self._pause_s)
        self.pauses += self.wait_for_pages(MAX_WAIT_S)
        if self._stopped or self._current() != version:  # a newer import landed: prepare that one
            raise storage.DataChanged(f"version {version} replaced")

    def _busy(self) -> bool:
        """A page is being drawn, or one ended within the grace."""
        with self._lock:
            pages, ended = self._pages, self._last_page_end
        return bool(pages) or (ended is not None and time.monotonic() - ended < self._grace_s)

    def _set(self, progress: Progress | None) -> None:
        with self._lock:
            self._progress = progress


def _piece_took(step: Step, timed: list[float], started: float) -> None:
    """Note a piece's seconds: a page run that starts during a piece may wait for the interpreter until it ends."""
    seconds = time.monotonic() - started
    timed.append(round(seconds, 3))
    log.debug("piece %d of %s took %.2f s", len(timed), step.label, seconds)


def _give_back_memory() -> None:
    """After a whole list: collect what only reference cycles kept (charts, validators), so whole pages of
    Python's allocator and of the C heap fall free, then give the C heap's free pages back to the system
    (DESIGN §8 memory bar: what a server keeps once the preparation has ended)."""
    gc.collect()
    memory.release_freed_memory()


# --- the Streamlit side: shared district-wide results and the one preparer of this server ----------------


@st.cache_resource(show_spinner=False, max_entries=2)
def _cluster_areas(version: int) -> pd.DataFrame:
    from analytics.outputs.charts_district import cluster_areas
    from pages.ui.catalog_loaders import _schools

    return cluster_areas(_schools(version))


def cluster_areas() -> pd.DataFrame:
    """Each cluster's outline for the map (convex hulls of its schools), shared by every session."""
    from pages.ui.data_versions import import_version

    return _cluster_areas(import_version())


def _plan(versions: storage.Versions) -> list[Step]:
    from pages.ui import catalog_loaders, data_versions

    present = catalog_loaders._tables_present(versions.changes)  # the pages' own check: no count of every row
    from analytics.access.sharing import has_live_shares

    version = versions.imports
    return work_list(catalog_loaders._metric_ids(version), catalog_loaders._years(version),
                     has_discipline=present.get("discipline", False),
                     has_live_shares=has_live_shares(data_versions.engine()),
                     has_learning=present.get("pl_programs", False), has_goals=present.get("school_goals", False))


def _run(step: Step, versions: storage.Versions) -> Iterator[None]:
    """Fill the caches one step stands for: the same cached functions the pages call, same arguments (each
    keyed on the version it is cached under: the import version, or for what reads the workspace the data
    version every write bumps).

    Each `yield` ends a piece (one cached result), where the preparer gives way to page runs."""
    from pages.ui import catalog_loaders, metric_loaders, rp_loaders, viewer, workspace_loaders

    version = versions.imports
    if step.kind == "release":
        viewer._release(version)
    elif step.kind == "metric":  # what the overview and cluster pages read for a metric (group ALL)
        catalog_loaders._metric_groups(version, step.arg)
        yield
        latest = max(catalog_loaders._years(version), default=None)
        if latest is not None:  # the district's figures every cluster page compares with
            metric_loaders._district_tables(version, step.arg, latest, "ALL")
        yield
        metric_loaders._metric_slice(version, step.arg, "ALL", None)
        yield
        metric_loaders._cluster_slices(version, step.arg, "ALL")  # each cluster's rows and sums, which its page reads
    elif step.kind == "gaps":  # the gaps page's opening view: every school's rows of the metric, labelled gaps
        metric_loaders._gap_year_views(version, step.arg, max(catalog_loaders._years(version)), "others", "all", "all")
        yield
        metric_loaders._gap_trend(version, step.arg, "all", "all")
    elif step.kind == "year":  # the school page's district figures
        metric_loaders._district_figures(version, step.arg)
    elif step.kind == "discipline":  # the discipline page's district view: flags, ratios, monthly run chart
        yield from _discipline_pieces(version)
    elif step.kind == "rp":  # randomization inference: seconds of CPU at 2,000 schools
        rp_loaders._rp_impact(version, "all", None)
        yield
        rp_loaders._rp_beyond(version, "all", None)
    elif step.kind == "profiles":  # every school's profile and opening view for the latest year, block by block
        from pages.ui import school_views

        yield from school_views._opening_views(version, int(step.arg)).pieces()
    elif step.kind == "rp_clusters":  # what a cluster's discipline view estimates: one piece per cluster
        from analytics.stats.did import shared_draws
        from analytics.stats.rp_impact import clusters_by_design
        from pages.ui import rp_views

        with shared_draws():  # clusters of the same make-up in a row reassign start years by the same draws
            for cluster in clusters_by_design(catalog_loaders._schools(version)):
                yield
                rp_loaders._rp_impact(version, cluster, None)
                rp_loaders._rp_beyond(version, cluster, None)
                rp_views._cluster_rp_view(version, cluster)  # and its view: event study, tables
    elif step.kind == "goals":  # every goal's progress, which a plan and what changed slice; the plans' form
        workspace_loaders._goal_progress(versions.changes)
        yield
        workspace_loaders._pl_practices(versions.changes)
    elif step.kind == "map":  # the map's cluster outlines; each cluster's schools, which its page lists
        _cluster_areas(version)
        yield
        catalog_loaders._cluster_members(version)
    elif step.kind == "quality":  # the Data page's counts over every row, and the rest of its first view
        from pages.ui import data_views

        catalog_loaders._data_quality(version)
        yield
        yield from data_views.prepare_opening(versions)
    elif step.kind == "view":
        _draw_opening_view(str(step.arg), versions)


def _discipline_pieces(version: int) -> Iterator[None]:
    """The discipline step: the district's flags and ratios, then what each cluster's view slices, the results
    made for every cluster block by block (:func:`discipline_loaders.cluster_blocks`), and every school's months."""
    from pages.ui import catalog_loaders, discipline_loaders, workspace_loaders

    discipline_loaders._flags_and_ratios(version, None)
    yield
    discipline_loaders._cluster_ratio_rows(version)  # where each cluster's rows are in them
    yield
    # every cluster's sums in one read: a cluster's view slices
    sums = discipline_loaders._cluster_discipline_sums(version)
    years, _ = discipline_loaders._discipline_choices(version)
    if years:  # and their rates by group, flags and ratios for the year the page opens on
        for block in discipline_loaders.cluster_blocks(list(sums)):
            yield
            discipline_loaders._cluster_group_rates_of(version, years[-1], block)
        yield
        discipline_loaders._cluster_group_rates(version, years[-1])
        yield
        discipline_loaders._cluster_year_ratios(version, years[-1])
    for actions in (None, discipline_loaders.SUSPENSIONS):  # and its incidents per month, and its run chart
        yield
        discipline_loaders._cluster_incident_months(version, actions)
    every_months = discipline_loaders._cluster_incident_months(version, None)
    for block in discipline_loaders.cluster_blocks(list(every_months)):
        yield
        discipline_loaders._cluster_run_charts_of(version, block)
    yield
    discipline_loaders._cluster_run_charts(version)
    every_school = tuple(catalog_loaders._schools(version)["school_id"])
    for actions in (None, discipline_loaders.SUSPENSIONS):
        yield
        discipline_loaders._incident_months(version, actions, every_school)
    yield  # every school's suspensions per month, which what changed slices
    workspace_loaders._school_suspension_months(version)


def prepare_now(versions: storage.Versions) -> dict[str, float]:
    """The whole work list of `versions` on this thread, piece after piece with no pause (benchmarks, tests):
    each step's seconds, by label."""
    timed = {}
    for step in _plan(versions):
        started = time.monotonic()
        with contextlib.suppress(ViewNotPrepared):  # logged where the view failed; its page draws it itself
            for _ in _run(step, versions):
                pass
        timed[step.label] = _took(step, started)
    return timed


def _took(step: Step, started: float) -> float:
    """A step's seconds, logged: which steps keep a new version's first views waiting."""
    seconds = round(time.monotonic() - started, 3)
    log.info("prepared %s in %.1f s", step.label, seconds)
    return seconds


class ViewNotPrepared(RuntimeError):
    """An opening view failed while drawn ahead (logged with its exception at warning level): its page draws
    it when opened, and the preparer counts its step among the failed ones (``Preparer.failed``)."""


_OPENING_VIEW = threading.Lock()  # the stand-in session state off script threads is one per process


@functools.cache
def page_code(path: str) -> CodeType:
    """A page script's code, compiled once as Streamlit compiles it (no future flags inherited): the page's
    cached functions are keyed on their code and file (:func:`pages.ui.caching._identity`)."""
    return compile(Path(path).read_text(), path, "exec", dont_inherit=True)


def _draw_opening_view(page: str, versions: storage.Versions) -> None:
    """Run a page's opening view here, as a staff member's first visit would: no URL parameters, no share
    token, data versions `versions`. Off a script thread Streamlit draws into nothing (elements are made and
    dropped, widgets give their defaults, the session state is a stand-in), while every cache the page
    reads or fills is the server's own. A view that stops early (`st.stop` does not stop here) or fails
    leaves nothing wrong behind: its page computes what is missing when it is opened. A failure is logged
    with its exception and raised as :class:`ViewNotPrepared`, so a step that "took" a fraction of a second
    is never taken for a prepared view."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx() is not None:  # a session's own state and URL are never touched
        raise RuntimeError("opening views are drawn off the script threads")
    with _OPENING_VIEW:  # a preparer replaced mid-step (caches cleared) may still be drawing one
        _draw_in_stand_in_state(page, versions)


def _draw_in_stand_in_state(page: str, versions: storage.Versions) -> None:
    from pages.ui import data_versions, state

    st.session_state.clear()  # Streamlit's stand-in state off a script thread: a new visitor's, empty
    st.query_params.clear()
    st.session_state[data_versions._PIN] = versions
    state.start_run()
    path = str(PAGES_DIR / f"{page}.py")
    try:
        exec(page_code(path), {"__name__": "__main__", "__file__": path})  # noqa: S102 - the app's own page
    except (storage.DataChanged, sa_exc.DBAPIError):
        raise
    except Exception as exc:  # the page draws it itself when opened
        log.warning("first view of %s not prepared", page, exc_info=True)
        raise ViewNotPrepared(page) from exc
    finally:
        st.session_state.clear()
        st.query_params.clear()


class _QuietThread(logging.Filter):
    """Streamlit warns about a missing script context when a cached function runs off a script thread;
    the preparer's thread has none by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return threading.current_thread().name != THREAD_NAME


@st.cache_resource(show_spinner=False, on_release=Preparer.stop)
def preparer() -> Preparer:
    """The one preparer of this server process, started by the first script run."""
    from pages.ui.data_versions import engine

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_QuietThread())
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return Preparer(lambda: storage.versions(engine()), _plan, _run, quiet=same_imports)


def same_imports(prepared: storage.Versions, versions: storage.Versions) -> bool:
    """Only workspace records changed since `prepared`: what is read from imported tables is made already."""
    return prepared.imports == versions.imports


def page_in_progress() -> contextlib.AbstractContextManager:
    """Around a page run: the server's preparer starts no new piece meanwhile nor within :data:`GRACE_S` after
    it (nothing to do off a server)."""
    return preparer().page_run() if serving() else contextlib.nullcontext()


def import_after_pages(modules: Sequence[str]) -> None:
    """On a server, import `modules` in the background once the page being drawn, and the grace after it, are
    over (:func:`analytics.background_imports.import_ahead`; at most :data:`MAX_WAIT_S` later). Called inside
    :func:`page_in_progress`, so the first page counts as being drawn from the start."""
    if serving():
        worker = preparer()
        import_ahead(modules, after=lambda: worker.wait_for_pages(MAX_WAIT_S))


def prepare_ahead(version: storage.Versions) -> None:
    """Report this run's data versions to the preparer; while it prepares an import, show how far it is.

    The progress is a fragment that redraws itself every few seconds; when the data is ready it clears itself
    and cancels its timer. It sits in the sidebar, in a slot every server run makes whether or not there is
    progress to show: a note that appeared or went away before other elements would shift them, and Streamlit
    then draws them anew (an open popover or form closes under the user's hands). For the same reason the end
    of the preparation reruns nothing."""
    if not serving():
        return
    worker = preparer()
    worker.notice(version)
    slot = st.sidebar.container()
    if worker.shows_progress(version):
        with slot:
            _progress_note(version)


def serving() -> bool:
    """True under `streamlit run`: bare runs have no server to keep warm, and AppTest's runtime is a stand-in
    (a mock of :class:`~streamlit.runtime.Runtime`, so ``runtime.exists()`` is true there too)."""
    from streamlit import runtime

    return runtime.exists() and type(runtime.get_instance()) is runtime.Runtime


def _stop_ticking() -> None:
    """Cancel the browser's timer of the fragment running now, as Streamlit does for a fragment its parent no
    longer draws (its ``stop_auto_rerun`` message). Without it a session that showed the note would run the
    fragment every :data:`PROGRESS_EVERY_S` until its next interaction: on a busy server those runs keep the
    script thread and the event loop busy while the browser still loads the page's widget code. Streamlit has
    no public call for it; on a version without these internals the timer ticks on, harmlessly."""
    try:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx
    except ImportError:
        return
    ctx = get_script_run_ctx()
    fragment_id = ThreadState.get().fragment_id if ctx is not None else None
    if not fragment_id:
        return
    message = ForwardMsg()
    message.stop_auto_rerun.fragment_ids.append(fragment_id)
    ctx.enqueue(message)


def _progress_text(progress: Progress) -> str:
    return f"Preparing the new data: {progress.done + 1} of {progress.total}"


@st.fragment(run_every=PROGRESS_EVERY_S)
def _progress_note(version: storage.Versions) -> None:
    worker = preparer()
    if not worker.shows_progress(version):  # done, or replaced by a newer import: clear the note, stop the timer
        _stop_ticking()
        return
    progress = worker.progress(version)
    if progress is None:  # the thread is about to begin: its list is being made
        st.progress(0.0, text="Preparing the new data")
        return
    st.progress(progress.done / max(progress.total, 1), text=_progress_text(progress))
    st.caption(f"Now: {progress.label}. Pages open meanwhile; the first view of each may take a little longer.")
