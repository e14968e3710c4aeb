"""A school's page as drawn (`/school`): its profile table, trend and discipline table with their column
settings, and what every school's opening view reads, made ahead after an import.

A school's first view would otherwise read all the school's rows and test its changes and gaps: several
times its warm rerun at 2,000 schools (DESIGN §8 asks <= 5x). The preparer makes, for every school and a
block of schools at a time right after the block's profiles (:class:`pages.ui.school_loaders.SchoolProfiles`), from
one read of the block's rows: the school's years and groups, the findings' lines, the rows of its opening
trend and its values by series and year, its profile table and its discipline table of the latest year (each
made once for the whole block), with the functions the page calls for any other view, so the two are the
same. What a first view still does itself is the trend chart's finishing and the tables' Arrow conversion.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from analytics.data import loads, storage
from analytics.data.catalog import STUDENT_GROUPS, group_label
from analytics.data.derived import metrics_with_suspension_by_school
from analytics.outputs.school_view import (
    profile_display,
    school_findings,
    trend_groups,
    trend_rows,
    years_and_groups,
)
from pages.ui import catalog_loaders, compact, data_versions, school_loaders
from pages.ui.charts import finished
from pages.ui.filters import year_label
from pages.ui.tables import filled, no_none, text_columns, year_label_of
from pages.ui.viewer import public_cells

PROFILE_COLUMNS = ["Metric", "Group", "School (%)", "ci_low", "ci_high", "denominator", "district_value",
                   "vs_district", "target", "gap", "note"]
PROFILE_SOURCES = {"School (%)": "value"}  # the profile's column a shown number is (the others keep their names)


def profile_table(show: pd.DataFrame, school_id: str, year: int, public: bool):
    """One school's profile as shown (:func:`analytics.outputs.school_view.profile_display`), with the privacy
    rules in a shared view: the table people read, its column settings and the table downloaded."""
    config = {
        "ci_low": st.column_config.NumberColumn("95% CI low", format="%.1f"),
        "ci_high": st.column_config.NumberColumn("95% CI high", format="%.1f"),
        "School (%)": st.column_config.NumberColumn(format="%.1f"),
        "denominator": st.column_config.NumberColumn("n", format="localized"),
        "district_value": st.column_config.NumberColumn("District (%)", format="%.1f"),
        "vs_district": st.column_config.NumberColumn("vs district (pts)", format="%+.1f"),
        "target": st.column_config.NumberColumn("Target (%)", format="%.1f"),
        "gap": st.column_config.NumberColumn("Gap vs other students (pts)", format="%+.1f"),
        "note": st.column_config.TextColumn("Note"),
    }
    shown = show[PROFILE_COLUMNS]
    if public:  # each row is a cell of the district's release; a gap also needs the school's ALL cell, and the
        n_rows = len(show)  # district value beside it is the district's cell
        metrics_of, groups_of, years_of = show["metric"].tolist(), show["student_group"].tolist(), [year] * n_rows
        shown, config = public_cells(
            shown, config, cells=([school_id] * n_rows, years_of, metrics_of, groups_of),
            n_col="denominator", rate_col="School (%)", interval_cols=["ci_low", "ci_high"],
            derived_cols=["vs_district", "gap"],
            requires={"vs_district": (["district"] * n_rows, years_of, metrics_of, groups_of),
                      "gap": ([school_id] * n_rows, years_of, metrics_of, ["ALL"] * n_rows)},
            rates={"district_value": (["district"] * n_rows, years_of, metrics_of, groups_of)})
    # Columns with nothing in them (e.g. intervals and n for report-card files without counts) are not drawn.
    empty = [c for c in ("ci_low", "ci_high", "denominator", "target", "gap", "note")
             if show[c].replace("", np.nan).isna().all()]
    readable, readable_config = no_none(shown.drop(columns=empty), config)
    return readable, readable_config, shown


def trend_wide(trend: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """The trend rows' values by series and school year (a row a series, a column a year with a value), or a
    block of schools' at once by their ``school_id`` first (`by`): a school's rows of it, without the years it
    has no value in, are its own."""
    return trend.pivot_table(index=[*(by or []), "series"], columns="school_year", values="value")


def trend_view(trend: pd.DataFrame, metric_label: str, school_name: str, key: tuple,
               wide: pd.DataFrame | None = None):
    """The trend chart of :func:`analytics.outputs.school_view.trend_rows` (those a view may show), finished
    under `key` (the view: no hashing of rows), its table by year and its summary; None with one school year.
    `wide` is :func:`trend_wide` of the rows when made already."""
    if trend["school_year"].nunique() <= 1:
        return None
    wide = trend_wide(trend) if wide is None else wide
    first, last = wide.columns.min(), wide.columns.max()
    summary = (f"{metric_label} at {school_name}, {year_label(first)} to {year_label(last)}: " + "; ".join(
        f"{g} {wide.loc[g, first]:.1f}% → {wide.loc[g, last]:.1f}%" for g in wide.index
        if pd.notna(wide.loc[g, first]) and pd.notna(wide.loc[g, last])) + ".")
    by_year = filled(wide.reset_index().rename(columns={"series": "Group"}),
                     {y: "{:.1f}" for y in wide.columns}).rename(columns=year_label_of)
    title = f"{metric_label} by group"
    from analytics.outputs import charts_district  # with its chart: Altair is not imported by every first run

    chart = finished(charts_district.trend_lines, trend, metric_label, title=title, key=key)
    return chart, by_year, summary


def discipline_table(current: pd.DataFrame, school_id: str, year: int, public: bool):
    """A school's suspension table for a year (its discipline rows of the year) with its column settings; None
    without rows. Rows by school, then the catalog's group order: a block of schools' rows give each school's
    table one after another (staff views), as each school's alone."""
    if current.empty:
        return None
    suspended = current["students_suspended"].fillna(current["students_oss"])
    table = pd.DataFrame({
        "Group": current["student_group"].map(group_label),
        "Enrolled": current["enrolled"],
        "Suspended": suspended,
        "Rate (%)": np.where(current["enrolled"] >= 10, 100 * suspended / current["enrolled"], np.nan),
        "OSS days": current["oss_days"],
    })
    table["_school"] = current["school_id"].to_numpy()
    table["_order"] = current["student_group"].map({g: i for i, g in enumerate(STUDENT_GROUPS)}).to_numpy()
    table = table.sort_values(["_school", "_order"], kind="stable").drop(columns=["_school", "_order"])
    config = text_columns({"Rate (%)": "Rate (%)"}) | {"Enrolled": st.column_config.NumberColumn(format="localized")}
    if public:  # each row is a suspension cell of the release; OSS days need the OSS cell too
        ordered = current.loc[table.index]
        n_rows = len(ordered)
        cells = ([school_id] * n_rows, [year] * n_rows, ["suspension_rate"] * n_rows, ordered["student_group"].tolist())
        table, config = public_cells(table, config, cells=cells, n_col="Enrolled", count_cols=["Suspended"],
                                     rate_col="Rate (%)", derived_cols=["OSS days"],
                                     requires={"OSS days": (*cells[:2], ["oss"] * n_rows, cells[3])})
    return filled(table.reset_index(drop=True), {"Rate (%)": "{:.1f}"}), config


