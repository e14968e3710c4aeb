"""A dashboard on its own PostgreSQL server, and many browser sessions clicking through it at once.

Used by `benchmarks/load_test.py` (20 sessions, JSON results) and, small, by the tests. Everything runs on
this machine: PostgreSQL on a loopback port, `streamlit run app.py`, Debian's Chromium through Playwright.
Request loops are bounded by a number of rounds and a deadline, so a run always stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]
SHARE_SECRET = "load-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return candidates[-1].parent if candidates else None


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster that can be stopped and started again (a database restart)."""

    bindir: Path
    datadir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ssif-load-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.datadir, "postgres", "postgres")
        subprocess.run(_as_postgres([str(self.bindir / "initdb"), "-D", str(self.datadir), "-A", "trust",
                                     "-U", "postgres"]), check=True, capture_output=True)
        return self.start()

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", *args]),
                       check=True, capture_output=True)

    def start(self) -> PostgresServer:
        self._ctl("-l", str(self.datadir / "log"), "-o",
                  f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=200", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)


@dataclass
class AppServer:
    proc: subprocess.Popen
    base: str
    log_path: str | None = None  # where the server's standard error goes (None: nowhere)

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` of the server's log (a failed run says what the server logged)."""
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return "".join(log.readlines()[-lines:])

    def rss_mib(self) -> float:
        """Resident memory of the server process and its children, MiB."""
        import psutil

        parent = psutil.Process(self.proc.pid)
        return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]) / 1048576

    def children_mib(self) -> float:
        """The part of :meth:`rss_mib` held by child processes (e.g. a privacy release decided in one)."""
        import psutil

        total = 0
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child that has just ended holds nothing
                total += child.memory_info().rss
        return total / 1048576

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# The C library's allocator settings of the README's server command: two arenas shared by the server's threads,
# and blocks of 128 KiB and more in mappings of their own, given back to the system when freed.
SERVER_MALLOC = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}


def start_app(database_url: str, extra_env: dict | None = None, timeout: float = 90, root: Path = ROOT,
              port: int | None = None, extra_args: list[str] | None = None,
              launcher: tuple[str, ...] = ("-m", "streamlit"), log_path: str | None = None,
              serve: bool = False) -> AppServer:
    """`streamlit run app.py` of the checkout at `root` on `port` (default: a free local port) with Streamlit's
    `extra_args` (e.g. `--secrets.files`), once its health check answers. `launcher` is what Python runs
    (a script that starts Streamlit itself, e.g. `benchmarks/_memory_probe.py`); its standard error goes to
    `log_path` (default: the file `SSIF_APP_LOG` names, else nowhere)."""
    port = port or free_port()
    log_path = log_path or os.environ.get("SSIF_APP_LOG")
    log = open(log_path or os.devnull, "w")  # noqa: SIM115 - lives as long as the server
    # The secret this process signs links with (shared_views), whichever code set it first: a server given
    # another would call every link this process made "altered".
    secret = os.environ.setdefault("SSIF_SHARE_SECRET", SHARE_SECRET)
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(root), "SSIF_SHARE_SECRET": secret,
           **(extra_env or {})}
    # The README's server command (serve.py: app.py with its libraries imported before it listens), or
    # `streamlit run app.py` through `launcher`.
    command = [str(root / "serve.py")] if serve else [*launcher, "run", str(root / "app.py")]
    proc = subprocess.Popen(
        [sys.executable, *command, "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false", *(extra_args or [])],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                return AppServer(proc, base, log_path)
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"the dashboard did not start within {timeout:.0f} s")


def shared_views(engine, base: str) -> list[str]:
    """A district-scope read-only link for every view a Board member can reach, with real filters."""
    from analytics.access.sharing import create_share
    from analytics.data import loads

    os.environ.setdefault("SSIF_SHARE_SECRET", SHARE_SECRET)
    schools = loads.load_schools(engine)
    cluster = sorted(schools["cluster"].unique())[0]
    school = schools.loc[schools["cluster"] == cluster, "school_id"].iloc[0]
    _, link = create_share(engine, "/", "district", base_url=base, note="load test")
    token = link.split("share=")[1]
    paths = ["", f"cluster?cluster={cluster}", f"school?school={school}", "gaps", "discipline"]
    return [f"{base}/{p}{'&' if '?' in p else '?'}share={token}" for p in paths]


# How a session moves through the views: people open a link once, then click the sidebar (no page reload,
# the same Streamlit session), and open a school from a link. (view index, sidebar label or None = open URL)
CLICK_PATH = [(0, None), (1, "Cluster"), (3, "Growth gaps"), (4, "Discipline"), (2, None)]
ERROR_SELECTOR = "[data-testid=stException]"
# The last two: the Data page opens on its Import tab; an error ends the run (counted as an app error at once,
# with its text, rather than as a time-out).
READY_SELECTOR = ("[data-testid=stMetric], [data-testid=stAlert], [data-testid=stDataFrame], [data-testid=stVegaLiteChart], "
                  "[data-testid=stFileUploader], [data-testid=stException]")
# Generous on purpose: 20 Chromium pages share this machine's cores with the server (the browsers, not the
# server, use most of them), so a page may wait long for its turn to render. Every time-out still counts.
GOTO_TIMEOUT_S = 180
READY_TIMEOUT_S = 180


async def _settle(page) -> None:
    """Wait for a first element, then until the script run has ended in two looks 250 ms apart (the app's root
    states its run at once; Streamlit's status widget shows only after half a second of running), bounded."""
    await page.wait_for_selector(READY_SELECTOR, timeout=READY_TIMEOUT_S * 1000)
    quiet = 0
    for _ in range(READY_TIMEOUT_S * 4):
        state = await page.locator("[data-testid=stApp]").get_attribute("data-test-script-state")
        quiet = quiet + 1 if state in ("notRunning", "compilationError") else 0
        if quiet >= 2:
            return
        await page.wait_for_timeout(250)
    raise TimeoutError(f"the script run did not end within {READY_TIMEOUT_S} s")


async def _what_shows(page, network: dict) -> str:
    """What the page showed when a wait ran out: its run state, the status widget's words (running,
    connecting…), its sidebar's elements and links, and its first words (a screenshot too, into the folder
    `SSIF_LOAD_SHOTS` names)."""
    try:
        state = await page.locator("[data-testid=stApp]").get_attribute("data-test-script-state", timeout=15000)
        status = await page.locator("[data-testid=stStatusWidget]").all_inner_texts()
        kinds = await page.locator("[data-testid=stSidebar] [data-testid]").evaluate_all(
            "nodes => nodes.map(n => n.dataset.testid).filter(t => t.startsWith('st') && !t.startsWith('stMarkdown'))")
        links = await page.locator("[data-testid=stSidebar] a").all_inner_texts()
        text = " ".join((await page.inner_text("body", timeout=15000)).split())
        now = time.monotonic()
        waiting = [f"{r.url.split('/')[-1][:40]} {now - t:.0f}s" for r, t in network["pending"].items()]
        if network["pending"]:  # does the server answer the oldest of them now, asked afresh? (browser or server)
            oldest = next(iter(network["pending"])).url
            waiting.insert(0, f"{len(waiting)} waiting; the oldest asked again: {await _fetch_seconds(oldest)}")
        if os.environ.get("SSIF_LOAD_SHOTS"):
            await page.screenshot(path=f"{os.environ['SSIF_LOAD_SHOTS']}/timeout-{time.monotonic():.0f}.png")
        return (f"run {state}; status {status}; sidebar {kinds[:30]}; links {links}; requests waiting {waiting[:8]}; "
                f"failed {network['failed'][:8]}; page: {text[:200]}")
    except Exception as exc:  # noqa: BLE001 - a description for the report, never an error of its own
        return f"(page not readable: {type(exc).__name__})"


async def _fetch_seconds(url: str) -> str:
    """How long the server takes to answer `url` asked by a client of its own (at most 30 s)."""
    def fetch() -> str:
        started = time.monotonic()
        try:
            urllib.request.urlopen(url, timeout=30).read()
        except OSError as exc:
            return f"failed after {time.monotonic() - started:.1f} s ({exc})"
        return f"answered in {time.monotonic() - started:.2f} s"

    return await asyncio.to_thread(fetch)


def _error_kind(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if "TimeoutError" in text and "goto" in text:
        return "navigation_timeout"
    if "TimeoutError" in text:
        return "render_timeout"
    return "browser_error"


async def _open(page, url: str, label: str | None) -> None:
    if label is None:
        await page.goto(url, wait_until="domcontentloaded", timeout=GOTO_TIMEOUT_S * 1000)
    else:
        path = url.split("?")[0].rsplit("/", 1)[-1]
        link = page.locator("[data-testid=stSidebar]").get_by_role("link", name=label, exact=True)
        await link.wait_for(state="attached", timeout=READY_TIMEOUT_S * 1000)
        # The link's own click handler, as a person's click runs it: Playwright's pointer checks wait for the
        # sidebar to stop redrawing, which under this load can take minutes (measured: 2 of 100 views).
        await link.evaluate("a => a.click()", timeout=READY_TIMEOUT_S * 1000)  # Playwright's default is 30 s
        await page.wait_for_url(f"**/{path}?**", timeout=READY_TIMEOUT_S * 1000)
    await _settle(page)


async def _session(browser, urls: list[str], rounds: int, deadline: float, results: dict) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(READY_TIMEOUT_S * 1000)  # every wait the stated time-out, never Playwright's 30 s
    page = await context.new_page()
    # What the browser still waits for when a view times out: requests sent and not answered, and failed ones.
    network: dict = {"pending": {}, "failed": []}
    page.on("request", lambda r: network["pending"].__setitem__(r, time.monotonic()))
    page.on("requestfinished", lambda r: network["pending"].pop(r, None))
    page.on("requestfailed", lambda r: (network["pending"].pop(r, None),
                                        network["failed"].append(f"{r.url.split('/')[-1][:40]}: {r.failure}")))
    try:
        for _ in range(rounds):
            for index, label in CLICK_PATH:
                if time.monotonic() > deadline:
                    return
                url = urls[index]
                started = time.monotonic()
                try:
                    await _open(page, url, label)
                    errors = await page.locator(ERROR_SELECTOR).count()
                    text = await page.inner_text("body")
                    if errors or "Traceback" in text or "not reachable" in text:
                        results["errors"].append({"url": url, "kind": "app_error", "what": text[:300]})
                except Exception as exc:  # noqa: BLE001 - a time-out or crash is an error to count, not to raise
                    results["errors"].append({"url": url, "kind": _error_kind(exc), "step": label or "open link",
                                              "what": f"{type(exc).__name__}: {exc}"[:300],
                                              "seconds_in": round(time.monotonic() - started, 1),
                                              "at_s": round(started - results["t0"], 1),
                                              "showing": await _what_shows(page, network)})
                results["views"] += 1
                results["timeline"].append((round(started - results["t0"], 1), label or "open link",
                                            time.monotonic() - started))
    finally:
        await context.close()


BROWSER_GROUP = "ssif-load-browsers"


def _cpu_cgroup_roots() -> list[Path]:
    """Where this machine mounts a CPU controller: cgroup v1's `cpu` hierarchy, then a v2 hierarchy offering
    `cpu` (read from the mount table: a plain directory named like one would take the PIDs and do nothing)."""
    v1, v2 = [], []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            _, where, kind, options, *_ = line.split()
            if kind == "cgroup" and "cpu" in options.split(","):
                v1.append(Path(where))
            elif kind == "cgroup2" and "cpu" in _read(Path(where) / "cgroup.controllers").split():
                v2.append(Path(where))
    return v1 + v2


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def lower_browser_priority() -> str:
    """Let this process's Chromium take only the CPU the server leaves; returns how ("cgroup ..." or "nice").

    Real users' browsers run on their own machines. Here twenty browsers share the server's cores, and Chromium
    (run as root) raises some of its own threads' priority: the server's event loop then got a few per cent of a
    core and answered minutes late (load_test.py on 2 cores: the server used 0.5 cores, the browsers 1.2, views
    timed out). The browser's processes go into a CPU group of the lowest weight, where the processes it starts
    later follow them; without a writable cgroup they are reniced to 19 (threads Chromium raises escape this)."""
    import psutil

    browsers = [proc for proc in psutil.Process().children(recursive=True) if _is_chromium(proc)]
    for root in _cpu_cgroup_roots():
        group = root / BROWSER_GROUP
        try:
            group.mkdir(exist_ok=True)
            weight, value = ("cpu.shares", "2") if (group / "cpu.shares").exists() else ("cpu.weight", "1")
            (group / weight).write_text(value)
            for proc in browsers:
                with contextlib.suppress(ProcessLookupError):
                    (group / "cgroup.procs").write_text(str(proc.pid))
            return f"cgroup {group} {weight}={value}"
        except OSError:
            continue
    for proc in browsers:
        with contextlib.suppress(psutil.Error):
            proc.nice(19)
    return "nice 19"


async def _keep_browsers_low(every_s: float = 1.0) -> None:
    """Chromium starts processes of its own at any time (its GPU process, a renderer per context); those not
    forked from a process already placed are placed at the next look."""
    while True:
        lower_browser_priority()
        await asyncio.sleep(every_s)


def _remove_browser_group() -> None:
    """Remove the browsers' CPU group once its processes have ended (a group still in use stays)."""
    for root in _cpu_cgroup_roots():
        with contextlib.suppress(OSError):
            (root / BROWSER_GROUP).rmdir()


def _is_chromium(proc) -> bool:
    import psutil

    try:
        return "chrom" in proc.name().lower()
    except psutil.Error:
        return False


async def browse(urls: list[str], sessions: int, rounds: int, deadline_s: float,
                 browsers_yield: bool = False) -> dict:
    """`sessions` contexts of one Chromium (each its own cookies and Streamlit session), all at once; with
    `browsers_yield` the browser takes only the CPU the server leaves (:func:`lower_browser_priority`)."""
    from playwright.async_api import async_playwright

    results: dict = {"views": 0, "errors": [], "timeline": [], "t0": time.monotonic()}  # timeline: (at, step, seconds)
    deadline = time.monotonic() + deadline_s
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        keeping_low = asyncio.create_task(_keep_browsers_low()) if browsers_yield else None
        try:
            await asyncio.gather(*[_session(browser, urls, rounds, deadline, results) for _ in range(sessions)])
        finally:
            if keeping_low is not None:
                keeping_low.cancel()
                results["browser_priority"] = lower_browser_priority()
            await browser.close()
            if keeping_low is not None:
                _remove_browser_group()
    return results


class CpuMeter:
    """CPU time of the dashboard server, the browser and PostgreSQL, and of the whole machine, as cores used
    on average while the sessions browse: do the browsers starve the server, or the other way round?

    Sampled every second (browser processes come and go); a process that ends loses at most its last second.
    """

    def __init__(self, app: AppServer, postgres_dir: Path | None = None):
        self.app, self.postgres_dir = app, postgres_dir
        self._seen: dict[int, tuple[str, float, float]] = {}  # pid -> (kind, first seen, last seen) CPU seconds
        self._halt = threading.Event()

    def _processes(self) -> list[tuple[str, object]]:
        import psutil

        found = []
        server = psutil.Process(self.app.proc.pid)
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                found.append(("server" if proc.pid == server.pid or server in proc.parents() else "browser", proc))
        if self.postgres_dir is not None:
            for proc in psutil.process_iter(["name", "cmdline"]):
                with contextlib.suppress(psutil.Error):
                    cmdline = " ".join(proc.info["cmdline"] or [])
                    if proc.info["name"] == "postgres" and (str(self.postgres_dir) in cmdline or str(
                            self.postgres_dir) in " ".join(psutil.Process(proc.ppid()).cmdline())):
                        found.append(("postgres", proc))
        return found

    def _sample(self) -> None:
        import psutil

        for kind, proc in self._processes():
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                used = t.user + t.system
                first = self._seen[proc.pid][1] if proc.pid in self._seen else (0.0 if kind == "browser" else used)
                self._seen[proc.pid] = (kind, first, used)

    def _run(self) -> None:
        while not self._halt.wait(1.0):
            self._sample()

    def __enter__(self) -> CpuMeter:
        import psutil

        self._sample()
        self.started, self._machine = time.monotonic(), sum(psutil.cpu_times()[:3])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import psutil

        self._halt.set()
        self._thread.join(timeout=10)
        self._sample()
        wall = time.monotonic() - self.started
        totals = {"server": 0.0, "browser": 0.0, "postgres": 0.0}
        for kind, first, last in self._seen.values():
            totals[kind] += last - first
        self.cores = {k: round(v / wall, 2) for k, v in totals.items()}
        self.cores["machine"] = round((sum(psutil.cpu_times()[:3]) - self._machine) / wall, 2)
        self.cores["other_processes"] = round(max(0.0, self.cores["machine"] - sum(totals.values()) / wall), 2)


class ImportLoop(threading.Thread):
    """Imports a file again and again (each a real upsert that bumps the data version) until stopped."""

    def __init__(self, engine, files: list[tuple[str, bytes]], limit: int = 50, pause_s: float = 2.0):
        super().__init__(daemon=True)
        self.engine, self.files, self.limit, self.pause_s = engine, files, limit, pause_s
        self.done = 0
        self.landed_at: list[float] = []  # monotonic clock, to set beside the views' errors
        self.failures: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        from analytics.data.importer import import_bytes

        while not self._halt.is_set() and self.done < self.limit:
            report = import_bytes(self.engine, self.files, who="load test")
            self.landed_at.append(time.monotonic())
            if not report.ok:
                self.failures.append(report.problems[0].format())
                return
            self.done += 1
            self._halt.wait(self.pause_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=120)


def _in_thread(work):
    """Run `work` on its own thread: a test process may already run an event loop (sync Playwright)."""
    box: dict = {}

    def target():
        try:
            box["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def load_run(engine, app: AppServer, sessions: int, rounds: int, files: list[tuple[str, bytes]],
             deadline_s: float = 600, imports: int = 3, import_pause_s: float = 5.0,
             postgres_dir: Path | None = None, browsers_yield: bool = False) -> dict:
    """`sessions` browsers clicking through every shared view `rounds` times while `imports` imports land; with
    `browsers_yield` the browsers take only the CPU the server leaves (:func:`lower_browser_priority`)."""
    urls = shared_views(engine, app.base)
    loop = ImportLoop(engine, files, limit=imports, pause_s=import_pause_s)
    rss_before = app.rss_mib()
    loop.start()
    started = time.monotonic()
    with CpuMeter(app, postgres_dir) as cpu:
        results = _in_thread(lambda: asyncio.run(browse(urls, sessions, rounds, deadline_s, browsers_yield)))
    loop.stop()
    seconds = sorted(view[2] for view in results["timeline"]) or [0.0]
    kinds = [e["kind"] for e in results["errors"]]
    return {
        "sessions": sessions, "rounds": rounds, "views": results["views"], "errors": len(results["errors"]),
        "errors_by_kind": {k: kinds.count(k) for k in ("app_error", "navigation_timeout", "render_timeout",
                                                       "browser_error")},
        "timeouts": sum(k.endswith("timeout") for k in kinds), "app_errors": kinds.count("app_error"),
        "goto_timeout_s": GOTO_TIMEOUT_S, "ready_timeout_s": READY_TIMEOUT_S,
        "navigation": "open the overview link, click Cluster, Growth gaps and Discipline in the sidebar, open a "
                      "school link; one Chromium, one context per session",
        "cpu_cores_used": cpu.cores,
        "browser_priority": results.get("browser_priority", "the server's"),
        "error_samples": results["errors"][:30],
        "slowest_views": [{"at_s": at, "step": step, "seconds": round(took, 1)}
                          for at, step, took in sorted(results["timeline"], key=lambda v: -v[2])[:12]],
        "imports_during_run": loop.done, "import_failures": loop.failures,
        "imports_landed_at_s": [round(t - results["t0"], 1) for t in loop.landed_at],
        "wall_s": round(time.monotonic() - started, 2), "view_median_s": round(seconds[len(seconds) // 2], 2),
        "view_p95_s": round(seconds[int(len(seconds) * 0.95) - 1 if len(seconds) > 1 else 0], 2),
        "server_rss_before_mib": round(rss_before, 1), "server_rss_after_mib": round(app.rss_mib(), 1),
    }
