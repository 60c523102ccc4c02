"""The gateway's HTTP client for upstream calls: httpx's, keeping no cookies.

One client carries every account's calls to the providers. httpx's client keeps the cookies an
answer sets and sends them with every later request to that site (OpenAI's API, behind
Cloudflare, sets ``__cf_bm`` and ``_cfuvid``): one account's calls would carry what another's
were given. Providers authenticate each call with its key and need no cookie, so this client
keeps none. It also spares each call the reading of its answer into a cookie jar, for which
httpx wraps the request and the answer in urllib's classes (~3% of the CPU of a small try-on
request, measured on the build machine).
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["UpstreamClient"]


class _NoCookies(httpx.Cookies):
    """An empty jar that stays empty: answers' cookies are not read into it."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise TypeError("the upstream client keeps no cookies")


class UpstreamClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` that keeps no cookies: none is stored from an answer, so none is
    sent with a later request."""

    def __init__(self, **options: Any) -> None:
        if options.get("cookies"):
            raise TypeError("the upstream client keeps no cookies")
        super().__init__(**options)
        self._none_kept = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none_kept

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("the upstream client keeps no cookies")
