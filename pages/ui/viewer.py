"""Read-only shared links on screen: opening a token, the viewer's sidebar and privacy-safe tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from sqlalchemy import exc as sa_exc

from pages.ui.catalog_loaders import higher_is_better, schools
from pages.ui.data_versions import engine, import_version
from pages.ui.links import link
from pages.ui.state import is_public
from pages.ui.tables import MISSING, python_format


def open_share(token: str):
    """(grant, None) for a valid token, (None, message) otherwise; counted once per browser session."""
    from analytics.access.sharing import ShareError, record_open, verify_share

    try:
        grant = verify_share(engine(), token)
    except ShareError as exc:
        return None, str(exc)
    except sa_exc.DBAPIError:  # the database, not the link: the shell says it is unreachable
        raise
    except Exception:  # noqa: BLE001 - e.g. no signing secret on a server: say so without details
        return None, "Shared links are not configured on this server."
    seen = st.session_state.setdefault("opened_shares", set())
    if grant.token_id not in seen:
        record_open(engine(), grant)
        seen.add(grant.token_id)
    st.session_state["share_grant"] = grant
    return grant, None


def _cell_text(value) -> str:
    """A released number as text (counts without decimals), a suppression mark as it is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value:
            return ""
        return f"{value:,.0f}" if float(value).is_integer() and abs(value) >= 10 else f"{value:,.1f}"
    return "" if value is None else str(value)


@st.cache_resource(show_spinner="Applying the privacy rules…", max_entries=2)
def _release(version: int):
    from analytics.access.release_store import release_for
    from analytics.data import storage

    # Never a release of newer data cached under an older version (nor a stale one computed at all). Only its
    # lookups are kept: the whole decision would hold ~100 MiB at 2,000 schools for columns no view reads.
    return storage.read_at_version(engine(), version, lambda: release_for(engine(), lookups=True), storage.IMPORTS)


def release():
    """The district's privacy decision for this data version (one release for every shared view)."""
    return _release(import_version())


def public_view(table: pd.DataFrame, view: str) -> pd.DataFrame:
    """For viewers: an export view's table (DESIGN §7 columns) masked exactly as `--public` masks it."""
    if not is_public():
        return table
    from analytics.access.privacy import release_view

    return release_view(table, view, release(), higher_is_better=higher_is_better())


def cell_states(units, years, metrics, groups):
    """(state, n_hidden) of each cell in the district's release: exact, low, high, hidden or none."""
    rel = release()
    return rel.states(units, years, [rel.measure_of(m) for m in metrics], groups)


