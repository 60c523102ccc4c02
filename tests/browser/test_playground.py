"""The playground: a try-on run as an async job, followed live, its result shown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from tests.browser.console import navigate, sign_in
from tests.browser.live import Account, LiveGateway
from tests.browser.problems import PageProblems
from tests.browser.shots import Screenshots
from tests.helpers import SAMPLES, auth

pytestmark = pytest.mark.browser

RESULT_TIMEOUT_MS = 60_000


def run(page: Page, model: str, category: str = "tops") -> None:
    navigate(page, "Playground")
    page.get_by_label("Model").select_option(model)
    page.get_by_label("Category").select_option(category)
    page.get_by_role("button", name="Run try-on").click()


def displayed_width(image: Locator) -> int:
    """The image's natural width once the browser has loaded and decoded it (0: it failed)."""
    image.page.wait_for_function(
        "image => image.complete && image.getAttribute('src')", arg=image.element_handle()
    )
    width: int = image.evaluate("image => image.naturalWidth")
    return width


def logged(page: Page) -> list[tuple[str, str]]:
    """The job's log as the page wrote it: (state, text) of each line."""
    return [
        (item.get_attribute("data-state") or "", item.inner_text())
        for item in page.get_by_test_id("job-log").locator("li").all()
    ]


def test_a_try_on_on_the_offline_engine_is_followed_live_and_shown(
    page: Page, gateway: LiveGateway, account: Account, screenshots: Screenshots
) -> None:
    sign_in(page, account.management_key)
    run(page, "local/overlay")
    result = page.get_by_test_id("result-image")
    expect(result).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    with Image.open(SAMPLES / "person.jpg") as person:
        assert displayed_width(result) == person.width  # the result, decoded and displayed
        assert displayed_width(page.get_by_test_id("before-image")) == person.width
    screenshots.for_docs(page, "console-playground")

    states = logged(page)
    assert states[0] == ("queued", "Queued: waiting for a worker")
    # seen live on the job's WebSocket: the attempt under way, with its model and provider
    assert ("processing", "Attempt 1: local/overlay (local), started") in states, states
    assert states[-1] == ("completed", "Completed by local/overlay: 1 credit charged")
    expect(page.get_by_test_id("job-state")).to_have_text("Completed by local/overlay")
    expect(page.get_by_test_id("result-model")).to_have_text("local/overlay")
    expect(page.get_by_test_id("job-cost")).to_have_text("1 credit")
    expect(page.get_by_test_id("result-attempts")).to_contain_text(
        "Attempt 1: local/overlay (local) succeeded"
    )
    with gateway.api() as api:
        credits = api.get("/api/v1/credits", headers=auth(account.key)).json()
    assert (credits["balance"], credits["reserved"]) == (99, 0)


@pytest.fixture
def kling_held(gateway: LiveGateway) -> Iterator[None]:
    """Kling's fake keeps every task in its own ``processing`` state until the test lets go."""
    gateway.kling.processing_polls = 10**9
    try:
        yield
    finally:
        gateway.kling.processing_polls = 1


def test_the_upstream_state_is_shown_while_the_upstream_works(
    page: Page, gateway: LiveGateway, account: Account, kling_held: None
) -> None:
    sign_in(page, account.management_key)
    run(page, "kling/kolors-v1-5")
    state = page.get_by_test_id("job-state")
    expect(state).to_have_text(
        "Processing: attempt 1, kling/kolors-v1-5 (kling), processing", timeout=RESULT_TIMEOUT_MS
    )
    gateway.kling.processing_polls = 0  # Kling finishes the task at its next poll
    result = page.get_by_test_id("result-image")
    expect(result).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    assert displayed_width(result) > 0
    assert ("processing", "Attempt 1: kling/kolors-v1-5 (kling), processing") in logged(page)
    expect(state).to_have_text("Completed by kling/kolors-v1-5")


def test_each_fallback_attempt_is_shown(page: Page, gateway: LiveGateway, account: Account) -> None:
    gateway.kling_faults.inject("server_error")  # Kling, first in auto, fails once
    sign_in(page, account.management_key)
    run(page, "auto")
    result = page.get_by_test_id("result-image")
    expect(result).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    assert displayed_width(result) > 0
    attempts = [text for state, text in logged(page) if state.startswith("attempt-")]
    assert len(attempts) == 2, attempts
    assert attempts[0].startswith("Attempt 1: kling/kolors-v1-5 (kling) failed")
    assert attempts[1].startswith("Attempt 2: local/overlay (local) succeeded")
    expect(page.get_by_test_id("result-model")).to_have_text("local/overlay")
    expect(page.get_by_test_id("job-cost")).to_have_text("1 credit")  # the failed try is free


def test_a_refused_try_on_shows_why_and_that_nothing_was_charged(
    page: Page, gateway: LiveGateway, problems: PageProblems
) -> None:
    broke = gateway.open_account(credits=0)
    problems.allow(r"status of 402 .*/playground/jobs\)$")
    sign_in(page, broke.management_key)
    run(page, "local/overlay")
    error = page.get_by_test_id("job-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Nothing was charged.")
    expect(page.get_by_test_id("result")).to_be_hidden()
