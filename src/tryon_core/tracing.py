"""OpenTelemetry traces, exported by OTLP/HTTP: an optional extra (``tryon-core[otel]``).

Off unless ``[tracing] otlp_endpoint`` (or the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
/ ``OTEL_EXPORTER_OTLP_ENDPOINT``) is set; off, nothing is imported, made or exported. On:

- one span per HTTP request, named by its route template (:mod:`tryon_core.api.request_log`);
- one per attempt, with its model, provider, position, upstream task id, outcome and error type
  (:mod:`tryon_core.attempt_log`), whose children are the upstream HTTP calls of the gateway's
  client (httpx instrumented);
- one per SQL statement (SQLAlchemy instrumented on the gateway's engine).

No span carries a secret: the URLs the httpx instrumentation records go through the log's
redaction (a query's values but a few harmless ones are blanked: Gemini's ``?key=``, a
presigned URL's signature), and the gateway's own spans record paths, never query strings.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tryon_core.errors import ConfigError

if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from tryon_core.config import TracingConfig
    from tryon_core.db import Database

__all__ = ["ENDPOINT_VARIABLES", "Tracing", "active_tracer", "start_tracing"]

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_URL_ATTRIBUTES = ("http.url", "url.full")
INSTALL_HINT = "pip install 'tryon-core[otel]'"

_active: Tracer | None = None
"""The tracer of the running gateway (None: tracing is off). One gateway runs per process."""


def active_tracer() -> Tracer | None:
    return _active


class Tracing:
    """A tracer provider with its OTLP exporter, for one gateway's lifetime."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("tryon_core")

    def instrument(self, *, http: httpx.AsyncClient, database: Database) -> None:
        """Trace the upstream calls of ``http`` and the statements of ``database``; make this
        the process's active tracer."""
        global _active
        with warnings.catch_warnings():  # the instrumentation 0.48 (protobuf 4) uses it
            warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
            from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeterProvider

        HTTPXClientInstrumentor.instrument_client(
            http, tracer_provider=self.provider, request_hook=_redact_url
        )
        meter = NoOpMeterProvider().get_meter("tryon_core")
        usage = meter.create_up_down_counter("db.client.connections.usage")
        sql = self.provider.get_tracer("tryon_core.sql")
        EngineTracer(sql, database.engine.sync_engine, usage)  # type: ignore[no-untyped-call]
        _active = self.tracer

    def close(self) -> None:
        """Export what is pending and stop."""
        global _active
        if _active is self.tracer:
            _active = None
        self.provider.shutdown()  # type: ignore[no-untyped-call]


def start_tracing(
    config: TracingConfig, *, environ: Mapping[str, str] | None = None
) -> Tracing | None:
    """The gateway's tracing, or None when no OTLP endpoint is configured.

    ConfigError naming the extra when one is configured but OpenTelemetry is not installed.
    """
    environ = os.environ if environ is None else environ
    endpoint = config.otlp_endpoint
    if endpoint is None and not any(environ.get(name) for name in ENDPOINT_VARIABLES):
        return None
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError:
        raise ConfigError(
            f"[tracing] needs OpenTelemetry, which is not installed: {INSTALL_HINT}"
        ) from None
    resource = Resource.create({"service.name": config.service_name})
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(config.sample_ratio))
    )
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=dict(config.headers) or None)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)


async def _redact_url(span: Any, request: Any) -> None:
    """The httpx instrumentation's request hook: the URL it recorded, redacted."""
    from tryon_core.server.logs import redact_argument

    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            span.set_attribute(name, redact_argument(value))