def public_cells(df: pd.DataFrame, column_config: dict, *, cells: tuple, n_col: str | None, count_cols=(),
                 rate_col: str | None = None, interval_cols=(), derived_cols=(), requires: dict | None = None,
                 rates: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """For viewers: rows that are cells of the release (``cells`` = unit, year, metric and group sequences)
    masked by it: counts, intervals and derived columns only for exact cells, coded rates as bands.

    ``requires`` maps a column to other cells it is computed from (e.g. a gap needs the school's ALL cell):
    it is shown only when those are exact too. ``rates`` maps a column to the cells whose rate it shows
    (e.g. the district value beside a school's): coded or hidden by their state.
    """
    if not is_public():
        return df, column_config
    from analytics.access.privacy import SUPPRESSED, mask_cells
    from analytics.access.release_cells import EXACT

    state, n_hidden = cell_states(*cells)
    safe = mask_cells(df, state, n_hidden, n_col=n_col, count_cols=count_cols, rate_col=rate_col,
                      interval_cols=interval_cols, derived_cols=derived_cols)
    for col, other in (requires or {}).items():
        other_state, _ = cell_states(*other)
        safe[col] = safe[col].astype(object).where(other_state == EXACT, SUPPRESSED)
    for col, other in (rates or {}).items():
        other_state, other_n = cell_states(*other)
        safe = mask_cells(safe, other_state, np.zeros(len(safe), dtype=bool), n_col=None, rate_col=col)
    return as_shown(safe, column_config)


def released_pct(value: float, unit: str, year: int, metric: str, group: str) -> str:
    """A KPI card's rate as a shared view may show it: the number when its cell is released exactly, its
    band (`<= 5.0%`) when coded, `*` when hidden; editors always see the number."""
    from pages.ui.filters import fmt_pct

    if not is_public() or (value is not None and np.isfinite(value)):
        return fmt_pct(value)
    from analytics.access.privacy import SUPPRESSED
    from analytics.access.release_cells import CODED_HIGH, CODED_LOW, HIDDEN
    from analytics.config import DEFAULT_SETTINGS

    state = cell_states([unit], [year], [metric], [group])[0][0]
    if state == CODED_LOW:
        return f"<= {DEFAULT_SETTINGS.privacy_low_pct:.1f}%"
    if state == CODED_HIGH:
        return f">= {DEFAULT_SETTINGS.privacy_high_pct:.1f}%"
    return SUPPRESSED if state == HIDDEN else fmt_pct(value)


def exact_cells(units, years, metrics, groups) -> np.ndarray:
    """True where the cell is released exactly (always True for editing staff)."""
    if not is_public():
        return np.ones(len(units), dtype=bool)
    from analytics.access.release_cells import EXACT

    state, _ = cell_states(units, years, metrics, groups)
    return state == EXACT


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def as_shown(safe: pd.DataFrame, column_config: dict) -> tuple[pd.DataFrame, dict]:
    """A masked table drawn with the column kinds staff see: links stay links and a column nothing was hidden
    in stays a number column with its format; a column holding `*` or a band is right-aligned text, its
    numbers written as its number format says (so 0.97 reads 0.97, not 1.0) and a missing one as a dash."""
    safe, config = safe.copy(), dict(column_config)
    for col in safe.columns:
        values = safe[col]
        if values.dtype != object:
            continue
        marked = values.map(lambda v: isinstance(v, str))
        numbers = values.map(_is_number)
        if not numbers.any():
            continue  # text (names, links, flags) or wholly withheld: drawn as it is
        spec = config.get(col) if isinstance(config.get(col), dict) else None
        if not marked.any():
            safe[col] = pd.to_numeric(values)  # masking made it `object`; nothing in it was withheld
            continue
        number_format = (spec.get("type_config") or {}).get("format") if spec else None
        fmt = python_format(number_format) if number_format else None
        safe[col] = [v if isinstance(v, str) else MISSING if v is None or v != v
                     else fmt.format(v) if fmt else _cell_text(v) for v in values]
    for col in safe.columns:
        spec = config.get(col) if isinstance(config.get(col), dict) else None
        kind = ((spec or {}).get("type_config") or {}).get("type")
        if kind not in (None, "text", "link") and pd.api.types.is_string_dtype(safe[col]):  # object or str
            config[col] = st.column_config.TextColumn(spec.get("label"), alignment="right", help=spec.get("help"))
    return safe, config


def public_table(df: pd.DataFrame, column_config: dict, *, n_col: str, count_cols=(), rate_cols=(),
                 derived_cols=(), sets=()) -> tuple[pd.DataFrame, dict]:
    """For viewers: the per-table privacy rules for rows that are not cells of the release (e.g. pooled
    gaps); rows that are cells go through :func:`public_cells`."""
    if not is_public():
        return df, column_config
    from analytics.access.privacy import suppress_table

    safe = suppress_table(df, n_col=n_col, count_cols=count_cols, rate_cols=rate_cols, derived_cols=derived_cols,
                          sets=sets)
    return as_shown(safe, column_config)


def viewer_nav(grant, allowed: set[str]) -> None:
    """Sidebar links for a shared view: only pages inside its scope, each carrying the token."""
    titles = {"": ("District overview", "pages/overview.py"), "cluster": ("Cluster", "pages/cluster.py"),
              "gaps": ("Growth gaps", "pages/gaps.py"), "discipline": ("Discipline", "pages/discipline.py"),
              "school": ("School", "pages/school.py"), "learning": ("Professional learning", "pages/learning.py"),
              "plans": ("School plans", "pages/plans.py")}
    params: dict[str, str] = {}
    if grant.kind == "cluster":
        params = {"cluster": grant.target}
    elif grant.kind == "school":
        params = {"school": grant.target}
    with st.sidebar:
        st.markdown("**Shared views**")
        for key, (title, page) in titles.items():
            if key not in allowed or (key == "school" and grant.kind != "school"):
                continue
            if key == "learning" and grant.kind == "cluster":  # a cluster's /learning link names one school
                continue
            scoped = {k: v for k, v in params.items() if not (key in ("cluster", "gaps") and k == "school")
                      and not (key == "plans" and k == "cluster")}
            if key == "discipline" and grant.kind == "school":
                match = schools().loc[schools()["school_id"] == grant.target, "cluster"]
                scoped = {"cluster": match.iloc[0], "school": grant.target} if len(match) else scoped
            link(title, page, **scoped)


def scope_label(scope: str) -> str:
    """A share scope in words: "the whole district", "the Brookside cluster", "Oakview High (Brookside)"."""
    kind, _, target = scope.partition(":")
    if kind == "cluster":
        return f"the {target} cluster"
    if kind == "school":
        match = schools().loc[schools()["school_id"] == target]
        if len(match):
            return f"{match['school_name'].iloc[0]} ({match['cluster'].iloc[0]})"
        return f"school {target}"
    return "the whole district"


def viewer_banner(grant):
    """The read-only notice at the top of the page itself (a phone hides the sidebar), and a slot under it
    for :func:`withheld_notice` (filled after the page ran, so the banner never waits for the decision)."""
    st.info(f"**Read-only shared view** of {scope_label(grant.scope)}. Small groups are suppressed (`*`). "
            f"Link expires {grant.expires_at:%Y-%m-%d}.", icon=":material/visibility:")
    return st.empty()


def withheld_notice(slot) -> None:
    """When no privacy decision could be made every number is `*` (privacy wins): say why in `slot`."""
    withheld = release().withheld
    if withheld:
        slot.warning(f"Every number in this view is withheld (`*`): the privacy check of the current data could "
                     f"not be completed ({withheld}). Ask the district's data office.", icon=":material/lock:")
