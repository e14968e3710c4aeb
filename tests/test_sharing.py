"""Shared-link tokens: sign, verify, tamper, expiry, clock skew, revocation, scope rules, CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics import cli
from analytics.access.sharing import ShareError, create_share, revoke_share, verify_share
from analytics.data import bulk_write

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SCHOOLS = pd.DataFrame({"school_id": ["1", "2", "3"], "school_name": ["A", "B", "C"], "level": "ES",
                        "cluster": ["North", "North", "South"]})


@pytest.fixture
def shared(engine, monkeypatch):
    monkeypatch.setenv("SSIF_SHARE_SECRET", "unit-test-secret")
    with engine.begin() as conn:
        bulk_write.upsert(conn, "schools", SCHOOLS)
    return engine


def test_round_trip_carries_view_scope_and_expiry(shared):
    token, link = create_share(shared, "http://h/cluster?cluster=North&year=2025", "cluster:North", 7, now=NOW,
                               base_url="http://h")
    assert link == f"http://h/cluster?cluster=North&year=2025&share={token}"
    grant = verify_share(shared, token, now=NOW + timedelta(days=1))
    assert (grant.view, grant.scope, grant.expires_at) == ("/cluster?cluster=North&year=2025", "cluster:North",
                                                           NOW + timedelta(days=7))


def test_tampered_payload_or_signature_is_refused(shared):
    token, _ = create_share(shared, "/cluster?cluster=North", "cluster:North", 7, now=NOW)
    payload, signature = token.split(".")
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    for bad in (f"{forged}.{signature}", f"{payload}.{signature[:-1]}x", "garbage", ""):
        with pytest.raises(ShareError):
            verify_share(shared, bad, now=NOW)


def test_other_secret_cannot_verify(shared, monkeypatch):
    token, _ = create_share(shared, "/", "district", 7, now=NOW)
    monkeypatch.setenv("SSIF_SHARE_SECRET", "another-secret")
    with pytest.raises(ShareError, match="altered"):
        verify_share(shared, token, now=NOW)


def test_expiry_and_clock_skew(shared):
    token, _ = create_share(shared, "/", "district", 0.5, now=NOW)
    verify_share(shared, token, now=NOW - timedelta(seconds=30))  # server clock slightly behind: accepted
    with pytest.raises(ShareError, match="not valid yet"):
        verify_share(shared, token, now=NOW - timedelta(minutes=5))
    with pytest.raises(ShareError, match="expired"):
        verify_share(shared, token, now=NOW + timedelta(hours=12))


def test_revoked_links_stop_working(shared):
    token, _ = create_share(shared, "/", "district", 7, now=NOW)
    assert revoke_share(shared, token)
    with pytest.raises(ShareError, match="revoked"):
        verify_share(shared, token, now=NOW)
    assert not revoke_share(shared, "no-such-token")


def test_scope_rules(shared):
    token, _ = create_share(shared, "/cluster?cluster=North", "cluster:North", 7, now=NOW)
    grant = verify_share(shared, token, now=NOW)
    assert grant.allows("cluster", {"cluster": "North"}, SCHOOLS)[0]
    assert grant.allows("school", {"school": "2"}, SCHOOLS)[0]
    assert not grant.allows("cluster", {"cluster": "South"}, SCHOOLS)[0]
    assert not grant.allows("school", {"school": "3"}, SCHOOLS)[0]
    assert not grant.allows("", {}, SCHOOLS)[0]
    assert not grant.allows("data", {}, SCHOOLS)[0]
    school_token, _ = create_share(shared, "/school?school=3", "school:3", 7, now=NOW)
    school_grant = verify_share(shared, school_token, now=NOW)
    assert school_grant.allows("school", {"school": "3"}, SCHOOLS)[0]
    assert not school_grant.allows("school", {"school": "1"}, SCHOOLS)[0]


def test_bad_scope_and_expiry_are_rejected(shared):
    with pytest.raises(ValueError, match="unknown scope"):
        create_share(shared, "/", "cluster:Atlantis", 7)
    with pytest.raises(ValueError, match="greater than 0"):
        create_share(shared, "/", "district", 0)


def test_cli_share_and_revoke(shared, monkeypatch, capsys, db_url):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert cli.main(["share", "http://board.example/cluster?cluster=North", "--scope", "cluster:North",
                     "--expires-days", "1.5"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("http://board.example/cluster?cluster=North&share=")
    token = link.split("share=")[1]
    verify_share(shared, token)
    assert cli.main(["share", "/", "--scope", "district", "--expires-days", "-1"]) == 2
    assert "greater than 0" in capsys.readouterr().err
    assert cli.main(["revoke", token]) == 0
    with pytest.raises(ShareError, match="revoked"):
        verify_share(shared, token)
