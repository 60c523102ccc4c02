"""``GET /metrics``: everything recorded, in the Prometheus text format.

Counters and histograms come from this process, or, in multiprocess mode, from every process
sharing the folder. The gauges of work waiting and under way (jobs queued and running,
webhook deliveries pending) are counted in the database at scrape time: the same numbers from
every replica, correct whichever process took the work, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterator
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from tryon_core import __version__
from tryon_core.config import Settings
from tryon_core.db.schema import generations, webhook_deliveries
from tryon_core.errors import AuthenticationFailed
from tryon_core.gateway import Gateway
from tryon_core.metrics.families import families, multiprocess_dir

__all__ = ["exposition", "metrics_routes"]

log = logging.getLogger("tryon.metrics")


def metrics_routes(settings: Settings) -> list[HTTPRouteHandler]:
    """The ``/metrics`` route when ``[metrics] enabled``; none otherwise (a 404)."""
    return [metrics] if settings.metrics.enabled else []


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway: Gateway = request.app.state.gateway
    _check_token(gateway.settings.metrics.bearer_token, request.headers.get("authorization"))
    body = await exposition(gateway)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _check_token(expected: str | None, authorization: str | None) -> None:
    if expected is None:
        return
    scheme, _, token = (authorization or "").strip().partition(" ")
    sent = token.strip() if scheme.lower() == "bearer" else ""
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        refusal = AuthenticationFailed("/metrics needs Authorization: Bearer <the metrics token>.")
        refusal.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        raise refusal


async def exposition(gateway: Gateway) -> bytes:
    """The text a scrape gets: the recorded metrics, then the gauges read from the database."""
    families()  # every family is listed from the first scrape on, even before any traffic
    gauges = await _database_gauges(gateway)
    return await asyncio.to_thread(_render, gauges)


def _render(gauges: list[Metric]) -> bytes:
    directory = multiprocess_dir()
    if directory is None:
        recorded = generate_latest(REGISTRY)
    else:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        recorded = generate_latest(registry)
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_Fixed(gauges))
    return recorded + generate_latest(extra)


class _Fixed:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics


async def _database_gauges(gateway: Gateway) -> list[Metric]:
    build = GaugeMetricFamily("tryon_build_info", "The gateway's version.", labels=["version"])
    build.add_metric([__version__], 1)
    try:
        async with gateway.database.reading() as conn:
            rows = await conn.execute(
                select(generations.c.status, func.count())
                .where(
                    generations.c.mode == "async",
                    generations.c.status.in_(("queued", "processing")),
                )
                .group_by(generations.c.status)
            )
            jobs = {str(status): int(count) for status, count in rows}
            pending = await conn.scalar(
                select(func.count())
                .select_from(webhook_deliveries)
                .where(webhook_deliveries.c.status == "pending")
            )
    except Exception as exc:  # the database is away: the recorded metrics still answer
        log.warning("metrics: jobs and webhook gauges left out (%s)", type(exc).__name__)
        return [build]
    return [
        build,
        GaugeMetricFamily(
            "tryon_jobs_queued",
            "Async jobs waiting for a worker (the whole deployment, read from the database).",
            value=int(jobs.get("queued", 0)),
        ),
        GaugeMetricFamily(
            "tryon_jobs_running",
            "Async jobs a worker is running (the whole deployment, read from the database).",
            value=int(jobs.get("processing", 0)),
        ),
        GaugeMetricFamily(
            "tryon_webhook_deliveries_pending",
            "Webhook deliveries not yet delivered nor given up (read from the database).",
            value=int(pending or 0),
        ),
    ]
