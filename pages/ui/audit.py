"""The audit log on `/data` (editors): a filterable table of who did what, when."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st
from sqlalchemy.engine import Engine

from analytics.access import audit
from pages.ui import caching, data_versions
from pages.ui.downloads import download_menu
from pages.ui.tables import arrow_ready

ACTION_LABELS = {audit.SIGN_IN: "signed in", audit.SIGN_OUT: "signed out", audit.SIGN_IN_REFUSED: "sign-in refused",
                 audit.IMPORT: "imported", audit.EDIT: "edited", audit.SHARE_CREATED: "shared link made",
                 audit.SHARE_OPENED: "shared link opened", audit.SHARE_REVOKED: "shared link revoked"}
ROW_LIMIT = 5000


def audit_log_view(engine: Engine) -> None:
    """Filters (action, who, dates) applied in SQL; newest events first; the filtered table downloads.

    The filters live in the URL (`audit_what`, `audit_who`, `audit_dates`), so a filtered log is a link that
    opens the same way again."""
    counts = audit.counts(engine)
    recorded = ", ".join(f"{counts[a]:,} {ACTION_LABELS[a]}" for a in audit.ACTIONS if counts[a])
    st.caption(f"{counts['total']:,} events recorded ({recorded or 'none yet'}): sign-ins, imports, edits, and "
               "shared links made, opened and revoked. Times are UTC.")
    left, middle, right = st.columns([2, 1.2, 1.2])
    actions = left.multiselect("What", list(audit.ACTIONS), key="audit_what", placeholder="Every action",
                               format_func=ACTION_LABELS.get, bind="query-params")  # the URL holds the label
    who = middle.text_input("Who (part of the name or e-mail)", key="audit_who", bind="query-params")
    today = datetime.now(UTC).date()
    dates = right.date_input("Between", _opening_dates(today), key="audit_dates", max_value=today,
                             bind="query-params")
    shown = _filtered(engine, counts["total"], tuple(actions), who, dates)
    if shown.empty:
        st.info("No events match these filters.")
        return
    st.dataframe(arrow_ready(shown), hide_index=True, width="stretch",
                 column_config={"at": "When (UTC)", "who": "Who", "action": "What", "target": "On",
                                "detail": "Details"})
    if len(shown) == ROW_LIMIT:
        st.caption(f"The newest {ROW_LIMIT:,} matching events; narrow the filters to see older ones.")
    download_menu("audit-log", shown)


def opening_log(engine: Engine):
    """The log as the page opens on it (every action, anyone, the last 90 days): what the preparer reads ahead
    (:mod:`pages.ui.data_views`), under the key the page's first view looks it up with."""
    return _filtered(engine, audit.counts(engine)["total"], (), "", _opening_dates(datetime.now(UTC).date()))


def _opening_dates(today: date) -> tuple[date, date]:
    return today - timedelta(days=90), today


def _filtered(engine: Engine, total: int, actions: tuple[str, ...], who: str, dates):
    """The events the filters let through (`dates`: the date input's value, a pair once both ends are chosen)."""
    since = until = None
    if isinstance(dates, tuple) and len(dates) == 2:
        since = datetime.combine(dates[0], time.min, UTC)
        until = datetime.combine(dates[1], time.min, UTC) + timedelta(days=1)
    return _log_table(engine.url.render_as_string(), total, actions, who.strip() or None, since, until)


@caching.drawn
def _log_table(database: str, total: int, actions: tuple[str, ...], who: str | None, since: datetime | None,
               until: datetime | None):
    """The filtered events as shown, newest first. The log is append-only (analytics.access.audit), so a new
    event always changes `total`: the same filters and total give the same rows."""
    events = audit.load(data_versions.engine(), actions=list(actions) or None, who=who, since=since, until=until,
                        limit=ROW_LIMIT)
    if events.empty:
        return events
    shown = events.drop(columns=["event_id"]).assign(action=events["action"].map(ACTION_LABELS))
    shown["at"] = shown["at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    shown[["target", "detail"]] = shown[["target", "detail"]].fillna("")
    return shown
