"""Each step of the preparer's work list (DESIGN §8): its seconds from empty caches, in the list's order, on a
demo database (SQLite, built when missing) or any `--url`. Results are written after every step, so a list
stopped by `--deadline` still says which steps it reached and what they took; `steps_s_cpu` gives each step's
CPU seconds, which other work on the machine hardly moves. Writes benchmarks/results/prepare.json (with
`--steps`, only the steps of those kinds: prepare_<kinds>.json).

`--after-edit` then saves a PDSA cycle's notes (a workspace edit, on a copy of the SQLite database: the
original is never written) and runs the list again as the server does after it: each step's seconds are
`after_edit_steps_s` (results read from imported tables alone are still cached; what reads the workspace is
made again). Writes benchmarks/results/prepare_after_edit.json.

    python benchmarks/bench_prepare.py --db /tmp/ssif_2000.db --schools 2000
    python benchmarks/bench_prepare.py --url postgresql+psycopg://... --deadline 1200
    python benchmarks/bench_prepare.py --db /tmp/ssif_bench_2000.db --after-edit
    python benchmarks/bench_prepare.py --db /tmp/ssif_bench_2000.db --steps rp,rp_clusters   # prepare_rp_rp_clusters.json

Each step is run piece by piece, as the server's preparer runs it (it gives way to page runs only between pieces):
`longest_pieces` lists the longest pieces with their seconds, CPU seconds and `held_s`, the longest a probe thread
asking for the interpreter every few milliseconds waited for it during the piece (what a page run starting beside
that piece may wait, at the server's switch interval). `--holds FILE` writes every thread's stack to FILE whenever
the probe has waited `HOLD_S` (Python's fault handler, which needs no interpreter lock): where the preparer keeps it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import copy_of, demo_database, save_a_pdsa_note, write_results

PROBE_S = 0.005  # how often the probe thread asks for the interpreter
HOLD_S = 0.5  # a wait this long has the stacks written (--holds)
LONGEST_PIECES = 15


class InterpreterProbe:
    """A daemon thread that sleeps `PROBE_S` again and again: how late it wakes is how long it waited for the
    interpreter (and for a core), which a thread running C code that keeps the interpreter lock delays."""

    def __init__(self, holds=None) -> None:
        self._lock = threading.Lock()
        self._longest = 0.0
        self._holds = holds  # an open file: where the stacks of a long wait go
        threading.Thread(target=self._loop, name="interpreter-probe", daemon=True).start()

    def _loop(self) -> None:
        import faulthandler

        while True:
            began = time.perf_counter()
            if self._holds is not None:
                faulthandler.dump_traceback_later(HOLD_S, file=self._holds)
            time.sleep(PROBE_S)
            if self._holds is not None:
                faulthandler.cancel_dump_traceback_later()
            late = time.perf_counter() - began - PROBE_S
            with self._lock:
                self._longest = max(self._longest, late)

    def mark(self, text: str) -> None:
        """Say in the stacks' file which piece the stacks after it belong to."""
        if self._holds is not None:
            self._holds.write(f"--- {text}\n")
            self._holds.flush()

    def take(self) -> float:
        """The longest wait since the last call."""
        with self._lock:
            longest, self._longest = self._longest, 0.0
        return round(longest, 3)


def run_pieces(step, versions, probe: InterpreterProbe, pieces: list[dict]) -> None:
    """One step, piece by piece (each `yield` of `prepare._run` ends one): each piece's seconds, CPU seconds
    (this process's) and the probe's longest wait are added to `pieces`."""
    from pages.ui import prepare

    run = prepare._run(step, versions)
    while True:
        probe.mark(f"{step.label}, piece {sum(p['step'] == step.label for p in pieces) + 1}")
        probe.take()
        began, began_cpu = time.perf_counter(), time.process_time()
        ended = next(run, StopIteration)
        pieces.append({"step": step.label, "piece": sum(p["step"] == step.label for p in pieces) + 1,
                       "s": round(time.perf_counter() - began, 3), "cpu_s": round(time.process_time() - began_cpu, 3),
                       "held_s": probe.take()})
        if ended is StopIteration:
            return


