"""API keys in the console: a new key is shown once and works; a revoked one gets 401; a key's
credit limit is set, shown with what is left of it, and changed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.console import heading, sign_in
from tests.browser.live import Account, LiveGateway
from tests.browser.shots import Screenshots
from tests.helpers import SAMPLES, auth, data_url

pytestmark = pytest.mark.browser


def create_key(page: Page, name: str, scope: str) -> str:
    """Create a key on the API keys page; returns its secret as the page shows it."""
    page.goto("/keys")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Scope").select_option(scope)
    page.get_by_role("button", name="Create key").click()
    heading(page, "API keys")
    shown = page.get_by_test_id("new-key")
    expect(shown).to_contain_text(f"Your new key “{name}”")
    expect(shown).to_contain_text("it is not shown again")
    secret = page.get_by_test_id("new-key-secret").input_value()
    assert secret.startswith("tryon_")
    return secret


@pytest.mark.parametrize("scope", ["inference", "management"])
def test_a_new_key_is_shown_once_and_works_against_the_api(
    scope: str, page: Page, gateway: LiveGateway, account: Account, screenshots: Screenshots
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, account.management_key)
    secret = create_key(page, f"{scope} from the console", scope)
    if scope == "inference":
        screenshots.for_docs(page, "console-keys-created")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret

    with gateway.api() as api:
        me = api.get("/api/v1/key", headers=auth(secret))
        assert me.status_code == 200, me.text
        assert me.json()["data"]["scope"] == scope
        credits = api.get("/api/v1/credits", headers=auth(secret))
        assert credits.status_code == (200 if scope == "inference" else 403), credits.text

    page.goto("/keys")  # the page shows the key's row from now on, never its secret
    heading(page, "API keys")
    expect(page.get_by_test_id("new-key")).to_have_count(0)
    assert secret not in page.content()
    row = page.get_by_test_id("key-row").filter(has_text=f"{scope} from the console")
    expect(row).to_contain_text(secret[:12])
    expect(row).to_contain_text(scope)


def test_reloading_the_new_key_page_makes_no_other_key(page: Page, account: Account) -> None:
    sign_in(page, account.management_key)
    secret = create_key(page, "reloaded", "inference")
    page.reload()
    heading(page, "API keys")
    expect(page.get_by_test_id("key-row").filter(has_text="reloaded")).to_have_count(1)
    assert secret not in page.content()


def test_a_revoked_key_gets_401(
    page: Page, gateway: LiveGateway, account: Account, screenshots: Screenshots
) -> None:
    sign_in(page, account.management_key)
    secret = create_key(page, "to revoke", "inference")
    with gateway.api() as api:
        assert api.get("/api/v1/credits", headers=auth(secret)).status_code == 200

    page.goto("/keys")
    screenshots.for_docs(page, "console-keys")
    row = page.get_by_test_id("key-row").filter(has_text="to revoke")
    row.get_by_role("link", name="Revoke to revoke").click()
    heading(page, "Revoke key “to revoke”?")
    screenshots.take(page, "confirm")
    page.get_by_role("button", name="Revoke key").click()
    heading(page, "API keys")
    expect(row).to_contain_text("revoked")

    with gateway.api() as api:
        refused = api.get("/api/v1/credits", headers=auth(secret))
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == 401
        # the account's other keys are untouched
        assert api.get("/api/v1/credits", headers=auth(account.key)).status_code == 200


def test_a_key_made_with_a_monthly_limit_shows_what_is_left_and_its_limit_changes(
    page: Page, gateway: LiveGateway, account: Account, screenshots: Screenshots
) -> None:
    sign_in(page, account.management_key)
    page.goto("/keys")
    page.get_by_label("Name").fill("capped shop")
    page.get_by_text("Limits (optional)").click()  # the limits fold open
    page.get_by_label("Credit limit").fill("20")
    page.get_by_label("Limit resets").select_option("monthly")
    page.get_by_label("Generations at once").fill("2")
    page.get_by_role("button", name="Create key").click()
    heading(page, "API keys")
    secret = page.get_by_test_id("new-key-secret").input_value()
    row = page.get_by_test_id("key-row").filter(has_text="capped shop")
    expect(row.get_by_test_id("key-limit")).to_have_text("20 of 20 left · monthly")
    expect(row.get_by_test_id("key-rates")).to_have_text("2 at once")

    row.get_by_role("link", name="Limits of capped shop").click()
    heading(page, "Limits of key “capped shop”")
    expect(page.get_by_label("Credit limit")).to_have_value("20")
    expect(page.get_by_label("Limit resets")).to_have_value("monthly")
    page.get_by_label("Credit limit").fill("30")
    page.get_by_label("Generations at once").fill("")
    screenshots.for_docs(page, "console-key-limits")
    page.get_by_role("button", name="Save limits").click()
    heading(page, "API keys")
    expect(page.get_by_test_id("notice")).to_contain_text("limits were saved")
    expect(row.get_by_test_id("key-limit")).to_have_text("30 of 30 left · monthly")
    expect(row.get_by_test_id("key-rates")).to_have_text("defaults")

    body = {
        "person_images": [data_url(SAMPLES / "person.jpg", "image/jpeg")],
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
        "category": "tops",
        "model": "local/overlay",
    }
    with gateway.api() as api:
        done = api.post("/api/v1/tryon", json=body, headers=auth(secret))
        assert done.status_code == 200, done.text
        cost = done.json()["usage"]["credits"]
        assert cost > 0
        me = api.get("/api/v1/key", headers=auth(secret)).json()["data"]
        assert (me["limit"], me["limit_remaining"]) == (30, 30 - cost)

    page.reload()
    heading(page, "API keys")
    expect(row.get_by_test_id("key-limit")).to_have_text(f"{30 - cost} of 30 left · monthly")
    expect(row.get_by_test_id("key-spent")).to_have_text(str(cost))
    expect(row.get_by_test_id("key-spent-month")).to_have_text(f"{cost} this month")
    screenshots.take(page, "used")
