"""Shared fixtures: fresh databases on SQLite and on a real PostgreSQL server.

PostgreSQL: `SSIF_TEST_POSTGRES_URL` (a server URL whose user may create databases) when set;
otherwise a throwaway cluster is started with the server binaries found on this machine
(initdb/pg_ctl, run as the `postgres` user when the tests run as root). When neither is possible
the PostgreSQL variants are skipped locally; `.ci/run` sets `SSIF_REQUIRE_POSTGRES=1` so CI fails
instead of skipping.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from analytics.data import bulk_write, schema, storage

ROOT = Path(__file__).resolve().parent.parent

# Property tests check behaviour, never speed: no per-example deadline on a busy 2-core machine.
hypothesis_settings.register_profile("suite", deadline=None)
hypothesis_settings.load_profile("suite")
_counter = itertools.count()


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def postgres_server_url():
    """A PostgreSQL server URL (maintenance database), or skip when none can be had."""
    url = os.environ.get("SSIF_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    bindir = _pg_bindir()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        if os.environ.get("SSIF_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL server binaries not found but SSIF_REQUIRE_POSTGRES is set")
        pytest.skip("no PostgreSQL server binaries on this machine")
    datadir = Path(tempfile.mkdtemp(prefix="ssif-pg-"))
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True)
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-w", "-l", str(datadir / "log"),
                      "-o", f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(datadir, ignore_errors=True)


def _new_postgres_database(server_url: str) -> str:
    name = f"ssif_test_{os.getpid()}_{next(_counter)}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A URL of a fresh, empty database with the schema created: SQLite and PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = _new_postgres_database(request.getfixturevalue("postgres_server_url"))
    storage.create_schema(storage.get_engine(url))
    return url


@pytest.fixture
def engine(db_url):
    return storage.get_engine(db_url)


@pytest.fixture
def sqlite_engine(tmp_path):
    """A fresh SQLite database only (for tests that do not concern storage)."""
    url = f"sqlite:///{tmp_path / 'test.db'}"
    eng = storage.get_engine(url)
    storage.create_schema(eng)
    return eng


@pytest.fixture(scope="session")
def demo_db_url(tmp_path_factory) -> str:
    """A SQLite file with the default demo district, built once per test session."""
    from analytics.access.release_store import release_for
    from analytics.data.demo import load_demo

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    url = f"sqlite:///{path}"
    engine = storage.get_engine(url)
    load_demo(engine)
    # Its privacy decision (half a minute of CPU at 200 schools) is stored now, as a server's preparer would
    # store it, not inside the first shared link's time-out in a browser test.
    release_for(engine)
    return url


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]
CHROMIUM = "/usr/bin/chromium"


def streamlit_server(script: Path, env: dict, cwd: Path, what: str = "the dashboard"):
    """`streamlit run script` on a free port, started when its health check answers (else it fails the test):
    (process, base URL). For `serve.py`, the README's server command: `python serve.py` (app.py behind it)."""
    import time
    import urllib.request

    port = _free_port()
    command = [str(script)] if script.name == "serve.py" else ["-m", "streamlit", "run", str(script)]
    proc = subprocess.Popen(
        [os.sys.executable, *command, "--server.headless", "true",
         "--server.port", str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                return proc, base
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail(f"{what} did not start within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a test's server: asked first, killed if it has not ended within 30 s (a busy machine can take more
    than 10 s to finish a server's shutdown, which is no failure of the app)."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def app_server(demo_db_url):
    """The dashboard as the README's server command runs it (`python serve.py`: app.py, its libraries imported
    before it listens) on a free port over the demo database; yields the base URL. The sign-in tests start
    `streamlit run app.py`, the local command."""
    os.environ.setdefault("SSIF_SHARE_SECRET", "browser-test-secret")
    env = {**os.environ, "DATABASE_URL": demo_db_url, "PYTHONPATH": str(ROOT)}
    proc, base = streamlit_server(ROOT / "serve.py", env, ROOT)
    yield base
    stop_server(proc)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("SSIF_REQUIRE_BROWSER"):
            pytest.fail("/usr/bin/chromium is missing but SSIF_REQUIRE_BROWSER is set")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def on_demo(demo_db_url, monkeypatch):
    """Pages read the session's demo database; Streamlit caches and the results kept in the database start
    empty."""
    import streamlit as st

    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    st.cache_data.clear()
    st.cache_resource.clear()
    engine = storage.get_engine(demo_db_url)
    with engine.begin() as conn:
        conn.execute(schema.kept_results.delete())
    return engine


@pytest.fixture
def use_engine(monkeypatch):
    """`use_engine(make)`: the pages' cached loaders read through `make()` instead of the app's engine. Each of
    their modules reads `engine` itself (`pages.ui.data_versions`, `pages.ui.caching` and every
    `pages.ui.*_loaders`), so each is patched; a module that reads `data_versions.engine()` follows it."""
    import importlib
    import pkgutil

    import pages.ui

    names = ["data_versions", "caching", *(found.name for found in pkgutil.iter_modules(pages.ui.__path__)
                                          if found.name.endswith("_loaders"))]
    modules = [importlib.import_module(f"pages.ui.{name}") for name in names]

    def use(make) -> None:
        for module in modules:
            monkeypatch.setattr(module, "engine", make)

    return use


@pytest.fixture
def own_district(tmp_path, monkeypatch):
    """A small private demo database that pages run in-process (AppTest) read and write; caches emptied."""
    import streamlit as st

    from analytics.data.demo import build_demo

    url = f"sqlite:///{tmp_path / 'own.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    engine = storage.get_engine(url)
    bulk_write.replace_all(engine, build_demo(schools=16, years=4, seed=3))
    return engine


@pytest.fixture
def imported_district(tmp_path, monkeypatch):
    """Make a district of one's own from files, as an editor imports them: `imported_district(files)` (name,
    bytes pairs) imports them into a new SQLite database that pages run in-process (AppTest) read, caches emptied."""
    import streamlit as st

    from analytics.data.importer import import_bytes

    def imported(files: list[tuple[str, bytes]]):
        url = f"sqlite:///{tmp_path / 'imported.db'}"
        engine = storage.get_engine(url)
        storage.create_schema(engine)
        report = import_bytes(engine, files)
        assert report.ok, report.problems
        monkeypatch.setenv("DATABASE_URL", url)
        st.cache_data.clear()
        st.cache_resource.clear()
        return engine

    return imported


@pytest.fixture
def release_district(tmp_path):
    """A small demo district in its own SQLite file, the release decisions kept in this process cleared before
    and after: what the release's storage and reuse tests decide again and again."""
    from analytics.access import release_store
    from analytics.data.demo import load_demo

    engine = storage.get_engine(f"sqlite:///{tmp_path / 'store.db'}")
    storage.create_schema(engine)
    load_demo(engine, schools=12, years=2, seed=5)
    release_store._CACHE.clear()
    yield engine
    release_store._CACHE.clear()
