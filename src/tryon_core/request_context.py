"""What the log lines (and spans) of one request or job share: its request id, its caller's key
id and its generation id, carried in a context variable.

The HTTP layer opens a context for each request (:mod:`tryon_core.api.request_log`), the job
worker one for each job it runs (:func:`bind_generation`); whatever is logged inside carries
the ids (:class:`~tryon_core.server.logs.ContextFilter` copies them onto every record).
"""

from __future__ import annotations

import contextvars
import re
import secrets
from dataclasses import dataclass

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestContext",
    "accepted_request_id",
    "bind_generation",
    "close_context",
    "current",
    "new_request_id",
    "note_generation",
    "open_context",
]

REQUEST_ID_HEADER = "x-request-id"
_ACCEPTED = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?")
"""A client's request id: printable ASCII, at most 128 characters, no space at either end."""


@dataclass
class RequestContext:
    request_id: str | None = None
    key_id: str | None = None
    generation_id: str | None = None

    def fields(self) -> dict[str, str]:
        """The ids that are set, by name (as log fields)."""
        named = {
            "request_id": self.request_id,
            "key_id": self.key_id,
            "generation_id": self.generation_id,
        }
        return {name: value for name, value in named.items() if value}


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "tryon_request_context", default=None
)


def current() -> RequestContext | None:
    """The context of the request or job being served here, if any."""
    return _current.get()


def open_context(request_id: str | None) -> contextvars.Token[RequestContext | None]:
    """Start a request's context (reset it with the token when the request ends)."""
    return _current.set(RequestContext(request_id=request_id))


def close_context(token: contextvars.Token[RequestContext | None]) -> None:
    _current.reset(token)


def note_generation(generation_id: str) -> None:
    """The request being served opened generation ``generation_id`` (its log line says so)."""
    context = _current.get()
    if context is not None:
        context.generation_id = generation_id


def bind_generation(generation_id: str) -> None:
    """The current task runs generation ``generation_id`` outside a request (a job): its log
    lines carry the generation id."""
    _current.set(RequestContext(generation_id=generation_id))


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


def accepted_request_id(sent: str | None) -> str:
    """The client's ``X-Request-Id`` if it is printable ASCII of 1 to 128 characters, else a
    new one (the client's is then dropped, never echoed)."""
    if sent is not None and _ACCEPTED.fullmatch(sent):
        return sent
    return new_request_id()
