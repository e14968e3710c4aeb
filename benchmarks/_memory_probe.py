"""`streamlit run` as `serve.py` starts it (its imports first), with a probe the memory benchmark asks, through
files, how far the preparer is and what the server's memory holds (`benchmarks/bench_memory.py`).

    SSIF_MEMORY_PROBE=DIR python benchmarks/_memory_probe.py run app.py --server.port 8501 ...

The probe is a daemon thread of the server process: every quarter second it looks for ``DIR/ask`` (one word,
``state`` or ``breakdown``), removes it and writes the answer as JSON to ``DIR/answer.json`` (renamed into
place, so it is never read half-written). It reads the app's objects as they are and changes none of them.

- ``state``: the preparer's own account (:class:`pages.ui.prepare.Preparer`): the version it prepared last,
  the current one, whether that one is prepared to the end, its seconds and each step's. A preparer that is
  not made yet, or a checkout without one, answers ``found: false`` (the benchmark then waits for idle CPU).
- ``breakdown``: the resident memory by kind (``/proc/self/smaps_rollup``: anonymous vs. mapped files), the C
  library's heap (``mallinfo2``: in use vs. free), Python's object allocator (its arenas, from
  ``sys._debugmallocstats``) and the kinds of objects holding most of it (``kinds``), and what each cache
  holds: every ``st.cache_resource`` and ``st.cache_data`` function's entries (a resource's objects measured
  in place; a data entry is its pickled bytes) and the app's module-level caches. Memory shared by two
  holders (a slice of a cached frame, a frame's Arrow table made from it) is counted once, for the first
  holder measured.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

POLL_S = 0.25
MIB = 2**20


def _preparer():
    """The server's preparer: the value of the ``preparer`` resource cache, if made."""
    from streamlit.runtime.caching import cache_resource_api

    caches = cache_resource_api._resource_caches
    with caches._caches_lock:
        every = [cache for by_key in caches._function_caches.values() for cache in by_key.values()]
    for cache in every:
        if cache.display_name.endswith(".preparer"):
            with cache._mem_cache_lock:
                values = [result.value for result in cache._mem_cache.values()]
            if values:
                return values[0]
    return None


def state() -> dict:
    worker = _preparer()
    if worker is None or not hasattr(worker, "prepared"):
        return {"found": False}
    try:
        current = worker._current()
    except Exception as exc:  # noqa: BLE001 - e.g. the database busy: asked again
        return {"found": True, "error": repr(exc)}
    done = worker.prepared == current and getattr(worker, "_progress", None) is None
    return {"found": True, "done": done, "prepared": repr(worker.prepared), "current": repr(current),
            "seconds": getattr(worker, "seconds", {}).get(current) if done else None,
            "step_seconds": getattr(worker, "step_seconds", {}).get(current) if done else None,
            "failed": getattr(worker, "failed", {}).get(current, [])}