@dataclass(frozen=True)
class OpeningView:
    """What a school's first view needs beyond its profile for the district's latest year, seen by staff (no
    shared link): its years and groups, the findings' lines, and the trend's default metric and groups (whose
    rows :meth:`OpeningViews.trend_rows` gives). Made ahead, read-only and shared."""

    years: list[int]
    present: set[str]
    metrics: list[str]  # the profile's metrics, in its order (the trend's choices)
    findings: list[str]
    metric: str
    groups: tuple[str, ...]


class _Block:
    """A block's opening views, the trend rows of each school's opening trend, the profile tables and the
    discipline table of the year of the schools with a view (the others' pages read their own): one frame each,
    its text columns kept as categories (:func:`pages.ui.compact.texts_as_categories`: a few kB a school; a
    school's rows are given back in their own types), and each school's rows in it."""

    def __init__(self, views: dict[str, OpeningView], trends: list[pd.DataFrame], discipline: pd.DataFrame,
                 display: pd.DataFrame | None = None, year: int = 0, profiles: tuple[pd.DataFrame, dict] = (None, {})):
        self.views = views
        every = pd.concat(trends, ignore_index=True) if trends else None
        self.trends, self.trend_texts = compact.texts_as_categories(every) if trends else (None, {})
        self.trend_at = _positions(self.trends)
        # Each school's trend by series and year (the page's table by year and summary), in one pivot.
        self.wide = trend_wide(every, by=["school_id"]) if every is not None and len(every) else None
        self.wide_at = _positions(self.wide.index.to_frame(index=False)) if self.wide is not None else {}
        current = discipline[discipline["school_id"].isin(list(views))].sort_values("school_id", kind="stable")
        made = discipline_table(current, "", year, public=False)  # staff views: one config for every school
        self.discipline, self.discipline_texts = compact.texts_as_categories(made[0]) if made else (None, {})
        self.discipline_config = made[1] if made else None
        self.discipline_at = _positions(pd.DataFrame({"school_id": current["school_id"].to_numpy()}))
        self.profiles = _ProfileTables(display, year, profiles) if display is not None else None


