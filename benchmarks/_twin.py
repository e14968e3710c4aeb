"""Static twins of pages: the elements a page drew, replayed from a file with no computation.

`capture(at)` walks a finished AppTest's element tree and keeps every block and element message;
`replay(path)` (called by the twin script) draws them again in the same places. Widgets are replayed
as their messages too, so the twin costs what drawing the page's elements costs and nothing more: the
floor that a page's warm rerun is compared with (DESIGN §8). Replaying uses Streamlit's internal
`DeltaGenerator._enqueue` / `_block` (benchmark code only; the app never does this).
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

TWIN_SCRIPT = """\
import os
import sys

sys.path.insert(0, os.environ["SSIF_TWIN_DIR"])
from _twin import replay

replay(os.environ["SSIF_TWIN_FILE"])
"""


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


def capture(at, path: Path) -> int:
    """Save what a run AppTest drew (main area and sidebar) to `path`; returns the number of elements."""
    tree = {"main": _walk(at._tree.children[0]), "sidebar": _walk(at._tree.children[1])}
    path.write_bytes(pickle.dumps(tree))
    return _count(tree["main"]) + _count(tree["sidebar"])


def drawn_count(at) -> int:
    """Blocks and elements an AppTest run drew (main area and sidebar): a twin must match its page."""
    return _count(_walk(at._tree.children[0])) + _count(_walk(at._tree.children[1]))


def _count(nodes: list) -> int:
    return sum(1 + _count(n[2]) if n[0] == "block" else 1 for n in nodes)


@functools.cache
def _load(path: str) -> dict:
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
