"""Empty and partial databases: every export view and every page answers plainly, never with a traceback.

Two shapes a new district really starts from: a database with the schema and nothing else, and one that
holds only the schools file (metrics, discipline and incidents not imported yet).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import streamlit as st

from analytics import cli
from analytics.data import bulk_write, storage
from analytics.data.demo import build_demo
from analytics.outputs.views import VIEWS
from tests.page_runner import run_page

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["overview", "cluster", "school", "gaps", "discipline", "learning", "plans", "cycles", "changes", "meeting",
         "data"]
# Pages of records staff write in the app (goals, cycles, meetings): they start empty and say so, with no
# file to import.
WORKSPACE_PAGES = {"plans", "cycles", "changes"}
# Arguments a view always needs (DESIGN §7: `export changes --since YYYY-MM-DD`).
VIEW_ARGS = {"changes": ["--since", "2024-08-01"]}


def _schools_only(url: str) -> None:
    frames = build_demo(schools=12, years=2, seed=3)
    bulk_write.replace_all(storage.get_engine(url), {"schools": frames["schools"]})


@pytest.fixture(params=["empty", "schools_only"], scope="module")
def partial_db(request, tmp_path_factory) -> tuple[str, str]:
    """(shape, URL) of a SQLite file that is empty or holds only schools."""
    url = f"sqlite:///{tmp_path_factory.mktemp(request.param) / 'ssif.db'}"
    storage.create_schema(storage.get_engine(url))
    if request.param == "schools_only":
        _schools_only(url)
    return request.param, url


def _cli(url: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m analytics ARGS` in this process (the same `main` the module runs), output captured."""
    out, err = io.StringIO(), io.StringIO()
    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args))
    finally:
        if saved is None:
            os.environ.pop("DATABASE_URL")
        else:
            os.environ["DATABASE_URL"] = saved
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_export_gaps_as_a_process_on_an_empty_database(tmp_path):
    """The reported failure, end to end: a header, a note on stderr, exit 0."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    done = subprocess.run([sys.executable, "-m", "analytics", "export", "gaps"], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "DATABASE_URL": url}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("school_id,school_year,metric,student_group,reference,value")
    assert done.stderr.startswith("note: no rows: no schools imported yet (schools.csv)")


@pytest.mark.parametrize("view", VIEWS)
def test_every_export_view_answers_with_a_header_and_a_note(partial_db, view):
    shape, url = partial_db
    done = _cli(url, "export", view, *VIEW_ARGS.get(view, []))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "error" not in done.stderr
    header = done.stdout.splitlines()[0]
    assert header.count(",") >= 4 and not header.startswith(",")  # the view's columns
    assert len(done.stdout.splitlines()) == 1  # no rows
    assert "no rows" in done.stderr


def test_meeting_pack_says_there_is_nothing_to_pack(partial_db, tmp_path):
    _, url = partial_db
    done = _cli(url, "export", "meeting", "-o", str(tmp_path / "pack.xlsx"))
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 1), done.stderr
    assert done.stderr.strip()


def test_info_counts_on_a_partial_database(partial_db):
    shape, url = partial_db
    done = _cli(url, "info", "--json")
    assert done.returncode == 0, done.stderr
    assert ('"schools": 12' in done.stdout) == (shape == "schools_only")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_what_is_missing(partial_db, page, monkeypatch):
    shape, url = partial_db
    monkeypatch.setenv("DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = run_page(page)
    shown = " ".join(m.value for m in [*at.info, *at.warning, *at.markdown, *at.caption, *at.error])
    if page in WORKSPACE_PAGES:
        assert shown.strip(), page
    elif page != "data":
        assert "import" in shown.lower(), shown[:400]


def test_every_export_view_on_an_empty_database_of_either_kind(db_url):
    """SQLite and a real PostgreSQL server: the schema only, every view a header and a note."""
    for view in VIEWS:
        done = _cli(db_url, "export", view, "--public", *VIEW_ARGS.get(view, []))
        assert done.returncode == 0 and done.stderr.startswith("note: no rows: no schools imported yet"), (view,
                                                                                                          done.stderr)
        assert len(done.stdout.splitlines()) == 1
