"""Import checks of the workspace tables (all-or-nothing, `file:row:column` errors like every table).

The importer calls `TABLE_RULES[table](clean, ctx)` for rules that involve several columns or other
tables; each rule yields (column, failing-rows mask, reasons). Imported workspace records are stamped
with who imported them and get a history row, as edits in the app do (`record_history`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analytics.data import schema
from analytics.workspace import goals as goal_rules
from analytics.workspace import notes

Rule = Iterator[tuple[str, pd.Series, pd.Series | str]]


def known_ids(engine: Engine, tables: list) -> tuple[set[str], set[str]]:
    """Goal and cycle ids in the database plus those in the files of this import."""
    with engine.connect() as conn:
        goals = {r for (r,) in conn.execute(sa.select(schema.school_goals.c.goal_id))}
        cycles = {r for (r,) in conn.execute(sa.select(schema.pdsa_cycles.c.cycle_id))}
    for raw, table in tables:
        if table == "school_goals" and "goal_id" in raw.frame:
            goals |= set(raw.frame["goal_id"].astype(str).str.strip())
        if table == "pdsa_cycles" and "cycle_id" in raw.frame:
            cycles |= set(raw.frame["cycle_id"].astype(str).str.strip())
    return goals - {""}, cycles - {""}


def _reasons(mask: pd.Series, values: pd.Series, fn: Callable[[object], str]) -> pd.Series:
    out = pd.Series(None, index=mask.index, dtype=object)
    out[mask] = [fn(v) for v in values[mask]]
    return out


def _goal_rules(clean: pd.DataFrame, ctx) -> Rule:
    by, ty = clean["baseline_year"], clean["target_year"]
    bad_years = by.notna() & ty.notna() & (ty <= by)
    yield "target_year", bad_years, "the target year must come after the baseline year"
    higher = clean["metric"].map(ctx.directions)
    base, target = clean["baseline_value"], clean["target_value"]
    wrong_up = (higher == True) & (target <= base)  # noqa: E712 - a mapped column holds True/False/NaN
    wrong_down = (higher == False) & (target >= base)  # noqa: E712
    yield "target_value", wrong_up, "target is not above the baseline: higher is better for this metric"
    yield "target_value", wrong_down, "target is not below the baseline: lower is better for this metric"
    for col in ("baseline_value", "target_value"):
        outside = clean[col].notna() & ~clean[col].between(0, 100)
        yield col, outside, "outside 0-100 (a percentage)"
    if "interim_targets" in clean:
        def problem(row) -> str | None:
            problems = goal_rules.check_goal(row, higher_is_better=None)
            return next((msg for field, msg in problems if field == "interim_targets"), None)
        reasons = pd.Series([problem(r) for r in clean.to_dict("records")], index=clean.index, dtype=object)
        yield "interim_targets", reasons.notna(), reasons


def _cycle_rules(clean: pd.DataFrame, ctx) -> Rule:
    for col in ("goal_id", "previous_cycle_id"):
        if col not in clean:
            continue
        known = ctx.goal_ids if col == "goal_id" else ctx.cycle_ids
        bad = clean[col].notna() & ~clean[col].isin(known)
        yield col, bad, f"unknown {col.replace('previous_', '')} (not in the database or this import)"
    if "previous_cycle_id" in clean:
        yield "previous_cycle_id", clean["previous_cycle_id"] == clean["cycle_id"], "a cycle cannot follow itself"


def _measure_rules(clean: pd.DataFrame, ctx) -> Rule:
    yield "cycle_id", clean["cycle_id"].notna() & ~clean["cycle_id"].isin(ctx.cycle_ids), \
        "unknown cycle_id (not in pdsa_cycles or this import)"


def _cause_rules(clean: pd.DataFrame, ctx) -> Rule:
    yield "goal_id", clean["goal_id"].notna() & ~clean["goal_id"].isin(ctx.goal_ids), \
        "unknown goal_id (not in school_goals or this import)"
    if "whys" in clean:
        too_many = clean["whys"].map(lambda t: len(notes.parse_whys(t)) > 5)
        yield "whys", too_many, "a 5-whys chain has at most five whys"


def _walkthrough_rules(clean: pd.DataFrame, ctx) -> Rule:
    for col in ("look_fors", "notes", "next_steps", "focus"):  # practices: below, with the row's look-fors
        if col not in clean:
            continue

        def problem(text, col=col) -> str | None:
            found = [msg for field, msg in notes.check_walkthrough({col: text}) if field == col]
            return found[0] if found else None
        reasons = clean[col].map(problem)
        yield col, reasons.notna(), reasons
    if "practices" in clean:
        yield "practices", *_practice_problems(clean, ctx)


def _practice_problems(clean: pd.DataFrame, ctx) -> tuple[pd.Series, pd.Series]:
    """Each tag names one of the row's own look-fors, a known programme, and a practice at most once."""
    looks = clean["look_fors"] if "look_fors" in clean else pd.Series(None, index=clean.index, dtype=object)

    def problem(text, look_fors) -> str | None:
        visit = {"practices": text, "look_fors": look_fors}
        found = [msg for field, msg in notes.check_walkthrough(visit, set(ctx.program_ids)) if field == "practices"]
        return found[0] if found else None
    reasons = pd.Series([problem(t, lf) for t, lf in zip(clean["practices"], looks, strict=True)], index=clean.index,
                        dtype=object)
    return reasons.notna(), reasons


TABLE_RULES: dict[str, Callable[[pd.DataFrame, object], Rule]] = {
    "school_goals": _goal_rules,
    "pdsa_cycles": _cycle_rules,
    "cycle_measures": _measure_rules,
    "root_causes": _cause_rules,
    "walkthroughs": _walkthrough_rules,
}


def record_history(conn: Connection, table: str, frame: pd.DataFrame, who: str) -> None:
    """Imported records of edited tables carry who imported them and when, and get one history row each
    (action `import`), as edits in the app do."""
    if table not in schema.WORKSPACE_TABLES or frame.empty:
        return
    from analytics.workspace.records import ID_COLUMNS, _jsonable

    id_col = ID_COLUMNS.get(table)
    now = datetime.now(UTC)
    if schema.TABLES[table].managed:
        tbl = schema.metadata.tables[table]
        ids = frame[id_col].astype(str).tolist()
        for start in range(0, len(ids), 500):
            conn.execute(sa.update(tbl).where(tbl.c[id_col].in_(ids[start:start + 500]))
                         .values(updated_at=now, updated_by=f"{who} (import)"))
    rows = []
    for record in frame.to_dict("records"):
        record_id = record[id_col] if id_col else " / ".join(str(record[k]) for k in schema.TABLES[table].key)
        rows.append({"table_name": table, "record_id": str(record_id), "action": "import", "version": None,
                     "changed_by": who, "changed_at": now, "before": None, "after": _jsonable(record)})
    conn.execute(sa.insert(schema.workspace_history), rows)
