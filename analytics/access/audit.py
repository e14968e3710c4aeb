"""The audit log: who signed in, imported, edited, and made, opened or revoked a shared link, and when.

One row per event in the `audit_log` table. Writers that change data pass their open connection so the
event commits (or rolls back) with the change it describes; the rest pass the engine. Rows are only
ever added: nothing in the product updates or deletes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analytics.data import schema

SIGN_IN, SIGN_OUT, SIGN_IN_REFUSED = "sign_in", "sign_out", "sign_in_refused"
IMPORT, EDIT = "import", "edit"
SHARE_CREATED, SHARE_OPENED, SHARE_REVOKED = "share_created", "share_opened", "share_revoked"
ACTIONS = (SIGN_IN, SIGN_OUT, SIGN_IN_REFUSED, IMPORT, EDIT, SHARE_CREATED, SHARE_OPENED, SHARE_REVOKED)
COLUMNS = ["event_id", "at", "who", "action", "target", "detail"]


def record(db: Engine | Connection, who: str, action: str, target: str = "", detail: str = "",
           at: datetime | None = None) -> None:
    """Add one event; inside `db`'s transaction when `db` is a connection."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; use one of {', '.join(ACTIONS)}")
    stmt = sa.insert(schema.audit_log).values(at=at or datetime.now(UTC), who=who or "unknown", action=action,
                                              target=target or None, detail=detail or None)
    if isinstance(db, Connection):
        db.execute(stmt)
        return
    with db.begin() as conn:
        conn.execute(stmt)


def seen(engine: Engine, who: str, action: str, target: str) -> bool:
    """Whether this exact event (who, action, target) is already logged (e.g. the same sign-in)."""
    table = schema.audit_log
    stmt = sa.select(table.c.event_id).where(table.c.who == who, table.c.action == action,
                                             table.c.target == target).limit(1)
    with engine.connect() as conn:
        return conn.execute(stmt).first() is not None


def load(engine: Engine, *, actions: Sequence[str] | None = None, who: str | None = None,
         since: datetime | None = None, until: datetime | None = None, limit: int | None = None) -> pd.DataFrame:
    """Events newest first, filtered in SQL; `who` matches part of the name, case-insensitively."""
    table = schema.audit_log
    stmt = sa.select(table).order_by(table.c.at.desc(), table.c.event_id.desc())
    if actions:
        stmt = stmt.where(table.c.action.in_(list(actions)))
    if who:
        stmt = stmt.where(sa.func.lower(table.c.who).contains(who.lower(), autoescape=True))
    if since is not None:
        stmt = stmt.where(table.c.at >= since)
    if until is not None:
        stmt = stmt.where(table.c.at < until)
    if limit:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        result = conn.execute(stmt)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame[COLUMNS]


def counts(engine: Engine) -> dict[str, int]:
    """Events per action (every action listed, zeros included) and the total."""
    table = schema.audit_log
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(table.c.action, sa.func.count()).group_by(table.c.action)).all())
    out = {action: int(rows.get(action, 0)) for action in ACTIONS}
    out["total"] = sum(int(n) for n in rows.values())
    return out
