"""Tables people read: missing numbers shown as a dash, never as "None"; tables kept ready for Arrow."""

from __future__ import annotations

import re
import weakref

import pandas as pd
import pyarrow as pa
import streamlit as st
from streamlit import dataframe_util

MISSING = "–"


def filled(df: pd.DataFrame, formats: dict[str, str], missing: str = MISSING) -> pd.DataFrame:
    """The columns in `formats` ({column: "{:+.1f}"-style format}) as text, a dash where the number is
    missing (Streamlit's grid prints "None" for a missing number)."""
    out = df.copy()
    for col, fmt in formats.items():
        if col in out:
            out[col] = [missing if v is None or (isinstance(v, float) and v != v) or v is pd.NA
                        else v if isinstance(v, str) else fmt.format(v) for v in out[col]]
    return out


def text_columns(labels: dict[str, str]) -> dict:
    """Right-aligned text columns for numbers made text by :func:`filled`."""
    return {col: st.column_config.TextColumn(label, alignment="right") for col, label in labels.items()}


def year_label_of(column):
    """A year column's name as a school year ("2024-25"); other column names unchanged."""
    try:
        year = int(column)
    except (TypeError, ValueError):
        return column
    return f"{year - 1}-{str(year)[-2:]}" if 1900 < year < 2200 else column


def python_format(fmt: str | None) -> str:
    """A column_config number format ("%.1f", "%+.1f", "localized", "percent") as a Python format."""
    if not fmt or fmt in ("localized", "accounting"):
        return "{:,.0f}" if fmt else "{:,.2f}"
    if fmt == "percent":
        return "{:.1%}"
    printf = re.fullmatch(r"%([-+ 0#]*\d*(?:\.\d+)?[dfeEgGs])(.*)", fmt)
    if printf:  # "%.1f" -> "{:.1f}"; "%.0f%%" -> "{:.0f}%": the spec, then the text after it
        spec, after = printf.groups()
        return "{:" + spec + "}" + after.replace("%%", "%").replace("{", "{{").replace("}", "}}")
    return "{}"


def no_none(df: pd.DataFrame, column_config: dict) -> tuple[pd.DataFrame, dict]:
    """Number and date columns with missing values shown as text with a dash (numbers formatted as their config
    says, dates as `2024-09-23`), so a table never prints "None"; columns without gaps stay numbers and dates
    (sortable)."""
    out, config = df.copy(), dict(column_config)
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            if out[col].isna().any():
                spec = config.get(col) if isinstance(config.get(col), dict) else {}
                out[col] = [MISSING if pd.isna(v) else f"{v:%Y-%m-%d}" for v in out[col]]
                config[col] = st.column_config.TextColumn(spec.get("label") if spec else config.get(col),
                                                          help=spec.get("help") if spec else None)
            continue
        if not pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col]):
            continue
        if not out[col].isna().any():
            continue
        spec = config.get(col) if isinstance(config.get(col), dict) else {}
        fmt = (spec.get("type_config") or {}).get("format") if spec else None
        out = filled(out, {col: python_format(fmt) if fmt else "{:,.1f}"})
        config[col] = st.column_config.TextColumn(spec.get("label") if spec else None, alignment="right",
                                                  help=spec.get("help") if spec else None)
    return out, config


_ARROW: dict[int, tuple[weakref.ref, pa.Table]] = {}


def arrow_ready(frame):
    """A DataFrame as the Arrow table ``st.dataframe`` makes of it, made once per frame object.

    ``st.dataframe`` converts a DataFrame to Arrow on every rerun; given the Arrow table it only writes it
    out, and the bytes sent are the same. A frame shared between reruns (a ``cache_resource`` result, a
    finished chart's table) is converted once and the table is dropped with the frame. Such a frame must
    not change after it has been drawn. Use where the index is hidden or shown as it is (with a row
    selection and ``hide_index=None`` Streamlit decides from the pandas index); anything else is returned
    unchanged.
    """
    if not isinstance(frame, pd.DataFrame):
        return frame
    key = id(frame)
    held = _ARROW.get(key)
    if held is not None and held[0]() is frame:
        return held[1]
    table = dataframe_util.convert_pandas_df_to_arrow_table(frame)

    def forget(ref: weakref.ref, key: int = key) -> None:
        if _ARROW.get(key, (None,))[0] is ref:
            _ARROW.pop(key, None)

    _ARROW[key] = (weakref.ref(frame, forget), table)
    return table


def arrow_bytes(frame: pd.DataFrame) -> bytes:
    """A chart dataset as the Arrow IPC bytes ``st.vega_lite_chart`` would send for it."""
    return dataframe_util.convert_anything_to_arrow_bytes(frame)
