"""State scale on PostgreSQL: 10,000 schools x 8 years (DESIGN §8: the same ratios at state scale).

Starts its own PostgreSQL server (`load_harness.PostgresServer`), builds the demo district with the
command line (`python -m analytics demo --schools N --years 8`, its progress lines kept), then records,
each figure beside its floor or bar:

- demo: build and load time (bar: minutes, not tens of minutes: <= 10 min in all);
- import of one file at that size (the last year's metrics, removed first, so a new year's file) beside
  its floor `read_csv` + bare `COPY` into an unindexed table (bar: <= 2x), and the same file again, each with
  where its time went (`split`, `reimport_split`: reading, each check, COPY and its CSV text, index builds,
  attach, commit; `_import_split`), and `paired`: the floor and the import back to back in each of three
  repeats or more, the medians of their wall-clock ratios and of their CPU ratios, this process's CPU plus
  the PostgreSQL server's (`bench_import.paired_runs`); then `kept_ahead`: What changed's opening view found
  and kept for the new data, as the command line's `import` does after its answer (its seconds, not the import's);
- first paint of every staff page in Chromium signed in as a member of staff (an OpenID Connect provider of
  its own, `oidc-provider-mock`, as the browser sign-in tests use; the server's `[auth]` points at it), the
  first visit after the server starts (cold) and the next (warm), then each page's first visit after the server
  restarts (`restarted`: what a server's memory held is gone, results kept in the database are read;
  `analytics.data.kept`) and as the first request of a new server (`first_link`, beside `first_run_imports_s`:
  the app's imports in a new interpreter) (bar: <= 3 s), what that paint showed
  (`first_element`: the page, not a sign-in notice), and the server's resident memory after each page,
  its child processes included and also given alone (psutil; bar: 512 MiB, the 2,000-school bar of DESIGN §8);
- cold and warm reruns of every page with AppTest against DATABASE_URL, as a signed-in editor (as the page
  tests sign in), beside its static twin (`bench_static_twin.measure_page`; bars: cold <= 3 s and <= 5x
  warm, warm <= 2x its twin);
- the first view of every page after the preparer's work list ran, as a server runs it after an import
  (`prepared_first_run_s`, bench_cold's way; bars as the cold first view's), and the preparer's own
  seconds (`prepare_s`). The list runs once; the pages are then opened in turn by new sessions, so a page
  may also find what an earlier page left in the caches, as on a server;
- the resident memory of this process after each page (`process_memory_mib`): it draws every page
  in-process with the server's caches, so it stands for a server that has opened every page (bar 512
  MiB).

`missed` names every bar missed. Writes benchmarks/results/state.json (`--quick`: 2,000 schools,
state_quick.json).

    python benchmarks/bench_state.py            # 10,000 schools x 8 years
    python benchmarks/bench_state.py --quick    # 2,000 schools x 8 years
    python benchmarks/bench_state.py --pgdata /tmp/state-pg --parts browser --pages gaps,changes
        # a cheap rerun: the cluster (and its demo district) kept in /tmp/state-pg, built on first use;
        # writes state_partial.json. Remove the directory to build the district again.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, best_of, write_results
from load_harness import (
    BROWSER_ARGS,
    CHROMIUM,
    READY_SELECTOR,
    SERVER_MALLOC,
    PostgresServer,
    free_port,
    pg_bindir,
    start_app,
)

YEARS = 8
DEMO_BAR_S = 600.0
PAINT_BAR_S = 3.0
MEMORY_BAR_MIB = 512.0
COLD_BAR_S = 3.0
COLD_TO_WARM_BAR = 5.0
TWIN_BAR = 2.0
IMPORT_BAR = 2.0
# Every page, with the URL parameters of a real view (None: the first school).
PAGES = [
    ("overview", {}), ("cluster", {"cluster": "Northwood"}), ("school", {"school": None}), ("gaps", {}),
    ("discipline", {"cluster": "Northwood"}), ("learning", {}), ("meeting", {}), ("changes", {}),
    ("plans", {"school": None}), ("cycles", {"school": None}), ("data", {}),
]


def build_demo_database(url: str, schools: int) -> dict:
    """`python -m analytics demo` into the server, timed end to end; its progress lines are kept."""
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "analytics", "demo", "--schools", str(schools), "--years",
                           str(YEARS)], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"demo failed: {done.stderr[-2000:]}")
    progress = [line for line in done.stderr.splitlines() if line.startswith("demo:")]
    print("\n".join(progress), flush=True)
    # The demo then keeps What changed's list ahead (its own line, in its seconds): not the build's.
    kept = re.search(r"what changed kept \(.*, ([0-9.]+) s\)", done.stderr)
    kept_s = float(kept.group(1)) if kept else 0.0
    built = seconds - kept_s
    return {"seconds": round(built, 1), "kept_ahead_s": round(kept_s, 1), "bar_s": DEMO_BAR_S,
            "meets_bar": built <= DEMO_BAR_S, "progress": progress, "rows": _table_rows(done.stdout)}


def _table_rows(summary: str) -> dict[str, int]:
    rows = {}
    for line in summary.splitlines():
        name, _, count = line.strip().partition(": ")
        if count.endswith(" rows"):
            rows[name] = int(count.removesuffix(" rows").replace(",", ""))
    return rows


def measure_import(url: str, workdir: Path, repeat: int) -> dict:
    """The last year's metrics as a file, imported as a new year's file beside its floor, then again; and
    `paired`: the floor and the import run back to back in each repeat, with the medians of their wall and
    CPU ratios (this process's CPU plus the server's, `bench_import.paired_runs`). The bar is judged on the
    paired wall-clock median: the fastest import and the fastest floor come from runs minutes apart, and on a
    busy machine they gave 2.2x at 2,000 schools where the pairs' median was 1.66x."""
    import pandas as pd
    from _import_split import split
    from bench_import import NO_LIMIT, _imported, bare_insert, paired_runs

    from analytics.data import loads, schema, storage
    from analytics.data.importer import import_files

    engine = storage.get_engine(url)
    # At the schema's head, as every start of the app or the command line brings it: a partition's key built to
    # the head's definition beside an older parent's would be built a second time by ATTACH to match the parent.
    storage.create_schema(engine)
    year = max(loads.available_years(engine))
    path = workdir / "metrics.csv"
    frame = loads.load_metrics(engine, years=[year])[schema.TABLES["metrics"].column_names]
    frame.astype({"numerator": "Int64", "denominator": "Int64"}).to_csv(path, index=False)
    data = path.read_bytes()
    read = best_of(lambda: pd.read_csv(path), repeat)
    text = pd.read_csv(io.BytesIO(data), dtype=str)
    insert = best_of(lambda: bare_insert(url, text), repeat)
    def without_year() -> None:
        with engine.begin() as conn:
            conn.execute(sa_delete_year(schema.metrics, year))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE metrics")

    def imported() -> None:
        _imported(engine, path)

    runs = []
    for _ in range(repeat):
        without_year()
        with split() as phases:
            started = time.perf_counter()
            imported()
            runs.append((time.perf_counter() - started, phases))
    paired = paired_runs(without_year, lambda: bare_insert(url, pd.read_csv(path)), imported,
                         max(repeat, 3), url)
    with split() as again_split:
        again = best_of(lambda: import_files(engine, [path], max_bytes=NO_LIMIT), 1)
    ahead = keep_ahead(engine)
    floor = read + insert
    full, full_split = min(runs, key=lambda run: run[0])
    return {"rows": len(frame), "bytes": len(data), "read_csv_s": round(read, 3), "bare_copy_s": round(insert, 3),
            "floor_s": round(floor, 3), "import_s": round(full, 3), "ratio_to_floor": round(full / floor, 2),
            "bar_ratio": IMPORT_BAR, "meets_bar": paired["wall_ratio_median"] <= IMPORT_BAR,
            "judged_by": "paired.wall_ratio_median", "reimport_unchanged_s": round(again, 3),
            "split": full_split, "reimport_split": again_split, "paired": paired, "kept_ahead": ahead}