class _Sizer:
    """Bytes an object holds, counting each object and each data buffer once across every call."""

    SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
            types.CodeType, types.FrameType, threading.Thread, type(threading.Lock()), threading.Event)
    SKIP_MODULES = ("sqlalchemy", "threading", "psycopg", "sqlite3", "logging", "tornado", "asyncio")

    def __init__(self):
        import numpy as np
        import pandas as pd
        import pyarrow as pa

        self.np, self.pd, self.pa = np, pd, pa
        self.ids: set[int] = set()
        self.buffers: set[int] = set()

    def size(self, obj, depth: int = 0) -> int:
        if id(obj) in self.ids or depth > 40 or isinstance(obj, self.SKIP):
            return 0
        if type(obj).__module__.split(".")[0] in self.SKIP_MODULES:
            return 0
        self.ids.add(id(obj))
        np, pd, pa = self.np, self.pd, self.pa
        if isinstance(obj, np.ndarray):
            return self._array(obj, depth)
        if isinstance(obj, (pd.DataFrame, pd.Series)):
            return (sum(self.size(block.values, depth + 1) for block in obj._mgr.blocks)
                    + self.size(obj.index, depth + 1) + (self.size(obj.columns, depth + 1)
                                                         if isinstance(obj, pd.DataFrame) else 0))
        if isinstance(obj, pd.MultiIndex):  # its levels and codes; it has no single array of its own
            return sys.getsizeof(obj) + sum(self.size(part, depth + 1) for part in (*obj.levels, *obj.codes))
        if isinstance(obj, pd.Index):
            return sys.getsizeof(obj) + self.size(obj._data, depth + 1)
        if isinstance(obj, (pa.Array, pa.ChunkedArray, pa.Table, pa.RecordBatch)):
            return self._arrow(obj)
        if isinstance(obj, (str, bytes, bytearray, int, float, complex, bool)) or obj is None:
            return sys.getsizeof(obj)
        total = sys.getsizeof(obj)
        if isinstance(obj, dict):
            return total + sum(self.size(k, depth + 1) + self.size(v, depth + 1) for k, v in list(obj.items()))
        if isinstance(obj, (list, tuple, set, frozenset)):
            return total + sum(self.size(item, depth + 1) for item in list(obj))
        if hasattr(obj, "__dict__"):
            total += self.size(vars(obj), depth + 1)
        for slot in getattr(type(obj), "__slots__", ()):
            total += self.size(getattr(obj, slot, None), depth + 1)
        return total

    def _array(self, array, depth: int) -> int:
        root = array
        while isinstance(root.base, self.np.ndarray):
            root = root.base
        address = root.__array_interface__["data"][0]
        total = 0
        if address not in self.buffers:
            self.buffers.add(address)
            total += root.nbytes
        if array.dtype == object:
            total += sum(self.size(item, depth + 1) for item in array.ravel())
        return total

    def _arrow(self, obj) -> int:
        pa = self.pa
        if isinstance(obj, (pa.Table, pa.RecordBatch)):
            columns = obj.columns
        else:
            columns = [obj]
        total = 0
        for column in columns:
            for chunk in getattr(column, "chunks", [column]):
                for buffer in chunk.buffers():
                    if buffer is not None and buffer.address not in self.buffers:
                        self.buffers.add(buffer.address)
                        total += buffer.size
        return total


def _streamlit_caches(sizer: _Sizer) -> list[dict]:
    from streamlit.runtime.caching import cache_data_api, cache_resource_api

    rows = []
    for kind, caches in (("resource", cache_resource_api._resource_caches), ("data", cache_data_api._data_caches)):
        with caches._caches_lock:
            every = [cache for by_key in caches._function_caches.values() for cache in by_key.values()]
        for cache in every:
            if kind == "resource":
                with cache._mem_cache_lock:
                    values = [result.value for result in cache._mem_cache.values()]
                sizes = [sizer.size(value) for value in values]
                limit = cache._mem_cache.maxsize
            else:
                storage = cache.storage
                while hasattr(storage, "_persist_storage") and not hasattr(storage, "_mem_cache"):
                    storage = storage._persist_storage
                with storage._mem_cache_lock:
                    sizes = [len(value) for value in storage._mem_cache.values()]
                limit = storage._mem_cache.maxsize
            rows.append({"kind": kind, "function": cache.display_name, "entries": len(sizes),
                         "max_entries": None if limit == float("inf") else limit,
                         "mib": round(sum(sizes) / MIB, 2), "largest_mib": round(max(sizes, default=0) / MIB, 2)})
    return sorted(rows, key=lambda row: -row["mib"])


def _module_caches(sizer: _Sizer) -> list[dict]:
    """The app's module-level holders (dicts, lists, sets and ``functools`` caches) of 0.1 MiB or more."""
    rows = []
    for name, module in list(sys.modules.items()):
        if not name.startswith(("pages.", "analytics.")):
            continue
        for attribute, value in list(vars(module).items()):
            if isinstance(value, (dict, list, set)) and not attribute.startswith("__"):
                held = sizer.size(value)
            elif hasattr(value, "cache_info") and hasattr(value, "cache_clear"):  # functools.cache, lru_cache
                held = sum(sizer.size(ref) for ref in gc.get_referents(value) if isinstance(ref, dict))
            else:
                continue
            if held >= 0.1 * MIB:
                rows.append({"holder": f"{name}.{attribute}", "mib": round(held / MIB, 2)})
    return sorted(rows, key=lambda row: -row["mib"])


