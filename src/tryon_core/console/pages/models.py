"""Models: every enabled model, what it accepts and costs, and whether it is cooling down."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from tryon_core.console.models_view import model_rows
from tryon_core.console.render import gateway_of, page
from tryon_core.console.session import SignedInDep

__all__ = ["ROUTES"]

PAGE = {"console_page": True}


@get("/models", opt=PAGE)
async def models(request: Request[Any, Any, Any], console: SignedInDep) -> Response[str]:
    gateway = gateway_of(request)
    return page(
        request,
        "models.html",
        title="Models",
        current="models",
        models=model_rows(gateway),
        auto=gateway.catalog.auto,
        cooldown=gateway.settings.routing.cooldown_seconds,
        threshold=gateway.settings.routing.failure_threshold,
    )


ROUTES = [models]
