"""Links and navigation: real `<a href>` links, breadcrumbs, drill-down and the not-found stop."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

import streamlit as st
from streamlit.errors import StreamlitAPIException

from pages.ui.state import _with_share, per_run, share_grant, share_token

PAGE_PATHS = {"pages/overview.py": "", "pages/cluster.py": "cluster", "pages/school.py": "school",
              "pages/gaps.py": "gaps", "pages/discipline.py": "discipline", "pages/learning.py": "learning",
              "pages/meeting.py": "meeting",
              "pages/data.py": "data", "pages/plans.py": "plans", "pages/cycles.py": "cycles",
              "pages/changes.py": "changes"}


def link(label: str, page: str, icon: str | None = None, **params) -> None:
    """A real link (an `<a href>`) to a view, so keyboard and screen-reader users can drill too."""
    query = _with_share({k: str(v) for k, v in params.items() if v is not None})
    unlinked = per_run("unlinked_pages", set)  # pages this run's navigation does not serve
    if page not in unlinked:
        try:
            st.page_link(page, label=label, icon=icon, query_params=query)
            return
        except StreamlitAPIException:  # page run on its own (no navigation): a plain link does the same
            unlinked.add(page)
    st.markdown(_plain_link(label, page, tuple(query.items())))


@functools.lru_cache(maxsize=4096)
def _plain_link(label: str, page: str, query: tuple[tuple[str, str], ...]) -> str:
    """A link's markdown where navigation cannot serve it (text only: the same on every rerun)."""
    return f"[{_md_escape(label)}](./{page_url(PAGE_PATHS.get(page, ''), **dict(query))})"


def breadcrumb(*crumbs: tuple[str, str | None, dict]) -> None:
    """District › Cluster › School as links; the last crumb (page None) is the current view.

    In a shared link only crumbs inside its scope are drawn (a cluster link has no "District" crumb,
    which would only lead to a refusal); a lone current crumb is not drawn at all.
    """
    crumbs = tuple(c for c in crumbs if c[1] is None or _in_scope(c[1], c[2]))
    if len(crumbs) < 2:
        return
    row = st.container(horizontal=True, gap="small", vertical_alignment="center")
    for i, (label, page, params) in enumerate(crumbs):
        with row:
            if page:
                link(label, page, **params)
            else:
                st.markdown(f"**{_md_escape(label)}**", width="content")
            if i < len(crumbs) - 1:
                st.markdown("›", width="content")


def _in_scope(page: str, params: dict) -> bool:
    """Staff may open any view; a shared link only the views its grant allows."""
    grant = share_grant()
    if grant is None:
        return True
    from pages.ui.catalog_loaders import schools

    ok, _ = grant.allows(PAGE_PATHS.get(page, ""), {k: str(v) for k, v in params.items() if v is not None},
                         schools())
    return ok


def _md_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "[]()*_`#<>" else ch for ch in str(text))


def page_url(path: str, **params) -> str:
    """A relative URL of a view, e.g. `cluster?cluster=North%20Hills&year=2025`."""
    clean = {k: v for k, v in params.items() if v is not None and v != ""}
    query = urlencode(clean)
    return f"{path}?{query}" if query else path


def app_base_url() -> str:
    """The address people open the app at ("https://dashboard.district.org"), from the browser's request; empty
    when there is none (a page run on its own)."""
    here = urlsplit(str(getattr(st.context, "url", "") or ""))
    return f"{here.scheme}://{here.netloc}" if here.netloc else ""


def go(page: str, **params) -> None:
    """Drill down: switch page carrying the view's parameters."""
    st.switch_page(page, query_params=_with_share({k: str(v) for k, v in params.items() if v is not None}))


def link_row(title: str, items: Sequence[tuple[str, str, dict]]) -> None:
    """A wrapping row of real links (keyboard and screen-reader drill-down)."""
    st.markdown(f"**{title}**")
    row = st.container(horizontal=True, gap="small")
    with row:
        for label, page, params in items:
            link(label, page, **params)


def not_found(message: str, *, options: Sequence[str] = ()) -> None:
    """A clear message, a way back, and no data: the rest of the page is not run."""
    st.error(message, icon=":material/search_off:")
    if options:
        shown = ", ".join(list(options)[:12]) + (" …" if len(options) > 12 else "")
        st.caption(f"Available: {shown}")
    # A plain link that resets every filter (the current page may be the overview itself).
    grant = share_grant()
    if grant is not None:
        sep = "&" if "?" in grant.view else "?"
        st.markdown(f"[:material/arrow_back: Back to the shared view](.{grant.view}{sep}share={share_token()})")
    else:
        st.markdown("[:material/arrow_back: Back to the district overview](./)")
    st.stop()
