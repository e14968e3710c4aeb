"""Where the current browser session stands: the shared-link token and whether the view is public."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

T = TypeVar("T")


_RUN = "_run_memo"


def start_run() -> None:
    """Begin this script run's memo (called once per run, where the run pins its data version)."""
    st.session_state[_RUN] = {}


def per_run(name: str, compute: Callable[[], T]) -> T:
    """``compute()`` once per script run: what a page asks for many times while drawing (a label lookup
    per option, a link per row) is not looked up in Streamlit's caches each time. Runs that were not
    started with :func:`start_run` (a page run on its own) compute every time."""
    memo = st.session_state.get(_RUN)
    if memo is None:
        return compute()
    if name not in memo:
        memo[name] = compute()
    return memo[name]


def share_token() -> str | None:
    return per_run("share_token", lambda: st.query_params.get("share") or None)


def is_public() -> bool:
    """True in a shared, read-only view: every table goes through the privacy rules."""
    return share_token() is not None


def _with_share(params: dict) -> dict:
    token = share_token()
    return {**params, "share": token} if token else params


def share_grant():
    """The verified grant of the shared link this session opened, or None for staff."""
    return st.session_state.get("share_grant") if is_public() else None


def note_page(page_id: str) -> None:
    """Called by the navigation shell before each page run: remembers whether this run opened a page.

    Streamlit keys widget state by page, so a selectbox on the page just opened does not hold the value
    its key held on the previous page; without this, URL-bound filters would fall back to their first
    option and overwrite the URL the link carried. On arrival the URL wins; on later reruns, the widget.
    """
    st.session_state["url_arrived"] = st.session_state.get("url_page") != page_id
    st.session_state["url_page"] = page_id


def arrived_on_page() -> bool:
    """True on the first run of a page after moving to it (a link, a drill-down, the sidebar)."""
    return bool(st.session_state.get("url_arrived", False))
