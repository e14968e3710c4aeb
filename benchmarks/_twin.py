"""Static twins of pages: the elements a page drew, drawn again from results computed beforehand.

`capture(at)` walks a finished AppTest's element tree and keeps every block and element message. Two
twins draw them again in the same places:

- `draw(path)` (the twin of DESIGN §8, body of `TWIN_SCRIPT`) makes the same public Streamlit calls the
  page made, from results prepared once when the file is first read: tables decoded back into
  DataFrames for `st.dataframe`, Vega-Lite specs with their datasets as DataFrames for
  `st.vega_lite_chart`, markdown, captions, metrics, widgets with their options and keys, and
  columns, tabs, expanders, popovers and forms in place (a form's widgets drawn in it, so registered as
  the page's were: AppTest reruns them). It pays what Streamlit charges for drawing those elements
  (serialising tables and specs, registering widgets) and nothing the page computes.
- `replay(path)` (body of `REPLAY_SCRIPT`) enqueues the finished messages themselves through Streamlit's
  internal `DeltaGenerator._enqueue` / `_block`: no serialisation at all, a stricter floor kept for
  information (benchmark code only; the app never does this).

Element kinds without a public call in `_CALLS` (none on today's pages) fall back to their message.
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

TWIN_SCRIPT = """\
import os
import sys

sys.path.insert(0, os.environ["SSIF_TWIN_DIR"])
from _twin import draw

draw(os.environ["SSIF_TWIN_FILE"])
"""

PAGE_SCRIPT = """\
import os
import sys

sys.path.insert(0, os.environ["SSIF_TWIN_DIR"])
from _twin import run_page