def _positions(frame: pd.DataFrame | None) -> dict[str, np.ndarray]:
    return frame.groupby("school_id", sort=False, observed=True).indices \
        if frame is not None and len(frame) else {}


def _rows(frame: pd.DataFrame, texts: dict, at: dict[str, np.ndarray], school_id: str) -> pd.DataFrame:
    return compact.rows_as_read(frame, at[school_id] if school_id in at else slice(0, 0), texts)


class _ProfileTables:
    """A block's profile tables as staff see them (:func:`profile_table` of each school's
    :func:`~analytics.outputs.school_view.profile_display`), made once for the block and kept compact: the table
    downloaded, every school's rows one after another, and the text the table people read shows in place of
    numbers where a school's column has a gap. The downloaded table's numbers are the block's profile numbers
    (`profiles`, kept by :class:`pages.ui.school_loaders.SchoolProfiles`) in the display's order, blank where a small
    group's are hidden: only the profile rows they come from and the blanks are kept, and each school's are taken
    again when its table is read (0.9 MiB less a block of 100 schools; DESIGN §8 memory bar). Which columns a
    school's table drops (nothing in them) or shows as text (a gap in them) is the same for schools whose columns
    are empty and gapped alike, so :func:`profile_table` is called once for each such set of schools: it does to
    each column of theirs what it does to one school's."""

    def __init__(self, display: pd.DataFrame, year: int, profiles: tuple[pd.DataFrame, dict]):
        schools = display["school_id"].to_numpy()
        self.at = {school: (int(rows[0]), int(rows[-1]) + 1)  # a school's rows are together (the display's order)
                   for school, rows in display.groupby(schools, sort=False).indices.items()}
        self._numbers(display, profiles)
        self.labels, self.label_texts = compact.texts_as_categories(
            display[[c for c in PROFILE_COLUMNS if c not in self.numbers]])
        self.layout: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict]] = {}
        texts: dict[str, pd.Series] = {}
        for alike in _alike(display, schools).values():
            rows = np.concatenate([np.arange(*self.at[school]) for school in alike])
            readable, config, shown = profile_table(display.iloc[rows], "", year, public=False)
            dropped = tuple(c for c in PROFILE_COLUMNS if c not in readable.columns)
            as_text = tuple(c for c in readable.columns if readable[c].dtype != shown[c].dtype)
            for col in as_text:
                texts.setdefault(col, pd.Series(pd.NA, index=display.index, dtype=readable[col].dtype))
                texts[col].iloc[rows] = readable[col].to_numpy()
            layout = (dropped, as_text, config)
            self.layout.update(dict.fromkeys(alike, layout))
        self.texts, self.text_types = compact.texts_as_categories(pd.DataFrame(texts, index=display.index))

    def _numbers(self, display: pd.DataFrame, profiles: tuple[pd.DataFrame, dict]) -> None:
        """Which shown number columns are the profile's (`_row`: each display row's profile row), and where they
        are blank though the profile has a number; a column that is not (none today) is kept as shown."""
        (self.profiles, self.profile_types), self.rows = profiles, display["_row"].to_numpy(np.int32)
        self.numbers: dict[str, tuple[str, np.ndarray | None]] = {}
        blanks: list[np.ndarray] = []
        for col in PROFILE_COLUMNS:
            source = PROFILE_SOURCES.get(col, col)
            if source not in self.profiles.columns or display[col].dtype != np.float64 \
                    or self.profile_types.get(source, self.profiles[source].dtype) != np.float64:
                continue
            taken, shown = self._taken(source, self.rows), display[col].to_numpy()
            blank = np.isnan(shown) & ~np.isnan(taken)
            if np.array_equal(np.where(blank, np.nan, taken), shown, equal_nan=True):
                same = next((known for known in blanks if np.array_equal(known, blank)), None)
                if same is None and blank.any():
                    blanks.append(same := blank)  # small groups hide every number of theirs: one mask
                self.numbers[col] = (source, same)

    def _taken(self, source: str, rows: np.ndarray) -> np.ndarray:
        """The profile's `source` numbers at `rows`, in their own type (the profile keeps some narrowed)."""
        return np.asarray(self.profiles[source].array.take(rows), dtype=np.float64)

    def _shown(self, start: int, stop: int) -> pd.DataFrame:
        labels = compact.rows_as_read(self.labels, slice(start, stop), self.label_texts)
        rows = self.rows[start:stop]
        columns = {}
        for col in PROFILE_COLUMNS:
            if col not in self.numbers:
                columns[col] = labels[col].array
                continue
            source, blank = self.numbers[col]
            values = self._taken(source, rows)
            columns[col] = values if blank is None else np.where(blank[start:stop], np.nan, values)
        return pd.DataFrame(columns, columns=PROFILE_COLUMNS)

    def of(self, school_id: str):
        """The school's (readable table, its column settings, table downloaded), as :func:`profile_table` gives
        them for its profile; None for a school the block has no profile rows of."""
        if school_id not in self.at:
            return None
        start, stop = self.at[school_id]
        dropped, as_text, config = self.layout[school_id]
        shown = self._shown(start, stop)
        text = compact.rows_as_read(self.texts[list(as_text)], slice(start, stop), self.text_types)
        readable = pd.DataFrame({col: (text if col in as_text else shown)[col].array for col in shown.columns
                                 if col not in dropped})
        return readable, config, shown


