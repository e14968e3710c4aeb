"""What changed's opening view, kept ahead for the dashboard by the command that wrote a new state of the data.

A server keeps the district's list of what changed since its last meeting (:mod:`analytics.data.kept`) when it
first draws it: its preparer draws it after an import made on its Data page, and after one made elsewhere once
its poll notices it. A server started after an import by the command line finds nothing prepared: the first
member of staff to open What changed waited while the list was found (5.5-5.8 s of first paint at 10,000
schools x 8 years on PostgreSQL). The command therefore keeps the list itself once its own answer is printed,
under the name, arguments and code fingerprint the page reads it by, so every server reads it instead (one
already running may find it at the same time; whichever keeps it first is read from then on).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

from sqlalchemy.engine import Engine

from analytics.data import kept, storage
from analytics.workspace.views import changes_view, last_meeting

# The page's function (`pages/changes.py:changes_for`) is kept under this name, with (cluster, since) as its
# arguments: None for the whole district.
CHANGES_KEPT_AS = "what changed since a meeting"


@dataclass(frozen=True)
class KeptAhead:
    since: date  # the district's last meeting
    rows: int  # of the list
    seconds: float  # to find it and keep it
    kept: bool  # False: a write replaced the data version meanwhile, or the table could not be written
    version: int  # the data version it was found at


def district_since(engine: Engine) -> date | None:
    """The date What changed opens on for the whole district: its last meeting (None: no meeting recorded, so the
    page asks for a date and there is nothing to keep ahead)."""
    return last_meeting(engine, "district")


def can_keep_for_pages() -> bool:
    """Whether the app's pages are beside this copy of the analytics core: what is kept is read under a fingerprint
    of both, which a copy installed without them cannot make."""
    return kept.APP_PAGES.is_dir()


def keep_district_changes(engine: Engine, since: date) -> KeptAhead | None:
    """Find the district's changes since `since` at the database's current data version
    (:func:`analytics.workspace.views.changes_view`, as the page does) and keep them for the pages; None when
    they are kept already at this version by this code (another process kept them first)."""
    version = storage.data_version(engine)
    args, code = (None, since), kept.app_fingerprint()
    if kept.is_kept(engine, CHANGES_KEPT_AS, args, version, code):
        return None
    started = time.perf_counter()
    found = changes_view(engine, since=since)
    # Kept only while `version` is still the database's: a list read across a write is not kept.
    stored = kept.keep(engine, CHANGES_KEPT_AS, args, version, code, found)
    return KeptAhead(since=since, rows=len(found), seconds=time.perf_counter() - started, kept=stored,
                     version=version)


def district_list_kept(engine: Engine) -> bool:
    """Whether What changed's opening view is kept for the database's current data version by this code."""
    since = district_since(engine)
    return since is not None and kept.is_kept(engine, CHANGES_KEPT_AS, (None, since), storage.data_version(engine),
                                              kept.app_fingerprint())
