"""Local run or server, and who may do what once signed in (DESIGN §11).

A local run (listening on localhost only, embedded SQLite, no `SSIF_SERVER_MODE`) is one editor at their
own machine. Anything else is a server: `SSIF_SERVER_MODE=1`, any PostgreSQL database, or a listen
address other than a loopback one (an unset Streamlit `server.address` listens on every interface, so it
counts as non-local). A server without staff sign-in configured serves no staff page.

Roles come from the `[roles]` section of secrets.toml, matched on the e-mail address the identity
provider returns (case-insensitive):

- `editors = ["a@district.org", ...]`: import, edit, create shared links, see `/data` and the audit log;
- `viewers = [...]` and `allowed_domains = ["district.org"]`: staff viewers (every page unsuppressed,
  nothing to import, edit or share).

Anyone else who signs in is refused: with a public provider (Google, Microsoft) "can sign in" is not
"works for the district".
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Engine

EDITOR, VIEWER = "editor", "viewer"

# The listen address of the running dashboard, when there is one (set by the app shell; the CLI serves
# nothing, so it stays None there).
_listen_address: str | None = None


def set_listen_address(address: str | None) -> None:
    """Record Streamlit's `server.address` ("" when unset, meaning every interface)."""
    global _listen_address
    _listen_address = "" if address is None else str(address)


def is_local_address(address: str | None) -> bool:
    """True for loopback addresses only; an unset address listens on every interface."""
    if not address:
        return False
    host = address.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_mode_reasons(engine: Engine | None = None, listen_address: str | None = None) -> list[str]:
    """Why this run counts as a server (empty for a local run)."""
    address = _listen_address if listen_address is None else listen_address
    reasons = []
    if os.environ.get("SSIF_SERVER_MODE") == "1":
        reasons.append("SSIF_SERVER_MODE=1 is set")
    if engine is not None and engine.dialect.name == "postgresql":
        reasons.append("the database is PostgreSQL")
    if address is not None and not is_local_address(address):
        reasons.append(f"it listens on {address or 'every network interface'} (server.address), not localhost")
    return reasons


def server_mode(engine: Engine | None = None, listen_address: str | None = None) -> bool:
    return bool(server_mode_reasons(engine, listen_address))


@dataclass(frozen=True)
class Roles:
    editors: frozenset[str]
    viewers: frozenset[str]
    allowed_domains: frozenset[str]

    @classmethod
    def from_section(cls, section: Mapping | None) -> Roles:
        """`[roles]` of secrets.toml; a single string is accepted where a list is expected."""
        section = section or {}

        def _set(key: str) -> frozenset[str]:
            value = section.get(key, [])
            values: Iterable = [value] if isinstance(value, str) else value
            return frozenset(str(v).strip().lower().lstrip("@") if key == "allowed_domains" else
                             str(v).strip().lower() for v in values if str(v).strip())

        return cls(_set("editors"), _set("viewers"), _set("allowed_domains"))

    def role_for(self, email: str | None) -> str | None:
        """"editor", "viewer" or None (not allowed in) for a signed-in e-mail address."""
        address = (email or "").strip().lower()
        if not address or "@" not in address:
            return None
        if address in self.editors:
            return EDITOR
        if address in self.viewers or address.rsplit("@", 1)[1] in self.allowed_domains:
            return VIEWER
        return None


def email_refusal(claims: Mapping) -> str | None:
    """Why a signed-in identity's e-mail address may not be used for `[roles]`, or None when it may.

    OpenID Connect's `email_verified` claim (OIDC Core 1.0, section 5.1): when the provider sends it and it is
    false, anyone could have typed that address at the provider, so the sign-in is refused. When it is
    absent the address is used as sent (a district's own provider issues only its own addresses and often
    omits the claim). Some providers send it as the string "false".
    """
    verified = claims.get("email_verified")
    if verified is None:
        return None
    if verified is False or str(verified).strip().lower() in ("false", "0", "no"):
        return "the sign-in provider says this e-mail address is not verified"
    return None


SIGN_IN_HELP = """\
Add an OpenID Connect provider (the district's Microsoft Entra ID, Google Workspace, Okta, …) and the
staff who may sign in to `.streamlit/secrets.toml`, then restart the dashboard:

```toml
[auth]
redirect_uri = "https://dashboard.example.org/oauth2callback"
cookie_secret = "a long random string"
client_id = "…"
client_secret = "…"
server_metadata_url = "https://login.example.org/.well-known/openid-configuration"

[roles]
editors = ["director@example.org"]          # import, edit, share links, audit log
viewers = ["board.liaison@example.org"]     # read every page, nothing to change
allowed_domains = ["example.org"]           # everyone at the district is a viewer
```

Shared read-only links keep working meanwhile (they need `SSIF_SHARE_SECRET` or `[sharing] secret`)."""