def _smaps() -> dict:
    text = Path("/proc/self/smaps_rollup").read_text()
    found = {key: int(kib) for key, kib in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}
    rss = found.get("Rss", 0)
    anonymous = found.get("Anonymous", 0)
    return {"rss_mib": round(rss / 1024, 1), "anonymous_mib": round(anonymous / 1024, 1),
            "file_backed_mib": round((rss - anonymous) / 1024, 1)}


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _malloc() -> dict:
    """glibc's heap: bytes in its arenas (in use, and free: whole free pages that ``malloc_trim`` gave back to the
    system are still counted as free here, so not all of it is resident) and in chunks of their own (``mmap``)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {"arenas_mib": round(info.arena / MIB, 1), "in_use_mib": round(info.uordblks / MIB, 1),
            "free_mib": round(info.fordblks / MIB, 1), "mmapped_mib": round(info.hblkhd / MIB, 1)}


def _pymalloc() -> dict:
    """Python's small-object allocator (its arenas are mapped apart from malloc's heap)."""
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    def number(label: str) -> int:
        found = re.search(rf"^# {label}\s*=\s*([\d,]+)", text, re.M)
        return int(found.group(1).replace(",", "")) if found else 0
    arenas, arena_bytes = number("arenas allocated current"), number("bytes in allocated blocks")
    total = re.search(r"^Total\s*=\s*([\d,]+)", text, re.M)
    return {"arenas": arenas, "blocks_in_use_mib": round(arena_bytes / MIB, 1),
            "arenas_total_mib": round(int(total.group(1).replace(",", "")) / MIB, 1) if total else None,
            "objects_tracked_by_gc": len(gc.get_objects())}


def _kinds(top: int = 20) -> list[dict]:
    """The kinds of Python objects that hold the most of Python's allocator: every object the collector tracks
    and the untracked ones they refer to (texts, numbers), each counted once, by type. Sizes are the objects' own:
    a frame's, an array's or an Arrow column's object without the data it reports (``__sizeof__``), which is
    in the C heap."""
    seen: set[int] = set()
    count: dict[str, int] = {}
    size: dict[str, int] = {}

    def add(obj) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        count[kind] = count.get(kind, 0) + 1
        own = sys.getsizeof(obj) if type(obj).__module__ == "builtins" else object.__sizeof__(obj)
        size[kind] = size.get(kind, 0) + own

    every = gc.get_objects()
    seen.add(id(every))
    for obj in every:
        add(obj)
        for ref in gc.get_referents(obj):
            if not gc.is_tracked(ref):
                add(ref)
    kinds = sorted(size, key=lambda kind: -size[kind])[:top]
    return [{"kind": kind, "objects": count[kind], "mib": round(size[kind] / MIB, 2)} for kind in kinds]


def breakdown() -> dict:
    started = time.perf_counter()
    # The server's own figures first: measuring the caches makes sets of every object and buffer it counted.
    held = {"memory": _smaps(), "malloc": _malloc(), "pymalloc": _pymalloc()}
    kinds = _kinds()
    sizer = _Sizer()
    caches = _streamlit_caches(sizer)
    modules = _module_caches(sizer)
    return {**held, "kinds": kinds,
            "caches_total_mib": round(sum(row["mib"] for row in caches) + sum(row["mib"] for row in modules), 1),
            "caches": caches, "module_caches": modules, "seconds": round(time.perf_counter() - started, 2)}


def _serve(directory: Path) -> None:
    import logging

    class _Quiet(logging.Filter):  # Streamlit warns of a missing script context when the app is read off its threads
        def filter(self, record: logging.LogRecord) -> bool:
            return threading.current_thread().name != "memory-probe"

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_Quiet())
    ask, answer = directory / "ask", directory / "answer.json"
    while True:
        time.sleep(POLL_S)
        if not ask.exists():
            continue
        question = ask.read_text().strip()
        ask.unlink()
        try:
            reply = {"state": state, "breakdown": breakdown}[question]()
        except Exception as exc:  # noqa: BLE001 - the benchmark reads the error and goes on
            reply = {"error": repr(exc)}
        written = directory / "answer.tmp"
        written.write_text(json.dumps(reply, default=repr))
        written.replace(answer)


def main() -> None:
    directory = Path(os.environ["SSIF_MEMORY_PROBE"])
    threading.Thread(target=_serve, args=(directory,), name="memory-probe", daemon=True).start()
    from streamlit.web.cli import main as streamlit

    try:  # as the README's server command (serve.py) starts: its imports first
        from serve import import_ahead_of_requests
    except ImportError:  # a checkout from before serve.py (--root)
        pass
    else:
        import_ahead_of_requests()

    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit()


if __name__ == "__main__":
    main()
