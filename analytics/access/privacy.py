"""Privacy rules for anything that leaves editing staff: Board links and public exports (DESIGN §3).

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

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data.catalog import RACE_GROUPS

SUPPRESSED = "*"


def coded_rate(value: float, settings: Settings = DEFAULT_SETTINGS) -> str | float:
    if value <= settings.privacy_low_pct:
        return f"<= {settings.privacy_low_pct:.1f}%"
    if value >= settings.privacy_high_pct:
        return f">= {settings.privacy_high_pct:.1f}%"
    return value


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


def _race_sets(df: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """A set id: race groups and ALL of the same keys form one set; other groups sit alone."""
    race = df["student_group"].isin([*RACE_GROUPS, "ALL"])
    return np.where(race, "race", df["student_group"].astype(str))


def suppress_view(view: str, df: pd.DataFrame, settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """The privacy rules applied to one of the export views (DESIGN §7 names)."""
    if df.empty:
        return df
    work = df.copy()
    if view == "rates":
        work["_set"] = _race_sets(work, ["school_id", "school_year", "metric"])
        work["_cluster"] = work.get("cluster", pd.Series("", index=work.index)).fillna("")
        sets = [["school_id", "school_year", "metric", "_set"],
                ["_cluster", "school_year", "metric", "student_group"]]
        out = suppress_table(work, n_col="denominator", count_cols=["numerator"],
                             rate_cols=["value", "ci_low", "ci_high"], sets=sets, settings=settings)
        return out.drop(columns=["_set", "_cluster"])
    if view == "gaps":
        # A group and "all other students" add up to ALL: hide both sides when either is small.
        ref_n = work["ref_den"] if "ref_den" in work else pd.Series(np.inf, index=work.index)
        n = work["denominator"].where(ref_n.isna() | (ref_n >= settings.privacy_min_n), 0)
        work["_n"] = n
        work["_set"] = _race_sets(work, ["school_id", "school_year", "metric"])
        out = suppress_table(work, n_col="_n", count_cols=["numerator", "ref_num"],
                             rate_cols=["value"], derived_cols=["reference_value", "gap", "gap_change", "p_value",
                                                                "q_value", "trend", "ref_den", "denominator"],
                             sets=[["school_id", "school_year", "metric", "reference", "_set"]], settings=settings)
        return out.drop(columns=["_n", "_set"])
    if view == "disproportionality":
        work["_set"] = _race_sets(work, ["school_id", "school_year", "outcome"])
        return suppress_table(work, n_col="enrolled", count_cols=["count"], rate_cols=["risk"],
                              derived_cols=["comparison_risk", "risk_ratio", "rate_difference", "composition"],
                              sets=[["school_id", "school_year", "outcome", "_set"]], settings=settings
                              ).drop(columns=["_set"])
    if view == "status-change":
        n = work["denominator"] if "denominator" in work else pd.Series(np.nan, index=work.index)
        work["_n"] = n
        out = suppress_table(work, n_col="_n", rate_cols=["status"], derived_cols=["change"], settings=settings)
        return out.drop(columns=["_n"])
    if view == "run-chart":
        # Monthly counts of incidents: small counts are suppressed, the median and signals are kept.
        small = work["value"].astype("float64") < settings.privacy_min_n
        work["value"] = work["value"].astype(object).where(~small, SUPPRESSED)
        return work
    if view == "rp-impact":
        return work  # estimates pooled over many schools: no student-level cells
    if view == "learning":
        return suppress_learning(work, settings)
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
