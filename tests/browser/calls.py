"""The API called from inside a page, so that the browser applies its own rules (CORS, the
``Origin`` it sends) exactly as it does for a real site's scripts."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

__all__ = ["fetch_from", "socket_from"]

# A CORS refusal is a TypeError in the page, never an answer it can read.
_FETCH = """async ([url, token, method, body]) => {
  const headers = token ? {Authorization: `Bearer ${token}`} : {};
  if (body !== null) headers["Content-Type"] = "application/json";
  try {
    const answer = await fetch(url, {method, headers, body: body === null ? undefined : body});
    return {status: answer.status, body: await answer.json().catch(() => null)};
  } catch (error) {
    return {refused: String(error)};
  }
}"""

# What a WebSocket opened by the page receives, until the server closes it.
_SOCKET = """([url, protocols]) => new Promise((resolve) => {
  const messages = [];
  const socket = new WebSocket(url, protocols);
  socket.onmessage = (event) => messages.push(JSON.parse(event.data));
  socket.onclose = (event) => resolve({messages, code: event.code});
})"""


def fetch_from(
    page: Page, url: str, token: str = "", *, method: str = "GET", json: str | None = None
) -> dict[str, Any]:
    """``{"status", "body"}`` as the page reads the answer, or ``{"refused": ...}``."""
    outcome: dict[str, Any] = page.evaluate(_FETCH, [url, token, method, json])
    return outcome


def socket_from(page: Page, url: str, protocols: list[str]) -> dict[str, Any]:
    """``{"messages": [...], "code": close code}`` of a WebSocket the page opens."""
    outcome: dict[str, Any] = page.evaluate(_SOCKET, [url, protocols])
    return outcome
