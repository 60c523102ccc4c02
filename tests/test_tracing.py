"""OpenTelemetry: a try-on whose first model fails and falls back, exported by OTLP/HTTP to a
collector in the test; the request's span, one span per attempt with its attributes, the
upstream HTTP calls as the attempts' children, the SQL statements; no secret anywhere."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.helpers import auth, new_key
from tryon_core.api import create_app
from tryon_core.config import Settings, TracingConfig, parse_settings
from tryon_core.errors import ConfigError, ProviderUnavailable
from tryon_core.provider import OutputImage, ProviderContext, ProviderRequest
from tryon_core.testing import ScriptedProvider
from tryon_core.tracing import start_tracing

UPSTREAM_KEY = "upstream-secret-key-0123456789"


class Collector:
    """An OTLP/HTTP trace collector and a small upstream, on one port of 127.0.0.1."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.upstream_calls: list[str] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # an export
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        collector.spans.extend(scope.spans)
                self._answer(200, ExportTraceServiceResponse().SerializeToString())

            def do_GET(self) -> None:  # an upstream call
                collector.upstream_calls.append(self.path)
                self._answer(503 if "alpha" in self.path else 200, b"{}")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector()
    collector.thread.start()
    try:
        yield collector
    finally:
        collector.server.shutdown()
        collector.server.server_close()


class CallingProvider(ScriptedProvider):
    """The scripted models, each calling its upstream through the gateway's client first
    (with a key in the query string, as Gemini's API takes it)."""

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        name = request.model.split("/")[1]
        answer = await context.http.get(f"{self.upstream}/{name}", params={"key": UPSTREAM_KEY})
        if answer.status_code == 503:
            raise ProviderUnavailable(f"{request.model} is down")
        return await super().run(request, context)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(span: Any) -> dict[str, Any]:
    return {attribute.key: _value(attribute.value) for attribute in span.attributes}


async def test_a_fallback_is_one_trace_of_request_attempts_upstream_calls_and_sql(
    make_settings: Callable[..., Settings],
    collector: Collector,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    settings = make_settings(
        extra=f"""
[routing.fallbacks]
"scripted/alpha" = ["scripted/beta"]
[tracing]
otlp_endpoint = "{collector.url}/v1/traces"
service_name = "tryon-under-test"
"""
    )
    provider = CallingProvider(f"{collector.url}/upstream")
    app = create_app(settings, extra_plugins=[provider], load_entry_points=False)
    async with AsyncTestClient(app=app) as client:
        key, _ = await new_key(client)
        answer = await client.post(
            "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
        )
        assert answer.status_code == 200, answer.text
        link = answer.json()["images"][0]["url"]
    # the gateway closed: its spans are exported
    assert len(collector.upstream_calls) == 2
    spans = collector.spans
    by_id = {span.span_id: span for span in spans}
    requests = [s for s in spans if s.name == "POST /api/v1/tryon"]
    assert len(requests) == 1
    request = requests[0]
    assert _attributes(request)["http.route"] == "/api/v1/tryon"
    assert _attributes(request)["http.response.status_code"] == 200
    assert _attributes(request)["tryon.generation_id"] == answer.json()["id"]
    assert answer.headers["x-request-id"] == _attributes(request)["tryon.request_id"]

    attempts = sorted(
        (s for s in spans if s.name.startswith("attempt ")),
        key=lambda s: _attributes(s)["tryon.attempt.position"],
    )
    assert [_attributes(s) for s in attempts] == [
        {
            "tryon.model": "scripted/alpha",
            "tryon.provider": "scripted",
            "tryon.attempt.position": 0,
            "tryon.generation_id": answer.json()["id"],
            "tryon.attempt.outcome": "failed",
            "error.type": "provider_unavailable",
        },
        {
            "tryon.model": "scripted/beta",
            "tryon.provider": "scripted",
            "tryon.attempt.position": 1,
            "tryon.generation_id": answer.json()["id"],
            "tryon.attempt.outcome": "succeeded",
        },
    ]
    assert all(a.parent_span_id == request.span_id for a in attempts)
    assert {a.trace_id for a in attempts} == {request.trace_id}

    calls = [s for s in spans if s.parent_span_id in {a.span_id for a in attempts}]
    calls = [s for s in calls if "http.url" in _attributes(s) or "url.full" in _attributes(s)]
    assert sorted(by_id[s.parent_span_id].name for s in calls) == [
        "attempt scripted/alpha",
        "attempt scripted/beta",
    ]
    for call in calls:
        url = _attributes(call).get("http.url") or _attributes(call)["url.full"]
        assert url.endswith("?key=[redacted]"), url

    statements = [s for s in spans if "db.statement" in _attributes(s)]
    assert any("generations" in _attributes(s)["db.statement"] for s in statements)
    assert all(s.trace_id == request.trace_id for s in statements if s.parent_span_id)

    everything = repr([(s.name, _attributes(s)) for s in spans])
    signature = httpx.URL(link).params["sig"]
    for secret in (UPSTREAM_KEY, key, signature, "iVBORw0KGgo", "/9j/"):
        assert secret not in everything


async def test_a_client_traceparent_is_continued(
    make_settings: Callable[..., Settings], collector: Collector
) -> None:
    settings = make_settings(extra=f'[tracing]\notlp_endpoint = "{collector.url}/v1/traces"\n')
    app = create_app(settings, extra_plugins=[ScriptedProvider()], load_entry_points=False)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with AsyncTestClient(app=app) as client:
        headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
        assert (await client.get("/api/v1/models", headers=headers)).status_code == 200
    (span,) = [s for s in collector.spans if s.name == "GET /api/v1/models"]
    assert span.trace_id.hex() == trace_id
    assert span.parent_span_id.hex() == "00f067aa0ba902b7"


def test_no_endpoint_no_tracing() -> None:
    assert start_tracing(TracingConfig(), environ={}) is None
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}
    assert start_tracing(TracingConfig(), environ=disabled) is None


def test_tracing_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    config = TracingConfig(otlp_endpoint="http://127.0.0.1:4318/v1/traces")
    with pytest.raises(ConfigError, match=r"pip install 'tryon-core\[otel\]'"):
        start_tracing(config, environ={})


@pytest.mark.parametrize("endpoint", ["127.0.0.1:4318", "ftp://collector/v1/traces", ""])
def test_an_endpoint_must_be_an_http_url(endpoint: str) -> None:
    with pytest.raises(ConfigError, match=r"tracing: otlp_endpoint must be an http"):
        parse_settings(f'[tracing]\notlp_endpoint = "{endpoint}"\n')
