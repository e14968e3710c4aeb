"""Read-only shared links: HMAC-signed tokens holding a view, a scope and an expiry (DESIGN §4).

A token is ``base64url(payload).base64url(HMAC-SHA256(secret, payload))`` where the payload is compact
JSON: token id, view (path and query), scope (``district``, ``cluster:NAME`` or ``school:ID``), expiry and
issue time (UTC seconds). Every token is also a row of the ``shares`` table, so it can be revoked and
audited (who made it, when, scope, expiry, times opened).

The secret comes from ``SSIF_SHARE_SECRET`` or ``[sharing] secret`` in ``.streamlit/secrets.toml``. A
local single-editor run without one gets a random secret kept in ``data/share.secret`` (never committed);
in server mode (``analytics.access.deployment``: ``SSIF_SERVER_MODE=1``, a PostgreSQL database or a
non-local listen address) sharing without a configured secret is
an error, so a server never signs with a secret nobody chose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from analytics.access import audit
from analytics.config import PROJECT_ROOT, secrets_section
from analytics.data import schema

LOCAL_SECRET = PROJECT_ROOT / "data" / "share.secret"
CLOCK_SKEW = timedelta(seconds=60)
# Pages a scope may show; /data and /meeting are never shared.
SCOPED_PAGES = {"district": {"", "cluster", "school", "gaps", "discipline", "learning", "plans"},
                "cluster": {"cluster", "school", "gaps", "discipline", "learning", "plans"},
                "school": {"school", "discipline", "learning", "plans"}}


class ShareError(Exception):
    """Why a shared link cannot be opened (tampered, expired, revoked, unknown, malformed)."""


class MissingSecret(RuntimeError):
    """Server mode without a configured signing secret."""


@dataclass(frozen=True)
class ShareGrant:
    token_id: str
    view: str
    scope: str
    expires_at: datetime

    @property
    def kind(self) -> str:
        return self.scope.split(":", 1)[0]

    @property
    def target(self) -> str | None:
        return self.scope.split(":", 1)[1] if ":" in self.scope else None

    def allows(self, path: str, params: dict[str, str], schools: pd.DataFrame) -> tuple[bool, str]:
        """Whether this grant may show `path` with `params`; the reason when it may not."""
        path = path.strip("/")
        if path not in SCOPED_PAGES[self.kind]:
            return False, "This shared link does not include that page."
        if self.kind == "district":
            return True, ""
        school = params.get("school")
        cluster = params.get("cluster")
        if self.kind == "cluster":
            members = set(schools.loc[schools["cluster"] == self.target, "school_id"])
            if path in ("cluster", "gaps", "discipline") and cluster != self.target:
                return False, f"This shared link only covers the {self.target} cluster."
            if school not in (None, "", "all") and school not in members:
                return False, f"This shared link only covers schools of the {self.target} cluster."
            # /learning without a school would evaluate the whole district: a cluster link names a school.
            if path in ("school", "learning") and school not in members:
                return False, f"This shared link only covers schools of the {self.target} cluster."
            return True, ""
        if school != self.target:
            return False, "This shared link only covers one school."
        if cluster not in (None, "", "all") and cluster != _cluster_of(self.target, schools):
            return False, "This shared link only covers one school."
        return True, ""


def _cluster_of(school_id: str | None, schools: pd.DataFrame) -> str | None:
    match = schools.loc[schools["school_id"] == school_id, "cluster"]
    return str(match.iloc[0]) if len(match) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def server_mode(engine: Engine | None = None) -> bool:
    from analytics.access.deployment import server_mode as _server_mode

    return _server_mode(engine)


def signing_secret(engine: Engine | None = None) -> bytes:
    """The configured secret; a generated local one for a single-editor run; an error on a server."""
    configured = os.environ.get("SSIF_SHARE_SECRET") or secrets_section("sharing").get("secret")
    if configured:
        return str(configured).encode("utf-8")
    if server_mode(engine):
        raise MissingSecret("sharing needs a secret on a server: set SSIF_SHARE_SECRET or [sharing] secret in "
                            ".streamlit/secrets.toml")
    if not LOCAL_SECRET.exists():
        LOCAL_SECRET.parent.mkdir(parents=True, exist_ok=True)
        LOCAL_SECRET.write_text(secrets.token_hex(32))
        LOCAL_SECRET.chmod(0o600)
    return LOCAL_SECRET.read_text().strip().encode("utf-8")


def _sign(payload: bytes, secret: bytes) -> str:
    return _b64(hmac.new(secret, payload, hashlib.sha256).digest())


def normalise_view(url: str) -> str:
    """`/cluster?cluster=X&year=2025` from a full or relative URL, without any `share` parameter."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "share"]
    path = "/" + parts.path.strip("/")
    return path + ("?" + urlencode(query) if query else "")


def validate_scope(scope: str, schools: pd.DataFrame) -> str:
    kind, _, target = scope.partition(":")
    if kind == "district" and not target:
        return scope
    if kind == "cluster" and target in set(schools["cluster"]):
        return scope
    if kind == "school" and target in set(schools["school_id"]):
        return scope
    raise ValueError(f"unknown scope {scope!r}: use district, cluster:NAME or school:ID of this district")


