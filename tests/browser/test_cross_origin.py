"""A web page on another origin and the API, as the browser enforces CORS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.calls import fetch_from
from tests.browser.live import Account, LiveGateway
from tests.browser.problems import PageProblems
from tests.browser.shots import Screenshots

pytestmark = pytest.mark.browser

PAGES = Path(__file__).parent / "pages"


@pytest.mark.parametrize("with_key", [True, False], ids=["with-a-key", "without-a-key"])
def test_a_page_on_another_origin_cannot_read_the_api(
    with_key: bool,
    page: Page,
    gateway: LiveGateway,
    account: Account,
    problems: PageProblems,
    screenshots: Screenshots,
    serve_origin: Callable[[Path], str],
) -> None:
    key = account.key if with_key else ""
    page.goto(f"{serve_origin(PAGES)}/blank.html")
    screenshots.take(page, "other-origin")
    problems.allow(r"blocked by CORS policy", r"net::ERR_FAILED")
    models = f"{gateway.url}/api/v1/models"
    assert fetch_from(page, models, key) == {"refused": "TypeError: Failed to fetch"}
    # The same call from the gateway's own origin is answered: the refusal above is CORS.
    page.goto("/sign-in")
    assert fetch_from(page, models, key)["status"] == 200