def keep_ahead(engine) -> dict:
    """What `python -m analytics import` does once its answer is printed: What changed's opening view found and
    kept at the new data version (`analytics.workspace.ahead`), so the browser's first view of /changes reads it."""
    from analytics.workspace.ahead import district_since, keep_district_changes

    since = district_since(engine)
    done = keep_district_changes(engine, since) if since else None
    return {"since": str(since), "rows": done.rows, "seconds": round(done.seconds, 2), "kept": done.kept} if done else {}


def sa_delete_year(table, year: int):
    import sqlalchemy as sa

    return sa.delete(table).where(table.c.school_year == year)


def _first_school(url: str) -> str:
    from analytics.data import loads, storage

    return str(loads.load_schools(storage.get_engine(url), clusters=["Northwood"])["school_id"].iloc[0])


STAFF_EMAIL = "editor@district.org"
PARTS = ("import", "browser", "pages")


@contextlib.contextmanager
def sign_in_provider():
    """A real OpenID Connect provider on a free local port (`oidc-provider-mock`, as the browser sign-in
    tests use): discovery, its own authorisation form, tokens and userinfo."""
    import logging

    from oidc_provider_mock import run_server_in_thread

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


def _signin_secrets(workdir: Path, port: int, provider: str) -> Path:
    """secrets.toml of a server whose staff sign in through `provider`; `STAFF_EMAIL` is its editor."""
    path = workdir / "secrets.toml"
    path.write_text(f"""[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "a-long-random-cookie-secret-for-the-state-benchmark"
client_id = "ssif-dashboard"
client_secret = "any-secret-the-mock-accepts"
server_metadata_url = "{provider}/.well-known/openid-configuration"

[roles]
editors = ["{STAFF_EMAIL}"]
""")
    return path


