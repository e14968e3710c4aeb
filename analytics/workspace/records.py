"""Writing workspace records: create, save, delete, with who/when history and optimistic concurrency.

Every edited record carries a `version`. A save names the version the editor started from and the
UPDATE only matches that version (`... WHERE id = :id AND version = :seen`); when another editor saved
in between, no row matches, nothing is written and `Conflict` carries the record as it now stands so
the page can show both (the editor's unsaved text is kept in the form, so nothing is lost). Every
change writes a `workspace_history` row: table, record, action, version, who, when, before and after.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analytics.access import audit
from analytics.data import bulk_write, loads, schema, storage

ID_COLUMNS = {"school_goals": "goal_id", "pdsa_cycles": "cycle_id", "root_causes": "cause_id",
              "walkthroughs": "visit_id"}


class RecordError(ValueError):
    """A record cannot be written (already exists, not found)."""


@dataclass
class Conflict(Exception):
    """Someone else saved the record after this editor opened it."""

    table: str
    record_id: str
    current: dict | None  # None: it was deleted meanwhile

    def __str__(self) -> str:
        if self.current is None:
            return f"{self.record_id} was deleted by someone else while you were editing it. Your changes are " \
                   "still in the form: save them as a new record or copy them elsewhere."
        return (f"{self.record_id} was changed by {self.current.get('updated_by') or 'someone else'} at "
                f"{_when(self.current.get('updated_at'))} while you were editing it (now version "
                f"{self.current.get('version')}). Nothing was overwritten: your changes are still in the form. "
                "Compare them with the saved record below, then save again to replace it.")


def _when(value) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value or "an unknown time")


def _table(name: str) -> sa.Table:
    return schema.metadata.tables[name]


def _id_col(name: str) -> sa.Column:
    return _table(name).c[ID_COLUMNS[name]]


def _jsonable(record: Mapping) -> str:
    def plain(v):
        if isinstance(v, (datetime, date)):
            return v.isoformat()
        if isinstance(v, float) and v != v:
            return None
        return v
    return json.dumps({k: plain(v) for k, v in record.items()}, sort_keys=True, default=str)


def _clean(table: str, record: Mapping) -> dict:
    """Only the table's own editable columns; NaN and empty strings become NULL."""
    columns = set(schema.TABLES[table].column_names)
    out = {}
    for key, value in record.items():
        if key not in columns:
            continue
        if value is None or (isinstance(value, float) and value != value) or (isinstance(value, str)
                                                                                and not value.strip()):
            out[key] = None
        elif isinstance(value, pd.Timestamp):
            out[key] = value.date()
        else:
            out[key] = value.strip() if isinstance(value, str) else value
    return out


def get(conn_or_engine: Engine | Connection, table: str, record_id: str) -> dict | None:
    stmt = sa.select(_table(table)).where(_id_col(table) == record_id)
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
    else:
        row = conn_or_engine.execute(stmt).mappings().first()
    return dict(row) if row else None


def write_history(conn: Connection, table: str, record_id: str, action: str, version: int | None, who: str,
                  before: Mapping | None, after: Mapping | None) -> None:
    conn.execute(sa.insert(schema.workspace_history).values(
        table_name=table, record_id=str(record_id), action=action, version=version, changed_by=who,
        changed_at=datetime.now(UTC), before=_jsonable(before) if before else None,
        after=_jsonable(after) if after else None))
    if action != "import":  # imports are audited once per file by the importer
        audit.record(conn, who, audit.EDIT, target=f"{table}:{record_id}",
                     detail=f"{action}" + (f" (version {version})" if version else ""))


def create(engine: Engine, table: str, record: Mapping, who: str) -> dict:
    """Insert a new record at version 1; RecordError when the id is taken."""
    values = _clean(table, record)
    record_id = values.get(ID_COLUMNS[table])
    if not record_id:
        raise RecordError(f"{ID_COLUMNS[table]} is required")
    values.update(version=1, updated_at=datetime.now(UTC), updated_by=who)
    with engine.begin() as conn:
        if get(conn, table, record_id) is not None:
            raise RecordError(f"{record_id} already exists: choose another id or open it to edit")
        conn.execute(sa.insert(_table(table)).values(**values))
        write_history(conn, table, record_id, "create", 1, who, None, values)
        storage.bump_version(conn)
    return values


def save(engine: Engine, table: str, record: Mapping, seen_version: int, who: str) -> dict:
    """Update a record if it is still at `seen_version`; otherwise raise Conflict and write nothing."""
    values = _clean(table, record)
    record_id = values.pop(ID_COLUMNS[table])
    tbl = _table(table)
    with engine.begin() as conn:
        before = get(conn, table, record_id)
        new_version = int(seen_version) + 1
        result = conn.execute(
            sa.update(tbl).where(_id_col(table) == record_id, tbl.c.version == int(seen_version))
            .values(**values, version=new_version, updated_at=datetime.now(UTC), updated_by=who))
        if result.rowcount != 1:
            raise Conflict(table, record_id, before)
        after = get(conn, table, record_id)
        write_history(conn, table, record_id, "update", new_version, who, before, after)
        storage.bump_version(conn)
    return after


def delete(engine: Engine, table: str, record_id: str, seen_version: int, who: str) -> None:
    """Delete a record still at `seen_version` (Conflict otherwise); its last state stays in the history."""
    tbl = _table(table)
    with engine.begin() as conn:
        before = get(conn, table, record_id)
        result = conn.execute(sa.delete(tbl).where(_id_col(table) == record_id, tbl.c.version == int(seen_version)))
        if result.rowcount != 1:
            raise Conflict(table, record_id, before)
        if table == "pdsa_cycles":  # its measures go with it (they are kept in the history row)
            measures = _measures(conn, record_id)
            conn.execute(sa.delete(schema.cycle_measures).where(schema.cycle_measures.c.cycle_id == record_id))
            before = {**before, "measures": measures}
        write_history(conn, table, record_id, "delete", before.get("version") if before else None, who, before, None)
        storage.bump_version(conn)


