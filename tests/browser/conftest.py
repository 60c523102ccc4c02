"""Fixtures for the browser tests: Chromium driven by Playwright, a live gateway, pages that fail
the test on any console error or CSP violation, other local origins, screenshots.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it; ``TRYON_TEST_CHROMIUM``
names another binary). Without it the tests skip with the reason; under ``CI=true`` they fail
instead, so CI can never silently skip them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.browser.live import Account, LiveGateway, live_gateway
from tests.browser.origins import static_origin
from tests.browser.problems import PageProblems
from tests.browser.shots import LAPTOP, Screenshots

CHROMIUM_ENV = "TRYON_TEST_CHROMIUM"
DEFAULT_TIMEOUT_MS = 15_000


def chromium_executable() -> str:
    """The Chromium to drive, or a skip (a failure under ``CI=true``) saying why there is none."""
    chosen = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if os.path.isfile(chosen) and os.access(chosen, os.X_OK):
        return chosen
    reason = (
        f"the browser tests need Chromium, not found at {chosen} "
        f"(apt-get install chromium, or set {CHROMIUM_ENV})"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the browser tests (each test gets its own contexts)."""
    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="package")
def gateway(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """``tryon serve`` with the offline engine, shared by the browser tests (each test opens
    its own accounts). Asks for ``browser`` first so that no server starts when tests skip."""
    with live_gateway(tmp_path_factory.mktemp("gateway")) as live:
        yield live


@pytest.fixture
def account(gateway: LiveGateway) -> Account:
    """A new account holding 100 credits, with a key."""
    return gateway.open_account(credits=100)


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(request.node.nodeid)


@pytest.fixture
def problems() -> PageProblems:
    """What the test's pages reported; ``problems.allow(...)`` for an error the test provokes."""
    return PageProblems()


@pytest.fixture
def open_page(
    browser: Browser, gateway: LiveGateway, problems: PageProblems, screenshots: Screenshots
) -> Iterator[Callable[..., Page]]:
    """``open_page(viewport=LAPTOP)``: a page in a fresh browser context (its own cookies),
    relative URLs going to the gateway. At the end each page's last state is kept as a
    screenshot, and any console error, uncaught error or CSP violation fails the test."""
    contexts = []

    def open_(viewport: ViewportSize = LAPTOP) -> Page:
        context = browser.new_context(viewport=viewport, base_url=gateway.url)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        problems.watch(context)
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        problems.settle(context)
        for page in context.pages:
            screenshots.take(page, "last")
        context.close()
    found = problems.take()
    assert not found, "the browser reported problems:\n" + "\n".join(found)


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    """A laptop-sized page (1280x800) on the gateway."""
    return open_page()


@pytest.fixture
def serve_origin() -> Iterator[Callable[[Path], str]]:
    """``serve_origin(folder)``: serve a folder as another origin until the test ends."""
    with ExitStack() as stack:
        yield lambda directory: stack.enter_context(static_origin(directory))
