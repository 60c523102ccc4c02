"""What a person does in the console, as steps the tests share."""

from __future__ import annotations

from playwright.sync_api import Page, expect

__all__ = ["heading", "navigate", "sign_in", "storage_and_cookies"]


def heading(page: Page, name: str) -> None:
    """Wait until the page's main heading is ``name``."""
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def navigate(page: Page, label: str, title: str | None = None) -> None:
    """Follow the console's navigation link ``label`` to the page headed ``title`` (or label)."""
    page.get_by_role("navigation", name="Console").get_by_role("link", name=label).click()
    heading(page, title or label)


def sign_in(page: Page, key: str) -> None:
    """Sign in through the form, as a person pasting a management key does."""
    page.goto("/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    heading(page, "Overview")


def storage_and_cookies(page: Page) -> str:
    """Everything the browser keeps for the page: its cookies and its web storage."""
    stored = page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    cookies = page.context.cookies()
    return f"{stored} {cookies}"
