"""One school's metric rows and its profile against the district; every school's profiles, made a block at a time."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from analytics.data import aggregates, loads, storage
from analytics.data.derived import metrics_with_suspension
from analytics.stats.summaries import profile_slices, school_profile, school_profiles
from pages.ui.catalog_loaders import _schools, _years
from pages.ui.compact import numbers_compact, rows_as_read
from pages.ui.data_versions import _imported, _then_release, engine, import_version
from pages.ui.discipline_loaders import _discipline
from pages.ui.metric_loaders import _district_figures


@st.cache_resource(show_spinner=False, max_entries=16)
@_imported
def _school_rows(version: int, school_id: str) -> pd.DataFrame:
    """The school's metric rows as imported (read by its key)."""
    return loads.load_metrics(engine(), school_ids=[school_id])


@st.cache_resource(show_spinner=False, max_entries=16)
def _school_metrics(version: int, school_id: str) -> pd.DataFrame:
    # The school's discipline rows through their own cache: its page draws them too (one read, not two).
    return metrics_with_suspension(_school_rows(version, school_id), _discipline(version, (school_id,)))


def school_metrics(school_id: str) -> pd.DataFrame:
    """One school's metric rows, every year and group (suspension rate derived when not imported): read by
    the school's key (its unique index), never the district's rows."""
    return _school_metrics(import_version(), school_id)


PROFILE_BLOCK = 100  # schools per piece of the district's profiles (about half a second each)


class SchoolProfiles:
    """Every school's profile for one year (:func:`analytics.stats.summaries.school_profiles`), made a block
    of schools at a time: the preparer makes each block in a piece of its own, before the block's opening
    views (:class:`pages.ui.school_views.OpeningViews`), and a school's first view only slices its block
    (before the preparer has made it, the page makes the school's own profile, as fast as ever).
    Shared and read-only."""

    def __init__(self, version: int, year: int, school_ids: Sequence[str]):
        self.version, self.year = version, year
        ids = sorted(map(str, school_ids))
        self._blocks = [ids[i:i + PROFILE_BLOCK] for i in range(0, len(ids), PROFILE_BLOCK)]
        self._block_of = {school: i // PROFILE_BLOCK for i, school in enumerate(ids)}
        self._made: dict[int, tuple[pd.DataFrame, dict[str, tuple[int, int]], dict]] = {}
        self._lock = threading.Lock()

    def _make(self, block: int) -> tuple[pd.DataFrame, dict[str, tuple[int, int]], dict]:
        with self._lock:  # one block is made once, whoever asks first
            made = self._made.get(block)
            if made is None:
                made = self._made[block] = _then_release(self._read)(self._blocks[block])
            return made

    def _read(self, ids: list[str]) -> tuple[pd.DataFrame, dict[str, tuple[int, int]], dict]:
        eng, year = engine(), self.year
        derived = _suspension_derived(self.version, year)  # the district's year decides, not the block's rows
        rows = storage.read_at_version(eng, self.version, lambda: metrics_with_suspension(
            loads.load_metrics(eng, years=[year], school_ids=ids),
            loads.load_discipline(eng, years=[year], school_ids=ids), derived), storage.IMPORTS)
        ordered, where = profile_slices(school_profiles(rows, year, _district_figures(self.version, year)))
        compact, types = numbers_compact(ordered)
        return compact, where, types

    def block(self, block: int) -> tuple[list[str], pd.DataFrame, dict[str, tuple[int, int]], dict]:
        """A block's schools, and its profiles made (if not yet): the frame, each school's rows in it, the text
        columns' types (what each school's opening view is made from, :mod:`pages.ui.school_views`)."""
        return self._blocks[block], *self._make(block)

    def blocks(self) -> int:
        return len(self._blocks)

    def block_of(self, school_id: str) -> int | None:
        return self._block_of.get(school_id)

    def of(self, school_id: str) -> pd.DataFrame | None:
        """The school's profile (:func:`~analytics.stats.summaries.school_profile`'s rows and columns); None
        while its block is not made yet, or for a school the district did not have when this was made."""
        made = self._made.get(self._block_of.get(school_id, -1))
        if made is None:
            return None
        frame, where, texts = made
        if school_id not in where:
            return pd.DataFrame()
        start, stop = where[school_id]
        return rows_as_read(frame, slice(start, stop), texts)


@st.cache_resource(show_spinner=False, max_entries=2)
def _school_profiles(version: int, year: int) -> SchoolProfiles:
    return SchoolProfiles(version, year, _schools(version)["school_id"].tolist())


@st.cache_data(show_spinner=False, max_entries=8)
@_imported
def _suspension_derived(version: int, year: int) -> bool:
    return aggregates.suspension_derived(engine(), [year])


def school_profile_of(school_id: str, year: int) -> pd.DataFrame:
    """A school's profile for a year against the district (:func:`analytics.stats.summaries.school_profile`).
    The latest year's is a slice of every school's, made in blocks after an import (the preparer); an earlier
    year's, or one whose block is not made yet, is made from the school's own rows (the same frame). Either
    way `suspension_rate` is derived from discipline exactly when no school imported it for the year (as the
    district figure it is set against), not as the block's or the school's own rows would say."""
    version = import_version()
    year = int(year)
    if year == max(_years(version), default=None):
        found = _school_profiles(version, year).of(school_id)
        if found is not None:
            return found
    metrics, discipline = _school_rows(version, school_id), _discipline(version, (school_id,))
    rows = metrics_with_suspension(metrics[metrics["school_year"] == year],
                                   discipline[discipline["school_year"] == year], _suspension_derived(version, year))
    return school_profile(rows, None, year, district=_district_figures(version, year))
