"""What the admin sessions table shows besides the device: the application, the user id as
the application knows it, and the recent risk decision (from a manager that scores risk)."""

from __future__ import annotations

import pytest

from sessionward import MemoryStore, Policy, RequestContext, SessionManager
from sessionward.core.record import Session
from sessionward.service.admin_columns import (
    RISK_WINDOW,
    application_name,
    application_of,
    keeps_risk,
    pending_decisions,
    recent_risk,
    risk_cell,
    shown_user,
    user_cell,
    user_text,
)
from sessionward.service.tenancy import APP_KEY
from sessionward.testing import FakeClock

HOURS = 3600.0
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def test_users_read_as_their_application_knows_them() -> None:
    manager = SessionManager(MemoryStore())
    api = manager.issue("books/ann", data={APP_KEY: "books"})
    guest = manager.issue(data={APP_KEY: "books"})
    shopper = manager.issue("ann")
    admin = manager.issue("sessionward:admin:root")
    cart = manager.issue(data={"cart": ["tea"]})
    assert [shown_user(s) for s in (api, guest, shopper, admin)] == ["ann", None, "ann", "root"]
    assert [application_name(application_of(s)) for s in (api, guest, shopper, admin, cart)] == [
        "books",
        "books",
        "demo shop",
        "admin console",
        "demo shop",
    ]
    assert user_text(api.user_id) == "ann (books)"
    assert user_text(admin.user_id) == "root (admin console)"
    assert user_text(None) == "anonymous"
    # The link opens the user within their application; the text is escaped.
    assert 'href="/admin/users?application=books&amp;user=ann"' in user_cell(api)
    assert 'href="/admin/users?user=ann"' in user_cell(shopper)
    odd = manager.issue('x/<b>"')
    assert "<b>" not in user_cell(odd)


def _logged(clock: FakeClock) -> tuple[SessionManager, Session]:
    pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
    from sessionward.manager.risk import RiskAssessor

    policy = Policy(idle_timeout=24 * HOURS, absolute_timeout=7 * 24 * HOURS)
    manager = SessionManager(MemoryStore(), policy=policy, clock=clock, risk=RiskAssessor())
    home = RequestContext(ip="81.2.69.160", user_agent=UA, accept_language="en-GB")
    away = RequestContext(ip="86.128.9.1", user_agent=UA, accept_language="de-DE")
    session = manager.issue("default/eve", data={APP_KEY: "default"}, context=home)
    assert session.token is not None
    clock.advance(5 * HOURS)
    manager.validate(session.token, context=away)
    clock.advance(policy.effective_touch_interval)
    stored = manager.validate(session.token, context=away)  # the write keeps the decision
    return manager, stored


def test_a_recent_logged_decision_shows_and_filters_then_ages_out() -> None:
    clock = FakeClock()
    manager, session = _logged(clock)
    now = clock.now()
    decision = recent_risk(session, now)
    assert decision is not None
    assert decision["decision"] == "log"
    assert keeps_risk("any", session, now)
    assert keeps_risk("log", session, now)
    assert not keeps_risk("step_up", session, now)
    assert keeps_risk("", session, now)
    cell = risk_cell(session, now)
    assert ">logged</span>" in cell
    assert "en-gb -&gt; de-de" in cell  # the reasons, escaped, as a tooltip
    later = decision["t"] + RISK_WINDOW + 1
    assert recent_risk(session, later) is None
    assert not keeps_risk("any", session, later)
    assert risk_cell(session, later) == '<span class="muted">—</span>'
    unscored = SessionManager(MemoryStore()).issue("default/fay", data={APP_KEY: "default"})
    assert recent_risk(unscored, now) is None
    assert not keeps_risk("any", unscored, now)
    manager.close()


def test_decisions_not_yet_written_count_once_with_the_stored_ones() -> None:
    clock = FakeClock()
    manager, session = _logged(clock)
    now = clock.now()
    stored = recent_risk(session, now)
    assert stored is not None
    entries = [
        {
            "kind": "risk",
            "session_id": session.id,
            "at": stored["t"],
            "decision": "log",
            "score": stored["score"],
            "reasons": [tuple(r) for r in stored["reasons"]],
        },
        {
            "kind": "risk",
            "session_id": session.id,
            "at": now + 1,
            "decision": "step_up",
            "score": 7.4,
            "reasons": [("network.new_country", 5.4, "new country: X (US)")],
        },
        {"kind": "risk", "session_id": "another", "at": now, "decision": "revoke"},
        {"kind": "created", "session_id": session.id, "at": now},
    ]
    pending = pending_decisions(entries)
    assert sorted(pending) == sorted(["another", session.id])
    assert len(pending[session.id]) == 2
    assert not keeps_risk("step_up", session, now + 1)
    assert keeps_risk("step_up", session, now + 1, pending)
    newest = recent_risk(session, now + 1, pending)
    assert newest is not None
    assert newest["decision"] == "step_up"
    assert ">step-up</span>" in risk_cell(session, now + 1, pending)
    assert "new country: X (US)" in risk_cell(session, now + 1, pending)
    manager.close()
