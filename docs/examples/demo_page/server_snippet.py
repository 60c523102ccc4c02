"""Mint a demo session for a browser page: the server side, with a management key.

Your web server runs this (or the same request) each time it serves the demo page, and hands
the page the token, never the key:

    TRYON_URL=http://127.0.0.1:8000 TRYON_ADMIN_KEY=tryon_... \\
        python server_snippet.py http://localhost:8001

prints a link that opens index.html (served from that origin) with the gateway's address and
a fresh token in the URL fragment (which browsers do not send to servers). TRYON_ADMIN_KEY is
a management key (`tryon keys create --scope management`); the session's try-ons are charged
to its account, at most MAX_CREDITS (default 10) in all, for at most TTL_SECONDS (default 900).
Needs httpx. Exits 1 on an API error, printed from the error envelope.
"""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlencode

import httpx


def mint_demo_session(
    gateway: str,
    admin_key: str,
    origins: list[str],
    *,
    max_credits: int = 10,
    ttl_seconds: int = 900,
    models: list[str] | None = None,
) -> dict[str, Any]:
    """``POST /api/v1/demo-sessions``: the session's id, token, expiry and limits."""
    body: dict[str, Any] = {
        "allowed_origins": origins,
        "max_credits": max_credits,
        "ttl_seconds": ttl_seconds,
    }
    if models:
        body["models"] = models
    response = httpx.post(
        f"{gateway}/api/v1/demo-sessions",
        json=body,
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    if response.status_code != 201:
        raise RuntimeError(response.json()["error"]["message"])
    session: dict[str, Any] = response.json()
    return session


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    gateway = os.environ.get("TRYON_URL", "http://127.0.0.1:8000")
    origins = argv[1:]
    try:
        session = mint_demo_session(
            gateway,
            os.environ["TRYON_ADMIN_KEY"],
            origins,
            max_credits=int(os.environ.get("MAX_CREDITS", "10")),
            ttl_seconds=int(os.environ.get("TTL_SECONDS", "900")),
        )
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    fragment = urlencode({"gateway": gateway, "token": session["token"]})
    print(f"{origins[0]}/index.html#{fragment}")
    print(f"  demo session {session['id']}, until {session['expires_at']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