run_page({page!r})
"""

REPLAY_SCRIPT = TWIN_SCRIPT.replace("import draw", "import replay").replace("draw(", "replay(")

# The signed-in member of staff every AppTest session of a page runs as, when set (`sign_in_staff`): on a
# server (PostgreSQL, `SSIF_SERVER_MODE=1`) a page that asks for the visitor's role otherwise draws the
# sign-in notice instead of itself (DESIGN §11). Secrets sections and `st.user` claims.
STAFF: dict = {}


def sign_in_staff(email: str = "editor@district.org") -> None:
    """Run every later page session as this editor, signed in through OpenID Connect, as the page tests
    do (`[auth]` and `[roles]` secrets, `st.user` with a fixed ID-token issue time so one sign-in is audited)."""
    STAFF.update(secrets={"auth": {"redirect_uri": "http://localhost/oauth2callback", "cookie_secret": "bench",
                                   "client_id": "ssif-dashboard", "client_secret": "bench",
                                   "server_metadata_url": "http://localhost/.well-known/openid-configuration"},
                          "roles": {"editors": [email]}},
                 user={"is_logged_in": True, "email": email, "iat": 1_800_000_000})


def as_staff(at):
    """`at` (an AppTest) with the signed-in member of staff of `STAFF`, when one is set."""
    for key, value in STAFF.get("secrets", {}).items():
        at.secrets[key] = value
    if "user" in STAFF:
        at.user = dict(STAFF["user"])
    return at


def run_page(path: str) -> None:
    """Run a page script as app.py runs it: the data version pinned once for the run, then the page's code
    (compiled once, as Streamlit keeps a script's bytecode). With `SSIF_PROFILE_TO` set, the run (on the
    script thread, which a profiler around `AppTest.run` does not see) is profiled to that file."""
    import os

    from pages import ui
    from pages.ui.prepare import page_code

    target = os.environ.get("SSIF_PROFILE_TO")
    profiler = None
    if target:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        ui.pin_data_version()
        exec(page_code(path), {"__name__": "__main__", "__file__": path})  # noqa: S102 - the page's own code
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(target)


@functools.cache
def _element_fields() -> dict[str, str]:
    """Message type name -> the `Element` field that carries it (e.g. Markdown -> markdown)."""
    from streamlit.proto.Element_pb2 import Element

    fields: dict[str, str] = {}
    for field in Element.DESCRIPTOR.fields:
        if field.message_type is not None:
            fields.setdefault(field.message_type.full_name, field.name)
    return fields


@functools.cache
def _block_fields() -> dict[str, str]:
    """Message type name -> the `Block` field that carries it (e.g. Block.Column -> column)."""
    from streamlit.proto.Block_pb2 import Block

    return {f.message_type.full_name: f.name for f in Block.DESCRIPTOR.fields if f.message_type is not None}


def _block_message(node):
    """A whole `Block` message (AppTest keeps only the inner Column/Tab/Expandable... message)."""
    from streamlit.proto.Block_pb2 import Block

    proto = node.proto
    if proto is None or isinstance(proto, Block):
        return proto if proto is not None else Block()
    block = Block()
    getattr(block, _block_fields()[proto.DESCRIPTOR.full_name]).CopyFrom(proto)
    return block


def _element_message(node) -> tuple[str, object]:
    from streamlit.proto.Element_pb2 import Element

    proto = node.proto
    if isinstance(proto, Element):  # elements AppTest does not model keep the whole Element
        kind = proto.WhichOneof("type")
        return kind, getattr(proto, kind)
    return _element_fields()[proto.DESCRIPTOR.full_name], proto


def _walk(block) -> list:
    """[("element", field, message) | ("block", message, children)] in drawing order."""
    from streamlit.testing.v1.element_tree import Block

    out = []
    for index in sorted(block.children):
        node = block.children[index]
        if isinstance(node, Block):
            out.append(("block", _block_message(node), _walk(node)))
        else:
            kind, message = _element_message(node)
            out.append(("element", kind, message))
    return out


def capture(at, path: Path) -> list[str]:
    """Save what a run AppTest drew (main area and sidebar) to `path`; returns the kinds drawn, in order."""
    tree = {"main": _walk(at._tree.children[0]), "sidebar": _walk(at._tree.children[1])}
    path.write_bytes(pickle.dumps(tree))
    return _kinds(tree["main"]) + ["sidebar"] + _kinds(tree["sidebar"])


def drawn_kinds(at) -> list[str]:
    """Kinds of the blocks and elements an AppTest run drew, in order (main area, then sidebar): a twin
    must draw the same list as its page."""
    return _kinds(_walk(at._tree.children[0])) + ["sidebar"] + _kinds(_walk(at._tree.children[1]))


def _kinds(nodes: list) -> list[str]:
    out = []
    for node in nodes:
        if node[0] == "block":
            out.append(f"block:{node[1].WhichOneof('type')}")
            out.extend(_kinds(node[2]))
        else:
            out.append(node[1])
    return out


def _load(path: str) -> dict:
    return _load_version(path, Path(path).stat().st_mtime_ns)


@functools.cache
def _load_version(path: str, mtime_ns: int) -> dict:
    return pickle.loads(Path(path).read_bytes())


def _draw(dg, nodes: list) -> None:
    for node in nodes:
        if node[0] == "block":
            _draw(dg._block(node[1]), node[2])
        else:
            dg._enqueue(node[1], node[2])


def replay(path: str) -> None:
    """Draw a captured page again (the body of every twin script)."""
    import streamlit as st

    tree = _load(path)
    _draw(st._main, tree["main"])
    _draw(st.sidebar, tree["sidebar"])


# --- the twin of DESIGN §8: the same public Streamlit calls, from results prepared beforehand ---------

def _key(element_id: str) -> str | None:
    """The user key inside a widget id ("$$ID-<hash>-<key>"), None when the widget had none."""
    from streamlit.runtime.state.common import user_key_from_element_id

    return user_key_from_element_id(element_id) if element_id else None


def _frame(arrow: bytes):
    from streamlit import dataframe_util

    return dataframe_util.convert_arrow_bytes_to_pandas_df(arrow)


def _on_select(message, names: tuple[str, ...] = ()) -> dict:
    """on_select/selection_mode/key of a selectable element (modes are enum numbers for tables and maps)."""
    modes = [names[m] if names else m for m in message.selection_mode]
    return {"on_select": "rerun", "selection_mode": modes, "key": _key(message.id)} if modes else {}


_ROW_MODES = ("single-row", "multi-row", "single-column", "multi-column", "single-cell", "multi-cell",
              "single-row-required")


def _markdown(m):
    kinds = {1: "markdown", 2: "caption", 3: "code", 4: "latex", 5: "divider"}
    kind = kinds.get(m.element_type, "markdown")
    if kind == "divider":
        return "divider", (), {}
    if kind in ("code", "latex"):
        return kind, (m.body,), {}
    return kind, (m.body,), {"unsafe_allow_html": m.allow_html, "help": m.help or None}


def _heading(m):
    call = {"h1": "title", "h2": "header", "h3": "subheader"}.get(m.tag, "subheader")
    return call, (m.body,), {"help": m.help or None, "anchor": False if m.hide_anchor else (m.anchor or None)}


def _metric(m):
    up, down, green, red, gray = 1, 0, 1, 0, 2
    if m.color == gray:
        delta_color = "off"
    elif (m.direction, m.color) in ((up, green), (down, red)):
        delta_color = "normal"
    else:
        delta_color = "inverse"
    return "metric", (m.label, m.body), {"delta": m.delta or None, "delta_color": delta_color,
                                         "help": m.help or None}


def _dataframe(m):
    import json

    config = json.loads(m.columns) if m.columns else {}
    kwargs = {"column_config": config or None, "column_order": list(m.column_order) or None, "width": "stretch"}
    if m.editing_mode:  # `st.data_editor` (its disabled columns are in the column settings): a widget of its own
        rows = {1: "fixed", 2: "dynamic", 3: "add", 4: "delete"}[m.editing_mode]
        return "data_editor", (_frame(m.arrow_data.data),), {**kwargs, "num_rows": rows, "disabled": m.disabled,
                                                             "key": _key(m.id)}
    return "dataframe", (_frame(m.arrow_data.data),), {**kwargs, **_on_select(m, _ROW_MODES)}


def _vega_lite(m):
    import json

    spec = json.loads(m.spec)
    if m.datasets:
        spec["datasets"] = {d.name: _frame(d.data.data) for d in m.datasets}
    data = _frame(m.data.data) if m.data.data else None
    kwargs = {"width": "stretch", "theme": "streamlit" if m.theme == "streamlit" else None, **_on_select(m)}
    return "vega_lite_chart", (data, spec), kwargs


class _FinishedDeck:
    """A pydeck chart whose JSON was made beforehand (what `st.pydeck_chart` reads from a `pydeck.Deck`)."""

    layers: list = []

    def __init__(self, spec: str, tooltip: str):
        import json

        self._spec, self._tooltip = spec, json.loads(tooltip) if tooltip else None

    def to_json(self) -> str:
        return self._spec


def _deck(m):
    kwargs = _on_select(m, ("single-object", "multi-object"))
    if kwargs:
        kwargs["selection_mode"] = kwargs["selection_mode"][0]
    return "pydeck_chart", (_FinishedDeck(m.json, m.tooltip),), kwargs


def _selectbox(m):
    return "selectbox", (m.label, list(m.options)), {
        "index": m.default if m.HasField("default") else None, "key": _key(m.id), "help": m.help or None,
        "placeholder": m.placeholder or None, "disabled": m.disabled}


def _multiselect(m):
    options = list(m.options)
    return "multiselect", (m.label, options), {
        "default": [options[i] for i in m.default], "key": _key(m.id), "help": m.help or None,
        "placeholder": m.placeholder or None, "max_selections": m.max_selections or None, "disabled": m.disabled}


def _checkbox(m):
    return ("toggle" if m.type == 1 else "checkbox"), (m.label,), {
        "value": m.default, "key": _key(m.id), "help": m.help or None, "disabled": m.disabled}


def _text(call: str):
    def convert(m):
        return call, (m.label,), {"value": m.default if m.HasField("default") else "", "key": _key(m.id),
                                  "help": m.help or None, "max_chars": m.max_chars or None,
                                  "placeholder": m.placeholder or None, "disabled": m.disabled}
    return convert


def _date_input(m):
    import datetime as dt

    def day(text: str):
        return dt.date.fromisoformat(text.replace("/", "-"))

    value = [day(d) for d in m.default]
    return "date_input", (m.label,), {
        "value": (tuple(value) if m.is_range else (value[0] if value else None)),
        "min_value": day(m.min) if m.min else None, "max_value": day(m.max) if m.max else None,
        "key": _key(m.id), "help": m.help or None, "format": m.format or "YYYY/MM/DD", "disabled": m.disabled}


def _alert(m):
    call = {1: "error", 2: "warning", 3: "info", 4: "success"}.get(m.format, "info")
    return call, (m.body,), {"icon": m.icon or None}


def _no_file() -> bytes:
    return b""


def _download_button(m):
    return "download_button", (m.label, _no_file), {
        "key": _key(m.id), "on_click": "ignore", "help": m.help or None, "type": m.type or "secondary",
        "icon": m.icon or None, "disabled": m.disabled}


def _button(m):
    call = "form_submit_button" if m.is_form_submitter else "button"  # a form's own button, drawn in its form
    return call, (m.label,), {"key": _key(m.id), "help": m.help or None, "type": m.type or "secondary",
                              "icon": m.icon or None, "disabled": m.disabled}


def _button_group(m):
    """`st.pills` or `st.segmented_control` with its options as drawn (labels already formatted)."""
    options = [o.content for o in m.options]
    multi = m.click_mode == 1
    default = [options[i] for i in m.default]
    return ("pills" if m.style == 1 else "segmented_control"), (m.label, options), {
        "selection_mode": "multi" if multi else "single", "default": default if multi else (default or [None])[0],
        "key": _key(m.id), "help": m.help or None, "disabled": m.disabled}


def _number_input(m):
    number = int if m.data_type == 0 else float
    return "number_input", (m.label,), {
        "min_value": number(m.min) if m.has_min else None, "max_value": number(m.max) if m.has_max else None,
        "value": number(m.default) if m.HasField("default") else None, "step": number(m.step) if m.step else None,
        "format": m.format or None, "key": _key(m.id), "help": m.help or None, "placeholder": m.placeholder or None,
        "disabled": m.disabled}


def _file_uploader(m):
    return "file_uploader", (m.label,), {"type": list(m.type) or None, "accept_multiple_files": m.multiple_files,
                                         "key": _key(m.id), "help": m.help or None, "disabled": m.disabled}


_CALLS = {
    "markdown": _markdown, "heading": _heading, "metric": _metric, "dataframe": _dataframe,
    "vega_lite_chart": _vega_lite, "deck_gl_json_chart": _deck, "selectbox": _selectbox,
    "multiselect": _multiselect, "checkbox": _checkbox, "text_input": _text("text_input"),
    "text_area": _text("text_area"), "date_input": _date_input, "alert": _alert,
    "download_button": _download_button, "button": _button, "file_uploader": _file_uploader,
    "button_group": _button_group, "number_input": _number_input,
}


def _gap(block) -> str:
    size = block.gap_config.gap_size if block.HasField("gap_config") else 0
    return {1: "small", 2: "medium", 3: "large"}.get(size, "small")


def _block_call(message, children: list) -> tuple:
    """A block as the public call that opens it: ("columns"|"tabs", args, kwargs, [children per part]) or
    ("container"|"expander"|"popover", args, kwargs, children); ("message", ...) when none fits."""
    kind = message.WhichOneof("type")
    inner = getattr(message, kind) if kind else None
    parts = [c for c in children if c[0] == "block"]
    if kind == "flex_container" and parts and len(parts) == len(children) \
            and all(c[1].WhichOneof("type") == "column" for c in parts) and inner.direction == 2:
        weights = [c[1].column.weight for c in parts]
        return "columns", (weights,), {"gap": _gap(parts[0][1].column)}, [_plan(c[2]) for c in parts]
    if kind == "tab_container" and all(c[1].WhichOneof("type") == "tab" for c in parts):
        return "tabs", ([c[1].tab.label for c in parts],), {}, [_plan(c[2]) for c in parts]
    if kind == "flex_container":
        return "container", (), {"horizontal": inner.direction == 2, "border": inner.border,
                                 "gap": _gap(inner)}, _plan(children)
    if kind == "vertical":
        return "container", (), {"border": inner.border}, _plan(children)
    if kind == "expandable":
        return "expander", (inner.label,), {"expanded": inner.expanded, "icon": inner.icon or None}, _plan(children)
    if kind == "form":  # its widgets belong to it (a widget drawn in a plain block would not be in the form)
        return "form", (inner.form_id,), {"clear_on_submit": inner.clear_on_submit,
                                          "enter_to_submit": inner.enter_to_submit, "border": inner.border}, \
            _plan(children)
    if kind == "popover":
        return "popover", (inner.label,), {"icon": inner.icon or None, "help": inner.help or None,
                                           "disabled": inner.disabled}, _plan(children)
    return "message", (message,), {}, _plan(children)


def _plan(nodes: list) -> list:
    """Captured nodes as draw calls, with every table and spec decoded now (not when drawing)."""
    out = []
    for node in nodes:
        if node[0] == "block":
            out.append(("block", *_block_call(node[1], node[2])))
        elif node[1] in _CALLS:
            out.append(("call", *_CALLS[node[1]](node[2])))
        else:
            out.append(("message", node[1], node[2]))
    return out


def fallbacks(path: str) -> list[str]:
    """Kinds in a captured page that the twin can only draw as finished messages (should be none)."""
    def walk(nodes: list) -> list[str]:
        out = []
        for node in nodes:
            if node[0] == "message":
                out.append(node[1])
            if node[0] == "block":
                parts = node[4] if node[1] in ("columns", "tabs") else [node[4]]
                out.extend(kind for part in parts for kind in walk(part))
                if node[1] == "message":
                    out.append(f"block:{node[2][0].WhichOneof('type')}")
        return out

    prepared = _prepared(path)
    return walk(prepared["main"]) + walk(prepared["sidebar"])


def _prepared(path: str) -> dict:
    return _prepared_version(path, Path(path).stat().st_mtime_ns)


@functools.cache
def _prepared_version(path: str, mtime_ns: int) -> dict:
    tree = _load(path)
    return {"main": _plan(tree["main"]), "sidebar": _plan(tree["sidebar"])}


def _call(dg, nodes: list) -> None:
    for node in nodes:
        if node[0] == "call":
            getattr(dg, node[1])(*node[2], **node[3])
        elif node[0] == "message":
            dg._enqueue(node[1], node[2])
        elif node[1] in ("columns", "tabs"):
            for part, children in zip(getattr(dg, node[1])(*node[2], **node[3]), node[4], strict=True):
                _call(part, children)
        elif node[1] == "message":
            _call(dg._block(node[2][0]), node[4])
        else:
            _call(getattr(dg, node[1])(*node[2], **node[3]), node[4])


def draw(path: str) -> None:
    """Draw a captured page again through the public Streamlit calls (the body of every twin script)."""
    import streamlit as st

    prepared = _prepared(path)
    _call(st._main, prepared["main"])
    _call(st.sidebar, prepared["sidebar"])
