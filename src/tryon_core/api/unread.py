"""Hang up, within bounds, when the answer goes out before the request body was read.

A refused request (413 over ``[server] max_body_bytes``, 401, 415, a bad form...) is answered as
soon as the gateway knows, with the rest of the body unsent. Left alone, an HTTP/1.1 server
keeps such a connection alive by reading the rest of the body and throwing it away: a client
could make the gateway swallow gigabytes it already refused.

So the answer says ``Connection: close`` and, once its body is out, the gateway lingers: it
reads and drops at most ``LINGER_BYTES`` more, for at most ``LINGER_SECONDS``, then hangs up.
A client that finishes sending within that (or reads while it sends, as curl does) gets the
answer; one that keeps sending sees the connection close.
"""

from __future__ import annotations

import asyncio
import contextlib

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LINGER_BYTES", "LINGER_SECONDS", "close_when_body_unread"]

LINGER_BYTES = 1024 * 1024
LINGER_SECONDS = 2.0
_CLOSE = (b"connection", b"close")


def close_when_body_unread(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: see the module docstring."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not _has_body(scope):
            await app(scope, receive, send)
            return
        ended = False
        closing = False

        async def tracking_receive() -> Message:
            nonlocal ended
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                ended = True
            return message  # type: ignore[return-value]

        async def linger() -> None:
            dropped = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LINGER_SECONDS):
                    while not ended and dropped <= LINGER_BYTES:
                        message = await tracking_receive()
                        body = message.get("body", b"")
                        dropped += len(body) if isinstance(body, bytes) else 0

        async def closing_send(message: Message) -> None:
            nonlocal closing
            if message["type"] == "http.response.start" and not ended:
                closing = True
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, _CLOSE]}
            elif (
                closing
                and message["type"] == "http.response.body"
                and not message.get("more_body", False)
            ):
                await send({**message, "more_body": True})
                await linger()  # the answer is out; the server hangs up after this
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await app(scope, tracking_receive, closing_send)  # type: ignore[arg-type]

    return middleware


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
