"""Streamlit helpers shared by every page: the engine, cached loaders keyed on the data version.

Pages stay thin: they read the URL and widgets, call `analytics/`, and draw. Anything
Streamlit-specific that two pages need lives here, once.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from analytics import storage


@st.cache_resource(show_spinner="Preparing the database…")
def engine() -> Engine:
    """The app's engine; an empty embedded database is filled with the demo district once."""
    return storage.ensure_database()


def data_version() -> int:
    return storage.data_version(engine())


@st.cache_data(show_spinner=False, max_entries=8)
def _schools(version: int) -> pd.DataFrame:
    return storage.load_schools(engine())


def schools() -> pd.DataFrame:
    return _schools(data_version())
