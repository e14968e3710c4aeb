"""The cells of the privacy release and the sums that tie them (DESIGN §3, privacy rule 3).

A cell is one count ``k`` of ``n`` students per unit (a school, a pooled cluster row ``cluster:NAME`` or the
pooled ``district`` row) x school year x measure (a metric, or a discipline outcome) x student group, made from
the metrics and discipline tables (:func:`release_cells`). Cells are tied by sums (school rows add up to their
cluster row, clusters to the district; race groups, and female plus male, add up to ``ALL``), for counts and for
``n`` alike, and cells of measures that count the same students share one ``n`` (:func:`shared_denominators`).
:func:`_problem` states those ties as linear relations over count and n variables: what the audits
(:mod:`analytics.access.release_audit`) reason over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.data.catalog import RACE_GROUPS
from analytics.data.derived import discipline_with_all, suspension_counts

EXACT, CODED_LOW, CODED_HIGH, HIDDEN = "exact", "low", "high", "hidden"
KEYS = ["unit", "school_year", "measure", "student_group"]
# Discipline outcomes (DESIGN §7 names) and the discipline columns they count; all share `enrolled`.
DISCIPLINE_MEASURES = {"suspension": None, "iss": "students_iss", "oss": "students_oss",
                       "expulsion": "students_expelled", "law_referral": "law_referrals", "incidents": "incidents"}
SENSITIVE = frozenset(DISCIPLINE_MEASURES)
PARTITIONS = (tuple(RACE_GROUPS), ("FEMALE", "MALE"))


# --- cells ----------------------------------------------------------------------------------------------


def discipline_cells(discipline: pd.DataFrame) -> pd.DataFrame:
    """School cells of every discipline outcome (ALL summed from race rows where a file has none)."""
    if discipline.empty:
        return pd.DataFrame(columns=["school_id", "school_year", "measure", "student_group", "k", "n", "n_source"])
    full, _ = discipline_with_all(discipline)
    frames = []
    for measure, column in DISCIPLINE_MEASURES.items():
        count = suspension_counts(full) if column is None else full.get(column)
        if count is None or not count.notna().any():
            continue
        frames.append(full[["school_id", "school_year", "student_group"]].assign(
            measure=measure, k=count.astype("float64"), n=full["enrolled"].astype("float64"), n_source="enrolled"))
    return pd.concat(frames, ignore_index=True)


def metric_cells(metrics: pd.DataFrame) -> pd.DataFrame:
    """School cells of counted metrics (value-only rows have no cell)."""
    cells = metrics[["school_id", "school_year", "metric", "student_group", "numerator", "denominator"]].rename(
        columns={"metric": "measure", "numerator": "k", "denominator": "n"})
    cells["n_source"] = cells["measure"]
    return cells.astype({"k": "float64", "n": "float64"})


def pooled_cells(school_cells: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """School cells plus pooled cluster and district cells (sums over schools whose counts are known)."""
    known = school_cells.dropna(subset=["k", "n"])
    known = known[known["n"] > 0].merge(schools[["school_id", "cluster"]], on="school_id", how="inner")
    by = ["school_year", "measure", "student_group", "n_source"]
    clusters = known.groupby(["cluster", *by], as_index=False)[["k", "n"]].sum()
    clusters["unit"] = "cluster:" + clusters["cluster"]
    district = known.groupby(by, as_index=False)[["k", "n"]].sum().assign(unit="district", cluster=np.nan)
    known = known.rename(columns={"school_id": "unit"})
    out = pd.concat([known, clusters, district], ignore_index=True)
    out["level"] = np.where(out["unit"] == "district", 2, np.where(out["unit"].str.startswith("cluster:"), 1, 0))
    return out[["unit", "cluster", "level", *by, "k", "n"]]


def shared_denominators(cells: pd.DataFrame, agreement: float = 0.95) -> pd.DataFrame:
    """School cells with ``n_source`` naming the students behind n, shared by every measure whose n is the
    same on at least ``agreement`` of the school, year and group rows they both have (discipline outcomes
    share `enrolled`; attendance and chronic absence usually count the same enrolment; a file may give
    reading and mathematics the same tested students). Those measures are decided on one n."""
    keyed = cells.drop_duplicates(["school_id", "school_year", "student_group", "measure"])
    wide = keyed.pivot(index=["school_id", "school_year", "student_group"], columns="measure", values="n")
    measures = [str(m) for m in wide.columns]
    parent = {m: m for m in measures}

    def root(m: str) -> str:
        while parent[m] != m:
            m = parent[m]
        return m

    values = wide.to_numpy(dtype="float64")
    for i in range(len(measures)):
        for j in range(i + 1, len(measures)):
            both = ~np.isnan(values[:, i]) & ~np.isnan(values[:, j])
            if both.any() and (values[both, i] == values[both, j]).mean() >= agreement:
                ra, rb = sorted((root(measures[i]), root(measures[j])))
                parent[rb] = ra
    members: dict[str, list[str]] = {}
    for m in measures:
        members.setdefault(root(m), []).append(m)
    # A source holding a discipline outcome is the discipline table's `enrolled`; a metric alone keeps its name.
    name = {m: "enrolled" if any(x in SENSITIVE for x in members[root(m)]) else root(m) for m in measures}
    return cells.assign(n_source=cells["measure"].map(name))


def release_cells(schools: pd.DataFrame, metrics: pd.DataFrame,
                  discipline: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """(every cell of the district before any decision, whether `suspension_rate` is derived from discipline)."""
    derived = not (metrics["metric"] == "suspension_rate").any() if len(metrics) else True
    families = []
    if len(discipline):
        families.append(discipline_cells(discipline))
    if len(metrics):
        counted = metrics.dropna(subset=["numerator", "denominator"])
        if derived:
            counted = counted[counted["metric"] != "suspension_rate"]
        families.extend(metric_cells(rows) for _, rows in counted.groupby("metric"))
    families = [f for f in families if len(f)]
    school_cells = shared_denominators(pd.concat(families, ignore_index=True)) if families else pd.DataFrame()
    return (pooled_cells(school_cells, schools) if families else pd.DataFrame()), derived


# --- the sums between cells, as linear relations over count and n variables -----------------------------


@dataclass
class _Problem:
    cells: pd.DataFrame        # KEYS, level, k, n, k_var, n_var
    k_true: np.ndarray         # per variable (k vars then n vars)
    rel: np.ndarray            # membership: relation id
    var: np.ndarray            # membership: variable index
    coef: np.ndarray           # +1 child, -1 parent
    size: np.ndarray           # per variable: students behind it (to choose what to hide)
    parent: np.ndarray         # per membership: is the parent of its relation


def _codes(cells: pd.DataFrame, columns: list[str]) -> dict[str, tuple[np.ndarray, int]]:
    """Integer codes of key columns, numbered in sorted order (so codes sort as the values do); -1 for NaN."""
    out = {}
    for column in columns:
        codes, uniques = pd.factorize(cells[column], sort=True)
        out[column] = (codes.astype(np.int64), max(len(uniques), 1))
    return out


def _key(codes: dict[str, tuple[np.ndarray, int]], columns: list[str], rows: np.ndarray, missing: int) -> np.ndarray:
    """One int64 per row for a tuple of coded columns (mixed radix keeps their sort order); `missing` where a
    column is NaN (callers pass different values for the two sides of a match, so NaN never matches)."""
    key = np.zeros(len(rows), dtype=np.int64)
    unknown = np.zeros(len(rows), dtype=bool)
    for column in columns:
        code, base = codes[column]
        key = key * base + code[rows]
        unknown |= code[rows] < 0
    key[unknown] = missing
    return key


def _relations(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum relations as memberships (relation id, cell row, coefficient) for counts; n uses n_var."""
    rels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    idx = cells.reset_index(drop=True)
    codes = _codes(idx, ["unit", "cluster", "school_year", "measure", "student_group"])
    level = idx["level"].to_numpy()
    schools, clusters, district = (np.flatnonzero(level == i) for i in (0, 1, 2))
    # Hierarchy: school cells -> cluster cell (same cluster, year, measure, group); cluster cells -> district.
    cell_key = ["school_year", "measure", "student_group"]
    next_id = 0
    for children, parents, by in ((schools, clusters, ["cluster", *cell_key]), (clusters, district, cell_key)):
        pos = pd.Index(_key(codes, by, parents, -3)).get_indexer(_key(codes, by, children, -2))
        found = pos >= 0
        rels.append((pos[found] + next_id, children[found], np.ones(found.sum())))
        rels.append((np.arange(len(parents)) + next_id, parents, -np.ones(len(parents))))
        next_id += len(parents)
    # Partitions: race groups (and female + male) add up to ALL, when the counts say so exactly.
    unit_key = ["unit", "school_year", "measure"]
    group = idx["student_group"].to_numpy(dtype=object)
    alls = np.flatnonzero(group == "ALL")
    all_pos = pd.Index(_key(codes, unit_key, alls, -3))
    k, n = idx["k"].to_numpy(dtype="float64"), idx["n"].to_numpy(dtype="float64")
    for members in PARTITIONS:
        part = np.flatnonzero(np.isin(group, list(members)))
        if not len(part) or not len(alls):
            continue
        sums, which = np.unique(_key(codes, unit_key, part, -2), return_inverse=True)  # sorted, as groupby
        part_k, part_n = np.bincount(which, k[part], len(sums)), np.bincount(which, n[part], len(sums))
        at = all_pos.get_indexer(sums)
        row = alls[np.where(at >= 0, at, 0)]
        exact = (at >= 0) & (part_k == k[row]) & (part_n == n[row])
        if not exact.any():
            continue
        epos = np.cumsum(exact) - 1
        found = exact[which]
        rels.append((epos[which[found]] + next_id, part[found], np.ones(found.sum())))
        rels.append((np.arange(exact.sum()) + next_id, row[exact], -np.ones(exact.sum())))
        next_id += int(exact.sum())
    rel = np.concatenate([r[0] for r in rels]).astype(np.int64)
    row = np.concatenate([r[1] for r in rels]).astype(np.int64)
    coef = np.concatenate([r[2] for r in rels])
    return rel, row, coef


