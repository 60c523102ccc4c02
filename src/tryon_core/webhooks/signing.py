"""Webhook signatures: HMAC-SHA256 over ``"{timestamp}.{body}"`` with the account's secret.

A delivery carries ``Tryon-Signature: t=<unix seconds>,v1=<hex digest>``. A receiver recomputes
the digest over the timestamp, a dot and the raw body bytes, compares in constant time, and
refuses timestamps older (or newer) than its tolerance, which stops replays of old deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = [
    "EVENT_HEADER",
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "sign",
    "signature_header",
    "verify",
]

SIGNATURE_HEADER = "Tryon-Signature"
ID_HEADER = "Tryon-Webhook-Id"
EVENT_HEADER = "Tryon-Event"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``b"{timestamp}." + body`` keyed with ``secret`` (UTF-8)."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``Tryon-Signature`` value for ``body``, signed now unless ``timestamp`` is given."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={sign(secret, t, body)}"


def verify(
    secret: str, header: str, body: bytes, tolerance: int = 300, *, now: float | None = None
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of now.

    Any ``v1`` entry may match (room for several); unknown schemes are ignored.
    """
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value.isascii():  # compare_digest refuses non-ASCII str
            digests.append(value)
    if timestamp is None or not digests:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, digest) for digest in digests)
