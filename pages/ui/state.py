"""Where the current browser session stands: the shared-link token and whether the view is public."""

from __future__ import annotations

import streamlit as st


def share_token() -> str | None:
    return st.query_params.get("share") or None


def is_public() -> bool:
    """True in a shared, read-only view: every table goes through the privacy rules."""
    return share_token() is not None


def _with_share(params: dict) -> dict:
    token = share_token()
    return {**params, "share": token} if token else params


def share_grant():
    """The verified grant of the shared link this session opened, or None for staff."""
    return st.session_state.get("share_grant") if is_public() else None
