"""Charts with a text alternative: the finding as a caption and Vega description, the data a click away.

Building an Altair chart and validating its spec costs more than drawing it, so pages build through
:func:`finished`: the finished Vega-Lite spec is kept per builder and arguments, with its datasets already
serialised to Arrow, and a warm rerun only draws it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from analytics.outputs.vega import VegaLite
from pages.ui.state import is_public
from pages.ui.tables import arrow_bytes, arrow_ready

if TYPE_CHECKING:  # Altair (0.5-2 s to import) is imported by the first chart built, not by every page's first run
    import altair as alt


@dataclass(frozen=True)
class FinishedChart:
    """A chart's validated Vega-Lite spec with its data by name, and the chart it came from (for exports).

    ``arrow`` holds each dataset as the Arrow IPC bytes ``st.vega_lite_chart`` would make of it, made once:
    Streamlit sends bytes as they are, so a rerun does not serialise the chart's tables again.
    Shared between sessions and reruns: never modify it (``chart`` copies the top level before adding
    the description and width).
    """

    spec: dict
    datasets: dict[str, pd.DataFrame]
    source: alt.TopLevelMixin | VegaLite
    arrow: dict[str, bytes]

    def to_json(self, *args, **kwargs) -> str:
        """The source chart's JSON (PNG/SVG exports render it with vl-convert)."""
        return self.source.to_json(*args, **kwargs)


_BUILDERS: dict[str, Callable] = {}
# Altair's theme and data transformer are process-wide; Streamlit guards its own use of them with this lock.
try:
    from streamlit.elements.vega_charts import _altair_globals_lock as _ALTAIR_LOCK
except ImportError:  # pragma: no cover - another Streamlit version
    _ALTAIR_LOCK = threading.RLock()


def finished(build: Callable[..., alt.TopLevelMixin], *args, key: tuple | None = None, **kwargs) -> FinishedChart:
    """``build(*args, **kwargs)`` as a :class:`FinishedChart`, built and validated once per distinct
    arguments (hashed by value like ``st.cache_resource``: the same data and options give the same chart).

    ``key``, when given, stands for the arguments instead (e.g. the data version and every view parameter
    the data comes from): hashing a large table on every rerun costs more than drawing it. It must name
    everything the chart depends on. Pass the result to :func:`chart` and to the download menu in place of
    the Altair chart.
    """
    name = f"{build.__module__}.{build.__qualname__}"
    _BUILDERS.setdefault(name, build)
    if key is not None:
        return _finished_by_key(name, key, args, kwargs)
    return _finished(name, args, kwargs)


def finished_now(build: Callable[..., alt.TopLevelMixin], *args, key: tuple | None = None, **kwargs) -> FinishedChart:
    """:func:`finished`'s chart built now and kept in no cache (`key` is not used): for a result that keeps its
    chart itself (made ahead for every cluster, which would push every page's charts out of the shared cache)."""
    name = f"{build.__module__}.{build.__qualname__}"
    _BUILDERS.setdefault(name, build)
    return _build(name, args, kwargs)


@st.cache_resource(show_spinner=False, max_entries=64)
def _finished_by_key(builder: str, key: tuple, _args: tuple, _kwargs: dict) -> FinishedChart:
    return _build(builder, _args, _kwargs)


@st.cache_resource(show_spinner=False, max_entries=256)
def _finished(builder: str, args: tuple, kwargs: dict) -> FinishedChart:
    return _build(builder, args, kwargs)


_VALIDATED: set[str] = set()


def _build(builder: str, args: tuple, kwargs: dict) -> FinishedChart:
    source = _BUILDERS[builder](*args, **kwargs)
    # Altair's JSON-schema check costs about a third of a chart's conversion: a builder's first chart in
    # this process is checked (an invalid spec raises here, in tests too); later ones share its structure.
    validate = builder not in _VALIDATED
    if isinstance(source, VegaLite):  # written as a dict: Altair only checks it
        if validate:
            source.to_dict(validate=True)
        import altair as alt

        spec, datasets = source.with_data(_dataset_name)
        spec = {"$schema": alt.SCHEMA_URL, **spec}
    else:
        spec, datasets = _spec_with_frames(source, validate=validate)
    _VALIDATED.add(builder)
    return FinishedChart(spec, datasets, source, {name: arrow_bytes(frame) for name, frame in datasets.items()})


class FinishedMap:
    """A pydeck map serialised once: ``st.pydeck_chart`` reads its JSON, tooltip and size from here.

    pydeck keeps its layers' DataFrames by weak reference and Streamlit converts them to records on every
    draw; this object holds the finished JSON instead (shared between sessions: never modify it).
    """

    layers: tuple = ()  # nothing left for Streamlit to convert

    def __init__(self, deck):
        from pydeck.bindings import json_tools  # the deck's module: pydeck is loaded by now

        for layer in deck.layers:  # as Streamlit does before serialising (pandas 3 and pydeck's weak refs)
            data = layer.data() if isinstance(layer.data, weakref.ref) else layer.data
            if isinstance(data, pd.DataFrame):
                layer.data = data.to_dict(orient="records")
        # pydeck's own `to_json` indents, which keeps Python's pure-Python encoder: 2.4 s for 10,000 schools
        # and 1,251 cluster outlines, where the C encoder writes the same document (unindented) in a tenth.
        self._json = json.dumps(deck, sort_keys=True, default=json_tools.default_serialize)
        widget = getattr(deck, "deck_widget", None)
        tooltip = getattr(widget, "tooltip", None) if widget is not None else None
        self._tooltip = tooltip if isinstance(tooltip, dict) else getattr(deck, "_tooltip", None)
        self.mapbox_key = getattr(deck, "mapbox_key", None)
        self.width = getattr(deck, "width", None)

    def to_json(self) -> str:
        return self._json


