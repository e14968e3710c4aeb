"""Vega-Lite specs written as dicts, with their tables kept as DataFrames.

Building an Altair chart object by object and converting it back with ``to_dict`` costs tens of
milliseconds for a small chart (schema lookups, copies, shorthand parsing); the dict it ends in is a few
lines. Builders drawn on a page's first view (the dot plot and trend lines of
:mod:`analytics.outputs.charts_district`; the risk-ratio bars, the event study and the run chart of
:mod:`analytics.outputs.charts_equity`) write that dict directly:
:class:`VegaLite` holds it with ``{"name": key}`` where a table goes, and the tables by key. The page
draws the dict with the tables sent as Arrow; exports and tests ask for Altair's own form
(:meth:`VegaLite.to_dict`, :meth:`VegaLite.to_json`), which goes through Altair and its schema check, so
the spec stays the one Altair writes (``tests/snapshots/chart_specs.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # Altair (0.5-2 s to import) is imported when a spec goes through it, not with this module
    import altair as alt


@dataclass(frozen=True)
class VegaLite:
    """A Vega-Lite spec as a dict (no ``$schema``, no theme config) and the DataFrames it names.

    ``spec`` refers to a table as ``{"name": key}`` with ``key`` in ``frames``. Shared once built: never
    modify either.
    """

    spec: dict[str, Any]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def with_data(self, name_of) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
        """The spec with each table's key replaced by ``name_of(frame)``, and the tables by those names."""
        names = {key: name_of(frame) for key, frame in self.frames.items()}
        return _renamed(self.spec, names), {names[key]: frame for key, frame in self.frames.items()}

    def to_altair(self) -> alt.TopLevelMixin:
        """The Altair chart of this spec, its tables as Altair's default data transformer writes them (rows
        in ``datasets``, named by the hash of their values)."""
        import altair as alt

        values = {key: alt.utils.data.to_values(frame)["values"] for key, frame in self.frames.items()}
        spec, datasets = self.with_data(lambda frame: _altair_name(values[_key(self.frames, frame)]))
        datasets = {name: values[_key(self.frames, frame)] for name, frame in datasets.items()}
        composed = {"layer": alt.LayerChart, "facet": alt.FacetChart}
        kind = next((cls for key, cls in composed.items() if key in spec), alt.Chart)
        return kind.from_dict({**spec, "datasets": datasets} if datasets else spec)

    @property
    def title(self) -> str | alt.TitleParams | None:
        """The title as an Altair chart holds it (a string, or ``TitleParams`` with a subtitle), so code that
        reads an Altair chart's title (the meeting pack's alt text and sheet charts) reads this one alike."""
        import altair as alt

        title = self.spec.get("title")
        return alt.TitleParams(**title) if isinstance(title, dict) else title

    def properties(self, **properties: Any) -> VegaLite:
        """The spec with top-level properties set, as Altair's ``properties`` (a new spec; the same tables)."""
        return VegaLite({**self.spec, **properties}, self.frames)

    def to_dict(self, *args, **kwargs) -> dict[str, Any]:
        """The spec as Altair writes it (``$schema``, theme config, ``datasets`` named by their hash)."""
        return self.to_altair().to_dict(*args, **kwargs)

    def to_json(self, *args, **kwargs) -> str:
        """Altair's JSON of the spec (PNG/SVG exports render it with vl-convert)."""
        return self.to_altair().to_json(*args, **kwargs)


def frame_ref(frames: dict[str, pd.DataFrame], frame: pd.DataFrame) -> dict[str, str]:
    """A layer's data: `frame` kept under a key of its own in `frames` (the same object, the same key)."""
    for key, kept in frames.items():
        if kept is frame:
            return {"name": key}
    key = f"table_{len(frames)}"
    frames[key] = frame
    return {"name": key}


def layered(layers: list[dict], **top) -> dict:
    """A layer spec; when every layer draws the same table it is given once, on the top level (as Altair
    writes a layer of charts sharing one DataFrame)."""
    data = layers[0].get("data")
    if data is not None and all(layer.get("data") is data for layer in layers):
        return {"data": data, "layer": [{k: v for k, v in layer.items() if k != "data"} for layer in layers], **top}
    return {"layer": layers, **top}


def _key(frames: dict[str, pd.DataFrame], frame: pd.DataFrame) -> str:
    return next(key for key, kept in frames.items() if kept is frame)


def _altair_name(values: list[dict]) -> str:
    """The name Altair gives inline rows (``data-`` and the start of their JSON's SHA-256)."""
    from altair.vegalite.v6.api import _dataset_name

    return _dataset_name(values)


def _renamed(node, names: dict[str, Any]):
    """A copy of `node` with each ``{"name": key}`` data reference of a key in `names` renamed."""
    if isinstance(node, dict):
        if node.keys() == {"name"} and isinstance(node["name"], str) and node["name"] in names:
            return {"name": names[node["name"]]}
        return {k: _renamed(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_renamed(v, names) for v in node]
    return node
