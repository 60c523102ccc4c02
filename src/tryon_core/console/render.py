"""Server-rendered pages: Jinja2 templates from the package, autoescaped, one layout.

:func:`page` renders a template into an HTML response that is never cached (the pages show
an account's own data) and gives the template what every page needs: the signed-in account
(or None), the CSRF token for its forms, and links made under ``[server] public_url``'s path.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie

from tryon_core.config import Settings
from tryon_core.console.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    VISITOR_COOKIE,
    csrf_cookie_value,
    csrf_token,
    make_cookie,
)
from tryon_core.gateway import Gateway
from tryon_core.ids import as_utc

__all__ = ["base_path", "gateway_of", "href", "local_url", "page", "static_url"]

_NO_STORE = {"Cache-Control": "no-store"}

NAV = (
    ("overview", "/", "Overview"),
    ("keys", "/keys", "API keys"),
    ("models", "/models", "Models"),
    ("playground", "/playground", "Playground"),
    ("generations", "/generations", "Generations"),
    ("webhooks", "/webhooks", "Webhooks"),
)
OPERATOR_NAV = (("operator", "/operator", "Operator"),)


def gateway_of(request: Request[Any, Any, Any]) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def base_path(settings: Settings) -> str:
    """The path ``[server] public_url`` puts before every route ("" at the root)."""
    return urlsplit(settings.server.base_url).path.rstrip("/")


def href(settings: Settings, path: str) -> str:
    return base_path(settings) + path


def local_url(settings: Settings, url: str) -> str:
    """A URL the gateway made (``public_url`` + path), as a path on the console's own origin:
    the page may be opened under another host name than ``public_url``'s."""
    base = settings.server.base_url
    origin = base[: len(base) - len(base_path(settings))]
    return url[len(origin) :] if url.startswith(origin + "/") else url


@cache
def _static_version(name: str) -> str:
    data = resources.files("tryon_core.console").joinpath("static", name).read_bytes()
    return hashlib.sha256(data).hexdigest()[:12]


def static_url(settings: Settings, name: str) -> str:
    """``/static/NAME?v=HASH``: the content's hash lets browsers keep it for long."""
    return f"{href(settings, '/static/' + name)}?v={_static_version(name)}"


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "never"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC")


def _credits(value: int) -> str:
    return f"{value:,}".replace(",", "\u202f")  # a narrow no-break space between thousands


def _duration(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "—"
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    seconds = milliseconds / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("tryon_core.console", "templates"),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(when=_when, credits=_credits, duration=_duration)
    return environment


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status: int = 200,
    cookies: list[Cookie] | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    """Render ``template`` as the answer to ``request``."""
    settings = gateway_of(request).settings
    cookies = list(cookies or [])
    source = csrf_cookie_value(request)
    if source is None:  # a first visit: the visitor cookie the sign-in form's token comes from
        source = secrets.token_urlsafe(32)
        cookies.append(
            make_cookie(
                VISITOR_COOKIE,
                source,
                request=request,
                settings=settings,
                path=base_path(settings) or "/",
                max_age=None,
            )
        )
    context.setdefault("console", request.state.get("console"))
    context.setdefault("current", "")
    console = context["console"]
    nav = NAV + (OPERATOR_NAV if console is not None and console.operator else ())
    html = (
        _environment()
        .get_template(template)
        .render(
            **context,
            nav=nav,
            csrf=csrf_token(source),
            csrf_field=CSRF_FIELD,
            csrf_header=CSRF_HEADER,
            href=lambda path: href(settings, path),
            static=lambda name: static_url(settings, name),
            local=lambda url: local_url(settings, url),
        )
    )
    return Response(
        html,
        status_code=status,
        media_type=MediaType.HTML,
        headers={**_NO_STORE, **(headers or {})},
        cookies=cookies,
    )
