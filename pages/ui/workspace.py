"""Editing helpers of the workspace pages: the version a session opened a record at, and the conflict panel
(who may edit and who is editing: `ui.can_edit`, `ui.current_user`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def conflict_panel(conflict, mine: dict, labels: dict[str, str]) -> None:
    """The saved record beside the editor's unsaved values, so nothing is lost and the choice is theirs."""
    st.error(str(conflict), icon=":material/sync_problem:")
    current = conflict.current or {}
    rows = [{"field": labels.get(k, k), "your unsaved value": _text(mine.get(k)), "saved now": _text(current.get(k))}
            for k in labels if _text(mine.get(k)) != _text(current.get(k))]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _text(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]
    return str(value)


def seen_version(key: str, record: dict | None) -> int | None:
    """The version this browser session opened the record at (kept until it saves or reloads)."""
    if record is None:
        return None
    state_key = f"seen_{key}"
    if state_key not in st.session_state:
        st.session_state[state_key] = int(record["version"])
    return st.session_state[state_key]


def forget(key: str, widget_prefix: str | None = None) -> None:
    """Reload a record: drop the remembered version and the form's widget values."""
    st.session_state.pop(f"seen_{key}", None)
    if widget_prefix:
        for k in [k for k in st.session_state if str(k).startswith(widget_prefix)]:
            del st.session_state[k]


def conflict_actions(key: str, prefix: str) -> None:
    """After a conflict: save the editor's values over the version now saved, or discard them and reload."""
    if st.session_state.get(f"conflict_{key}") is None:
        return
    cols = st.columns(2)
    if cols[0].button("Keep my values and save over the new version", key=f"adopt_{key}"):
        st.session_state[f"seen_{key}"] = st.session_state.pop(f"conflict_{key}")
        st.info("Now press Save again: your values will replace the saved version.")
    if cols[1].button("Discard my values and load the saved version", key=f"reload_{key}"):
        st.session_state.pop(f"conflict_{key}", None)
        forget(key, prefix)
        st.rerun()


def store_record(table: str, values: dict, record: dict | None, key: str, prefix: str, labels: dict) -> bool:
    """Create `values`, or save them over the version this session opened; True when stored.

    A conflict (someone saved the record meanwhile) shows both versions and keeps the form as it is; a
    rule the record breaks is said plainly. Either way nothing is overwritten.
    """
    from analytics.workspace import records
    from pages.ui.data_versions import engine
    from pages.ui.staff import current_user

    try:
        if record is None:
            records.create(engine(), table, values, current_user())
        else:
            records.save(engine(), table, values, seen_version(key, record), current_user())
    except records.Conflict as conflict:
        conflict_panel(conflict, values, labels)
        if conflict.current is not None:
            shown_above = st.session_state.get(f"conflict_{key}") is not None
            st.session_state[f"conflict_{key}"] = conflict.current["version"]
            if not shown_above:
                conflict_actions(key, prefix)
        return False
    except records.RecordError as exc:
        st.error(str(exc))
        return False
    forget(key, prefix)
    return True


def delete_record(table: str, record_id: str, record: dict, labels: dict) -> bool:
    """Delete the version this session opened; True when deleted, else the conflict is shown."""
    from analytics.workspace import records
    from pages.ui.data_versions import engine
    from pages.ui.staff import current_user

    try:
        records.delete(engine(), table, record_id, seen_version(record_id, record), current_user())
    except records.Conflict as conflict:
        conflict_panel(conflict, record, labels)
        return False
    return True


def goal_words(goal: dict) -> str:
    """A goal record in words (metric, student group, target: :func:`analytics.workspace.goals.goal_title`)."""
    from analytics.data.catalog import group_label
    from analytics.workspace.goals import goal_title
    from pages.ui.catalog_loaders import metric_catalog
    from pages.ui.filters import metric_label

    catalog = metric_catalog()
    unit = str(catalog.loc[goal["metric"], "unit"]) if goal["metric"] in catalog.index else ""
    return goal_title(metric_label(goal["metric"]), group_label(goal["student_group"]), goal.get("target_value"),
                      goal.get("target_year"), unit)


def record_history(record_id: str, columns: list[str]) -> None:
    """Who changed a record, when, and which fields."""
    from analytics.workspace import records
    from pages.ui.data_versions import engine

    hist = records.history(engine(), record_ids=[record_id])
    hist["what"] = [records.changed_fields(b, a) for b, a in zip(hist["before"], hist["after"], strict=True)]
    st.dataframe(hist[columns], hide_index=True, width="stretch")
