"""Shared results held in little memory (DESIGN §8 memory bar): every cluster's parts joined into one frame
(`ClusterParts`), and text or number columns held as categories or narrower numbers, read back in their own types."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd


class ClusterParts(Mapping):
    """Every cluster's part of a result (a frame or series each, or a tuple of them, or None), kept as one frame
    per position, cluster after cluster, and read as the mapping it was made from: a cluster's part is a slice
    of it, with its own index, columns and types. Each of a few thousand small frames held apart costs 1-3 KiB
    of pandas' own objects beside its rows (DESIGN §8 memory bar). A part whose columns, types or index differ
    from the first one's is kept as it was. Shared and read-only."""

    def __init__(self, parts: Mapping[str, object]):
        self._names = list(parts)
        widths = {len(part) if isinstance(part, tuple) else None for part in parts.values()}
        self._width = widths.pop() if len(widths) == 1 else None  # tuples of one width: joined position by position
        if self._width:
            self._positions = [_Joined({name: part[i] for name, part in parts.items()}) for i in range(self._width)]
        else:
            self._width, self._positions = None, [_Joined(parts)]

    def __getitem__(self, cluster: str):
        if cluster not in self:
            raise KeyError(cluster)
        if self._width is None:
            return self._positions[0].part(cluster)
        return tuple(position.part(cluster) for position in self._positions)

    def __contains__(self, cluster) -> bool:
        return cluster in self._positions[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _Joined:
    """One position of :class:`ClusterParts`: the parts alike joined into one frame, each one's rows a slice."""

    def __init__(self, parts: Mapping[str, object]):
        first = next((part for part in parts.values() if isinstance(part, (pd.DataFrame, pd.Series))), None)
        joined = [name for name, part in parts.items() if first is not None and _alike(part, first)]
        kept = set(joined)
        self._apart = {name: part for name, part in parts.items() if name not in kept}
        # A part numbered by a range (most are: 0, 1, 2...) is given back with that range again.
        self._ranges = {name: (index.start, index.stop, index.step) for name in joined
                        if isinstance(index := parts[name].index, pd.RangeIndex)}
        self._joined = pd.concat([parts[name] for name in joined], ignore_index=len(self._ranges) == len(joined)) \
            if joined else None
        ends = np.cumsum([len(parts[name]) for name in joined], dtype=np.intp)
        self._rows = {name: slice(int(end) - len(parts[name]), int(end))
                      for name, end in zip(joined, ends, strict=True)}

    def __contains__(self, cluster: str) -> bool:
        return cluster in self._rows or cluster in self._apart

    def part(self, cluster: str):
        rows = self._rows.get(cluster)
        if rows is None:
            return self._apart[cluster]
        part, numbered = self._joined.iloc[rows], self._ranges.get(cluster)
        return part if numbered is None else part.set_axis(pd.RangeIndex(*numbered, name=part.index.name))


def _alike(part, first) -> bool:
    """Whether `part` joins `first` and comes back the same: the same kind, columns (or name), types and index."""
    if type(part) is not type(first):
        return False
    kind = _index_kind(part.index)
    if kind is None or kind != _index_kind(first.index) or part.index.name != first.index.name:
        return False
    if isinstance(part, pd.Series):
        return part.dtype == first.dtype and part.name == first.name
    return (part.columns.equals(first.columns) and part.columns.dtype == first.columns.dtype
            and part.columns.names == first.columns.names and part.dtypes.equals(first.dtypes))


def _index_kind(index: pd.Index):
    """Ranges and whole numbers are one kind (joined, a range is given back as a range); a MultiIndex joins none."""
    if isinstance(index, pd.MultiIndex):
        return None
    if isinstance(index, pd.RangeIndex) or type(index) is pd.Index and index.dtype == np.int64:
        return "whole numbers"
    return type(index), index.dtype


def texts_as_categories(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """`frame` with its text columns as categories, and their own types: what is kept for every school (profiles,
    opening views) holds each school's, metric's and group's name once (a third of a profile's memory at 2,000
    schools; DESIGN §8 memory bar). A school's rows are given back in their own types (``.astype(types)``)."""
    texts = {col: dtype for col, dtype in frame.dtypes.items()  # "str" on pandas 3, object before
             if dtype == "str" or dtype == "object"}
    return frame.astype({col: "category" for col in texts}), texts


def numbers_compact(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """:func:`texts_as_categories`, and number columns held in fewer bytes that give back the very same values:
    a column of few distinct values (a block's one school year, the district's figure of each metric and group)
    as categories, whole counts as 32-bit integers. Every school's profile keeps 16 columns of 14,000 rows a
    block (DESIGN §8 memory bar); :func:`rows_as_read` gives a school's rows back in their own types."""
    kept, types = texts_as_categories(frame)
    narrowed = {}
    for col, dtype in frame.dtypes.items():
        if col in types or dtype not in (np.int64, np.float64) or not len(frame):
            continue
        values = frame[col].to_numpy()
        if dtype == np.float64 and (np.signbit(values) & (values == 0)).any():
            continue  # -0.0 would come back as 0.0 from categories
        if pd.unique(values).size <= len(values) // 16:
            narrowed[col] = "category"
        elif (dtype == np.int64 or not np.isnan(values).any() and (values == np.round(values)).all()) \
                and np.abs(values).max() < 2**31:
            narrowed[col] = np.int32
    return kept.astype(narrowed), types | {col: dtype for col, dtype in frame.dtypes.items() if col in narrowed}


def rows_as_read(frame: pd.DataFrame, rows: slice | np.ndarray, texts: dict) -> pd.DataFrame:
    """Rows of a frame of :func:`texts_as_categories` or :func:`numbers_compact` (a school's), with those columns
    given back in their own types (`texts`): ``frame.iloc[rows].reset_index(drop=True).astype(texts)``, made column
    by column from the categories and codes, several times faster on a school's rows (a school's first view reads
    a few of them)."""
    columns = {}
    for col in frame.columns:
        values = frame[col].array[rows]
        if col in texts:
            if isinstance(values, pd.Categorical) and values.categories.dtype == texts[col]:
                values = values.categories.array.take(values.codes, allow_fill=True)
            elif isinstance(values, pd.Categorical) or texts[col] not in (np.int64, np.float64):
                return frame.iloc[rows].reset_index(drop=True).astype(texts)
            else:  # narrowed numbers
                values = values.to_numpy().astype(texts[col])
        columns[col] = values
    return pd.DataFrame(columns, columns=frame.columns)


def _as_read(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows kept with their text columns as categories (the district's suspension ratios), in pandas' text type
    again (the categories' own type: "str" on pandas 3, object before, where a missing text stays missing)."""
    return frame.astype({col: dtype.categories.dtype for col, dtype in frame.dtypes.items()
                         if isinstance(dtype, pd.CategoricalDtype)})
