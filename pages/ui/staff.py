"""Staff sign-in, roles and the Share action.

`staff_role()` is the gate every staff page passes through in app.py: a local run is one editor; a server
(see `analytics.access.deployment`) without `[auth]` in secrets.toml serves no staff page and explains how
to configure sign-in; with `[auth]`, staff sign in with OIDC through `st.login` and get the role that
`[roles]` gives their e-mail address.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from urllib.parse import urlencode

import streamlit as st

from analytics.access import audit, deployment
from pages.ui.catalog_loaders import schools
from pages.ui.data_versions import engine
from pages.ui.links import app_base_url
from pages.ui.viewer import scope_label

ROLE_KEY = "staff_role"
# The listen address is fixed for the process: record it before any request (a shared link opened first
# must already know whether this is a server, e.g. to refuse signing with an unconfigured secret).
deployment.set_listen_address(st.get_option("server.address"))


def secrets_section(name: str) -> dict:
    """A section of Streamlit's secrets (the files `st.login` reads too); empty when absent."""
    try:
        value = st.secrets[name]
    except (KeyError, FileNotFoundError):  # StreamlitSecretNotFoundError is a FileNotFoundError
        return {}
    except Exception:  # noqa: BLE001 - an unreadable secrets file: treat as not configured
        return {}
    return dict(value) if hasattr(value, "keys") else {}


def _signed_in() -> bool:
    try:
        return bool(st.user.get("is_logged_in", False))
    except Exception:  # noqa: BLE001 - no auth runtime (e.g. some test harnesses)
        return False


def staff_role(url_paths: Iterable[str] = ()) -> str:
    """"editor" or "viewer" for this session, or stop the run with the page the visitor should see.

    `url_paths` are the staff pages' paths: until the visitor may see them, each shows that page (so a
    deep link opens the sign-in page itself rather than "page not found")."""
    if not secrets_section("auth"):
        reasons = deployment.server_mode_reasons(engine())
        if reasons:
            _gate(lambda: _sign_in_not_configured(reasons), "Sign-in is not configured", url_paths)
        return _remember(deployment.EDITOR)
    if not _signed_in():
        st.session_state.pop(ROLE_KEY, None)
        _gate(_sign_in_page, "Sign in", url_paths)
    email = str(st.user.get("email") or "")
    refusal = deployment.email_refusal(st.user)
    role = None if refusal else deployment.Roles.from_section(secrets_section("roles")).role_for(email)
    _audit_sign_in(email, role, refusal)
    if role is None:
        st.session_state.pop(ROLE_KEY, None)
        _gate(lambda: _refused_page(email, refusal), "Not on the staff list", url_paths)
    with st.sidebar:
        st.caption(f"Signed in as **{email}** ({'editor' if role == deployment.EDITOR else 'staff viewer'})")
        st.button("Sign out", on_click=_sign_out, key="sign_out", icon=":material/logout:")
    return _remember(role)


def _remember(role: str) -> str:
    st.session_state[ROLE_KEY] = role
    return role


def current_role() -> str:
    """This session's role as the shell decided it (pages run on their own decide it the same way)."""
    return st.session_state.get(ROLE_KEY) or staff_role()


def can_edit() -> bool:
    """Whether this session may import, edit and share (never in a shared, read-only view)."""
    from pages.ui.state import is_public

    return not is_public() and current_role() == deployment.EDITOR


def _gate(render: Callable[[], None], title: str, url_paths: Iterable[str]) -> None:
    """Serve only `render`, at the root and at every staff path: no staff page is even registered, so no
    path or page hash reaches one. Stops the run."""
    paths = dict.fromkeys(p for p in url_paths if p)
    pages = [st.Page(render, title=title, url_path="welcome", default=True)]
    pages += [st.Page(render, title=title, url_path=path) for path in paths if path != "welcome"]
    st.navigation(pages, position="hidden").run()
    st.stop()


