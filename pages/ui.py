"""Streamlit helpers shared by every page: engine, cached loaders, URL-bound filters, breadcrumb, not-found.

Pages stay thin: they read the URL and widgets, call `analytics/`, and draw. Anything
Streamlit-specific that two pages need lives here, once. Caches are keyed on the data version, so
an import is visible at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlencode, urlsplit

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine
from streamlit.errors import StreamlitAPIException

from analytics.data import catalog, storage
from analytics.data.derived import metrics_with_suspension
from analytics.outputs.findings import format_p as fmt_p  # noqa: F401 - re-exported for pages


def _leave_legacy_pages_mode() -> None:
    """Never serve `pages/*.py` as legacy multipage scripts.

    Streamlit starts an app that has a `pages/` folder in its legacy mode until `st.navigation` has
    run once; a deep link opened first after a restart would then run a page script without the shell
    in app.py (and so without its shared-link and sign-in checks). The first script run that imports
    this module switches the process to `st.navigation` mode and reruns.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if not PagesManager.uses_pages_directory or ctx is None:
        return
    PagesManager.uses_pages_directory = False
    try:  # rerun by page name so the deep link's page is kept (its legacy page hash means nothing now)
        from streamlit.commands.execution_control import _force_yield_point
        from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

        name = ctx.pages_manager.intended_page_name or ""
        ctx.script_requests.request_rerun(RerunData(query_string=ctx.query_string, page_name=name,
                                                    context_info=ctx.context_info))
        _force_yield_point()
    except (ImportError, AttributeError, TypeError):
        st.rerun()


_leave_legacy_pages_mode()


@st.cache_resource(show_spinner="Preparing the database…")
def engine() -> Engine:
    """The app's engine; an empty embedded database is filled with the demo district once."""
    return storage.ensure_database()


def data_version() -> int:
    return storage.data_version(engine())


# --- cached loaders ------------------------------------------------------------------------------
# Raw tables are cached as shared resources (no copy per rerun; pages only read them).


@st.cache_data(show_spinner=False, max_entries=4)
def _schools(version: int) -> pd.DataFrame:
    return storage.load_schools(engine())


def schools() -> pd.DataFrame:
    return _schools(data_version())


@st.cache_data(show_spinner=False, max_entries=4)
def _catalog(version: int) -> pd.DataFrame:
    return catalog.metric_catalog(storage.load_metric_definitions(engine()))


def metric_catalog() -> pd.DataFrame:
    return _catalog(data_version())


@st.cache_data(show_spinner=False, max_entries=4)
def _years(version: int) -> list[int]:
    return storage.available_years(engine())


def years() -> list[int]:
    return _years(data_version())


@st.cache_data(show_spinner=False, max_entries=4)
def _metric_ids(version: int) -> list[str]:
    ids = storage.available_metrics(engine())
    with engine().connect() as conn:
        from sqlalchemy import func, select

        from analytics.data import schema

        has_discipline = conn.execute(select(func.count()).select_from(schema.discipline)).scalar_one() > 0
    if has_discipline and "suspension_rate" not in ids:
        ids.append("suspension_rate")
    order = {m.metric: i for i, m in enumerate(catalog.BUILTIN_METRICS)}
    return sorted(ids, key=lambda m: (order.get(m, len(order)), m))


def metric_ids() -> list[str]:
    return _metric_ids(data_version())


@st.cache_resource(show_spinner=False, max_entries=32)
def _metric_rows(version: int, metric: str, years: tuple[int, ...] | None, school_ids: tuple[str, ...] | None):
    eng = engine()
    ids = list(school_ids) if school_ids else None
    yrs = list(years) if years else None
    if metric == "suspension_rate":
        metrics = storage.load_metrics(eng, metrics=[metric], years=yrs, school_ids=ids)
        if metrics.empty:
            discipline = storage.load_discipline(eng, years=yrs, school_ids=ids)
            return metrics_with_suspension(metrics, discipline)
        return metrics
    return storage.load_metrics(eng, metrics=[metric], years=yrs, school_ids=ids)


def metric_rows(metric: str, years: Sequence[int] | None = None, school_ids: Sequence[str] | None = None):
    """Metric rows (every group) for the given years and schools; suspension rate derived if needed."""
    return _metric_rows(data_version(), metric, tuple(years) if years else None,
                        tuple(school_ids) if school_ids else None)


