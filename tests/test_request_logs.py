"""Request ids and the structured log: ``X-Request-Id`` in and out, one line per request and
per attempt carrying it, JSON or text, and ``tryon serve --log-level/--log-format`` over the
config file (a real process)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from websockets.sync.client import connect

from tests.helpers import SAMPLES, auth, data_url, new_key
from tests.served import Gateway, Worker, configured, free_port, new_account, wait_until
from tryon_core.errors import ProviderUnavailable
from tryon_core.request_context import accepted_request_id
from tryon_core.server.logs import ContextFilter, JsonFormatter, RedactingFormatter
from tryon_core.testing import ScriptedProvider

FALLBACKS = '[routing.fallbacks]\n"scripted/alpha" = ["scripted/beta"]\n'


def _fields(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if getattr(record, "fields", {}).get("event") == event
    ]


@pytest.fixture
async def app_client(make_app: Callable[..., Litestar], caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.INFO, logger="tryon")
    caplog.handler.addFilter(ContextFilter())  # what configure_logging() puts on its handler
    async with AsyncTestClient(app=make_app(extra=FALLBACKS)) as test_client:
        yield test_client


async def test_a_clients_request_id_is_returned_and_on_the_requests_lines(
    app_client: AsyncTestClient[Litestar],
    scripted: ScriptedProvider,
    caplog: pytest.LogCaptureFixture,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    inference_key, _ = await new_key(app_client)
    scripted.script("scripted/alpha", ProviderUnavailable("alpha is down"))
    answer = await app_client.post(
        "/api/v1/tryon",
        json=tryon_body(model="scripted/alpha"),
        headers={**auth(inference_key), "X-Request-Id": "client-chosen id/42"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"] == "client-chosen id/42"
    generation_id = answer.json()["id"]

    attempts = _fields(caplog, "attempt")
    assert [(a["position"], a["model"], a["status"]) for a in attempts] == [
        (0, "scripted/alpha", "failed"),
        (1, "scripted/beta", "succeeded"),
    ]
    assert attempts[0]["error_type"] == "provider_unavailable"
    assert {a["generation_id"] for a in attempts} == {generation_id}
    assert all(a["provider"] == "scripted" and a["duration_ms"] >= 0 for a in attempts)
    requests = [r for r in _fields(caplog, "request") if r["path"] == "/api/v1/tryon"]
    assert len(requests) == 1
    request = requests[0]
    assert request["method"] == "POST" and request["status"] == 200
    assert request["route"] == "/api/v1/tryon"
    assert request["generation_id"] == generation_id
    assert request["key_id"].startswith("key_") and inference_key not in str(request)
    # every line logged while serving it carries the request id
    lines = [r for r in caplog.records if r.name.startswith("tryon.")]
    ids = {getattr(r, "context_ids", {}).get("request_id") for r in lines}
    assert ids == {"client-chosen id/42"}, [r.getMessage() for r in lines]


_PRINTABLE = st.characters(min_codepoint=33, max_codepoint=126)


@given(
    sent=st.one_of(
        st.text(
            min_size=129, max_size=300, alphabet=st.characters(min_codepoint=33, max_codepoint=126)
        ),
        st.text(min_size=1, max_size=40).filter(lambda s: any(not " " <= c <= "~" for c in s)),
        st.sampled_from(["", " ", " padded", "padded "]),
    )
)
def test_an_unfit_request_id_is_replaced_by_a_new_one(sent: str) -> None:
    made = accepted_request_id(sent)
    assert made != sent and made.startswith("req_")


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/api/v1/nowhere", {}, 404),
        ("GET", "/api/v1/credits", {}, 401),
        ("POST", "/api/v1/tryon", {"Authorization": "Bearer tryon_nottherightkey0000000"}, 401),
        ("DELETE", "/healthz", {}, 405),
    ],
)
async def test_every_answer_carries_a_request_id_errors_too(
    app_client: AsyncTestClient[Litestar],
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
) -> None:
    made = await app_client.request(method, path, headers=headers)
    assert made.status_code == status
    assert made.headers["x-request-id"].startswith("req_")
    too_long = "x" * 129
    replaced = await app_client.request(method, path, headers={**headers, "X-Request-Id": too_long})
    assert replaced.headers["x-request-id"].startswith("req_")
    assert replaced.headers["x-request-id"] != made.headers["x-request-id"]
    assert too_long not in caplog.text
    lines = [r for r in _fields(caplog, "request") if r["path"] == path]
    assert [line["status"] for line in lines] == [status, status]
    assert [line["request_id"] for line in lines] == [
        made.headers["x-request-id"],
        replaced.headers["x-request-id"],
    ]


def _record(message: str, *args: object, **fields: Any) -> logging.LogRecord:
    record = logging.LogRecord("tryon.requests", logging.INFO, __file__, 0, message, args, None)
    record.fields = fields
    record.context_ids = {"request_id": "req_1"}
    return record


KEY = "tryon_" + "k" * 40


def test_a_json_line_is_one_object_with_its_fields_and_no_secret() -> None:
    record = _record(
        "GET %s 200", f"/api/v1/files/x?expires=1&sig=abc&api_key={KEY}", status=200, note=KEY
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line and KEY not in line and "sig=abc" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "info" and parsed["logger"] == "tryon.requests"
    assert parsed["request_id"] == "req_1" and parsed["status"] == 200
    assert (
        parsed["message"] == "GET /api/v1/files/x?expires=1&sig=[redacted]&api_key=[redacted] 200"
    )
    assert parsed["time"].endswith("Z")


def test_a_json_line_holds_its_traceback_redacted() -> None:
    try:
        raise RuntimeError(f"failed with {KEY}")
    except RuntimeError:
        record = logging.LogRecord(
            "tryon", logging.ERROR, __file__, 0, "boom", None, sys.exc_info()
        )
    parsed = json.loads(JsonFormatter().format(record))
    assert "RuntimeError" in parsed["exception"] and KEY not in parsed["exception"]


def test_a_text_line_names_its_request_after_the_message() -> None:
    line = RedactingFormatter("%(levelname)s %(name)s: %(message)s").format(
        _record("GET %s 200", "/healthz")
    )
    assert line == "INFO tryon.requests: GET /healthz 200 [request_id=req_1]"


# A real `tryon serve`: the command line's log options win over the config file's.


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    """``tryon serve --log-format json --log-level info`` over a config saying text and
    warning; Gemini points at a closed port and falls back to the offline engine."""
    directory = tmp_path_factory.mktemp("json-logs")
    database_url = f"sqlite+aiosqlite:///{directory}/tryon.db"
    key, _ = asyncio.run(new_account(database_url, credits=100))
    gateway = configured(
        directory,
        database_url,
        f"""
