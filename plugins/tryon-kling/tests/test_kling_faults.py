"""Every way Kling fails, as the core's error classes: through the fake, and code by code."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tryon_kling.adapter import KlingAdapter
from tryon_kling.errors import error_for
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    InputRejected,
    NoImage,
    ProviderContext,
    ProviderError,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)
from tryon_core.testing import Fault

F = Fault

# fault, error class, provider_code, retry_after
CASES: list[tuple[Fault, type[ProviderError], str | None, float | None]] = [
    (F(kind="rate_limit", retry_after=7), RateLimited, "1302", 7.0),
    (F(kind="rate_limit"), RateLimited, "1302", None),
    (F(kind="rate_limit", code="1303", retry_after=30), RateLimited, "1303", 30.0),
    (F(kind="rate_limit", code="1303"), RateLimited, "1303", None),
    (F(kind="quota"), ProviderMisconfigured, "1102", None),
    (F(kind="quota", retry_after=7), ProviderMisconfigured, "1102", None),
    (F(kind="quota", code="1101"), ProviderMisconfigured, "1101", None),
    (F(kind="quota", code="1100"), ProviderMisconfigured, "1100", None),
    (F(kind="server_error"), ProviderUnavailable, "5000", None),
    (F(kind="server_error", status=503), ProviderUnavailable, "5001", None),
    (F(kind="server_error", status=504), ProviderTimeout, "5002", None),
    (F(kind="malformed"), BadResponse, None, None),
    (F(kind="malformed", code="shape"), BadResponse, None, None),
    (F(kind="no_image"), NoImage, None, None),
    (F(kind="bad_image"), BadResponse, None, None),
    (F(kind="content_refused"), ContentRefused, "1301", None),
    (F(kind="content_refused", code="1300"), ContentRefused, "1300", None),
    (F(kind="content_refused", code="task"), ContentRefused, "failed", None),
    (F(kind="invalid_input"), InputRejected, "1201", None),
    (F(kind="invalid_input", code="1200"), InputRejected, "1200", None),
    (F(kind="auth"), ProviderMisconfigured, "1002", None),
    *[
        (F(kind="auth", code=str(c)), ProviderMisconfigured, str(c), None)
        for c in range(1000, 1005)
    ],
    (F(kind="task_failed"), TaskFailed, "failed", None),
    (F(kind="slow_task", seconds=3), ProviderTimeout, None, None),
    (F(kind="hang"), ProviderTimeout, None, None),
]


@pytest.mark.parametrize(("fault", "kind", "code", "hint"), CASES, ids=lambda v: repr(v)[:40])
async def test_each_fault_becomes_its_error(
    kling: Any,
    tryon_request: Any,
    fault: Fault,
    kind: type[ProviderError],
    code: str | None,
    hint: float | None,
) -> None:
    kling.state.inject(fault)
    timeout = 1.0 if fault.kind in ("hang", "slow_task") else 10.0
    error = await kling.failure(tryon_request(), timeout=timeout)
    assert type(error) is kind, error
    if code is not None:
        assert error.provider_code == code
    assert error.retry_after == hint
    tokens = {r.headers["authorization"].split(" ", 1)[1] for r in kling.sent}
    for secret in (TEST_ACCESS_KEY, TEST_SECRET_KEY, *tokens):
        for text in (str(error), error.message, error.upstream_message or "", code or ""):
            assert secret not in text


async def test_a_slow_task_that_ends_in_time_succeeds(kling: Any, tryon_request: Any) -> None:
    kling.state.inject(Fault(kind="slow_task", seconds=0.3))
    produced = await kling.attempt(tryon_request())
    assert len(produced) == 1
    assert len([r for r in kling.sent if r.method == "GET"]) >= 3


async def test_a_failed_task_keeps_kling_s_reason(kling: Any, tryon_request: Any) -> None:
    kling.state.inject(Fault(kind="task_failed"))
    error = await kling.failure(tryon_request())
    assert isinstance(error, TaskFailed)
    assert error.upstream_message == "Task failed: the try-on image could not be generated"
    assert kling.tasks[0][0] in error.message


# -- code by code, the statuses WIRE.md documents --------------------------------------------

DOCUMENTED: list[tuple[int, int, type[ProviderError]]] = [
    (401, 1000, ProviderMisconfigured),
    (401, 1001, ProviderMisconfigured),
    (401, 1002, ProviderMisconfigured),
    (401, 1003, ProviderMisconfigured),
    (401, 1004, ProviderMisconfigured),
    (429, 1100, ProviderMisconfigured),
    (429, 1101, ProviderMisconfigured),
    (429, 1102, ProviderMisconfigured),
    (403, 1103, ProviderMisconfigured),
    (400, 1200, InputRejected),
    (400, 1201, InputRejected),
    (404, 1202, ProviderMisconfigured),
    (404, 1203, ProviderMisconfigured),
    (400, 1300, ContentRefused),
    (400, 1301, ContentRefused),
    (429, 1302, RateLimited),
    (429, 1303, RateLimited),
    (429, 1304, ProviderMisconfigured),
    (500, 5000, ProviderUnavailable),
    (503, 5001, ProviderUnavailable),
    (504, 5002, ProviderTimeout),
]


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("POST", "https://kling.test/v1/images/kolors-virtual-try-on")
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers, request=request)


@pytest.mark.parametrize(("status", "code", "kind"), DOCUMENTED)
def test_every_documented_code_maps_to_its_class(
    status: int, code: int, kind: type[ProviderError]
) -> None:
    body = {"code": code, "message": f"message {code}", "request_id": "r"}
    error = error_for(answer(status, body, {"Retry-After": "9"}), "kling/x", body, ())
    assert type(error) is kind
    assert error.provider_code == str(code) and error.upstream_message == f"message {code}"
    assert error.retry_after == (9.0 if kind is RateLimited else None)
    assert error.fallback is (kind not in (ContentRefused, InputRejected))


def test_the_business_code_wins_over_the_status() -> None:
    body = {"code": 1102, "message": "resource pack exhausted", "request_id": "r"}
    # 429 would otherwise read as "retry soon"; out of credit is not.
    assert type(error_for(answer(429, body), "kling/x", body, ())) is ProviderMisconfigured


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, {"code": 9999, "message": "new"}, BadResponse),
        (502, b"<html>bad gateway</html>", ProviderUnavailable),
        (418, {"code": 9999}, ProviderUnavailable),
        (429, {"message": "no code"}, RateLimited),
        (401, None, ProviderMisconfigured),
    ],
)
def test_unknown_codes_fall_back_to_the_status(status: int, body: Any, kind: type) -> None:
    parsed = body if isinstance(body, dict) else None
    error = error_for(answer(status, body or b""), "kling/x", parsed, ())
    assert type(error) is kind


async def test_an_upstream_message_never_carries_a_credential(
    tryon_request: Any,
) -> None:
    """Even a service that echoes the token back gets it redacted."""

    def echo(request: httpx.Request) -> httpx.Response:
        said = f"bad token {request.headers['authorization']} for {TEST_ACCESS_KEY}"
        return httpx.Response(401, json={"code": 1002, "message": said, "request_id": "r"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(echo)) as http:
        from tryon_kling.models import KlingConfig

        config = KlingConfig(
            enabled=True,
            base_url="https://kling.test",
            access_key=TEST_ACCESS_KEY,
            secret_key=TEST_SECRET_KEY,
        )

        async def record(task_id: str) -> None:
            raise AssertionError("nothing to record")

        context = ProviderContext(http=http, config=config, timeout=5, record_task=record)
        adapter = KlingAdapter(config)
        with pytest.raises(ProviderMisconfigured) as caught:
            await adapter.run(tryon_request(), context)
    error = caught.value
    token = adapter._tokens.token(TEST_ACCESS_KEY, TEST_SECRET_KEY)
    for text in (str(error), error.upstream_message or ""):
        assert token not in text and TEST_ACCESS_KEY not in text and TEST_SECRET_KEY not in text
    assert "[redacted]" in (error.upstream_message or "")
