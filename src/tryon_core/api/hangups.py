"""A client that hangs up before its request body is complete is a client disconnect.

Litestar answers a body read that meets ``http.disconnect`` with a 500 ("client disconnected
prematurely"), which would be logged as a server error. This middleware raises
:class:`~tryon_core.api.disconnect.ClientDisconnected` instead: logged once at INFO, answered
499 to nobody, and any work begun for the request is abandoned as for any other disconnect.
Once the body is complete, ``http.disconnect`` passes through unchanged (``unless_disconnected``
waits for it).
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tryon_core.api.disconnect import ClientDisconnected

__all__ = ["BODY_CUT_SHORT", "disconnect_while_reading_body"]

BODY_CUT_SHORT = "before sending the whole request body"


def disconnect_while_reading_body(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: see the module docstring."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        body_complete = False

        async def checked_receive() -> Message:
            nonlocal body_complete
            message = await receive()
            if message["type"] == "http.request":
                body_complete = not message.get("more_body", False)
            elif message["type"] == "http.disconnect" and not body_complete:
                raise ClientDisconnected(BODY_CUT_SHORT)
            return message  # type: ignore[return-value]

        await app(scope, checked_receive, send)  # type: ignore[arg-type]

    return middleware
