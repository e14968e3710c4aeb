"""URL-bound filters: every widget reads its value from the URL and writes it back."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from analytics.data import catalog
from pages.ui.catalog_loaders import _years, metric_groups, metric_ids, metric_labels, schools
from pages.ui.data_versions import import_version
from pages.ui.links import not_found
from pages.ui.state import arrived_on_page, share_grant


def metric_label(metric: str) -> str:
    """The label people read for a metric id (the id itself when the catalog does not know it)."""
    return metric_labels().get(metric, metric)


def url_choice(label: str, key: str, options: Sequence, default, *, format_func: Callable = str,
               container=None, what: str | None = None, strict: bool = True):
    """A selectbox that reads its value from, and writes it back to, the URL parameter `key`.

    An unknown value in the URL stops the page with "not found" (never silently another view): a
    director who follows a stale link must be told (`strict=False`: the default is used instead, for
    parameters a page only carries along). The URL always carries the current value, so the address
    bar is a complete, shareable description of the view. A URL without the parameter (e.g. a sidebar
    link) keeps the value last chosen in this session, so moving between pages keeps the view.
    """
    options = _within_scope(key, list(options))
    texts = [str(o) for o in options]
    raw = st.query_params.get(key)
    if strict and raw is not None and raw != "" and raw not in texts:
        not_found(f"{what or label} “{raw}” was not found.", options=[format_func(o) for o in options])
    widget_key, last_key = f"url_{key}", f"url_last_{key}"
    last = st.session_state.get(last_key)
    wanted = raw if raw in texts else (last if last in texts else str(default))
    index = texts.index(wanted) if wanted in texts else 0
    # On arrival at a page (or when the URL changed under us: back/forward, a drill-down) the URL wins;
    # otherwise the widget holds the user's latest choice.
    if arrived_on_page() or raw != last or st.session_state.get(widget_key) not in options:
        st.session_state[widget_key] = options[index]
    (container or st).selectbox(label, options, key=widget_key, format_func=format_func)
    # The value the widget holds (the selectbox's own answer in a session; also what an opening view drawn
    # ahead with no session reads, where a widget only gives its first option: pages.ui.prepare).
    value = st.session_state[widget_key]
    st.query_params[key] = st.session_state[last_key] = str(value)
    return value


def _within_scope(key: str, options: list) -> list:
    """In a shared view, a cluster or school filter offers only what the link's scope covers."""
    grant = share_grant()
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


def year_label(year) -> str:
    """`2025` -> `2024-25` (school years are stored by their ending year)."""
    return f"{int(year) - 1}-{str(year)[-2:]}"


def filter_bar() -> tuple[int, str, str]:
    """Year, metric and student group bound to the URL (`year`, `metric`, `group`); stops when no data."""
    years, metrics = _years(import_version()), metric_ids()
    if not years or not metrics:
        st.info("No data yet. Import schools, metrics and discipline files on the Data page.")
        st.stop()
    cols = st.columns([1, 2, 2])
    year = int(url_choice("School year", "year", [str(y) for y in years], str(years[-1]), container=cols[0],
                          format_func=year_label))
    default = "read_proficient" if "read_proficient" in metrics else metrics[0]
    labels = metric_labels()
    metric = url_choice("Metric", "metric", metrics, default, format_func=lambda m: labels.get(m, m),
                        container=cols[1])
    present = set(metric_groups(metric))
    groups = [g for g in catalog.STUDENT_GROUPS if g in present] or ["ALL"]
    group = url_choice("Student group", "group", groups, "ALL", format_func=catalog.group_label, container=cols[2])
    return year, metric, group


def fmt_pct(value: float, digits: int = 1) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}%"


def rate_text(value) -> str:
    """A released rate with two decimals, or the coded text (`<= 5.0%`) as it is."""
    return value if isinstance(value, str) else f"{value:.2f}"
