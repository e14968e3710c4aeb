"""Staff sign-in and the Share action."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import streamlit as st

from pages.ui.loaders import engine, schools


def staff_role() -> str:
    """"editor" or "viewer" for signed-in staff; without `[auth]` configured a local run is one editor.

    Sign-in is OIDC through `st.login` (Streamlit's auth extra); `[roles] editors = [...]` in
    secrets.toml lists the e-mail addresses that may import data and create shared links.
    """
    from analytics.config import secrets_section

    if not secrets_section("auth"):
        return "editor"
    if not st.user.is_logged_in:
        st.title("School Support & Improvement")
        st.write("Sign in with your district account to continue.")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    editors = {str(e).lower() for e in secrets_section("roles").get("editors", [])}
    return "editor" if str(st.user.get("email", "")).lower() in editors else "viewer"


def _default_scope() -> str:
    school, cluster = st.query_params.get("school"), st.query_params.get("cluster")
    if school and school != "all":
        return f"school:{school}"
    if cluster and cluster != "all":
        return f"cluster:{cluster}"
    return "district"


def share_button(url_path: str) -> None:
    """The Share action: scope (default the current view's), expiry and note; shows the link to copy."""
    from analytics.access.sharing import MissingSecret, create_share

    with st.popover("Share a read-only link", icon=":material/share:", width="stretch"):
        default = _default_scope()
        scopes = list(dict.fromkeys([default, "district"]))
        school = st.query_params.get("school")
        if school and school != "all":
            match = schools().loc[schools()["school_id"] == school, "cluster"]
            if len(match):
                scopes.insert(1, f"cluster:{match.iloc[0]}")
        scope = st.radio("Who may see what", scopes, key="share_scope",
                         format_func=lambda s: "The whole district" if s == "district" else s.replace(":", ": "))
        days = st.number_input("Expires after (days)", min_value=0.5, max_value=365.0, value=30.0, step=1.0,
                               key="share_days")
        note = st.text_input("Note (who it is for)", key="share_note")
        if st.button("Create link", type="primary", key="share_create"):
            query = {k: v for k, v in st.query_params.items() if k != "share"}
            view = f"/{url_path}" + (f"?{urlencode(query)}" if query else "")
            here = urlsplit(str(getattr(st.context, "url", "") or ""))
            base = f"{here.scheme}://{here.netloc}" if here.netloc else ""
            try:
                _, link = create_share(engine(), view, scope, float(days), note, who=_editor_name(),
                                       base_url=base or "http://localhost:8501")
            except (ValueError, MissingSecret) as exc:
                st.error(str(exc))
            else:
                st.code(link, language=None)
                st.caption("Read-only, privacy rules on, nothing outside the scope. Revoke with "
                           "`python -m analytics revoke TOKEN`.")


def _editor_name() -> str:
    try:
        return str(st.user.get("email") or "local editor")
    except Exception:  # noqa: BLE001 - no auth configured
        return "local editor"
