"""The API documentation page (``/v1/``) in Debian's chromium with every request to another
origin blocked: it renders every operation of the OpenAPI document and sends a request."""

from __future__ import annotations

import time
from typing import Any

from sessionward.service.keys import create_key
from sessionward.service.openapi import openapi_document

from .test_browser import Live
from .test_browser import browser as browser  # a fixture
from .test_browser import live as live  # a fixture


def test_the_api_docs_page_works_offline_and_sends_requests(browser: Any, live: Live) -> None:
    raw, _ = create_key(live.runtime.state, "issue", "docs page", time.time())
    context = browser.new_context()
    elsewhere: list[str] = []

    def only_this_service(route: Any) -> None:
        if route.request.url.startswith(live.base + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_service)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(live.base + "/v1")
    assert page.url == live.base + "/v1/"
    page.wait_for_selector("#operations[aria-busy=false]")
    count = sum(len(item) for item in openapi_document()["paths"].values())
    assert page.locator("details.op").count() == count
    operation = page.locator("details.op", has=page.locator(".path", has_text="/v1/sessions"))
    issue = operation.filter(has_text="Issue a session").first
    issue.locator("summary").click()
    issue.get_by_label("Request body (JSON)").fill('{"user_id": "alice"}')
    page.get_by_label("API key").fill(raw)
    issue.get_by_role("button", name="Send request").click()
    answer = issue.locator("pre.answer")
    answer.filter(has_text="201").wait_for()
    assert '"user_id": "alice"' in answer.inner_text()
    assert raw not in page.url
    live.shot(page, "api-docs")
    page.set_viewport_size({"width": 390, "height": 844})
    live.shot(page, "api-docs-phone")
    context.close()
    assert elsewhere == []
    assert errors == []
