"""Import slow libraries in a background thread, once per process.

scipy.stats takes 1-3 s to import and Altair 0.5-2 s (more on a busy machine). The modules a page imports
leave them to the functions and charts that use them (tests/test_imports.py), and a server (not AppTest:
`pages.ui.prepare.serving`) imports them here once its first page has been drawn (`after`): an import holds the
interpreter lock, and beside a first page that computes in Python (what changed on several threads, the gaps
page's tables) it took the interpreter from that page (at 10,000 schools the first paint of `/` took 3.1-3.3 s
instead of 2.6-2.7, `/gaps` 4.9-6.5 s instead of 4.3-5.2, `/changes` 7.4-9.1 s instead of 7.0-7.5). A page that
needs a module before then imports it itself; the first function that needs one being imported here waits for
the rest of the import (Python's per-module import lock), never for more than a plain import would take, and a
failed import is left to that function to raise.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence

THREAD_NAME = "ssif-imports"
# What pages leave to their first chart or test: app.py imports them after a server's first page, serve.py before
# the server listens.
SLOW_LIBRARIES = ("scipy.stats", "altair", "pydeck", "scipy.spatial")
_started: threading.Thread | None = None
_lock = threading.Lock()


def import_ahead(modules: Sequence[str], after: Callable[[], object] | None = None) -> threading.Thread:
    """Start importing `modules`, in order, in a daemon thread, once `after` (called on that thread) returns;
    later calls return the same thread."""
    global _started
    with _lock:
        if _started is None:
            _started = threading.Thread(target=_import_all, args=(tuple(modules), after), name=THREAD_NAME,
                                        daemon=True)
            _started.start()
        return _started


def _import_all(modules: tuple[str, ...], after: Callable[[], object] | None = None) -> None:
    if after is not None:
        after()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - the function that needs it raises the error where it is seen
            continue
