"""Every console page, at laptop and phone sizes: it renders with nothing refused by its
Content-Security-Policy and no console error (the ``page`` fixture checks), the phone layout
never scrolls sideways, and each is kept as a screenshot (the documentation's, on request).

The tour has a gateway of its own, so that what the pages show does not depend on which
other tests ran before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.console import heading, navigate
from tests.browser.live import Account, LiveGateway, live_gateway
from tests.browser.shots import LAPTOP, PHONE, Screenshots
from tests.helpers import SAMPLES, auth, data_url

pytestmark = pytest.mark.browser

# (navigation label, page heading, docs image name)
NAV = [
    ("Overview", "Overview", "overview"),
    ("API keys", "API keys", "keys"),
    ("Models", "Models", "models"),
    ("Playground", "Playground", "playground"),
    ("Generations", "Generations", "generations"),
    ("Webhooks", "Webhooks", "webhooks"),
    ("Demo sessions", "Demo sessions", "demo-sessions"),
    ("Operator", "Operator", "operator"),
]
# Pages whose laptop screenshot for the docs another test takes, in a more telling state.
SHOWN_ELSEWHERE = {"keys", "models", "playground"}


@pytest.fixture(scope="module")
def tour_gateway(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveGateway]:
    with live_gateway(tmp_path_factory.mktemp("tour")) as live:
        yield live


@pytest.fixture(scope="module")
def operator(tour_gateway: LiveGateway) -> Account:
    """An operator's account with a little history: try-ons through the API, one failed."""
    tour_gateway.open_account(credits=250, name="Acme Outfitters")
    account = tour_gateway.open_account(credits=500, name="Gateway operator", operator=True)
    body: dict[str, Any] = {
        "person_images": [data_url(SAMPLES / "person.jpg", "image/jpeg")],
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
        "category": "tops",
    }
    with tour_gateway.api() as api:
        for model in ("local/overlay", "kling/kolors-v1-5", "local/overlay"):
            done = api.post(
                "/api/v1/tryon", json={**body, "model": model}, headers=auth(account.key)
            )
            assert done.status_code == 200, done.text
        tour_gateway.kling_faults.inject("content_refused")
        refused = api.post(
            "/api/v1/tryon", json={**body, "model": "kling/kolors-v1-5"}, headers=auth(account.key)
        )
        assert refused.status_code == 400, refused.text
    return account


def scrolls_sideways(page: Page) -> bool:
    return bool(
        page.evaluate(
            "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
    )


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_every_page_renders_cleanly_and_fits(
    size: str,
    open_page: Callable[..., Page],
    tour_gateway: LiveGateway,
    operator: Account,
    screenshots: Screenshots,
) -> None:
    page = open_page(LAPTOP if size == "laptop" else PHONE)
    suffix = "" if size == "laptop" else "-phone"
    page.goto(f"{tour_gateway.url}/sign-in")
    heading(page, "Sign in to the console")
    assert not scrolls_sideways(page), "the sign-in page scrolls sideways"
    if size == "phone":
        screenshots.for_docs(page, "console-sign-in-phone")

    sign_in_at(page, tour_gateway, operator)
    for label, title, name in NAV:
        navigate(page, label, title)
        expect(page.get_by_role("link", name=label, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        assert not scrolls_sideways(page), f"{title} scrolls sideways at {size} size"
        if size == "phone" or name not in SHOWN_ELSEWHERE:
            screenshots.for_docs(page, f"console-{name}{suffix}")

    navigate(page, "Generations")
    rows = page.get_by_test_id("generation-row")
    rows.filter(has_text="completed").first.get_by_role("link").click()
    expect(page.get_by_test_id("generation-facts")).to_be_visible()
    assert not scrolls_sideways(page), f"a generation's page scrolls sideways at {size} size"
    screenshots.for_docs(page, f"console-generation{suffix}")


def sign_in_at(page: Page, gateway: LiveGateway, account: Account) -> None:
    page.goto(f"{gateway.url}/sign-in")
    page.get_by_label("API key").fill(account.management_key)
    page.get_by_role("button", name="Sign in").click()
    heading(page, "Overview")