@st.cache_resource(show_spinner=False, max_entries=16)
def _school_metrics(version: int, school_id: str) -> pd.DataFrame:
    eng = engine()
    metrics = storage.load_metrics(eng, school_ids=[school_id])
    discipline = storage.load_discipline(eng, school_ids=[school_id])
    return metrics_with_suspension(metrics, discipline)


def school_metrics(school_id: str) -> pd.DataFrame:
    return _school_metrics(data_version(), school_id)


@st.cache_resource(show_spinner=False, max_entries=16)
def _discipline(version: int, school_ids: tuple[str, ...] | None) -> pd.DataFrame:
    return storage.load_discipline(engine(), school_ids=list(school_ids) if school_ids else None)


def discipline(school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    return _discipline(data_version(), tuple(school_ids) if school_ids else None)


@st.cache_data(show_spinner=False, max_entries=32)
def _metric_groups(version: int, metric: str) -> list[str]:
    return sorted(set(_metric_rows(version, metric, None, None)["student_group"]))


def metric_groups(metric: str) -> list[str]:
    """Student groups that have rows for a metric."""
    return _metric_groups(data_version(), metric)


def cached(fn: Callable) -> Callable:
    """Cache a pure computation on its arguments (callers pass the data version among them)."""
    return st.cache_data(show_spinner=False, max_entries=32)(fn)


def shared(fn: Callable) -> Callable:
    """Like :func:`cached` but without copying the result on each use: for large read-only tables.

    `st.cache_data` unpickles a fresh copy on every rerun (about a second for district-wide
    disproportionality at 2,000 schools); callers must not modify what this returns.
    """
    return st.cache_resource(show_spinner=False, max_entries=8)(fn)


# --- URL-bound filters -----------------------------------------------------------------------------


def metric_label(metric: str) -> str:
    return catalog.metric_label(metric, metric_catalog())


def url_choice(label: str, key: str, options: Sequence, default, *, format_func: Callable = str,
               container=None, what: str | None = None):
    """A selectbox that reads its value from, and writes it back to, the URL parameter `key`.

    An unknown value in the URL stops the page with "not found" (never silently another view): a
    director who follows a stale link must be told. The URL always carries the current value, so
    the address bar is a complete, shareable description of the view.
    """
    options = _within_scope(key, list(options))
    texts = [str(o) for o in options]
    raw = st.query_params.get(key)
    if raw is not None and raw != "" and raw not in texts:
        not_found(f"{what or label} “{raw}” was not found.", options=[format_func(o) for o in options])
    wanted = raw if raw in texts else str(default)
    index = texts.index(wanted) if wanted in texts else 0
    widget_key, seen_key = f"url_{key}", f"url_seen_{key}"
    url_changed = raw is not None and raw != st.session_state.get(seen_key)  # a deep link or a drill-down
    if url_changed or st.session_state.get(widget_key) not in options:
        st.session_state[widget_key] = options[index]
    value = (container or st).selectbox(label, options, key=widget_key, format_func=format_func)
    st.query_params[key] = st.session_state[seen_key] = str(value)
    return value


def _within_scope(key: str, options: list) -> list:
    """In a shared view, a cluster or school filter offers only what the link's scope covers."""
    grant = st.session_state.get("share_grant") if is_public() else None
    if grant is None or grant.kind == "district":
        return options
    if key == "cluster":
        allowed = {grant.target} if grant.kind == "cluster" else {
            str(c) for c in schools().loc[schools()["school_id"] == grant.target, "cluster"]}
        return [o for o in options if str(o) in allowed] or options
    if key == "school" and grant.kind == "school":
        return [o for o in options if str(o) == grant.target] or options
    if key == "school" and grant.kind == "cluster":
        members = set(schools().loc[schools()["cluster"] == grant.target, "school_id"])
        return [o for o in options if str(o) in members or o == "all"] or options
    return options


def not_found(message: str, *, options: Sequence[str] = ()) -> None:
    """A clear message, a way back, and no data: the rest of the page is not run."""
    st.error(message, icon=":material/search_off:")
    if options:
        shown = ", ".join(list(options)[:12]) + (" …" if len(options) > 12 else "")
        st.caption(f"Available: {shown}")
    # A plain link that resets every filter (the current page may be the overview itself).
    grant = st.session_state.get("share_grant") if is_public() else None
    if grant is not None:
        sep = "&" if "?" in grant.view else "?"
        st.markdown(f"[:material/arrow_back: Back to the shared view](.{grant.view}{sep}share={share_token()})")
    else:
        st.markdown("[:material/arrow_back: Back to the district overview](./)")
    st.stop()


PAGE_PATHS = {"pages/overview.py": "", "pages/cluster.py": "cluster", "pages/school.py": "school",
              "pages/gaps.py": "gaps", "pages/discipline.py": "discipline", "pages/meeting.py": "meeting",
              "pages/data.py": "data"}


def link(label: str, page: str, icon: str | None = None, **params) -> None:
    """A real link (an `<a href>`) to a view, so keyboard and screen-reader users can drill too."""
    query = _with_share({k: str(v) for k, v in params.items() if v is not None})
    try:
        st.page_link(page, label=label, icon=icon, query_params=query)
    except StreamlitAPIException:  # page run on its own (no navigation): a plain link does the same
        st.markdown(f"[{_md_escape(label)}](./{page_url(PAGE_PATHS.get(page, ''), **query)})")


def breadcrumb(*crumbs: tuple[str, str | None, dict]) -> None:
    """District › Cluster › School as links; the last crumb (page None) is the current view."""
    row = st.container(horizontal=True, gap="small", vertical_alignment="center")
    for i, (label, page, params) in enumerate(crumbs):
        with row:
            if page:
                link(label, page, **params)
            else:
                st.markdown(f"**{_md_escape(label)}**", width="content")
            if i < len(crumbs) - 1:
                st.markdown("›", width="content")


def _md_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "[]()*_`#<>" else ch for ch in str(text))


