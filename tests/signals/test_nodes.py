"""Two nodes on one PostgreSQL or one Redis (private servers): a logout token or a SET
received by one node ends the sessions before the other node's next request, and a token
spent on one node is refused on the other."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from servers import PostgresServer, RedisServer
from servers import postgres_server as postgres_server  # a fixture
from servers import redis_server as redis_server  # a fixture

from sessionward.signals.claims import SESSION_REVOKED
from sessionward.stores._sync.base import Store

from .conftest import AUDIENCE, Node, make_node
from .idp import TestIdp

FORM = "application/x-www-form-urlencoded"


def _stores(request: pytest.FixtureRequest, kind: str) -> tuple[Store, Store]:
    if kind == "postgres":
        from sessionward.stores.postgres import PostgresStore

        pg = request.getfixturevalue("postgres_server")
        assert isinstance(pg, PostgresServer)
        pg.empty()
        return PostgresStore(pg.conninfo, max_size=2), PostgresStore(pg.conninfo, max_size=2)
    from sessionward.stores.redis import RedisStore

    server = request.getfixturevalue("redis_server")
    assert isinstance(server, RedisServer)
    server.call("FLUSHALL")
    return RedisStore(server.url), RedisStore(server.url)


@pytest.fixture(params=["postgres", "redis"])
def nodes(request: pytest.FixtureRequest, idp: TestIdp) -> Iterator[tuple[Node, Node]]:
    first, second = _stores(request, request.param)
    a = make_node(first, idp)
    b = make_node(second, idp, a.clock)
    yield a, b
    for node in (a, b):
        node.keys.close()
        node.manager.close()


def _logout(node: Node, token: str) -> int:
    return node.logout.handle(urlencode({"logout_token": token}).encode(), FORM).status


def test_a_logout_received_by_one_node_ends_the_session_on_the_other(
    nodes: tuple[Node, Node], idp: TestIdp
) -> None:
    a, b = nodes
    target = b.login("alice", idp, "sid-A")
    kept = b.login("alice", idp, "sid-B")
    assert b.alive(target)
    token = idp.logout_token(a.clock.now(), sid="sid-A")
    assert _logout(a, token) == 200
    assert not b.alive(target)
    assert b.alive(kept)
    assert _logout(b, token) == 400  # the jti was spent on the other node
    sub_only = idp.logout_token(a.clock.now(), sub="sub-alice")
    assert _logout(b, sub_only) == 200
    assert not a.alive(kept)


def test_a_set_received_by_one_node_ends_the_session_on_the_other(
    nodes: tuple[Node, Node], idp: TestIdp
) -> None:
    a, b = nodes
    target = b.login("alice", idp, "sid-A")
    bob = b.login("bob", idp, "sid-B")
    now = a.clock.now()
    subject = {"format": "opaque", "id": "sid-A"}
    token = idp.set_token(now, {SESSION_REVOKED: {}}, audience=AUDIENCE, sub_id=subject)
    assert a.ssf.handle(token.encode(), "application/secevent+jwt").status == 202
    assert not b.alive(target)
    assert b.alive(bob)
    replay = b.ssf.handle(token.encode(), "application/secevent+jwt")
    assert (replay.status, json.loads(replay.body)["description"]) == (400, "replayed")
