"""What a page must never do: log a console error, throw, or have its Content-Security-Policy
block something. One collector per browser context; the ``page`` fixture fails the test on
anything it holds at the end.
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Any

from playwright.sync_api import BrowserContext, ConsoleMessage, Error, WebError

__all__ = ["PageProblems"]

# Reports every Content-Security-Policy violation of every document to the binding below.
# Playwright injects init scripts and bindings outside the page's CSP, so they always run.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (event) => {
  window.__tryonCspViolation([
    event.effectiveDirective, event.blockedURI, event.sourceFile, event.lineNumber, event.sample,
  ].join(' | '));
});
"""


class PageProblems:
    """Console errors, uncaught page errors and CSP violations of one browser context."""

    def __init__(self) -> None:
        self._found: list[str] = []
        self._allowed: list[re.Pattern[str]] = []

    def watch(self, context: BrowserContext) -> None:
        """Collect from every page of ``context``: call before its first page opens."""
        context.expose_binding("__tryonCspViolation", self._on_csp_violation)
        context.add_init_script(_CSP_LISTENER)
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)

    def allow(self, *patterns: str) -> None:
        """Ignore console errors whose ``TEXT (at URL)`` matches any of these regular expressions
        (an expected 401, a refusal the test provokes). CSP violations and uncaught errors are
        never allowed."""
        self._allowed += [re.compile(pattern) for pattern in patterns]

    def take(self) -> list[str]:
        """Everything found so far, which the collector then forgets."""
        found, self._found = self._found, []
        return found

    def settle(self, context: BrowserContext) -> None:
        """Let events already sent by the pages arrive (one round trip to each open page)."""
        for page in context.pages:
            with suppress(Error):  # a page that navigated or closed has nothing more to say
                page.evaluate("0")

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        line = f"{message.text} (at {message.location.get('url', '')})"
        if not any(pattern.search(line) for pattern in self._allowed):
            self._found.append(f"console error: {line}")

    def _on_web_error(self, error: WebError) -> None:
        self._found.append(f"uncaught error: {error.error}")

    def _on_csp_violation(self, source: Any, report: str) -> None:
        self._found.append(f"CSP violation: {report} (page {source['page'].url})")