def _alike(display: pd.DataFrame, schools: np.ndarray) -> dict[tuple, list[str]]:
    """The schools whose profile columns are empty alike and have gaps alike (the note empty when blank)."""
    missing = display[PROFILE_COLUMNS].isna()
    missing["note"] = missing["note"] | display["note"].eq("").to_numpy()
    by = missing.groupby(schools, sort=False)
    every, some = by.all(), by.any()
    alike: dict[tuple, list[str]] = {}
    for school, key in zip(every.index, np.hstack([every.to_numpy(), some.to_numpy()]).tolist(), strict=True):
        alike.setdefault(tuple(key), []).append(school)
    return alike


class OpeningViews:
    """Every school's :class:`OpeningView` for the latest year, made a block of schools at a time after the
    block's profiles (the preparer's pieces), from one read of the block's rows. Shared and read-only; a school
    whose block is not made yet, or whose own latest year is not the district's, has none (its page reads and
    makes what it draws). Its tables are kept as compact frames (about 11 KiB a school) and its chart is finished
    on the first view: every school's drawn view kept would hold some 300 MiB at 2,000 schools."""

    def __init__(self, profiles: school_loaders.SchoolProfiles):
        self._profiles = profiles
        self._made: dict[int, _Block] = {}
        self._lock = threading.Lock()
        self._same: dict[tuple, object] = {}  # one object for the years, groups and metrics schools share

    def _one_of(self, value):
        """`value`, or an equal one kept for another school: most schools have the same years, groups and
        metrics, and each held its own (a few kB a school at 2,000 schools; read-only, so shared)."""
        key = (type(value), frozenset(value) if isinstance(value, set) else tuple(value))
        return self._same.setdefault(key, value)

    def pieces(self):
        """Each block's profiles, then its opening views: a piece each (the preparer gives way between them)."""
        for block in range(self._profiles.blocks()):
            self._profiles.block(block)
            yield
            with self._lock:
                if block not in self._made:
                    self._made[block] = data_versions._then_release(self._make)(block)
            yield

    def _with_view(self, school_id: str) -> _Block | None:
        """The school's block, made, when the school has an opening view in it (else None: its page reads its own)."""
        block = self._profiles.block_of(school_id)
        made = self._made.get(block) if block is not None else None
        return made if made is not None and school_id in made.views else None

    def of(self, school_id: str) -> OpeningView | None:
        made = self._with_view(school_id)
        return made.views[school_id] if made is not None else None

    def trend_rows(self, school_id: str) -> pd.DataFrame | None:
        """The rows of the school's opening trend (:func:`~analytics.outputs.school_view.trend_rows` of its
        :class:`OpeningView` metric and groups)."""
        made = self._with_view(school_id)
        return _rows(made.trends, made.trend_texts, made.trend_at, school_id) if made is not None else None

    def trend_wide(self, school_id: str) -> pd.DataFrame | None:
        """:func:`trend_wide` of the school's opening trend rows."""
        made = self._with_view(school_id)
        if made is None or school_id not in made.wide_at:
            return None
        return made.wide.iloc[made.wide_at[school_id]].droplevel("school_id").dropna(axis=1, how="all")

    def discipline_table(self, school_id: str):
        """The school's discipline table of the latest year with its column settings, as :func:`discipline_table`
        gives them for a member of staff (None without discipline rows)."""
        made = self._with_view(school_id)
        if made is None or school_id not in made.discipline_at:
            return None
        return _rows(made.discipline, made.discipline_texts, made.discipline_at, school_id), made.discipline_config

    def profile_table(self, school_id: str):
        """The school's profile table as staff see it (:func:`profile_table`: readable, settings, downloaded)."""
        made = self._with_view(school_id)
        return made.profiles.of(school_id) if made is not None and made.profiles is not None else None

    def _make(self, block: int) -> _Block:
        version, year = self._profiles.version, self._profiles.year
        ids, frame, where, texts = self._profiles.block(block)
        eng = data_versions.engine()
        metrics, discipline = storage.read_at_version(eng, version, lambda: (
            loads.load_metrics(eng, school_ids=ids), loads.load_discipline(eng, school_ids=ids)), storage.IMPORTS)
        rows = metrics_with_suspension_by_school(metrics, discipline)
        rows_at = rows.groupby("school_id", sort=False).indices
        labels = catalog_loaders._metric_labels(version)
        higher = catalog_loaders._directions(version)
        profiles = frame.astype(texts)  # each school's profile is a slice of the block's, as its page reads it
        views, trends = {}, []
        for school in ids:
            if school not in rows_at or school not in where:
                continue
            own = rows.iloc[rows_at[school]]
            years, present = years_and_groups(own)
            if years[-1] != year:  # the page opens on the school's own latest year
                continue
            start, stop = where[school]
            profile = profiles.iloc[start:stop].reset_index(drop=True)
            choices = self._one_of(list(profile["metric"].unique()))
            groups = self._one_of(tuple(trend_groups(present)))
            years, present = self._one_of(years), self._one_of(present)
            views[school] = OpeningView(
                years, present, choices,
                school_findings(own, profile, school, year, years, lambda m: labels.get(m, m),
                                lambda m: higher.get(m, True)),
                choices[0], groups)
            trends.append(trend_rows(own, choices[0], groups))
        with_view = profiles["school_id"].isin(list(views)).to_numpy()
        display = profile_display(profiles[with_view].assign(_row=np.flatnonzero(with_view)), labels)
        return _Block(views, trends, discipline[discipline["school_year"] == year], display, year, (frame, texts))


@st.cache_resource(show_spinner=False, max_entries=2)
def _opening_views(version: int, year: int) -> OpeningViews:
    return OpeningViews(school_loaders._school_profiles(version, year))


def opening_views() -> OpeningViews | None:
    """Every school's opening view of the latest year (:class:`OpeningViews`; None without data)."""
    version = data_versions.import_version()  # read from imported tables alone
    latest = max(catalog_loaders._years(version), default=None)
    return None if latest is None else _opening_views(version, latest)
