"""Run by test_mounts.py in a process of its own (Django's settings are per process): the
Django view of a back-channel logout receiver, through Django's RequestFactory."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django
from django.conf import settings

settings.configure(DEBUG=False, ALLOWED_HOSTS=["testserver"], SECRET_KEY="k" * 50)
django.setup()

from django.test import RequestFactory  # noqa: E402

from sessionward.signals.django import receiver_view  # noqa: E402
from sessionward.stores import MemoryStore  # noqa: E402
from signals.conftest import make_node  # noqa: E402
from signals.idp import TestIdp  # noqa: E402


def main() -> None:
    idp = TestIdp()
    with idp.serve():
        node = make_node(MemoryStore(), idp)
        session = node.login("alice", idp, "sid-A")
        view = receiver_view(node.logout)
        factory = RequestFactory()
        assert view(factory.get("/bcl")).status_code == 405
        body = urlencode({"logout_token": idp.logout_token(node.clock.now(), sid="sid-A")})
        request = factory.post("/bcl", body, content_type="application/x-www-form-urlencoded")
        response = view(request)
        assert response.status_code == 200, response.content
        assert response["cache-control"] == "no-store"
        assert not node.alive(session)
        again = view(factory.post("/bcl", body, content_type="application/x-www-form-urlencoded"))
        assert again.status_code == 400
    print("ok")


main()