def _page_path(name: str, params: dict, school: str) -> str:
    query = "&".join(f"{k}={school if v is None else v}" for k, v in params.items())
    return f"{'' if name == 'overview' else name}{'?' if query else ''}{query}"


def measure_browser(url: str, school: str, workdir: Path, provider: str, only: set[str] | None = None,
                    serve: bool = True) -> dict:
    """First paint of every staff page signed in, cold then warm, what it showed and the server's memory.

    The browser signs in first through the provider's own form (`st.login`), on a server that is then
    stopped: the pages are timed on a new server started with the same secrets and port, so the sign-in
    cookie still holds and the first visit of `/` is the first visit after the server starts (cold)."""
    if not Path(CHROMIUM).exists():
        return {"skipped": "no Chromium"}
    from playwright.sync_api import sync_playwright

    port = free_port()
    server_args = ["--secrets.files", str(_signin_secrets(workdir, port, provider))]
    server_env = dict(SERVER_MALLOC)  # as the README's server command runs it
    paint: dict = {}
    shown: dict = {}
    memory: dict = {}
    children: dict = {}  # of which child processes (a release decided in one)
    failures: dict = {}  # a paint that did not come: what the browser said
    from analytics.data import storage
    from analytics.workspace.ahead import district_list_kept

    kept_before = district_list_kept(storage.get_engine(url))  # What changed's list, kept ahead of the cold view
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def new_server():
            return start_app(url, server_env, timeout=300, port=port, extra_args=server_args, serve=serve)

        def restart(running):
            """A new server in its place: the server's memory is gone, the database keeps what was kept in it. The
            tab leaves the app first: left on it, it would reconnect to the next server and run its page."""
            page.goto("about:blank")
            running.close()
            return new_server()

        app = new_server()
        try:
            _sign_in(page, app.base)
        except BaseException:
            app.close()
            raise
        app = restart(app)
        memory["after_start"] = round(app.rss_mib(), 1)
        try:
            for name, params in PAGES:
                if only and name not in only:
                    continue
                label = f"/{_page_path(name, params, school)}"
                paint[label] = {visit: _paint_seconds(page, f"{app.base}{label}", failures)
                                for visit in ("cold", "warm")}
                shown[label] = _first_element(page)
                memory[label] = round(app.rss_mib(), 1)
                children[label] = round(app.children_mib(), 1)
                print(label, paint[label], shown[label], memory[label], "MiB", flush=True)
            app = restart(app)
            for label in paint:
                paint[label]["restarted"] = _paint_seconds(page, f"{app.base}{label}", failures)
                print(label, "after a restart", paint[label]["restarted"], flush=True)
            for label in paint:  # each page as the first request a new server serves (its first run imports)
                app = restart(app)
                paint[label]["first_link"] = _paint_seconds(page, f"{app.base}{label}", failures)
                print(label, "as a new server's first request", paint[label]["first_link"], flush=True)
        finally:
            app.close()
            browser.close()
    peak = max(memory.values())
    pages_drawn = all(element and not any(words in element for words in NOT_THE_PAGE) for element in shown.values())
    return {"server_command": "python serve.py" if serve else "streamlit run app.py",
            "changes_kept_before": kept_before,
            "signed_in_as": STAFF_EMAIL, "malloc_arena_max": 2, "first_paint_s": paint, "first_element": shown,
            "paint_failures": failures, "bar_s": PAINT_BAR_S, "first_run_imports_s": first_run_imports(),
            "pages_drawn": pages_drawn,
            "meets_bar": all(v is not None and v <= PAINT_BAR_S for d in paint.values() for v in d.values()),
            "server_memory_mib": memory, "of_which_child_processes_mib": children, "memory_bar_mib": MEMORY_BAR_MIB,
            "memory_meets_bar": peak <= MEMORY_BAR_MIB if pages_drawn else None}


