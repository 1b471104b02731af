"""The clean target: sessionward's own demo shop (``sessionward.service.create_app``), with
short timeouts so the timeout probe can watch them end.

User ``alice`` / ``wonderland-tea-party`` in the shop's realm. The scenario below is also
the worked example of docs/audit.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from sessionward import Policy
from sessionward.service import ServiceConfig, create_app
from sessionward.service.state import UserRow
from sessionward.service.throttle import RULES, Guard, Rules

USER, PASSWORD = "alice", "wonderland-tea-party"
IDLE, ABSOLUTE = 2.0, 6.0


def make_app(base_url: str, directory: Path) -> Any:
    config = ServiceConfig(
        store=str(directory / "shop.db"),
        public_url=base_url,
        admin=False,
        demo=True,
        demo_guest_limit=False,
        policy=Policy(idle_timeout=IDLE, absolute_timeout=ABSOLUTE),
    )
    app = create_app(config)
    # The shop throttles password attempts per address (10 a minute, successes included); an
    # audit signs in once per probe from one address, so the target allows it more. New guest
    # sessions, one per harvested sample, are not limited (``demo_guest_limit=False`` above).
    # The throttle itself is tested in tests/service/test_throttle.py and
    # tests/service/test_action_limits.py.
    runtime = app.state.runtime
    audit = Rules(address="1000/minute", pair="1000/minute", account="1000/day")
    old = runtime.guard
    rules = {**RULES, "password": audit}
    runtime.guard = Guard(old.storage, now=old.now, events=old.events, rules=rules)
    row = UserRow("demo", USER, PasswordHasher().hash(PASSWORD), None, time.time())
    app.state.runtime.state.add_user(row)
    return app


SCENARIO = f"""
[session]
cookie = "__Host-shop"

[login]
form = "/demo/login"
username_env = "SHOP_USER"
password_env = "SHOP_PASSWORD"

[authenticated]
path = "/demo/account"
contains = "Two-step verification"

[logout]
path = "/demo/logout"
fields_from = "/demo/account"

[harvest]
method = "POST"
path = "/demo/cart/add"
form = {{ item = "tea" }}
fields_from = "/demo/"

[[action]]
name = "add to cart"
path = "/demo/cart/add"
form = {{ item = "tea" }}
fields_from = "/demo/"
expect = {{ status = [303], location = "/demo/cart" }}

[timeouts]
idle = {IDLE:g}
absolute = {ABSOLUTE:g}
"""