def page_url(path: str, **params) -> str:
    """A relative URL of a view, e.g. `cluster?cluster=North%20Hills&year=2025`."""
    clean = {k: v for k, v in params.items() if v is not None and v != ""}
    query = urlencode(clean)
    return f"{path}?{query}" if query else path


def go(page: str, **params) -> None:
    """Drill down: switch page carrying the view's parameters."""
    st.switch_page(page, query_params=_with_share({k: str(v) for k, v in params.items() if v is not None}))


def fmt_pct(value: float, digits: int = 1) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}%"


@st.cache_resource(show_spinner=False, max_entries=8)
def _year_rows(version: int, year: int) -> pd.DataFrame:
    eng = engine()
    return metrics_with_suspension(storage.load_metrics(eng, years=[year]), storage.load_discipline(eng, years=[year]))


def year_rows(year: int) -> pd.DataFrame:
    """Every metric and group of every school for one year (district comparisons)."""
    return _year_rows(data_version(), year)


def link_row(title: str, items: Sequence[tuple[str, str, dict]]) -> None:
    """A wrapping row of real links (keyboard and screen-reader drill-down)."""
    st.markdown(f"**{title}**")
    row = st.container(horizontal=True, gap="small")
    with row:
        for label, page, params in items:
            link(label, page, **params)


# --- read-only shared links (viewer mode) ------------------------------------------------------------


def share_token() -> str | None:
    return st.query_params.get("share") or None


def open_share(token: str):
    """(grant, None) for a valid token, (None, message) otherwise; counted once per browser session."""
    from analytics.access.sharing import ShareError, record_open, verify_share

    try:
        grant = verify_share(engine(), token)
    except ShareError as exc:
        return None, str(exc)
    except Exception:  # noqa: BLE001 - e.g. no signing secret on a server: say so without details
        return None, "Shared links are not configured on this server."
    seen = st.session_state.setdefault("opened_shares", set())
    if grant.token_id not in seen:
        record_open(engine(), grant.token_id)
        seen.add(grant.token_id)
    st.session_state["share_grant"] = grant
    return grant, None


def is_public() -> bool:
    """True in a shared, read-only view: every table goes through the privacy rules."""
    return share_token() is not None


def _with_share(params: dict) -> dict:
    token = share_token()
    return {**params, "share": token} if token else params


