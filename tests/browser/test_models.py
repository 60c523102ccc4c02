"""The models page: every enabled model, what it costs and accepts, and its health."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.console import navigate, sign_in
from tests.browser.live import Account, LiveGateway
from tests.browser.shots import Screenshots
from tests.helpers import auth

pytestmark = pytest.mark.browser


def test_the_models_page_shows_every_enabled_model(
    page: Page, gateway: LiveGateway, account: Account, screenshots: Screenshots
) -> None:
    with gateway.api() as api:
        listed = api.get("/api/v1/models", headers=auth(account.key)).json()["data"]
    enabled = sorted(m["id"] for m in listed if m["id"] != "auto")
    assert "local/overlay" in enabled

    sign_in(page, account.management_key)
    navigate(page, "Models")
    screenshots.for_docs(page, "console-models")
    cards = page.get_by_test_id("model-card")
    assert sorted(c.get_attribute("data-slug") or "" for c in cards.all()) == enabled

    local = page.locator('[data-testid="model-card"][data-slug="local/overlay"]')
    expect(local).to_contain_text("Local overlay (offline)")
    facts = {
        term.inner_text(): term.locator("xpath=following-sibling::dd[1]").inner_text()
        for term in local.locator("dt").all()
    }
    assert facts["Provider"] == "local"
    assert facts["Price"] == "1 credit per image"
    assert facts["Categories"] == "tops, bottoms, one-pieces"  # "auto" picks one of these
    assert facts["Runs"] == "sync (answers in one call)"
    assert facts["In auto"] == "yes"
    expect(local.get_by_test_id("model-health")).to_have_text("fine")

    kling = page.locator('[data-testid="model-card"][data-slug="kling/kolors-v1-5"]')
    expect(kling).to_contain_text("submit-poll (a task polled until done)")