# What a staff page shows instead of itself: the notices of a visitor not signed in (sign-in not configured,
# or refused), and the dashboard's message when its queries fail (the database down or a statement timed out).
NOT_THE_PAGE = ("This dashboard runs as a server", "Sign-in refused", "not on this dashboard's staff list",
                "The database is not reachable")


def _sign_in(page, base: str) -> None:
    """Sign in as `STAFF_EMAIL` through the provider's authorisation form (the e-mail address is the subject
    the mock returns as the `email` claim); back at the app, wait until it shows the signed-in sidebar."""
    page.goto(f"{base}/", wait_until="domcontentloaded")
    page.get_by_role("button", name="Sign in").click(timeout=300_000)
    page.wait_for_selector("input[name=sub]", timeout=60_000)
    page.fill("input[name=sub]", STAFF_EMAIL)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{base}/**", timeout=60_000)
    page.wait_for_selector(f"text=Signed in as {STAFF_EMAIL}", timeout=300_000)


def _paint_seconds(page, url: str, failures: dict, timeout_s: float = 300) -> float | None:
    """Seconds from navigation until the page shows its first content (None: not within the time-out, or the
    navigation failed; what happened and after how long is added to `failures` under the URL)."""
    started = time.perf_counter()
    try:
        page.goto(url, wait_until="domcontentloaded", timeout=timeout_s * 1000)
        page.wait_for_selector(READY_SELECTOR, timeout=timeout_s * 1000)
    except Exception as exc:  # noqa: BLE001 - a time-out is a figure (None), not a crash of the benchmark
        failures.setdefault(url, []).append(f"after {time.perf_counter() - started:.1f} s: "
                                            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return None
    return round(time.perf_counter() - started, 3)


def _first_element(page) -> str | None:
    """What the first paint showed (kind and opening words): without sign-in configured, a server on
    PostgreSQL answers every staff deep link with the sign-in notice, not the page (DESIGN §11)."""
    try:
        element = page.query_selector(READY_SELECTOR)
        return f"{element.get_attribute('data-testid')}: {' '.join(element.inner_text().split())[:80]}"
    except Exception:  # noqa: BLE001 - nothing drawn (a time-out) or the page moved on
        return None


def measure_pages(url: str, workdir: Path, school: str, repeat: int, only: set[str] | None = None) -> dict:
    """Cold and warm AppTest reruns of every page beside its static twin (a failing page is recorded), each
    session signed in as the staff editor, as the page tests sign in (`_twin.sign_in_staff`)."""
    import streamlit as st
    from _twin import REPLAY_SCRIPT, TWIN_SCRIPT, sign_in_staff
    from bench_static_twin import measure_page

    os.environ["DATABASE_URL"] = url
    os.environ["SSIF_TWIN_DIR"] = str(Path(__file__).resolve().parent)
    st.config.set_option("client.showErrorDetails", "full")  # a failing page's own message in the JSON
    (workdir / "twin.py").write_text(TWIN_SCRIPT)  # as bench_static_twin.main prepares its work directory
    (workdir / "replay.py").write_text(REPLAY_SCRIPT)
    sign_in_staff(STAFF_EMAIL)
    st.cache_data.clear()
    st.cache_resource.clear()
    pages, memory = {}, {"before": _own_rss_mib()}
    views = [(name, {k: (school if v is None else v) for k, v in params.items()}) for name, params in PAGES
             if not only or name in only]
    for name, params in views:
        try:
            figures = measure_page(name, params, workdir, repeat)
        except Exception as exc:  # noqa: BLE001 - one page's failure is a result, the others still run
            figures = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        pages[name] = figures
        memory[name] = _own_rss_mib()
        print(name, figures, memory[name], "MiB", flush=True)
    prepare_s, prepared = measure_prepared(workdir, views)
    for name, figures in pages.items():
        if "cold_first_run_s" not in figures:
            continue
        warm = figures["warm_rerun_s"]
        for kind in ("cold", "prepared"):
            first = prepared[name] if kind == "prepared" else figures["cold_first_run_s"]
            if first is None:
                figures[f"{kind}_meets_bar"] = False
                continue
            figures[f"{kind}_first_run_s"] = first
            figures[f"{kind}_to_warm"] = round(first / warm, 1) if warm else None
            figures[f"{kind}_meets_bar"] = first <= COLD_BAR_S and first <= COLD_TO_WARM_BAR * warm
    memory["after_prepared_views"] = _own_rss_mib()
    return {"bars": {"cold_s": COLD_BAR_S, "cold_to_warm": COLD_TO_WARM_BAR, "warm_to_twin": TWIN_BAR},
            "signed_in_as": STAFF_EMAIL, "prepare_s": prepare_s, "pages": pages, "process_memory_mib": memory,
            "process_memory_meets_bar": _pages_peak(memory) <= MEMORY_BAR_MIB}


def _pages_peak(memory: dict[str, float]) -> float:
    """The largest figure after a page was drawn ("before" is what the import measurements left behind)."""
    return max(v for k, v in memory.items() if k != "before")


def _own_rss_mib() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def measure_prepared(workdir: Path, views: list[tuple[str, dict]]) -> tuple[float | str, dict[str, float | None]]:
    """The preparer's work list from empty caches (its seconds), then each page's first view by a new
    session (None: the view failed), with bench_cold's functions."""
    from bench_cold import _app, _empty_caches, _page_script, _prepare, _timed

    _empty_caches()
    try:
        prepare_s = _prepare()
    except Exception as exc:  # noqa: BLE001 - the pages' own figures stay; the preparer's failure is a result
        print("prepare failed", exc, flush=True)
        return f"failed: {type(exc).__name__}: {exc}"[:300], dict.fromkeys(name for name, _ in views)
    print("prepare_s", round(prepare_s, 1), flush=True)
    prepared: dict[str, float | None] = {}
    for name, params in views:
        try:
            prepared[name] = round(_timed(_app(_page_script(workdir, name), params)), 3)
        except Exception:  # noqa: BLE001 - the failure is already recorded by the cold run
            prepared[name] = None
        print(name, "prepared", prepared[name], flush=True)
    return round(prepare_s, 2), prepared


def first_run_imports(repeat: int = 3) -> float:
    """Seconds a new interpreter with Streamlit imported (as a server has) takes to import what a server's first
    page run imports (pandas, SQLAlchemy and the app's own modules, `pages.ui`), best of `repeat`: what the first
    request after a server starts pays beside its page."""
    code = ("import time, streamlit; t = time.perf_counter(); import pandas, sqlalchemy; from pages import ui; "
            "print(time.perf_counter() - t)")
    runs = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout) for _ in range(repeat)]
    return round(min(runs), 3)


def changes_floor(url: str, warm_paint: float | None, repeat: int = 2) -> dict:
    """What the first view of What changed cannot go below when nothing was prepared or kept: the district's
    worsened colours read alone (its longest read, `views.district_colours`, best of `repeat`) plus the
    browser's drawing of the same list (its warm paint, which reads the list from the server's memory)."""
    from analytics.data import loads, storage
    from analytics.workspace import changes as change_rules
    from analytics.workspace import views

    engine = storage.get_engine(url)
    since = views.last_meeting(engine, "district")
    if since is None or warm_paint is None:
        return {}
    then_year, now_year = change_rules.year_of_record(since), max(loads.available_years(engine))
    read = best_of(lambda: views.district_colours(engine, then_year, now_year), repeat)
    return {"colours_read_s": round(read, 3), "warm_paint_s": warm_paint, "floor_s": round(read + warm_paint, 3)}


def missed_bars(results: dict) -> list[str]:
    """Every bar missed by the parts that ran."""
    missed = []
    if "demo" in results and not results["demo"]["meets_bar"]:
        missed.append(f"demo build and load {results['demo']['seconds']} s > {DEMO_BAR_S:g} s")
    imp = results.get("import", {"meets_bar": True})
    if not imp["meets_bar"]:
        missed.append(f"import {imp['paired']['wall_ratio_median']}x its floor, the median of "
                      f"{imp['paired']['repeats']} back-to-back pairs (fastest import {imp['import_s']} s, "
                      f"fastest floor {imp['floor_s']} s)")
    browser = results.get("browser", {})
    floor = browser.get("changes_floor", {})
    for label, visits in browser.get("first_paint_s", {}).items():
        for visit, seconds in visits.items():
            if seconds is None or seconds > PAINT_BAR_S:
                why = ""
                if label == "/changes" and visit == "cold" and floor:
                    first = ("it read the list kept ahead" if browser.get("changes_kept_before") else
                             "nothing was kept ahead, so the first view found the district's list")
                    why = (f": {first}; finding it cannot take less than the worsened colours' read "
                           f"{floor['colours_read_s']} s + drawing the list {floor['warm_paint_s']} s = "
                           f"{floor['floor_s']} s")
                elif visit == "first_link" and browser.get("first_run_imports_s"):
                    least = browser["first_paint_s"].get("/data", {}).get("first_link")
                    imports = ("which `python serve.py` makes before the server listens"
                               if browser.get("server_command") == "python serve.py" else "in its first run")
                    why = (f": a new server imports the app ({browser['first_run_imports_s']} s of it in a new "
                           f"interpreter, {imports}), checks the schema's revision, starts its preparer and reads "
                           f"cold what earlier pages would have left in its caches, beside the page (warm paint "
                           f"{visits.get('warm')} s); floor: the first request of the page that reads least, /data, "
                           f"{least} s")
                missed.append(f"first paint {label} ({visit}) {seconds} s > {PAINT_BAR_S:g} s{why}")
    if browser.get("pages_drawn") is False:
        missed.append("first paint: a staff page showed a notice, an error or nothing, not the page (first_element)")
    if browser.get("memory_meets_bar") is False:
        memory = browser["server_memory_mib"]
        peak = max(memory, key=memory.get)
        missed.append(f"server memory {memory[peak]} MiB (after {peak}) > {MEMORY_BAR_MIB:g} MiB: DESIGN's bar for "
                      f"2,000 schools, held here for {results['schools']:,}, whose district-wide tables are that much "
                      f"larger; floor: the server after its start, {memory.get('after_start')} MiB")
    if "pages" not in results:
        return missed
    if isinstance(results["pages"].get("prepare_s"), str):
        missed.append(f"the preparer's work list {results['pages']['prepare_s']}")
    if results["pages"].get("process_memory_meets_bar") is False:
        missed.append(f"memory of the process that drew every page {_pages_peak(results['pages']['process_memory_mib'])}"
                      f" MiB > {MEMORY_BAR_MIB:g} MiB")
    for name, page in results["pages"]["pages"].items():
        if "error" in page:
            missed.append(f"{name}: {page['error']}")
            continue
        floor = f"floor: <= {COLD_BAR_S:g} s and <= {COLD_TO_WARM_BAR:g}x warm {page['warm_rerun_s']} s"
        for kind in ("cold", "prepared"):
            if not page.get(f"{kind}_meets_bar", True):
                missed.append(f"{name} {kind} first view {page.get(f'{kind}_first_run_s')} s ({floor})")
        if page["meets_goal"] is False:
            missed.append(f"{name} warm {page['warm_rerun_s']} s = {page['ratio_to_twin']}x its twin")
    return missed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 schools, fewer repetitions")
    parser.add_argument("--schools", type=int, help="district size (default 10,000; --quick 2,000)")
    parser.add_argument("--pgdata", type=Path, help="keep the PostgreSQL cluster in this directory: built with "
                        "the demo district when missing, reused (no demo build) when it exists, never removed")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts to run ({', '.join(PARTS)})")
    parser.add_argument("--pages", default="", help="comma-separated page names (default: every page)")
    parser.add_argument("--streamlit-run", action="store_true", help="time the server started as `streamlit run "
                        "app.py` (the local command) rather than `python serve.py` (the README's server command)")
    args = parser.parse_args(argv)
    schools = args.schools or (2000 if args.quick else 10_000)
    repeat = 1 if args.quick else 3
    parts = set(args.parts.split(","))
    only = set(args.pages.split(",")) if args.pages else None
    server, built = _postgres(args.pgdata)
    results: dict = {"schools": schools, "years": YEARS, "parts": sorted(parts), "pages_run": sorted(only or [])}
    partial = args.pgdata is not None or parts != set(PARTS) or only
    name = ("state_quick" if args.quick else "state") + ("_partial" if partial else "")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a time-out still stops the servers, keeps the parts done
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            if not built:
                results["demo"] = build_demo_database(server.url, schools)
            if "import" in parts:
                results["import"] = measure_import(server.url, workdir, repeat)
                print("import", results["import"], flush=True)
            school = _first_school(server.url)
            if "browser" in parts:
                with sign_in_provider() as provider:
                    results["browser"] = measure_browser(server.url, school, workdir, provider, only,
                                                         serve=not args.streamlit_run)
                warm = results["browser"].get("first_paint_s", {}).get("/changes", {}).get("warm")
                results["browser"]["changes_floor"] = changes_floor(server.url, warm)
                print("browser", results["browser"], flush=True)
            if "pages" in parts:
                results["pages"] = measure_pages(server.url, workdir, school, 3 if args.quick else 5, only)
    finally:
        with contextlib.suppress(Exception):
            from analytics.data import storage

            storage.get_engine(server.url).dispose()
        server.stop() if args.pgdata else server.destroy()
        results["missed"] = missed_bars(results)
        write_results(name, {"goal": "DESIGN §8 bars at state scale (10,000 schools x 8 years on PostgreSQL)",
                             **results})


def _postgres(pgdata: Path | None) -> tuple[PostgresServer, bool]:
    """A PostgreSQL server and whether it already holds the demo district (a kept `--pgdata` cluster)."""
    bindir = pg_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries not found (pg_ctl)")
    if pgdata is None:
        return PostgresServer(bindir, datadir=Path(tempfile.mkdtemp(prefix="ssif-state-pg-"))).init(), False
    if (pgdata / "PG_VERSION").exists():
        return PostgresServer(bindir, datadir=pgdata).start(), True
    pgdata.mkdir(parents=True, exist_ok=True)
    return PostgresServer(bindir, datadir=pgdata).init(), False

if __name__ == "__main__":
    main()
