"""Privacy rules for anything that leaves editing staff: Board links and public exports (DESIGN §3).

Views (exports, public packs, shared pages) go through :func:`release_view`, which masks a table by the
district-wide decision of :mod:`analytics.access.release`: a number is shown only when every cell it
is computed from is released exactly; a coded cell shows its band and nothing derived from it.
:func:`suppress_table` below is the older per-table rule set, kept for tables drawn from cells that
are not in the release model.

1. Primary suppression: a row whose students (n) number fewer than 10 shows `*` for its count, n,
   rate, interval and everything derived from them.
2. Top and bottom coding: a released rate <= 5% or >= 95% is shown as `<= 5.0%` / `>= 95.0%`, and its
   count and interval are hidden (either would give the exact rate back).
3. Complementary suppression: rows that add up to a total (the schools of a cluster and the cluster's
   pooled row; the race groups of a school and its ALL row; a group and "all other students") form a
   set. If a set holds exactly one row with a hidden count, the row with the next smallest n is
   suppressed too, repeated until no set has a lone hidden count, so no hidden count can be recovered
   by subtracting the released ones from a total.

All of it happens here, before data reaches a page or a file. Output columns that were suppressed
become text (object) columns holding the marks; released numbers stay numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.access.release import Release
from analytics.access.release_cells import CODED_HIGH, CODED_LOW, EXACT, HIDDEN
from analytics.config import DEFAULT_SETTINGS, Settings

SUPPRESSED = "*"


def coded_rate(value: float, settings: Settings = DEFAULT_SETTINGS) -> str | float:
    if value <= settings.privacy_low_pct:
        return f"<= {settings.privacy_low_pct:.1f}%"
    if value >= settings.privacy_high_pct:
        return f">= {settings.privacy_high_pct:.1f}%"
    return value


def marks_legend(settings: Settings = DEFAULT_SETTINGS) -> str:
    """What a shared table's marks mean, in the words of the rules that put them there (DESIGN §3)."""
    low, high, n = settings.privacy_low_pct, settings.privacy_high_pct, settings.privacy_min_n
    return (f"`*` = withheld: fewer than {n} students in the group, 1 to 9 students with the outcome, or a "
            "number from which a withheld one could be worked out (from totals, other groups or other years). "
            f"`<= {low:.1f}%` / `>= {high:.1f}%` = a rate at or below {low:g}% (at or above {high:g}%), shown only "
            "as that band so that the few students behind it cannot be counted.")


def _complement(df: pd.DataFrame, hidden: pd.Series, n_col: str, sets: Sequence[Sequence[str]]) -> pd.Series:
    """Grow `hidden` until no set (rows sharing the key columns of a set) has exactly one hidden row."""
    hidden = hidden.copy()
    n = df[n_col].astype("float64").fillna(-1)
    set_ids = [df.groupby(list(keys), dropna=False, sort=False).ngroup() for keys in sets if keys]
    changed = True
    while changed:
        changed = False
        for ids in set_ids:
            counts = hidden.groupby(ids).transform("sum")
            sizes = ids.map(ids.value_counts())
            lone = (counts == 1) & (sizes > 1)
            if not lone.any():
                continue
            # In each set with a lone hidden row, hide the released row with the smallest n.
            open_rows = n[lone & ~hidden]
            if open_rows.empty:
                continue
            smallest = open_rows.groupby(ids[open_rows.index]).idxmin()
            hidden.loc[smallest.to_numpy()] = True
            changed = True
    return hidden


