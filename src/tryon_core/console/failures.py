"""How the console answers a failure: a page shows it in the layout, a script gets the API's
envelope. A page that needs a session redirects to the sign-in form, and back afterwards."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from tryon_core.api.errors import EXCEPTION_HANDLERS
from tryon_core.console.render import gateway_of, href, page
from tryon_core.console.session import SignInRequired
from tryon_core.errors import TryOnError

__all__ = ["CONSOLE_EXCEPTION_HANDLERS", "is_page", "safe_next"]

log = logging.getLogger("tryon.console")


def is_page(request: Request[Any, Any, Any]) -> bool:
    return bool(request.route_handler.opt.get("console_page"))


def safe_next(value: str | None) -> str:
    """A path on this console to go back to after sign-in; anything else is the overview."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or not value.isprintable()
        or len(value) > 500
    ):
        return "/"
    return value


def _failure(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if not is_page(request):
        return _as_api(request, exc)
    settings = gateway_of(request).settings
    if isinstance(exc, SignInRequired):
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = href(settings, "/sign-in")
        if request.method == "GET" and back != "/":
            target += "?next=" + quote(safe_next(back), safe="/")
        return Redirect(path=target, status_code=303)
    if isinstance(exc, TryOnError):
        status, message = exc.status, exc.message
    elif isinstance(exc, HTTPException):
        status = exc.status_code if exc.status_code < 500 else 500
        message = "There is no such page." if status == 404 else (exc.detail or "")
    else:
        log.exception("console page %s failed", request.url.path, exc_info=exc)
        status, message = 500, "Something went wrong on the server; it was logged."
    if status >= 500 and isinstance(exc, HTTPException | TryOnError):
        message = message or "The server could not answer."
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return page(request, "error.html", status=status, title=title, message=message)


def _as_api(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    for kind in type(exc).__mro__:
        handler = EXCEPTION_HANDLERS.get(kind)
        if handler is not None:
            response: Response[Any] = handler(request, exc)
            return response
    raise exc


CONSOLE_EXCEPTION_HANDLERS: dict[Any, Any] = {
    TryOnError: _failure,
    HTTPException: _failure,
    Exception: _failure,
}