[logging]
level = "warning"
format = "text"
[providers.local]
enabled = true
[providers.gemini]
enabled = true
api_key = "gemini-test-key-not-to-log"
base_url = "http://127.0.0.1:{free_port()}"
[routing.fallbacks]
"google/gemini-2.5-flash-image" = ["local/overlay"]
""",
    )
    gateway.options = ("--log-format", "json", "--log-level", "info")
    gateway.start()
    try:
        yield gateway, key
    finally:
        gateway.stop()


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line the gateway wrote that is ours or uvicorn's (third-party native libraries
    may write their own to stderr)."""
    lines = [line for line in text.splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def test_serve_writes_json_lines_with_request_ids_when_told_to(
    served: tuple[Gateway, str],
) -> None:
    gateway, key = served
    start = gateway.log_size()
    body = {
        "model": "google/gemini-2.5-flash-image",
        "person_images": [data_url(SAMPLES / "person.jpg", "image/jpeg")],
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
    }
    with httpx.Client(base_url=gateway.url, timeout=60) as http:
        answer = http.post(
            "/api/v1/tryon", json=body, headers={**auth(key), "X-Request-Id": "trace-me-1"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-request-id"] == "trace-me-1"
        accepted = http.post("/api/v1/tryon", json={**body, "mode": "async"}, headers=auth(key))
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["jobId"]
        with connect(accepted.json()["wsUrl"], open_timeout=30) as socket_:
            handshake_id = socket_.response.headers["x-request-id"]
            list(socket_)
    assert handshake_id.startswith("req_")
    generation_id = answer.json()["id"]

    def logged() -> list[dict[str, Any]]:
        lines = _json_lines(gateway.log_since(start))
        done = any(line.get("path", "").endswith("/ws") for line in lines)
        return lines if done else []

    lines = wait_until(logged, "the WebSocket's request line")
    requests = [line for line in lines if line.get("event") == "request"]
    tryon = [line for line in requests if line.get("request_id") == "trace-me-1"]
    assert len(tryon) == 1 and tryon[0]["status"] == 200
    assert tryon[0]["generation_id"] == generation_id and tryon[0]["key_id"].startswith("key_")
    attempts = [line for line in lines if line.get("event") == "attempt"]
    sync = [a for a in attempts if a["generation_id"] == generation_id]
    assert [(a["model"], a["status"]) for a in sync] == [
        ("google/gemini-2.5-flash-image", "failed"),
        ("local/overlay", "succeeded"),
    ]
    assert sync[0]["error_type"] == "provider_unavailable"
    assert all(a["request_id"] == "trace-me-1" for a in sync)
    job = [a for a in attempts if a["generation_id"] == job_id]
    assert [a["model"] for a in job] == ["google/gemini-2.5-flash-image", "local/overlay"]
    socket_line = [r for r in requests if r.get("request_id") == handshake_id]
    assert socket_line and socket_line[0]["route"].endswith("/ws")
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
    text = gateway.log_since(start)
    assert key not in text and "gemini-test-key-not-to-log" not in text


def test_serve_without_options_writes_the_configs_text_at_its_level(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/tryon.db"
    gateway = configured(tmp_path, database_url, '[logging]\nlevel = "warning"\n')
    gateway.start()
    try:
        with httpx.Client(base_url=gateway.url) as http:
            assert http.get("/api/v1/nowhere").status_code == 404
    finally:
        gateway.stop()
    log = gateway.log.read_text()
    assert "GET /api/v1/nowhere" not in log  # an info line, below the configured level
    assert not _json_lines(log)
    gateway.options = ("--log-level", "info")
    gateway.start()
    try:
        with httpx.Client(base_url=gateway.url) as http:
            assert http.get("/api/v1/nowhere").status_code == 404
    finally:
        gateway.stop()
    lines = [line for line in gateway.log.read_text().splitlines() if "/api/v1/nowhere" in line]
    assert len(lines) == 1
    assert " INFO tryon.requests: GET /api/v1/nowhere 404 " in lines[0]
    assert "[request_id=req_" in lines[0]


def test_worker_takes_the_same_log_options(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/tryon.db"
    config = configured(tmp_path, database_url, '[logging]\nlevel = "error"\n').config
    worker = Worker(config, tmp_path / "worker.log")
    worker.options = ("--log-format", "json", "--log-level", "info")
    worker.start()
    worker.stop()
    lines = _json_lines(worker.log.read_text())
    assert any("running up to" in line["message"] for line in lines)
    assert all(line["logger"].startswith(("tryon", "uvicorn")) for line in lines)