def _cell_text(value) -> str:
    """A released number as text (counts without decimals), a suppression mark as it is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value:
            return ""
        return f"{value:,.0f}" if float(value).is_integer() and abs(value) >= 10 else f"{value:,.1f}"
    return "" if value is None else str(value)


def public_table(df: pd.DataFrame, column_config: dict, *, n_col: str, count_cols=(), rate_cols=(),
                 derived_cols=(), sets=()) -> tuple[pd.DataFrame, dict]:
    """For viewers: the privacy rules applied and numbers shown as text with the suppression marks."""
    if not is_public():
        return df, column_config
    from analytics.access.privacy import suppress_table

    safe = suppress_table(df, n_col=n_col, count_cols=count_cols, rate_cols=rate_cols, derived_cols=derived_cols,
                          sets=sets)
    for col in safe.columns:
        safe[col] = safe[col].map(_cell_text)
    config = {k: st.column_config.TextColumn(v.get("label") if isinstance(v, dict) else None)
              for k, v in column_config.items()}
    return safe, config


# --- staff sign-in and sharing ------------------------------------------------------------------------


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


def viewer_nav(grant, allowed: set[str]) -> None:
    """Sidebar links for a shared view: only pages inside its scope, each carrying the token."""
    titles = {"": ("District overview", "pages/overview.py"), "cluster": ("Cluster", "pages/cluster.py"),
              "gaps": ("Growth gaps", "pages/gaps.py"), "discipline": ("Discipline", "pages/discipline.py"),
              "school": ("School", "pages/school.py")}
    params: dict[str, str] = {}
    if grant.kind == "cluster":
        params = {"cluster": grant.target}
    elif grant.kind == "school":
        params = {"school": grant.target}
    with st.sidebar:
        st.markdown("**Shared views**")
        for key, (title, page) in titles.items():
            if key not in allowed or (key == "school" and grant.kind != "school"):
                continue
            scoped = {k: v for k, v in params.items() if not (key in ("cluster", "gaps") and k == "school")}
            if key == "discipline" and grant.kind == "school":
                match = schools().loc[schools()["school_id"] == grant.target, "cluster"]
                scoped = {"cluster": match.iloc[0], "school": grant.target} if len(match) else scoped
            link(title, page, **scoped)


# --- downloads ------------------------------------------------------------------------------------------


def download_menu(name: str, table: pd.DataFrame, chart=None) -> None:
    """CSV, XLSX and (for a chart) PNG/SVG of what is on screen; files are made only when clicked.

    Viewers get the privacy-suppressed table they see; text cells are neutralised against formula
    injection in every format.
    """
    from analytics.outputs.exports import chart_bytes, to_csv_bytes, to_xlsx_bytes

    with st.popover("Download", icon=":material/download:"):
        st.download_button("Table (CSV)", lambda: to_csv_bytes(table), file_name=f"{name}.csv", mime="text/csv",
                           key=f"dl_csv_{name}", on_click="ignore")
        st.download_button("Table (Excel)", lambda: to_xlsx_bytes(table, name), file_name=f"{name}.xlsx",
                           key=f"dl_xlsx_{name}", on_click="ignore",
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        if chart is not None:
            st.download_button("Chart (PNG)", lambda: chart_bytes(chart, "png", scale=3), file_name=f"{name}.png",
                               mime="image/png", key=f"dl_png_{name}", on_click="ignore")
            st.download_button("Chart (SVG)", lambda: chart_bytes(chart, "svg"), file_name=f"{name}.svg",
                               mime="image/svg+xml", key=f"dl_svg_{name}", on_click="ignore")


def year_label(year) -> str:
    """`2025` -> `2024-25` (school years are stored by their ending year)."""
    return f"{int(year) - 1}-{str(year)[-2:]}"


def filter_bar() -> tuple[int, str, str]:
    """Year, metric and student group bound to the URL (`year`, `metric`, `group`); stops when no data."""
    years, metrics = _years(data_version()), metric_ids()
    if not years or not metrics:
        st.info("No data yet. Import schools, metrics and discipline files on the Data page.")
        st.stop()
    cols = st.columns([1, 2, 2])
    year = int(url_choice("School year", "year", [str(y) for y in years], str(years[-1]), container=cols[0],
                          format_func=year_label))
    default = "read_proficient" if "read_proficient" in metrics else metrics[0]
    metric = url_choice("Metric", "metric", metrics, default, format_func=metric_label, container=cols[1])
    groups = [g for g in catalog.STUDENT_GROUPS if g in metric_groups(metric)] or ["ALL"]
    group = url_choice("Student group", "group", groups, "ALL", format_func=catalog.group_label, container=cols[2])
    return year, metric, group


def rate_text(value) -> str:
    """A released rate with two decimals, or the coded text (`<= 5.0%`) as it is."""
    return value if isinstance(value, str) else f"{value:.2f}"