def _dataset_name(frame: pd.DataFrame) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest.update(repr(list(frame.columns)).encode())
    return f"data-{digest.hexdigest()}"


def _spec_with_frames(source: alt.TopLevelMixin, validate: bool = True) -> tuple[dict, dict[str, pd.DataFrame]]:
    """The chart's Vega-Lite dict as ``st.altair_chart`` makes it (Altair's default theme off), its
    DataFrames kept by name instead of written into the spec."""
    import altair as alt

    datasets: dict[str, pd.DataFrame] = {}

    def keep_frames(data):
        if isinstance(data, pd.DataFrame):
            name = _dataset_name(data)
            datasets.setdefault(name, data)
            return {"name": name}
        return alt.to_values(data)

    alt.data_transformers.register("ssif_keep_frames", keep_frames)
    with _ALTAIR_LOCK:
        theme = alt.theme.enable("none") if alt.theme.active == "default" else contextlib.nullcontext()
        with theme, alt.data_transformers.enable("ssif_keep_frames"):
            spec = source.to_dict(validate=validate)
    inline = spec.pop("datasets", None) or {}
    return spec, {**{k: pd.DataFrame(v) for k, v in inline.items()}, **datasets}


def _title(chart) -> str:
    import altair as alt

    title = chart.spec.get("title") if isinstance(chart, FinishedChart) else getattr(chart, "title", None)
    if isinstance(title, alt.SchemaBase):  # e.g. a chart read back from its dict
        title = title.to_dict()
    if isinstance(title, dict):
        title = title.get("text")
    text = getattr(title, "text", title)
    if isinstance(text, list):
        text = " ".join(str(t) for t in text)
    return text if isinstance(text, str) else ""


def described(chart, summary: str):
    """The chart with its Vega `description` set (read by screen readers instead of "Vega visualization")."""
    title = _title(chart)
    text = ". ".join(part.rstrip(".") for part in (title, summary) if part) + "."
    return _with(chart, description=text)


def _with(chart, **properties):
    """Top-level properties set on an Altair chart or on a finished chart's spec (a copy: shared specs stay)."""
    if isinstance(chart, FinishedChart):
        return FinishedChart({**chart.spec, **properties}, chart.datasets, chart.source, chart.arrow)
    return chart.properties(**properties)


_COMPOSED = ("facet", "repeat", "concat", "hconcat", "vconcat")


def _fit_width(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Stretch a single or layered chart to the column's width while keeping its plot height.

    Streamlit's default autosize fits the whole chart (title, axes, legend) into its height, which
    squashes the plot of a chart with a long title or a legend; "fit-x" fits the width only.
    """
    if isinstance(chart, FinishedChart):
        single = not any(k in chart.spec for k in _COMPOSED)
        if not single or isinstance(chart.spec.get("width"), dict):  # {"step": n}: a width per band
            return chart
        return _with(chart, width="container", autosize={"type": "fit-x", "contains": "padding"})
    import altair as alt

    if not isinstance(chart, (alt.Chart, alt.LayerChart)) or isinstance(getattr(chart, "width", None), alt.Step):
        return chart
    return chart.properties(width="container", autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def chart(chart: alt.TopLevelMixin | VegaLite | FinishedChart, table: pd.DataFrame | None, summary: str, *, key: str | None = None,
          on_select: str = "ignore", height: int | None = None, width: str = "stretch", caption: bool = True,
          column_config: dict | None = None, public_safe: bool = False, public_summary: str = ""):
    """Draw a chart with its text alternative (WCAG 1.1.1): the finding as a caption and as the chart's
    description, and the rows it draws in a "Data table" expander under it. ``chart`` is an Altair chart
    or, cheaper on every rerun, a :func:`finished` one.

    In a shared (read-only) view the data table is shown only when the caller passes a table that has
    been through the privacy rules (``public_safe=True``), and the summary is replaced by
    ``public_summary`` (default: none, the chart's title alone describes it), so no number leaves the
    privacy rules through a caption. Returns the selection event like ``st.altair_chart``.
    """
    if is_public() and not public_safe:
        summary = public_summary
    if isinstance(chart, VegaLite):  # not finished: drawn through Altair, as any Altair chart
        chart = chart.to_altair()
    options = {"width": width, "on_select": on_select}
    if key:
        options["key"] = key
    shown = _fit_width(chart) if width == "stretch" else chart
    if height and shown is not chart:  # fitted to the width: the height is the plot's own
        shown = _with(shown, height=height)
    elif height:
        options["height"] = height
    shown = described(shown, summary)
    if isinstance(shown, FinishedChart):
        event = st.vega_lite_chart({**shown.spec, "datasets": shown.arrow}, **options)
    else:
        event = st.altair_chart(shown, **options)
    if caption and summary:
        st.caption(summary)
    if table is not None and (public_safe or not is_public()):
        with st.expander("Data table", icon=":material/table:"):
            st.dataframe(arrow_ready(table), hide_index=True, width="stretch", column_config=column_config)
    return event