def _problem(cells: pd.DataFrame) -> _Problem:
    cells = cells.reset_index(drop=True).copy()
    n_keys = ["unit", "school_year", "student_group", "n_source", "n"]
    cells["k_var"] = np.arange(len(cells))
    # Cells of one unit, year and group with the same n of the same source share one n variable (numbered
    # in order of first appearance): an n hidden in one cell and shown in another would be given back.
    codes = {c: (pd.factorize(cells[c], use_na_sentinel=False)[0].astype(np.int64), 0) for c in n_keys}
    codes = {c: (code, int(code.max()) + 1 if len(code) else 1) for c, (code, _) in codes.items()}
    shared_n = pd.factorize(_key(codes, n_keys, np.arange(len(cells)), -1))[0]
    cells["n_var"] = len(cells) + shared_n
    n_vars = cells["n_var"].max() - len(cells) + 1 if len(cells) else 0
    true = np.concatenate([cells["k"].to_numpy(), np.zeros(n_vars)])
    true[cells["n_var"].to_numpy()] = cells["n"].to_numpy()
    size = true.copy()
    size[cells["k_var"].to_numpy()] = cells["n"].to_numpy()
    rel, row, coef = _relations(cells)
    # Each relation appears for counts (k vars) and for students (n vars).
    n_rel = rel.max() + 1 if len(rel) else 0
    all_rel = np.concatenate([rel, rel + n_rel])
    all_var = np.concatenate([cells["k_var"].to_numpy()[row], cells["n_var"].to_numpy()[row]])
    all_coef = np.concatenate([coef, coef])
    # Duplicate n memberships (a shared n var in the same relation twice) would double count: drop them.
    frame = pd.DataFrame({"rel": all_rel, "var": all_var, "coef": all_coef}).drop_duplicates()
    frame = frame[frame.groupby("rel")["var"].transform("size") > 1]
    return _Problem(cells, true, frame["rel"].to_numpy(), frame["var"].to_numpy(), frame["coef"].to_numpy(),
                    size, frame["coef"].to_numpy() < 0)
