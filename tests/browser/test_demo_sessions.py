"""A customer's page on its own origin does try-ons with a demo session, never a key; other
origins are refused; the session's credit cap, expiry and revocation show on the page."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.browser.calls import fetch_from, socket_from
from tests.browser.live import Account, LiveGateway
from tests.browser.problems import PageProblems
from tests.browser.shots import Screenshots
from tests.helpers import ROOT, SAMPLES, auth, data_url

pytestmark = pytest.mark.browser

DEMO_PAGE = ROOT / "docs" / "examples" / "demo_page"
PAGES = Path(__file__).parent / "pages"
RESULT_TIMEOUT_MS = 60_000


def _snippet() -> Any:
    """docs/examples/demo_page/server_snippet.py, the server side the docs show."""
    spec = importlib.util.spec_from_file_location("server_snippet", DEMO_PAGE / "server_snippet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mint(gateway: LiveGateway, account: Account, origins: list[str], **limits: Any) -> Any:
    """A demo session, minted as the docs' server snippet does it, with the management key."""
    session: dict[str, Any] = _snippet().mint_demo_session(
        gateway.url, account.management_key, origins, **limits
    )
    return session


def tryon_body() -> dict[str, Any]:
    return {
        "model": "local/overlay",
        "person_images": [data_url(SAMPLES / "person.jpg", "image/jpeg")],
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
    }


def open_demo(page: Page, origin: str, gateway: LiveGateway, token: str) -> None:
    page.goto(f"{origin}/index.html#{urlencode({'gateway': gateway.url, 'token': token})}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Try it on")


def models_listed(page: Page) -> None:
    """Wait until the page has listed the models it may use."""
    expect(page.locator('select[name="model"] option[value="local/overlay"]')).to_have_count(1)


def try_on(page: Page, model: str = "local/overlay") -> None:
    page.get_by_label("Person photo").set_input_files(SAMPLES / "person.jpg")
    page.get_by_label("Garment photo").set_input_files(SAMPLES / "garment.png")
    page.get_by_label("Model").select_option(model)
    page.get_by_role("button", name="Try on").click()


def result_shown(page: Page) -> None:
    result = page.get_by_test_id("demo-result")
    expect(result).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    page.wait_for_function(
        "image => image.complete && image.naturalWidth > 0", arg=result.element_handle()
    )
    expect(page.get_by_test_id("demo-state")).to_have_text("completed: local/overlay, 1 credits")


def test_a_page_on_an_allowed_origin_tries_on_with_a_demo_session(
    page: Page,
    gateway: LiveGateway,
    account: Account,
    screenshots: Screenshots,
    serve_origin: Callable[[Path], str],
) -> None:
    shop = serve_origin(DEMO_PAGE)
    session = mint(gateway, account, [shop], max_credits=5, ttl_seconds=600)
    assert session["token"].startswith("tryon_demo_")

    open_demo(page, shop, gateway, session["token"])
    models_listed(page)
    try_on(page)
    result_shown(page)
    screenshots.take(page, "demo-page")
    assert account.management_key not in page.content() + page.url
    with gateway.api() as api:
        listed = api.get("/api/v1/demo-sessions", headers=auth(account.management_key))
        (mine,) = [s for s in listed.json()["data"] if s["id"] == session["id"]]
        assert mine["spent"] == 1
        credits = api.get("/api/v1/credits", headers=auth(account.key)).json()
        assert credits["balance"] == 99  # charged to the account that made the session


def test_only_the_allowed_origin_may_use_the_token(
    open_page: Callable[..., Page],
    gateway: LiveGateway,
    account: Account,
    problems: PageProblems,
    serve_origin: Callable[[Path], str],
) -> None:
    shop, stranger = serve_origin(PAGES), serve_origin(PAGES)
    session = mint(gateway, account, [shop], max_credits=5, ttl_seconds=600)
    token, models = session["token"], f"{gateway.url}/api/v1/models"
    with gateway.api() as api:  # a job of this session, to follow from either origin
        accepted = api.post(
            "/api/v1/tryon",
            json={**tryon_body(), "mode": "async"},
            headers={**auth(token), "Origin": shop},
        )
        assert accepted.status_code == 202, accepted.text
    socket = accepted.json()["wsUrl"].split("?")[0]
    protocols = ["tryon", f"tryon-key.{token}"]

    own = open_page()
    own.goto(f"{shop}/blank.html")
    with gateway.api() as api:
        enabled = api.get("/api/v1/models", headers=auth(account.key)).json()["data"]
    listed = fetch_from(own, models, token)
    assert [m["id"] for m in listed["body"]["data"]] == [m["id"] for m in enabled]
    followed = socket_from(own, socket, protocols)
    assert (followed["code"], followed["messages"][-1]["job"]["status"]) == (1000, "completed")

    problems.allow(r"blocked by CORS policy", r"net::ERR_FAILED")
    other = open_page()
    other.goto(f"{stranger}/blank.html")
    assert fetch_from(other, models, token) == {"refused": "TypeError: Failed to fetch"}
    submit = json.dumps(tryon_body())
    assert fetch_from(other, f"{gateway.url}/api/v1/tryon", token, method="POST", json=submit) == {
        "refused": "TypeError: Failed to fetch"
    }
    refused = socket_from(other, socket, protocols)
    assert refused["code"] == 4403, refused
    assert [m["error"]["type"] for m in refused["messages"]] == ["origin_not_allowed"]


