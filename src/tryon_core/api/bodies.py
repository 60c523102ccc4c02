"""A request body read once and not kept by the request afterwards.

Litestar keeps the body it reads for the rest of the request, in the request and in the
connection's scope (so that a second ``body()`` finds it). A try-on's JSON body is megabytes of
images as data URLs, which the parsed request holds in its own form from then on: kept too, the
body doubled what each request in flight holds while its upstream works (2 MB more per chat
request with two 787 KB images). Routes that parse their body once read it here.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

__all__ = ["read_body_once"]


async def read_body_once(request: Request[Any, Any, Any]) -> bytes:
    """The whole body, which the request then forgets: the caller's copy is the only one."""
    body = await request.body()
    request._body = Empty
    ScopeState.from_scope(request.scope).body = Empty
    return body