def run_list(deadline: float | None, written, name: str = "steps_s",
             kinds: frozenset[str] = frozenset(), holds=None) -> tuple[dict, float, dict, list[dict]]:
    """Each step of the current versions' list (of `kinds` only, when given), timed in order (`written(steps)`
    after each step), the CPU seconds of the whole list and of each step (this process's: unlike the steps'
    seconds, hardly moved by other work beside it), and each piece's figures (:func:`run_pieces`)."""
    from pages.ui import data_versions, prepare

    sys.setswitchinterval(prepare.SWITCH_INTERVAL_S)  # as the server's preparer sets it
    probe, pieces = InterpreterProbe(holds), []
    versions = data_versions.pinned_versions()
    started, cpu, steps, cpu_steps = time.perf_counter(), time.process_time(), {}, {}
    for step in prepare._plan(versions):
        if kinds and step.kind not in kinds:
            continue
        if deadline is not None and time.perf_counter() - started > deadline:
            steps[step.label] = "not reached"
            continue
        began, began_cpu = time.perf_counter(), time.process_time()
        try:
            run_pieces(step, versions, probe, pieces)
            steps[step.label] = round(time.perf_counter() - began, 2)
        except prepare.ViewNotPrepared:  # logged with its exception: its seconds would say nothing
            steps[step.label] = "failed"
        cpu_steps[step.label] = round(time.process_time() - began_cpu, 2)
        print(f"{steps[step.label]:>8} s  {cpu_steps[step.label]:>8} s CPU  {step.label}", flush=True)
        written({name: steps, f"{name}_cpu": cpu_steps, "partial": True, "longest_pieces": _longest(pieces)})
    return steps, round(time.process_time() - cpu, 1), cpu_steps, pieces


def _longest(pieces: list[dict]) -> list[dict]:
    return sorted(pieces, key=lambda piece: piece["s"], reverse=True)[:LONGEST_PIECES]


def _total(steps: dict) -> float:
    return round(sum(v for v in steps.values() if isinstance(v, float)), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a database URL (default: a SQLite demo database)")
    parser.add_argument("--db", type=Path, help="the SQLite demo database (built when missing)")
    parser.add_argument("--schools", type=int, default=2000)
    parser.add_argument("--deadline", type=float, default=None, help="seconds after which no new step starts")
    parser.add_argument("--steps", default="", help="only the steps of these kinds, e.g. rp,rp_clusters (what the "
                        "others would have made is made inside the first step that reads it)")
    parser.add_argument("--holds", type=Path, help="write the stacks of every wait of the probe over HOLD_S here")
    parser.add_argument("--after-edit", action="store_true",
                        help="then save a PDSA note (on a copy of the database) and time the list again")
    args = parser.parse_args()
    db = args.db or Path(os.environ.get("TMPDIR", "/tmp")) / f"ssif_bench_{args.schools}.db"
    with tempfile.TemporaryDirectory() as tmp:
        if args.after_edit and not args.url:
            demo_database(db, args.schools)
            db = copy_of(db, Path(tmp))
        url = args.url or demo_database(db, args.schools)
        measure(url, args)


def measure(url: str, args) -> None:
    os.environ["DATABASE_URL"] = url
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    name, base = ("prepare_after_edit" if args.after_edit else "prepare"), {"database": url.split(":")[0]}
    kinds = frozenset(k for k in args.steps.split(",") if k)
    if kinds:
        name, base = f"{name}_{'_'.join(sorted(kinds))}", {**base, "only": sorted(kinds)}
    holds = args.holds.open("w") if args.holds else None
    steps, cpu, cpu_steps, pieces = run_list(args.deadline, lambda partial: write_results(name, {**base, **partial}),
                                             kinds=kinds, holds=holds)
    timed = {k: v for k, v in steps.items() if isinstance(v, float)}
    result = {**base, "steps_s": steps, "steps_s_cpu": cpu_steps, "total_s": _total(steps), "cpu_s": cpu,
              "slowest": sorted(timed, key=timed.get, reverse=True)[:5], "longest_pieces": _longest(pieces),
              "longest_held_s": max((piece["held_s"] for piece in pieces), default=None),
              "note": "machines are noisy: figures measured beside other work"}
    if args.after_edit:
        result["edited_cycle"] = save_a_pdsa_note(url)
        after, after_cpu, after_steps_cpu, _ = run_list(
            args.deadline, lambda partial: write_results(name, {**result, **partial}), "after_edit_steps_s", kinds)
        result.update(after_edit_steps_s=after, after_edit_steps_s_cpu=after_steps_cpu,
                      after_edit_total_s=_total(after), after_edit_cpu_s=after_cpu)
    write_results(name, result)

if __name__ == "__main__":
    main()
