"""The URLs a job answer carries: its status URL and its WebSocket URL with a job token.

A browser cannot set an Authorization header on a WebSocket, so ``wsUrl`` carries a token
that opens that one job's WebSocket and nothing else: ``{expires}.{HMAC-SHA256}`` over
``ws:{job_id}`` with the gateway's signing secret, valid until an hour after the job's
deadline.
"""

from __future__ import annotations

import time
from datetime import datetime

from tryon_core.gateway import Gateway

__all__ = ["job_token", "status_url", "verify_job_token", "ws_url"]

_GRACE_SECONDS = 3600.0


def status_url(gateway: Gateway, job_id: str) -> str:
    return f"{gateway.settings.server.base_url}/api/v1/tryon/{job_id}"


def ws_url(gateway: Gateway, job_id: str, deadline: datetime) -> str:
    base = gateway.settings.server.base_url
    scheme, _, rest = base.partition("://")
    ws_scheme = "wss" if scheme == "https" else "ws"
    token = job_token(gateway, job_id, deadline)
    return f"{ws_scheme}://{rest}/api/v1/tryon/{job_id}/ws?token={token}"


def job_token(gateway: Gateway, job_id: str, deadline: datetime) -> str:
    ttl = max(0.0, deadline.timestamp() - time.time()) + _GRACE_SECONDS
    expires, signature = gateway.signer.sign(f"ws:{job_id}", ttl_seconds=ttl)
    return f"{expires}.{signature}"


def verify_job_token(gateway: Gateway, job_id: str, token: str) -> bool:
    expires, _, signature = token.partition(".")
    if not (expires.isascii() and expires.isdigit()) or not signature:  # int("²") fails
        return False
    return gateway.signer.verify(f"ws:{job_id}", int(expires), signature)
