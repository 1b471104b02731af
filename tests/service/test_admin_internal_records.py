"""The admin console and the metrics over real HTTP, on the service's own SQLite file: the spent
ids of DPoP proofs and logout tokens and the identity-provider index that the library keeps in
that file show nowhere as sessions (the live-session table, the dashboard's stored-session
count, ``sessionward_sessions``)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proofs import Device

from sessionward import SessionManager, SQLiteStore
from sessionward.core.dpop import DpopPolicy
from sessionward.manager._sync.binding import Binder
from sessionward.service.keys import create_key
from sessionward.signals._sync.links import IdpLinks
from sessionward.signals.links import IdpLink

from ._forms import TOTP, Browser, Site, site_at

ADMIN_PASSWORD = "staple battery horse"  # noqa: S105 - a test account's
URL = "https://api.example/orders"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with site_at(tmp_path) as site:
        site.add_user("admin", "root", ADMIN_PASSWORD, TOTP)
        yield site


def _figures(site: Site, admin: Browser, key: str) -> tuple[int, int, int]:
    """Sessions in the live-session table, on the dashboard and in the metrics."""
    table = re.search(r"of (\d+) live session", admin.get("/admin/sessions").text)
    dashboard = re.search(r'id="count-sessions">(\d+)<', admin.get("/admin/").text)
    metrics = admin.http.get(
        site.base + "/metrics", headers={"authorization": f"Bearer {key}"}
    ).text
    gauge = re.search(r"^sessionward_sessions (\d+)$", metrics, re.MULTILINE)
    assert table is not None
    assert dashboard is not None
    assert gauge is not None
    return int(table[1]), int(dashboard[1]), int(gauge[1])


def test_internal_records_are_not_shown_as_sessions(site: Site, tmp_path: Path) -> None:
    admin = site.browser()
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    key = create_key(site.runtime.state, "validate", "metrics", time.time())[0]
    before = _figures(site, admin, key)
    assert before[0] >= 1  # the admin's own session at least
    assert before[1] == before[2]
    # Another process on the same file (as a worker of the application would be): one more
    # session, linked to a provider, a DPoP proof and a spent logout token.
    manager = SessionManager(SQLiteStore(tmp_path / "site.db"), clock=site.clock)
    try:
        link = IdpLink("https://idp.example", "sid-1", "sub-1")
        links = IdpLinks(manager)
        links.remember(manager.issue("alice", data=link.data()))
        device = Device()
        proof = device.dpop("POST", URL, iat=site.clock.now())
        Binder(manager).check_dpop(DpopPolicy(), proof, method="POST", url=URL)
        assert links.first_use("bcl", "https://idp.example.jti-1", site.clock.now() + 120)
    finally:
        manager.close()
    after = _figures(site, admin, key)
    assert after == (before[0] + 1, before[1] + 1, before[2] + 1)
