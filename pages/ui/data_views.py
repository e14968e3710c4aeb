"""The Data page as drawn (`/data`, editors): its data-quality table, import history, row counts and data
dictionary, and what its first view reads, made ahead after an import.

The page draws no analysis, but its first view after an import read the import history and every table's row
count (a count over every row: tens of milliseconds at 2,000 schools) and the audit log's opening view, several
times its warm rerun (DESIGN §8 asks <= 5x). The preparer reads them in its data-quality step
(:func:`prepare_opening`), through the functions the page calls and under the keys it calls them with, so the
page's first view only reads them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from analytics.data import loads, schema, storage
from pages.ui import audit, caching, catalog_loaders, data_versions
from pages.ui.tables import arrow_ready


@caching.drawn
def quality_table(version: int) -> pd.DataFrame:
    """Data-quality counts as shown, once per import version (every import bumps it)."""
    quality = catalog_loaders._data_quality(version)
    return quality.replace({"missing_years": {"": "none"}, "missing_groups": {"": "none"}}) if len(quality) else quality


@caching.drawn
def import_history(version: int) -> pd.DataFrame:
    """The import history as shown, once per data version (an import of workspace files alone bumps only that)."""
    return loads.load_imports(data_versions.engine()).drop(columns=["import_id"])


@caching.drawn
def dictionary_files() -> tuple[pd.DataFrame, bytes]:
    """The data dictionary and its CSV (the schema is the code's: the same on every run)."""
    dictionary = schema.data_dictionary()
    return dictionary, dictionary.to_csv(index=False).encode("utf-8")


def prepare_opening(versions: storage.Versions) -> Iterator[None]:
    """Everything the Data page's first view reads besides the data-quality counts (the preparer's step before
    this): its tables as shown and their Arrow form (:func:`~pages.ui.tables.arrow_ready`), the row counts of the
    data version, and the audit log as the page opens on it. Each `yield` ends a piece."""
    arrow_ready(quality_table(versions.imports))
    yield
    arrow_ready(import_history(versions.changes))
    catalog_loaders._table_counts(versions.changes)
    yield
    arrow_ready(dictionary_files()[0])
    yield
    arrow_ready(audit.opening_log(data_versions.engine()))
