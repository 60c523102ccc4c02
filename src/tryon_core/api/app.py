"""``create_app(settings)``: the Litestar application, built in one factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components

from tryon_core import (
    __version__,
    metrics,
    roles,  # a module: `tryon worker` imports roles first, which imports us
)
from tryon_core.api import request_log
from tryon_core.api.cors import demo_cors
from tryon_core.api.deps import provide_gateway, provide_principal
from tryon_core.api.errors import EXCEPTION_HANDLERS
from tryon_core.api.hangups import disconnect_while_reading_body
from tryon_core.api.openapi import SECURITY_SCHEMES
from tryon_core.api.routes import (
    account,
    chat,
    demo_sessions,
    files,
    generations,
    health,
    jobs,
    models,
    tryon,
    webhooks,
)
from tryon_core.api.scopes import check_declared, check_guarded, guard, rate_limit_headers
from tryon_core.api.unread import close_when_body_unread
from tryon_core.config import Settings, load_settings
from tryon_core.console.app import console_routers
from tryon_core.gateway import Gateway, build_catalog
from tryon_core.metrics.scrape import metrics_routes

__all__ = ["create_app"]

ROUTES = [
    health.healthz,
    health.readyz,
    models.list_models,
    tryon.create_tryon,
    jobs.jobs,
    jobs.job,
    jobs.cancel,
    jobs.job_socket,
    chat.create_chat_completion,
    account.credits,
    account.current_key,
    account.keys,
    account.new_key,
    account.remove_key,
    account.change_key,
    files.download,
    webhooks.webhook_secret,
    webhooks.rotate_webhook_secret,
    webhooks.webhook_deliveries,
    demo_sessions.create_session,
    demo_sessions.sessions,
    demo_sessions.revoke_session,
    generations.list_generations,
    generations.generation,
]


def create_app(
    settings: Settings | None = None,
    *,
    extra_plugins: Iterable[object] = (),
    load_entry_points: bool = True,
    workers: bool = True,
) -> Litestar:
    """Build the app. Plugins load and config is validated now; I/O starts in the lifespan.

    ``extra_plugins`` registers plugin objects directly (tests and built-ins), besides the
    installed ``tryon`` entry points (off with ``load_entry_points=False``). ``workers=False``
    is ``tryon serve --no-workers``: the app accepts async jobs and never runs them.
    """
    settings = settings or load_settings()
    metrics.configure(settings)
    check_declared(ROUTES)
    catalog = build_catalog(
        settings, extra_plugins=extra_plugins, load_entry_points=load_entry_points
    )
    gateway = Gateway.create(settings, catalog)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await gateway.start()
        try:
            async with roles.background(gateway, roles.Role.SERVE if workers else roles.Role.API):
                yield
        finally:
            await gateway.close()

    app = Litestar(
        route_handlers=[*ROUTES, *metrics_routes(settings), *console_routers(settings)],
        lifespan=[lifespan],
        dependencies={
            "gateway": Provide(provide_gateway),
            "principal": Provide(provide_principal),
        },
        before_request=guard,
        before_send=[rate_limit_headers],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.server.max_body_bytes,
        multipart_form_part_limit=tryon.form_part_limit(settings.images.max_garments),
        middleware=[
            metrics.count_requests,
            demo_cors,
            close_when_body_unread,
            disconnect_while_reading_body,
        ],
        logging_config=None,  # the process configures logging (`tryon serve`), not the app
        openapi_config=OpenAPIConfig(
            title="tryon-core",
            version=__version__,
            path="/schema",
            use_handler_docstrings=False,
            components=Components(security_schemes=SECURITY_SCHEMES),
        ),
        state=State({"gateway": gateway}),
    )
    check_guarded(app)
    return request_log.wrap(app)  # request ids, one log line and one span per request
