"""The admin console's webhooks page: endpoints with their delivery history, behind the
console's sign-in, and never a secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionward.core.events import SessionRevoked
from sessionward.signals.webhook_endpoints import create_webhook

from ._forms import TOTP, Site, site_at

ADMIN_PASSWORD = "staple battery horse"  # noqa: S105 - a test account's


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with site_at(tmp_path) as site:
        site.add_user("admin", "root", ADMIN_PASSWORD, TOTP)
        yield site


def test_the_page_lists_endpoints_and_their_deliveries(site: Site) -> None:
    hooks = site.runtime.webhooks
    assert hooks is not None
    now = site.clock.now()
    down, secret = create_webhook(
        hooks.store, hooks.log, "http://127.0.0.1:9/never", application="shop", now=now,
        kinds=["revoked"],
    )  # fmt: skip
    hooks.log.append([{**SessionRevoked("s1", "shop/u", now).to_dict(), "application": "shop"}])
    assert hooks.deliverer.run_once() == 0  # port 9 refuses: one failed attempt recorded
    anonymous = site.browser()
    assert anonymous.get("/admin/webhooks").status_code in (302, 303, 307)
    admin = site.browser()
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    page = admin.get("/admin/webhooks")
    assert page.status_code == 200
    assert down.id in page.text
    assert "http://127.0.0.1:9/never" in page.text
    assert "connect" in page.text  # the failed attempt's outcome
    assert "retrying: 1 failure(s) in a row" in page.text
    assert secret.reveal() not in page.text
    detail = admin.get(f"/admin/webhooks/{down.id}")
    assert detail.status_code == 200
    assert "Delivery history" in detail.text
    assert "evt_" in detail.text
    assert admin.get("/admin/webhooks/wh_missing").status_code == 404
    assert 'href="/admin/webhooks"' in admin.get("/admin/").text


def test_a_disabled_endpoint_is_enabled_from_the_page(site: Site) -> None:
    hooks = site.runtime.webhooks
    assert hooks is not None
    hook, _ = create_webhook(
        hooks.store, hooks.log, "https://hooks.test/", application="default",
        now=site.clock.now(),
    )  # fmt: skip
    hooks.store.set_state(hook.id, "disabled", "repeated_failure", site.clock.now())
    admin = site.browser()
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    page = admin.get("/admin/webhooks")
    assert "repeated_failure" in page.text
    assert "Enable again" in page.text
    done = admin.post(f"/admin/webhooks/{hook.id}/enable", {}, csrf_from="/admin/webhooks")
    assert done.status_code == 303
    state = hooks.store.get(hook.id)
    assert state is not None
    assert state.state == "active"
    assert "Enable again" not in admin.get("/admin/webhooks").text
    forged = site.browser()  # no console session: nothing changes
    hooks.store.set_state(hook.id, "disabled", "by_test", site.clock.now())
    forged.request("POST", f"/admin/webhooks/{hook.id}/enable")
    state = hooks.store.get(hook.id)
    assert state is not None
    assert state.state == "disabled"
