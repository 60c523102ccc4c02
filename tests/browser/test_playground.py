"""The playground: a try-on run as an async job, followed live, its result shown."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.console import heading, navigate, sign_in
from tests.browser.live import Account, LiveGateway, live_gateway
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


# Per-model options: a gateway of this module's own with fal's fake queue, whose models declare
# options (FLUX.1 Kontext: a number, two enums, a boolean; CatVTON: an integer; fal's Kling: none).

KONTEXT = "fal/flux-kontext-pro"


@pytest.fixture(scope="module")
def fal_gateway(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveGateway]:
    with live_gateway(tmp_path_factory.mktemp("fal"), fal=True) as live:
        yield live


def playground_at(page: Page, gateway: LiveGateway, account: Account) -> None:
    page.goto(f"{gateway.url}/sign-in")
    page.get_by_label("API key").fill(account.management_key)
    page.get_by_role("button", name="Sign in").click()
    heading(page, "Overview")
    navigate(page, "Playground")


def model_field(page: Page) -> Locator:
    """The model's field: its label, its select, then the chosen model's options."""
    return page.locator(".field", has=page.get_by_label("Model"))


def options_of(page: Page, model: str) -> Locator:
    """The fieldset of ``model``'s options, found as assistive technology finds it."""
    return page.get_by_role("group", name=f"Options of {model}")


def test_a_models_options_are_shown_set_and_applied(
    page: Page, fal_gateway: LiveGateway, screenshots: Screenshots
) -> None:
    account = fal_gateway.open_account(credits=100)
    playground_at(page, fal_gateway, account)
    note = page.get_by_test_id("options-note")
    expect(note).to_have_text("Options belong to a model: choose one above to set its own.")
    expect(page.locator("fieldset.options:visible")).to_have_count(0)

    page.get_by_label("Model").select_option(KONTEXT)
    kontext = options_of(page, KONTEXT)
    expect(kontext).to_be_visible()
    expect(note).to_contain_text("Only the options you set are sent")
    guidance = kontext.get_by_label("Guidance scale")
    for name, value in {"type": "number", "min": "1", "max": "20", "step": "any"}.items():
        expect(guidance).to_have_attribute(name, value)
    expect(guidance).to_have_attribute("placeholder", "default")
    expect(guidance).to_have_accessible_description(re.compile(r"^guidance_scale · How strictly"))
    ratio = kontext.get_by_label("Aspect ratio")
    assert ratio.locator("option").all_inner_texts()[:2] == ["default", "16:9"]
    enhance = kontext.get_by_label("Enhance prompt")
    assert enhance.locator("option").all_inner_texts() == ["default", "true", "false"]

    # another model: its own controls replace these
    page.get_by_label("Model").select_option("fal/cat-vton")
    expect(kontext).to_be_hidden()
    steps = options_of(page, "fal/cat-vton").get_by_label("Num inference steps")
    expect(steps).to_have_attribute("step", "1")
    page.get_by_label("Model").select_option("fal/kling-kolors-v1-5")
    expect(note).to_have_text("fal/kling-kolors-v1-5 takes no options.")
    expect(page.locator("fieldset.options:visible")).to_have_count(0)

    page.get_by_label("Model").select_option(KONTEXT)
    guidance.fill("5")
    ratio.select_option("3:4")
    enhance.select_option("false")
    page.get_by_label("Category").select_option("tops")
    before = len(fal_gateway.fal.requests) if fal_gateway.fal else 0
    page.get_by_role("button", name="Run try-on").click()
    expect(page.get_by_test_id("result-image")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(page.get_by_test_id("result-attempts")).to_contain_text(
        f"Attempt 1: {KONTEXT} (fal) succeeded"
    )
    expect(page.get_by_test_id("result-attempts")).to_contain_text(
        "(options applied: guidance_scale, aspect_ratio, enhance_prompt)"
    )
    screenshots.for_docs(page, "console-playground-options", at=model_field(page))

    # fal got what was set, with the types the model declares (the attempt lists every option
    # sent: safety tolerance, left at default, was not)
    assert fal_gateway.fal is not None
    (submitted,) = [
        r for r in fal_gateway.fal.requests[before:] if r.summary.get("call") == "submit"
    ]
    fields = submitted.summary["fields"]
    assert (fields["guidance_scale"], fields["aspect_ratio"]) == (5, "3:4")
    assert fields["enhance_prompt"] is False

    # the generation's page lists the options with its attempt
    page.get_by_test_id("job-id").click()
    heading(page, f"Generation {page.url.rsplit('/', 1)[-1]}")
    expect(page.get_by_test_id("attempt-options")).to_have_text(
        "applied: guidance_scale, aspect_ratio, enhance_prompt"
    )


def test_an_option_the_gateway_refuses_is_shown_beside_its_field(
    page: Page, fal_gateway: LiveGateway, problems: PageProblems, screenshots: Screenshots
) -> None:
    """The browser keeps a field within the bounds the page gives it; a page whose field let
    more through (rendered by an older gateway, or edited) is refused by the gateway, before
    anything is charged, and the refusal shows beside the field."""
    problems.allow(r"status of 422 .*/playground/jobs\)$")
    account = fal_gateway.open_account(credits=100)
    playground_at(page, fal_gateway, account)
    page.get_by_label("Model").select_option(KONTEXT)
    guidance = options_of(page, KONTEXT).get_by_label("Guidance scale")
    guidance.evaluate("field => field.removeAttribute('max')")
    guidance.fill("50")
    page.get_by_role("button", name="Run try-on").click()

    expect(page.get_by_test_id("job-state")).to_have_attribute("data-status", "error")
    refusal = options_of(page, KONTEXT).get_by_test_id("option-error").filter(has_text="refuses")
    expect(refusal).to_have_count(1)
    expect(refusal).to_have_attribute("data-for", "guidance_scale")
    expect(refusal).to_contain_text(f"{KONTEXT} refuses options.guidance_scale")
    expect(guidance).to_have_attribute("aria-invalid", "true")
    expect(guidance).to_be_focused()
    expect(guidance).to_have_accessible_description(re.compile(r"refuses options\.guidance_scale"))
    expect(page.get_by_test_id("job-error")).to_contain_text("Nothing was charged.")
    screenshots.for_docs(page, "console-playground-option-refused", at=model_field(page))
    with fal_gateway.api() as api:
        credits = api.get("/api/v1/credits", headers=auth(account.key)).json()
    assert (credits["balance"], credits["reserved"]) == (100, 0)

    # a corrected value clears the refusal and runs
    guidance.fill("20")
    expect(guidance).not_to_have_attribute("aria-invalid", "true")
    expect(refusal).to_have_count(0)
    page.get_by_role("button", name="Run try-on").click()
    expect(page.get_by_test_id("result-image")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
