"""Charts with a text alternative: the finding as a caption and Vega description, the data a click away."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from pages.ui.state import is_public


def _title(chart) -> str:
    title = getattr(chart, "title", None)
    text = getattr(title, "text", title)
    if isinstance(text, list):
        text = " ".join(str(t) for t in text)
    return text if isinstance(text, str) else ""


def described(chart: alt.TopLevelMixin, summary: str) -> alt.TopLevelMixin:
    """The chart with its Vega `description` set (read by screen readers instead of "Vega visualization")."""
    title = _title(chart)
    text = ". ".join(part.rstrip(".") for part in (title, summary) if part) + "."
    return chart.properties(description=text)


def _fit_width(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Stretch a single or layered chart to the column's width while keeping its plot height.

    Streamlit's default autosize fits the whole chart (title, axes, legend) into its height, which
    squashes the plot of a chart with a long title or a legend; "fit-x" fits the width only.
    """
    if not isinstance(chart, (alt.Chart, alt.LayerChart)) or isinstance(getattr(chart, "width", None), alt.Step):
        return chart
    return chart.properties(width="container", autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def chart(chart: alt.TopLevelMixin, table: pd.DataFrame | None, summary: str, *, key: str | None = None,
          on_select: str = "ignore", height: int | None = None, width: str = "stretch", caption: bool = True,
          column_config: dict | None = None, public_safe: bool = False, public_summary: str = ""):
    """Draw a chart with its text alternative (WCAG 1.1.1): the finding as a caption and as the chart's
    description, and the rows it draws in a "Data table" expander under it.

    In a shared (read-only) view the data table is shown only when the caller passes a table that has
    been through the privacy rules (``public_safe=True``), and the summary is replaced by
    ``public_summary`` (default: none, the chart's title alone describes it), so no number leaves the
    privacy rules through a caption. Returns the selection event like ``st.altair_chart``.
    """
    if is_public() and not public_safe:
        summary = public_summary
    options = {"width": width, "on_select": on_select}
    if key:
        options["key"] = key
    shown = _fit_width(chart) if width == "stretch" else chart
    if height and shown is not chart:  # fitted to the width: the height is the plot's own
        shown = shown.properties(height=height)
    elif height:
        options["height"] = height
    event = st.altair_chart(described(shown, summary), **options)
    if caption and summary:
        st.caption(summary)
    if table is not None and (public_safe or not is_public()):
        with st.expander("Data table", icon=":material/table:"):
            st.dataframe(table, hide_index=True, width="stretch", column_config=column_config)
    return event