def test_the_demo_page_on_another_origin_says_it_is_refused(
    page: Page,
    gateway: LiveGateway,
    account: Account,
    problems: PageProblems,
    screenshots: Screenshots,
    serve_origin: Callable[[Path], str],
) -> None:
    shop, stranger = serve_origin(DEMO_PAGE), serve_origin(DEMO_PAGE)
    session = mint(gateway, account, [shop], max_credits=5, ttl_seconds=600)
    problems.allow(r"blocked by CORS policy", r"net::ERR_FAILED")
    open_demo(page, stranger, gateway, session["token"])
    expect(page.get_by_test_id("demo-error")).to_be_visible()
    screenshots.take(page, "refused-origin")
    expect(page.locator('select[name="model"] option')).to_have_count(1)  # "auto" alone


def test_the_credit_cap_stops_the_page_with_a_message(
    page: Page, gateway: LiveGateway, account: Account, problems: PageProblems,
    serve_origin: Callable[[Path], str],
) -> None:  # fmt: skip
    shop = serve_origin(DEMO_PAGE)
    session = mint(gateway, account, [shop], max_credits=1, ttl_seconds=600)
    open_demo(page, shop, gateway, session["token"])
    models_listed(page)
    try_on(page)
    result_shown(page)

    problems.allow(r"status of 402 .*/api/v1/tryon\)$")
    try_on(page)
    error = page.get_by_test_id("demo-error")
    expect(error).to_contain_text("This demo session may use 0 more credit(s) (of 1)")
    expect(error).to_contain_text("demo_credit_limit")
    with gateway.api() as api:
        credits = api.get("/api/v1/credits", headers=auth(account.key)).json()
    assert (credits["balance"], credits["reserved"]) == (99, 0)


def wait_until_refused(gateway: LiveGateway, token: str, origin: str) -> dict[str, Any]:
    """Ask the API with ``token`` until it answers 401; return that error."""
    with gateway.api() as api:
        for _ in range(300):
            answer = api.get("/api/v1/models", headers={**auth(token), "Origin": origin})
            if answer.status_code == 401:
                error: dict[str, Any] = answer.json()["error"]
                return error
            time.sleep(0.1)
    raise AssertionError(f"the demo session was still accepted: {answer.status_code}")


@pytest.mark.parametrize("ending", ["expired", "revoked"])
def test_an_ended_session_shows_why_on_the_page(
    ending: str,
    page: Page,
    gateway: LiveGateway,
    account: Account,
    problems: PageProblems,
    serve_origin: Callable[[Path], str],
) -> None:
    shop = serve_origin(DEMO_PAGE)
    ttl = 2 if ending == "expired" else 600
    session = mint(gateway, account, [shop], max_credits=5, ttl_seconds=ttl)
    open_demo(page, shop, gateway, session["token"])  # the page is open while it is live
    models_listed(page)
    if ending == "revoked":
        with gateway.api() as api:
            gone = api.delete(
                f"/api/v1/demo-sessions/{session['id']}", headers=auth(account.management_key)
            )
            assert gone.status_code == 200, gone.text
    error = wait_until_refused(gateway, session["token"], shop)
    assert error["type"] == f"demo_session_{ending}"

    problems.allow(r"status of 401 .*/api/v1/tryon\)$")
    try_on(page)
    shown = page.get_by_test_id("demo-error")
    expect(shown).to_contain_text(error["message"])
    expect(shown).to_contain_text(f"demo_session_{ending}")
