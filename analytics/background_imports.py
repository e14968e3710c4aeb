"""Import slow libraries in a background thread, once per process.

scipy.stats takes 1-3 s to import and Altair 0.5-2 s (more on a busy machine). The modules a page imports
leave them to the functions and charts that use them (tests/test_imports.py), and a server (not AppTest:
`pages.ui.prepare.serving`) imports them here once its first run has imported the pages' modules, while its
first page reads the database: a thread waiting on a query releases the interpreter lock, so the import runs
meanwhile instead of after the queries. The first function that needs the module waits for the rest of the
import (Python's per-module import lock), never for more than a plain import would take, and a failed import
is left to that function to raise.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence

THREAD_NAME = "ssif-imports"
_started: threading.Thread | None = None
_lock = threading.Lock()


def import_ahead(modules: Sequence[str]) -> threading.Thread:
    """Start importing `modules`, in order, in a daemon thread; later calls return the same thread."""
    global _started
    with _lock:
        if _started is None:
            _started = threading.Thread(target=_import_all, args=(tuple(modules),), name=THREAD_NAME, daemon=True)
            _started.start()
        return _started


def _import_all(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - the function that needs it raises the error where it is seen
            continue
