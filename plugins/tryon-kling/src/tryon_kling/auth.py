"""Kling's API token: an HS256 JWT minted from the access key and signed with the secret key.

Header ``{"alg": "HS256", "typ": "JWT"}``; claims ``iss`` (the access key), ``exp`` (now + 30
min) and ``nbf`` (now - 5 s, for clock skew), integer seconds. Sent as ``Authorization: Bearer
<token>``. A token is reused until fewer than five minutes of its life remain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping

__all__ = ["LIFETIME", "RENEW_BEFORE", "TokenCache", "mint_token"]

LIFETIME = 1800
"""Seconds a token is valid (the official sample's choice; the maximum is undocumented)."""
RENEW_BEFORE = 300
"""A cached token with fewer seconds left than this is replaced."""
SKEW = 5
"""``nbf`` lies this far in the past, so that a server clock a little behind still accepts it."""

_HEADER = {"alg": "HS256", "typ": "JWT"}


def _segment(value: Mapping[str, object]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def mint_token(access_key: str, secret_key: str, *, now: int) -> str:
    """A signed token valid from ``now - SKEW`` until ``now + LIFETIME``."""
    claims = {"iss": access_key, "exp": now + LIFETIME, "nbf": now - SKEW}
    signing_input = f"{_segment(_HEADER)}.{_segment(claims)}"
    digest = hmac.new(secret_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return f"{signing_input}.{signature}"


class TokenCache:
    """One token per key pair, re-minted before it expires. Safe on one event loop: nothing
    awaits between reading and replacing the cached token."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._keys: tuple[str, str] | None = None
        self._token = ""
        self._expires = 0

    def token(self, access_key: str, secret_key: str) -> str:
        now = int(self._clock())
        if self._keys != (access_key, secret_key) or self._expires - now < RENEW_BEFORE:
            self._token = mint_token(access_key, secret_key, now=now)
            self._keys = (access_key, secret_key)
            self._expires = now + LIFETIME
        return self._token