def _sign_in_not_configured(reasons: list[str]) -> None:
    st.title("Sign-in is not configured")
    st.warning("This dashboard runs as a server (" + "; ".join(reasons) + "), so staff pages need sign-in. "
               "Until it is configured no staff page shows any data.", icon=":material/lock:")
    st.markdown(deployment.SIGN_IN_HELP)


def _sign_in_page() -> None:
    st.title("School Support & Improvement")
    st.write("Sign in with your district account to continue.")
    st.button("Sign in", on_click=st.login, type="primary", key="sign_in")


def _refused_page(email: str, refusal: str | None = None) -> None:
    st.title("School Support & Improvement")
    if refusal:
        st.error(f"Sign-in refused: {refusal}. Verify the address with your sign-in provider, then sign in "
                 "again.", icon=":material/block:")
    else:
        st.error(f"{email or 'This account'} is not on this dashboard's staff list. Ask an editor to add you "
                 "to `[roles]` (editors, viewers or allowed_domains).", icon=":material/block:")
    st.button("Sign out", on_click=_sign_out, key="sign_out_refused")


def _audit_sign_in(email: str, role: str | None, refusal: str | None = None) -> None:
    """One event per sign-in: keyed on the ID token's issue time, so reloading a page or opening a second
    tab with the same sign-in cookie records nothing new."""
    issued = st.user.get("iat")
    try:
        target = f"ID token of {datetime.fromtimestamp(float(issued), UTC):%Y-%m-%d %H:%M:%S} UTC" if issued else ""
    except (TypeError, ValueError, OverflowError):
        target = f"ID token of {issued}"
    if st.session_state.get("audited_sign_in") == (email, target):
        return
    st.session_state["audited_sign_in"] = (email, target)
    action = audit.SIGN_IN if role else audit.SIGN_IN_REFUSED
    if target and audit.seen(engine(), email or "unknown", action, target):
        return
    audit.record(engine(), email or "unknown", action, target, role or refusal or "not on the staff list")


def editors_only() -> None:
    """`/data` for anyone who is not an editor: a plain refusal and a way back. The address stays registered
    (hidden from the menu), so a followed link never meets Streamlit's "page not found"."""
    from pages.ui.links import link

    st.title("Data")
    st.error("Editors only: importing data and the audit log are for the dashboard's editors. Ask an editor "
             "if something needs importing.", icon=":material/block:")
    link("Back to the district overview", "pages/overview.py", icon=":material/arrow_back:")


def _sign_out() -> None:
    audit.record(engine(), current_user(), audit.SIGN_OUT)
    for key in (ROLE_KEY, "audited_sign_in"):
        st.session_state.pop(key, None)
    st.logout()


def current_user() -> str:
    """Who is acting: the signed-in e-mail address, else the local account's name."""
    if _signed_in():
        return str(st.user.get("email") or "signed-in user")
    try:
        return f"local editor ({getpass.getuser()})"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "local editor"


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
                         format_func=lambda s: scope_label(s)[0].upper() + scope_label(s)[1:])
        days = st.number_input("Expires after (days)", min_value=0.5, max_value=365.0, value=30.0, step=1.0,
                               key="share_days")
        note = st.text_input("Note (who it is for)", key="share_note")
        if st.button("Create link", type="primary", key="share_create"):
            query = {k: v for k, v in st.query_params.items() if k != "share"}
            view = f"/{url_path}" + (f"?{urlencode(query)}" if query else "")
            try:
                _, link = create_share(engine(), view, scope, float(days), note, who=current_user(),
                                       base_url=app_base_url() or "http://localhost:8501")
            except (ValueError, MissingSecret) as exc:
                st.error(str(exc))
            else:
                st.code(link, language=None)
                st.caption("Read-only, privacy rules on, nothing outside the scope. Revoke with "
                           "`python -m analytics revoke TOKEN`.")
