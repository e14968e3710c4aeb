"""Tables people read: missing numbers shown as a dash, never as "None"."""

from __future__ import annotations

import pandas as pd
import streamlit as st

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