def suppress_table(df: pd.DataFrame, *, n_col: str, count_cols: Sequence[str] = (), rate_cols: Sequence[str] = (),
                   derived_cols: Sequence[str] = (), sets: Sequence[Sequence[str]] = (),
                   settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """Apply primary suppression, top/bottom coding and complementary suppression to one table.

    Parameters
    ----------
    n_col : the students behind each row (suppressed when < ``settings.privacy_min_n``).
    count_cols : counts that could reveal a rate (hidden when the row's rate is coded).
    rate_cols : the first is the row's rate (coded); the rest (intervals) are hidden when it is coded.
    derived_cols : anything computed from the row (gaps, ratios, p-values): hidden with the row.
    sets : key columns of sets of rows whose counts add up to a released total.
    """
    out = df.copy()
    if out.empty:
        return out
    n = out[n_col].astype("float64")
    small = n.isna() | (n < settings.privacy_min_n)
    rate = out[rate_cols[0]].astype("float64") if rate_cols else pd.Series(np.nan, index=out.index)
    coded = ~small & ((rate <= settings.privacy_low_pct) | (rate >= settings.privacy_high_pct))
    hidden_count = _complement(out, small | coded, n_col, sets)
    fully_hidden = small | (hidden_count & ~coded)
    for col in (*count_cols, *rate_cols, *derived_cols, n_col):
        if col in out:
            out[col] = out[col].astype(object)
    for col in (n_col, *count_cols, *rate_cols, *derived_cols):
        if col in out:
            out.loc[fully_hidden & out[col].notna() | small, col] = SUPPRESSED
    for col in count_cols:
        if col in out:
            out.loc[coded, col] = SUPPRESSED
    if rate_cols:
        out.loc[coded, rate_cols[0]] = [coded_rate(v, settings) for v in rate[coded]]
        for col in rate_cols[1:]:
            out.loc[coded, col] = SUPPRESSED
        for col in derived_cols:
            if col in out:
                out.loc[coded, col] = SUPPRESSED
    out[n_col] = out[n_col].where(~small, SUPPRESSED)
    return out


def _key_states(release: Release, df: pd.DataFrame, unit, year, measure, group) -> tuple[np.ndarray, np.ndarray]:
    """(state, n_hidden) of the cell behind each row; each argument is a column name or a Series."""
    def col(x):
        return df[x] if isinstance(x, str) else x
    measures = col(measure).map(release.measure_of) if measure is not None else col("metric").map(release.measure_of)
    return release.states(col(unit), col(year), measures, col(group))


def _star(out: pd.DataFrame, cols, where: np.ndarray) -> None:
    """Replace `cols` by the suppression mark where `where` holds (numbers elsewhere stay numbers)."""
    where = np.asarray(where, dtype=bool)
    for c in cols:
        if c in out and where.any():
            out[c] = out[c].astype(object)
            out.loc[where, c] = SUPPRESSED


def _band(out: pd.DataFrame, col: str, state: np.ndarray, settings: Settings) -> None:
    """A coded cell's rate becomes its band text."""
    coded = np.isin(state, [CODED_LOW, CODED_HIGH])
    if col in out and coded.any():
        out[col] = out[col].astype(object)
        out.loc[coded, col] = np.where(state[coded] == CODED_LOW, f"<= {settings.privacy_low_pct:.1f}%",
                                       f">= {settings.privacy_high_pct:.1f}%")


def _uncounted(out: pd.DataFrame, n_col: str, value_col: str, state: np.ndarray, settings: Settings) -> None:
    """Rows without counts (value-only or source-suppressed): n < 10 hides the row; rates are coded."""
    none = state == "none"
    if not none.any():
        return
    n = pd.to_numeric(out[n_col], errors="coerce") if n_col in out else pd.Series(np.nan, index=out.index)
    _star(out, [n_col, value_col, "numerator", "ci_low", "ci_high"], none & (n < settings.privacy_min_n).to_numpy())
    value = pd.to_numeric(out[value_col], errors="coerce")
    codes = np.select([value <= settings.privacy_low_pct, value >= settings.privacy_high_pct],
                      [CODED_LOW, CODED_HIGH], default="")
    _band(out, value_col, np.where(none & (n >= settings.privacy_min_n).to_numpy() | none & n.isna().to_numpy(),
                                   codes, ""), settings)


def mask_cells(df: pd.DataFrame, state: np.ndarray, n_hidden: np.ndarray, *, n_col: str | None,
               count_cols=(), rate_col: str | None = None, interval_cols=(), derived_cols=(),
               settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """Mask one cell's columns: n when hidden; counts, intervals and anything derived unless exact; the rate
    coded or hidden."""
    out = df.copy()
    not_exact = state != EXACT
    _star(out, [*count_cols, *interval_cols, *derived_cols], not_exact & (state != "none"))
    if rate_col:
        _band(out, rate_col, state, settings)
        _star(out, [rate_col], state == HIDDEN)
    if n_col:
        _star(out, [n_col], n_hidden)
        if rate_col:
            _uncounted(out, n_col, rate_col, state, settings)
    return out


def _rates(table: pd.DataFrame, release: Release, settings: Settings) -> pd.DataFrame:
    state, n_hidden = _key_states(release, table, "school_id", "school_year", None, "student_group")
    return mask_cells(table, state, n_hidden, n_col="denominator", count_cols=["numerator"], rate_col="value",
                      interval_cols=["ci_low", "ci_high"], settings=settings)


def _gap_reference_exact(table: pd.DataFrame, release: Release, year_col: str) -> np.ndarray:
    """Whether the reference of each gap row is released exactly for the row's year."""
    reference = table["reference"].astype(str) if "reference" in table else pd.Series("others", index=table.index)
    years = table[year_col]
    out = np.zeros(len(table), dtype=bool)
    others = (reference == "others").to_numpy()
    state, _ = _key_states(release, table, "school_id", years, None, pd.Series("ALL", index=table.index))
    out[others] = state[others] == EXACT
    district = (reference == "district_all").to_numpy()
    state, _ = _key_states(release, table, pd.Series("district", index=table.index), years, None,
                           pd.Series("ALL", index=table.index))
    out[district] = state[district] == EXACT
    out[(reference == "target").to_numpy()] = True
    best = (reference == "best_group").to_numpy()
    if best.any() and {"ref_num", "ref_den", "numerator", "denominator"} <= set(table.columns):
        # The best group is the school's group whose counts are the reference counts.
        keys = ["school_id", year_col, "metric"]
        groups = table[keys + ["student_group", "numerator", "denominator"]].rename(
            columns={"student_group": "_best", "numerator": "ref_num", "denominator": "ref_den"})
        found = table[keys + ["ref_num", "ref_den"]].reset_index().merge(
            groups.drop_duplicates(keys + ["ref_num", "ref_den"]), on=keys + ["ref_num", "ref_den"], how="left"
        ).set_index("index").reindex(table.index)
        state, _ = _key_states(release, table, "school_id", years, None, found["_best"].fillna(""))
        out[best] = state[best] == EXACT
    return out


def _gaps(table: pd.DataFrame, release: Release, settings: Settings,
          higher_is_better: dict[str, bool] | None = None) -> pd.DataFrame:
    state, n_hidden = _key_states(release, table, "school_id", "school_year", None, "student_group")
    ref_ok = _gap_reference_exact(table, release, "school_year")
    gap_ok = (state == EXACT) & ref_ok
    prev_year = table["previous_year"] if "previous_year" in table else table["school_year"] - 1
    prev_years = prev_year.fillna(table["school_year"] - 1)
    prev_state, _ = _key_states(release, table, "school_id", prev_years, None, "student_group")
    prev_ref_ok = _gap_reference_exact(table.assign(_prev=prev_years), release, "_prev")
    change_ok = gap_ok & (prev_state == EXACT) & prev_ref_ok
    out = mask_cells(table, state, n_hidden, n_col="denominator", count_cols=["numerator"], rate_col="value",
                     settings=settings)
    others_needs_group = (out.get("reference", pd.Series("others", index=out.index)) == "others").to_numpy()
    _star(out, ["reference_value", "ref_num", "ref_den"], ~ref_ok | (others_needs_group & (state != EXACT)))
    _star(out, ["gap"], ~gap_ok)
    has_prev = prev_year.notna().to_numpy() if "previous_year" in table else table["gap_change"].notna().to_numpy()
    hide_change = ~change_ok & (has_prev | (state != EXACT))
    _star(out, ["gap_change", "p_value", "q_value", "trend", "previous_value", "previous_gap", "untested"],
          hide_change)
    return _relabel_released(table, out, ~hide_change & has_prev, higher_is_better)


def _relabel_released(table: pd.DataFrame, out: pd.DataFrame, shown: np.ndarray,
                      higher_is_better: dict[str, bool] | None) -> pd.DataFrame:
    """The public family is the changes released: Benjamini-Hochberg q-values and labels over those rows only
    (a q-value over hidden p-values would carry their ranks out)."""
    if "q_value" not in table or not shown.any():
        return out
    from analytics.stats.gaps import label_gaps

    relabelled = label_gaps(table[shown], higher_is_better)
    for col in ("q_value", "trend"):
        out[col] = out[col].astype(object)
        out.loc[relabelled.index, col] = relabelled[col].to_numpy()
    return out


def _status_change(table: pd.DataFrame, release: Release, settings: Settings) -> pd.DataFrame:
    year = table["school_year"]
    state, n_hidden = _key_states(release, table, "school_id", year, None, "student_group")
    prev_state, _ = _key_states(release, table, "school_id", year - 1, None, "student_group")
    out = mask_cells(table, state, n_hidden, n_col="denominator", rate_col="status",
                     derived_cols=["status_level"], settings=settings)
    has_change = table["change"].notna().to_numpy()
    _star(out, ["change", "change_level", "color"], ((state != EXACT) | (prev_state != EXACT)) & has_change
          | (state != EXACT) & (state != "none"))
    return out


def _disproportionality(table: pd.DataFrame, release: Release, settings: Settings) -> pd.DataFrame:
    rows = table
    state, n_hidden = release.states(rows["school_id"], rows["school_year"], rows["outcome"], rows["student_group"])
    everyone = pd.Series("ALL", index=rows.index)
    all_state, _ = release.states(rows["school_id"], rows["school_year"], rows["outcome"], everyone)
    district = pd.Series("district", index=rows.index)
    d_all, _ = release.states(district, rows["school_year"], rows["outcome"], everyone)
    d_group, _ = release.states(district, rows["school_year"], rows["outcome"], rows["student_group"])
    exact = state == EXACT
    alternate = (rows["ratio_type"] == "alternate").to_numpy()
    comparison_ok = exact & np.where(alternate, (d_all == EXACT) & (d_group == EXACT), all_state == EXACT)
    out = mask_cells(rows, state, n_hidden, n_col="enrolled", count_cols=["count"], rate_col="risk",
                     derived_cols=["ratio_type"], settings=settings)
    _star(out, ["comparison_risk", "risk_ratio", "rate_difference"], ~comparison_ok)
    _star(out, ["flagged"], ~(comparison_ok & _earlier_ratios_released(rows, release, settings)))
    _star(out, ["composition"], ~(exact & (all_state == EXACT)))
    return out


def _ratio_cells_exact(rows: pd.DataFrame, release: Release, years: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(every cell a ratio of `years` may rest on is exact, the group had a cell that year) for each row.

    Which comparison a past year used (within-school or alternate) is not in the row, so both must be
    exact: the group's cell, the school's `ALL` cell and the district's `ALL` and group cells."""
    everyone = pd.Series("ALL", index=rows.index)
    district = pd.Series("district", index=rows.index)
    group, _ = release.states(rows["school_id"], years, rows["outcome"], rows["student_group"])
    school_all, _ = release.states(rows["school_id"], years, rows["outcome"], everyone)
    d_all, _ = release.states(district, years, rows["outcome"], everyone)
    d_group, _ = release.states(district, years, rows["outcome"], rows["student_group"])
    exact = (group == EXACT) & (school_all == EXACT) & (d_all == EXACT) & (d_group == EXACT)
    return exact, group != "none"


def _earlier_ratios_released(rows: pd.DataFrame, release: Release, settings: Settings) -> np.ndarray:
    """Whether a row's 3-year flag rests only on released ratios (DESIGN §3 rule 1: a flag is derived from
    the ratios of this year and the years before it, so "flagged" would tell that a hidden earlier ratio
    was >= 3, and "not flagged" beside a ratio >= 3 that one was not).

    A flag is released when this year's ratio is below the threshold or not computed (the flag is then
    False whatever came before), or when every earlier year of the run back to a missing year is exact."""
    ratio = pd.to_numeric(rows["risk_ratio"], errors="coerce").to_numpy()
    ok = ~(ratio >= settings.risk_ratio_threshold)
    chain = np.ones(len(rows), dtype=bool)  # no earlier year missing so far
    safe = np.ones(len(rows), dtype=bool)
    for lag in range(1, settings.consecutive_years):
        exact, present = _ratio_cells_exact(rows, release, rows["school_year"] - lag)
        safe &= ~chain | ~present | exact
        chain &= present
    return ok | safe


def _run_chart(table: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Monthly counts of incidents: counts 1-9 are suppressed; the median and signals are kept."""
    out = table.copy()
    value = pd.to_numeric(out["value"], errors="coerce")
    _star(out, ["value"], ((value >= 1) & (value < settings.privacy_min_n)).to_numpy())
    return out


def _rp_impact(table: pd.DataFrame) -> pd.DataFrame:
    """Estimates pooled over schools have no student-level cell, but one RP school's estimate is a function of
    that school's own yearly rates (often coded): it is hidden. The same holds for an event-study year (its
    `n_schools`: the RP schools that far from their start)."""
    count = next((c for c in ("n_rp_schools", "n_schools") if c in table), None)
    if count is None:
        return table
    out = table.copy()
    one = (pd.to_numeric(out[count], errors="coerce") < 2).to_numpy()
    _star(out, [c for c in ("estimate", "ci_low", "ci_high", "p_value") if c in out], one)
    return out


def release_view(table: pd.DataFrame, view: str, release: Release | None, settings: Settings = DEFAULT_SETTINGS,
                 higher_is_better: dict[str, bool] | None = None) -> pd.DataFrame:
    """A view's table (DESIGN §7 names) as the public may see it, masked by the district's release.

    Needs the columns the view builders produce (`school_year` for status-change rows; counts behind
    gaps and status) so each number can be traced to its cells.
    """
    if table.empty:
        return table
    if view == "rates":
        return _rates(table, release, settings)
    if view == "gaps":
        return _gaps(table, release, settings, higher_is_better)
    if view == "status-change":
        return _status_change(table, release, settings)
    if view == "disproportionality":
        return _disproportionality(table, release, settings)
    if view == "run-chart":
        return _run_chart(table, settings)
    if view == "rp-impact":
        return _rp_impact(table)
    if view == "learning":
        return suppress_learning(table, settings)
    raise ValueError(f"no privacy rule for view {view!r}")


def suppress_learning(table: pd.DataFrame, settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """The `learning` view (DESIGN §10) for release: no participant-level rows ever leave editors (the table
    holds only summaries); level 1 and 2 summaries of fewer than 10 responses or participants show `*`, and a
    level 1 % agree at or beyond 5% / 95% is coded with its interval hidden. Levels 3-5 describe schools and
    classrooms, pooled (level 5 is a difference-in-differences over schools, like `rp-impact`)."""
    if table.empty:
        return table
    people = table["level"].isin([1, 2])
    released = table[~people].astype({c: object for c in ("estimate", "ci_low", "ci_high", "n")})
    level1 = suppress_table(table[table["level"] == 1], n_col="n", rate_cols=["estimate", "ci_low", "ci_high"],
                            settings=settings)
    level2 = suppress_table(table[table["level"] == 2], n_col="n", derived_cols=["estimate", "ci_low", "ci_high"],
                            settings=settings)
    parts = [p for p in (level1, level2, released) if not p.empty]
    return pd.concat(parts).sort_index() if parts else table