def create_share(engine: Engine, view_url: str, scope: str, expires_days: float = 30, note: str = "",
                 who: str = "editor", now: datetime | None = None, base_url: str = "") -> tuple[str, str]:
    """Sign and record a read-only link; returns (token, link)."""
    if not expires_days > 0:
        raise ValueError("--expires-days must be greater than 0")
    from analytics.data.loads import load_schools

    validate_scope(scope, load_schools(engine))
    now = now or datetime.now(UTC)
    expires = now + timedelta(days=expires_days)
    view = normalise_view(view_url)
    token_id = secrets.token_urlsafe(9)
    payload = json.dumps({"i": token_id, "v": view, "s": scope, "e": int(expires.timestamp()),
                          "t": int(now.timestamp())}, separators=(",", ":")).encode("utf-8")
    token = f"{_b64(payload)}.{_sign(payload, signing_secret(engine))}"
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.shares).values(
            token_id=token_id, view=view, scope=scope, note=note, created_by=who, created_at=now,
            expires_at=expires, times_opened=0))
        audit.record(conn, who, audit.SHARE_CREATED, token_id,
                     f"{view} scope {scope}, expires {expires:%Y-%m-%d %H:%M} UTC" + (f"; note: {note}" if note else ""),
                     at=now)
    separator = "&" if "?" in view else "?"
    return token, f"{base_url.rstrip('/')}{view}{separator}share={token}"


def verify_share(engine: Engine, token: str, now: datetime | None = None) -> ShareGrant:
    """The grant a token carries, or ShareError saying why it cannot be opened."""
    now = now or datetime.now(UTC)
    try:
        payload_text, signature = token.split(".", 1)
        payload = _unb64(payload_text)
    except (ValueError, TypeError) as exc:
        raise ShareError("This link is not a valid shared link.") from exc
    expected = _sign(payload, signing_secret(engine))
    if not hmac.compare_digest(expected, signature):
        raise ShareError("This shared link has been altered and cannot be opened.")
    try:
        data = json.loads(payload)
        token_id, view, scope = data["i"], data["v"], data["s"]
        expires = datetime.fromtimestamp(data["e"], UTC)
        issued = datetime.fromtimestamp(data["t"], UTC)
    except (ValueError, KeyError, TypeError) as exc:
        raise ShareError("This link is not a valid shared link.") from exc
    if issued - CLOCK_SKEW > now:
        raise ShareError("This shared link is not valid yet (check the server clock).")
    if now >= expires:
        raise ShareError(f"This shared link expired on {expires:%Y-%m-%d %H:%M} UTC. Ask for a new one.")
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.shares.c.revoked_at).where(schema.shares.c.token_id == token_id)).first()
    if row is None:
        raise ShareError("This shared link is not known to this dashboard.")
    if row.revoked_at is not None:
        raise ShareError("This shared link has been revoked. Ask for a new one.")
    return ShareGrant(token_id, view, scope, expires)


def revoke_share(engine: Engine, token_or_id: str, now: datetime | None = None, who: str = "unknown") -> bool:
    """Revoke by token or token id; False when no such share exists."""
    token_id = token_or_id
    if "." in token_or_id:
        try:
            token_id = json.loads(_unb64(token_or_id.split(".", 1)[0]))["i"]
        except (ValueError, KeyError, TypeError):
            return False
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        result = conn.execute(sa.update(schema.shares).where(schema.shares.c.token_id == token_id)
                              .values(revoked_at=now))
        if result.rowcount > 0:
            audit.record(conn, who, audit.SHARE_REVOKED, token_id, at=now)
    return result.rowcount > 0


def record_open(engine: Engine, grant: ShareGrant) -> None:
    """Count one opening of a link (once per browser session) and log it."""
    with engine.begin() as conn:
        conn.execute(sa.update(schema.shares).where(schema.shares.c.token_id == grant.token_id)
                     .values(times_opened=schema.shares.c.times_opened + 1))
        audit.record(conn, "shared-link viewer", audit.SHARE_OPENED, grant.token_id,
                     f"{grant.view} scope {grant.scope}")


def has_live_shares(engine: Engine, now: datetime | None = None) -> bool:
    """True when some shared link can still be opened: neither revoked nor expired."""
    now = now or datetime.now(UTC)
    shares = schema.shares.c
    query = sa.select(shares.token_id).where(shares.revoked_at.is_(None), shares.expires_at > now).limit(1)
    with engine.connect() as conn:
        return conn.execute(query).first() is not None


def list_shares(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(sa.select(schema.shares).order_by(schema.shares.c.created_at.desc()))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def share_command(engine: Engine, args) -> int:
    """`python -m analytics share URL --scope ... [--expires-days N]`: print the link."""
    base = os.environ.get("SSIF_BASE_URL", "http://localhost:8501")
    url = args.url if args.url.startswith(("http://", "https://")) else base.rstrip("/") + "/" + args.url.lstrip("/")
    parts = urlsplit(url)
    try:
        _, link = create_share(engine, url, args.scope, args.expires_days, args.note, who=_who(),
                               base_url=f"{parts.scheme}://{parts.netloc}")
    except (ValueError, MissingSecret) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(link)
    return 0


def revoke_command(engine: Engine, args) -> int:
    if revoke_share(engine, args.token, who=_who()):
        print("revoked")
        return 0
    print("error: no such shared link", file=sys.stderr)
    return 1


def _who() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"