def _measures(conn: Connection, cycle_id: str) -> list[dict]:
    rows = conn.execute(sa.select(schema.cycle_measures).where(schema.cycle_measures.c.cycle_id == cycle_id))
    return [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r._mapping.items()} for r in rows]


def replace_measures(engine: Engine, cycle_id: str, measures: pd.DataFrame, who: str) -> int:
    """Replace a cycle's custom measures (date, value, note) in one transaction, with a history row."""
    frame = measures.dropna(subset=["date", "value"]).copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    frame = frame.drop_duplicates("date", keep="last")
    frame["cycle_id"] = cycle_id
    # A blank note (the editor shows a missing one blank) is no note.
    frame["note"] = [(v.strip() or None) if isinstance(v, str) else None for v in frame.get("note", [None] * len(frame))]
    with engine.begin() as conn:
        before = _measures(conn, cycle_id)
        conn.execute(sa.delete(schema.cycle_measures).where(schema.cycle_measures.c.cycle_id == cycle_id))
        bulk_write.upsert(conn, "cycle_measures", frame[["cycle_id", "date", "value", "note"]])
        write_history(conn, "cycle_measures", cycle_id, "replace", None, who, {"measures": before},
                      {"measures": _measures(conn, cycle_id)})
        storage.bump_version(conn)
    return len(frame)


def add_meeting(engine: Engine, scope: str, meeting_date: date, who: str, note: str | None = None) -> None:
    with engine.begin() as conn:
        bulk_write.upsert(conn, "meetings",
                          pd.DataFrame([{"scope": scope, "meeting_date": meeting_date, "note": note}]))
        write_history(conn, "meetings", f"{scope}@{meeting_date}", "create", None, who, None,
                      {"scope": scope, "meeting_date": meeting_date, "note": note})
        storage.bump_version(conn)


def history(engine: Engine, table: str | None = None, record_ids: list[str] | None = None,
            limit: int = 200) -> pd.DataFrame:
    """Who changed what and when, newest first."""
    h = schema.workspace_history
    stmt = sa.select(h.c.changed_at, h.c.changed_by, h.c.table_name, h.c.record_id, h.c.action, h.c.version,
                     h.c.before, h.c.after).order_by(h.c.change_id.desc()).limit(limit)
    if table:
        stmt = stmt.where(h.c.table_name == table)
    if record_ids is not None:
        stmt = stmt.where(h.c.record_id.in_([str(r) for r in record_ids]))
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(stmt).mappings().all(),
                            columns=["changed_at", "changed_by", "table_name", "record_id", "action", "version",
                                     "before", "after"])


def changed_fields(before: str | None, after: str | None) -> str:
    """`status: draft -> active; target_value: 60 -> 62` from two history JSON snapshots."""
    old = json.loads(before) if isinstance(before, str) and before else {}
    new = json.loads(after) if isinstance(after, str) and after else {}
    if not old or not new:
        return "created" if new else "deleted" if old else ""
    skip = {"version", "updated_at", "updated_by"}
    parts = [f"{k}: {old.get(k)!s} -> {new.get(k)!s}" for k in sorted(set(old) | set(new))
             if k not in skip and old.get(k) != new.get(k)]
    return "; ".join(parts)


_DATE_COLUMNS = ("start_date", "end_date", "visit_date", "date", "meeting_date")


def load(engine: Engine, table: str, columns: Sequence[str] | None = None, **filters) -> pd.DataFrame:
    """Rows of a workspace table, filtered in SQL (e.g. `school_id=[...]`), dates as datetime64; only `columns`
    when given (e.g. without a visit's notes where only its tags are read)."""
    tbl = _table(table)
    stmt = loads._filtered(tbl, **filters)
    if columns is not None:
        stmt = stmt.with_only_columns(*(tbl.c[c] for c in columns))
    df = loads._read(engine, stmt)
    if df.empty:
        df = _empty_frame(tbl, list(columns) if columns is not None else [c.name for c in tbl.columns])
    for col in _DATE_COLUMNS:
        if col in df:
            df[col] = pd.to_datetime(df[col])
    for col in ("baseline_year", "target_year"):
        if col in df and len(df):
            df[col] = df[col].astype("int64")
    for col in ("baseline_value", "target_value", "value"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    if "shareable" in df:
        df["shareable"] = df["shareable"].map(lambda v: bool(v) if v is not None and v == v else False).astype(bool)
    return df


def _empty_frame(tbl: sa.Table, names: list[str]) -> pd.DataFrame:
    """No rows, each column of the dtype its rows would have: a flag stays boolean, so `visits[visits["shareable"]]`
    filters rows (an empty object column would be read as a list of column names) and numbers stay numbers."""
    def dtype(kind: sa.types.TypeEngine) -> str:
        if isinstance(kind, sa.Boolean):
            return "bool"
        if isinstance(kind, sa.Integer):
            return "int64"
        if isinstance(kind, sa.Float):
            return "float64"
        if isinstance(kind, sa.Date):
            return "datetime64[ns]"  # as `load` reads dates
        return "object"
    return pd.DataFrame({name: pd.Series(dtype=dtype(tbl.c[name].type)) for name in names})
