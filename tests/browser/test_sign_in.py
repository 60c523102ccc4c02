"""Signing in to the console: a management key pasted into the form, or a one-time link."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.console import heading, storage_and_cookies
from tests.browser.live import Account, LiveGateway
from tests.browser.problems import PageProblems
from tests.browser.shots import Screenshots

pytestmark = pytest.mark.browser

REFUSED = r"status of 40[13] "  # the browser logs the form's refusal as a failed load


def test_a_management_key_signs_in_and_is_not_kept_by_the_browser(
    page: Page, account: Account, screenshots: Screenshots
) -> None:
    page.goto("/keys")
    heading(page, "Sign in to the console")  # every page asks for a session first
    screenshots.for_docs(page, "console-sign-in")
    page.get_by_label("API key").fill(account.management_key)
    page.get_by_role("button", name="Sign in").click()
    heading(page, "API keys")  # back where the person was going
    expect(page.get_by_test_id("account")).to_have_text("Browser test shop")
    kept = storage_and_cookies(page)
    assert account.management_key not in kept
    session = next(c for c in page.context.cookies() if c["name"] == "tryon_console")
    assert session["httpOnly"] and session["sameSite"] in ("Lax", "Strict")

    page.get_by_role("button", name="Sign out").click()
    heading(page, "Sign in to the console")
    expect(page.get_by_test_id("notice")).to_have_text("You are signed out.")
    page.goto("/keys")
    heading(page, "Sign in to the console")


def test_the_sign_in_form_works_from_the_keyboard(page: Page, account: Account) -> None:
    page.goto("/sign-in")
    field = page.get_by_label("API key")
    for _ in range(10):  # from wherever focus starts, Tab reaches the field
        if field.evaluate("element => element === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(field).to_be_focused()
    page.keyboard.type(account.management_key)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(field).to_be_focused()
    page.keyboard.press("Enter")
    heading(page, "Overview")


@pytest.mark.parametrize("which", ["inference key", "unknown key"])
def test_a_key_that_cannot_sign_in_is_refused_with_the_reason(
    which: str, page: Page, account: Account, problems: PageProblems
) -> None:
    problems.allow(REFUSED)
    key = account.key if which == "inference key" else "tryon_" + "x" * 43
    page.goto("/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    error = page.get_by_test_id("error-message")
    expected = "This is an inference key" if which == "inference key" else "not valid"
    expect(error).to_contain_text(expected)
    expect(error).to_have_attribute("role", "alert")
    heading(page, "Sign in to the console")
    expect(page.get_by_label("API key")).to_have_value("")  # the key is not sent back
    assert key not in page.content()
    assert key not in storage_and_cookies(page)


def test_a_one_time_link_signs_in_once(
    open_page: Callable[..., Page],
    gateway: LiveGateway,
    account: Account,
    problems: PageProblems,
    screenshots: Screenshots,
) -> None:
    printed = gateway.cli("console", "link", "--account", account.id)
    assert printed.returncode == 0, printed.stderr
    link = printed.stdout.split()[0]
    assert link.startswith(f"{gateway.url}/sign-in/link?token=")

    page = open_page()
    page.goto(link)
    heading(page, "Sign in with a one-time link")
    screenshots.take(page, "link")
    page.get_by_role("button", name="Sign in").click()
    heading(page, "Overview")
    expect(page.get_by_test_id("account")).to_have_text("Browser test shop")

    problems.allow(REFUSED)
    again = open_page()  # someone else, later, with the same link
    again.goto(link)
    again.get_by_role("button", name="Sign in").click()
    expect(again.get_by_test_id("error-message")).to_have_text(
        "This sign-in link was already used; each link signs in once."
    )
    again.goto("/")
    heading(again, "Sign in to the console")
