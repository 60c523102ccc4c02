"""The problem collector the browser tests rely on really sees what it must fail on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.problems import PageProblems

pytestmark = pytest.mark.browser

PAGES = Path(__file__).parent / "pages"


def test_a_csp_violation_is_reported(
    page: Page, problems: PageProblems, serve_origin: Callable[[Path], str]
) -> None:
    page.goto(f"{serve_origin(PAGES)}/csp.html")
    problems.settle(page.context)
    assert page.title() == "Not run"
    found = problems.take()
    assert any(p.startswith("CSP violation: script-src-elem | inline") for p in found), found


def test_console_errors_and_uncaught_errors_are_reported(
    page: Page, problems: PageProblems, serve_origin: Callable[[Path], str]
) -> None:
    page.goto(f"{serve_origin(PAGES)}/blank.html")
    page.evaluate("console.error('something broke')")
    page.evaluate("setTimeout(() => { throw new Error('thrown late') })")
    page.wait_for_timeout(50)
    problems.settle(page.context)
    found = problems.take()
    assert any(p.startswith("console error: something broke") for p in found), found
    assert any("thrown late" in p for p in found), found


def test_an_allowed_console_error_is_ignored(
    page: Page, problems: PageProblems, serve_origin: Callable[[Path], str]
) -> None:
    page.goto(f"{serve_origin(PAGES)}/blank.html")
    problems.allow(r"^expected: ")
    page.evaluate("console.error('expected: a refusal the test provokes')")
    problems.settle(page.context)
    assert problems.take() == []


def test_the_consoles_policy_refuses_an_inline_script(page: Page, problems: PageProblems) -> None:
    """The console's pages run no inline script, so their CSP can and does refuse one."""
    page.goto("/sign-in")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "document.title = 'injected'";
          document.head.append(script);
        }"""
    )
    problems.settle(page.context)
    assert page.title() != "injected"
    found = problems.take()
    assert any(p.startswith("CSP violation: script-src-elem | inline") for p in found), found
