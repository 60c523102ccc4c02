"""The console's routes, assembled: its pages and its static files."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.static_files import create_static_files_router

from tryon_core.config import Settings
from tryon_core.console.failures import CONSOLE_EXCEPTION_HANDLERS
from tryon_core.console.pages import (
    generations,
    keys,
    models,
    operator,
    overview,
    playground,
    sign_in,
    webhooks,
)
from tryon_core.console.security import SecurityHeaders, csrf_guard
from tryon_core.console.session import provide_signed_in
from tryon_core.console.throttle import SignInThrottle

__all__ = ["console_routers"]

STATIC = Path(__file__).with_name("static")
PAGES = [
    *sign_in.ROUTES,
    *overview.ROUTES,
    *keys.ROUTES,
    *models.ROUTES,
    *playground.ROUTES,
    *generations.ROUTES,
    *webhooks.ROUTES,
    *operator.ROUTES,
]


def console_routers(settings: Settings) -> list[Router]:
    """The console's pages and its static files, or nothing if it is switched off.

    Every console route handler has ``opt["console"]`` set (its pages ``console_page`` too):
    they are for browsers with a session cookie, not API keys.
    """
    if not settings.console.enabled:
        return []
    throttle = SignInThrottle(
        attempts=settings.console.sign_in_attempts,
        window=settings.console.sign_in_window_seconds,
    )

    def provide_throttle() -> SignInThrottle:
        return throttle

    pages = Router(
        path="/",
        route_handlers=PAGES,
        dependencies={
            "console": Provide(provide_signed_in),
            "throttle": Provide(provide_throttle, sync_to_thread=False),
        },
        guards=[csrf_guard],
        middleware=[SecurityHeaders],
        exception_handlers=CONSOLE_EXCEPTION_HANDLERS,
        include_in_schema=False,
        opt={"console": True},
    )
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        name="console-static",
        middleware=[SecurityHeaders],
        cache_control=CacheControlHeader(max_age=86400, public=True),
        include_in_schema=False,
        opt={"console": True},
    )
    return [pages, static]
