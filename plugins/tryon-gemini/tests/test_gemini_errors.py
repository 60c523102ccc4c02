"""Every way Gemini fails, as the fake renders it, becomes the right error class."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tryon_gemini.adapter import _error, _image
from tryon_gemini.fake import _duration
from tryon_gemini.wire import parse_duration

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    InputRejected,
    NoImage,
    ProviderError,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from tryon_core.testing import Fault

SECRET = "AIzaSy-gateway-secret-key-0123456789"

CASES: list[tuple[Fault, type[ProviderError], str | None, float | None]] = [
    (Fault(kind="rate_limit", retry_after=37), RateLimited, "RESOURCE_EXHAUSTED", 37.0),
    (Fault(kind="rate_limit", retry_after=45.8), RateLimited, "RESOURCE_EXHAUSTED", 45.8),
    (Fault(kind="rate_limit"), RateLimited, "RESOURCE_EXHAUSTED", None),
    (Fault(kind="quota"), RateLimited, "RESOURCE_EXHAUSTED", None),
    (Fault(kind="server_error"), ProviderUnavailable, "INTERNAL", None),
    (Fault(kind="server_error", status=503), ProviderUnavailable, "UNAVAILABLE", None),
    (Fault(kind="server_error", status=502), ProviderUnavailable, "502", None),
    (Fault(kind="server_error", status=504), ProviderTimeout, "DEADLINE_EXCEEDED", None),
    (Fault(kind="malformed"), BadResponse, "200", None),
    (Fault(kind="malformed", code="shape"), BadResponse, None, None),
    (Fault(kind="no_image"), NoImage, "STOP", None),
    (Fault(kind="no_image", code="NO_IMAGE"), NoImage, "NO_IMAGE", None),
    (Fault(kind="no_image", code="IMAGE_OTHER"), NoImage, "IMAGE_OTHER", None),
    (Fault(kind="no_image", code="MAX_TOKENS"), NoImage, "MAX_TOKENS", None),
    (Fault(kind="bad_image"), BadResponse, None, None),
    (Fault(kind="bad_image", code="base64"), BadResponse, None, None),
    (Fault(kind="content_refused"), ContentRefused, "PROHIBITED_CONTENT", None),
    (Fault(kind="content_refused", code="IMAGE_SAFETY"), ContentRefused, "IMAGE_SAFETY", None),
    (Fault(kind="content_refused", code="SAFETY"), ContentRefused, "SAFETY", None),
    (Fault(kind="invalid_input"), InputRejected, "INVALID_ARGUMENT", None),
    (Fault(kind="auth"), ProviderMisconfigured, "API_KEY_INVALID", None),
]


@pytest.mark.parametrize(
    ("fault", "error", "code", "hint"),
    CASES,
    ids=[f"{c[0].kind}-{c[0].code or c[0].status}" for c in CASES],
)
async def test_each_fault_becomes_its_error(
    fake: Any,
    attempt: Any,
    tryon: Any,
    fault: Fault,
    error: type[ProviderError],
    code: str | None,
    hint: float | None,
) -> None:
    fake.state.inject(fault)
    with pytest.raises(ProviderError) as raised:
        await attempt().run(tryon())
    assert type(raised.value) is error
    assert raised.value.provider_code == code
    assert raised.value.retry_after == (pytest.approx(hint) if hint is not None else None)
    assert len(fake.state.requests) == 1  # the core, not the adapter, decides what comes next


async def test_the_upstream_s_words_are_kept_for_the_record(
    fake: Any, attempt: Any, tryon: Any
) -> None:
    fake.state.inject(Fault(kind="no_image"), Fault(kind="quota"))
    with pytest.raises(NoImage) as no_image:
        await attempt().run(tryon())
    assert no_image.value.upstream_message == (
        "I can't make that edit, but I can describe the outfit instead."
    )
    with pytest.raises(RateLimited) as quota:
        await attempt().run(tryon())
    assert "GenerateRequestsPerDayPerProjectPerModel-FreeTier" in (
        quota.value.upstream_message or ""
    )


async def test_a_wrong_key_is_the_gateway_s_misconfiguration(
    fake: Any, attempt: Any, tryon: Any
) -> None:
    with pytest.raises(ProviderMisconfigured) as raised:
        await attempt(api_key=SECRET).run(tryon())
    assert raised.value.provider_code == "API_KEY_INVALID"
    assert raised.value.fallback
    assert SECRET not in f"{raised.value} {raised.value.upstream_message}"


async def test_a_hang_is_cut_by_the_attempt_s_timeout(fake: Any, attempt: Any, tryon: Any) -> None:
    fake.state.inject("hang")
    with pytest.raises(httpx.TimeoutException):  # the core makes it a ProviderTimeout
        await asyncio.wait_for(attempt(timeout=0.5).run(tryon()), 5)


async def test_a_slow_answer_is_still_an_answer(fake: Any, attempt: Any, tryon: Any) -> None:
    fake.state.inject(Fault(kind="slow_task", seconds=0.3))
    assert len(await attempt().run(tryon())) == 1


def response(status: int, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else msgspec.json.encode(body)
    request = httpx.Request("POST", "https://generativelanguage.googleapis.com/v1beta/x")
    return httpx.Response(status, content=content, headers=headers, request=request)


def rpc(code: int, status: str, message: str, *details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "status": status, "message": message, "details": list(details)}}


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (
            400,
            rpc(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
            ProviderMisconfigured,
            "API_KEY_INVALID",
        ),
        (
            400,
            rpc(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
            ProviderMisconfigured,
            "FAILED_PRECONDITION",
        ),
        (
            400,
            rpc(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
            InputRejected,
            "INVALID_ARGUMENT",
        ),
        (
            401,
            rpc(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
            ProviderMisconfigured,
            "UNAUTHENTICATED",
        ),
        (
            403,
            rpc(
                403, "PERMISSION_DENIED", "Generative Language API has not been used in project 1."
            ),
            ProviderMisconfigured,
            "PERMISSION_DENIED",
        ),
        (
            404,
            rpc(404, "NOT_FOUND", "models/x is not found for API version v1beta"),
            ProviderMisconfigured,
            "NOT_FOUND",
        ),
        (429, b"<html>Too Many Requests</html>", RateLimited, "429"),
        (500, b"", ProviderUnavailable, "500"),
        (
            503,
            [rpc(503, "UNAVAILABLE", "The model is overloaded.")],
            ProviderUnavailable,
            "UNAVAILABLE",
        ),
        (
            504,
            rpc(504, "DEADLINE_EXCEEDED", "Deadline expired."),
            ProviderTimeout,
            "DEADLINE_EXCEEDED",
        ),
    ],
)
def test_google_rpc_errors_map_by_status_and_reason(
    status: int, body: Any, error: type[ProviderError], code: str
) -> None:
    raised = _error(response(status, body), SECRET)
    assert type(raised) is error
    assert raised.provider_code == code


def test_the_wait_hint_comes_from_retry_info_not_a_header() -> None:
    body = rpc(
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "45.800s"},
    )
    assert _error(response(429, body), SECRET).retry_after == pytest.approx(45.8)
    headers_only = rpc(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted.")
    assert _error(response(429, headers_only, **{"retry-after": "9"}), SECRET).retry_after is None


def test_an_echoed_key_is_cut_from_every_message() -> None:
    echoed = f"API key {SECRET} not valid. Please pass a valid API key."
    for status in (400, 403, 429, 500):
        raised = _error(response(status, rpc(status, "X", echoed)), SECRET)
        assert SECRET not in f"{raised} {raised.upstream_message} {raised.provider_code}"
        assert "[redacted]" in (raised.upstream_message or "")
    refused = {"promptFeedback": {"blockReason": "OTHER", "blockReasonMessage": echoed}}
    with pytest.raises(ContentRefused) as raised_refusal:
        _image(refused, SECRET)
    assert SECRET not in (raised_refusal.value.upstream_message or "")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ([], BadResponse),
        ({}, BadResponse),
        ({"candidates": [], "usageMetadata": {}}, NoImage),
        ({"candidates": [{"finishReason": "IMAGE_PROHIBITED_CONTENT"}]}, ContentRefused),
        ({"candidates": [{"finishReason": "IMAGE_RECITATION"}]}, ContentRefused),
        ({"candidates": [{"finishReason": "OTHER"}]}, NoImage),
        ({"candidates": [{"content": {"parts": "x"}}]}, BadResponse),
        ({"candidates": ["x"]}, BadResponse),
        (
            {"promptFeedback": {"blockReason": "BLOCKED_REASON_UNSPECIFIED"}, "candidates": []},
            NoImage,
        ),
    ],
)
def test_answers_without_an_image_are_never_an_empty_success(
    answer: Any, error: type[ProviderError]
) -> None:
    with pytest.raises(ProviderError) as raised:
        _image(answer, SECRET)
    assert type(raised.value) is error


def test_a_thought_image_is_skipped_for_the_final_one(picture: Any) -> None:
    import base64

    final = picture(64, 64)
    parts = [
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}, "thought": True},
        {"text": "Here you go"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(final).decode()}},
    ]
    assert _image({"candidates": [{"content": {"parts": parts}}]}, SECRET) == final


@given(st.floats(min_value=0, max_value=86400, allow_nan=False))
def test_retry_delays_round_trip_through_protobuf_durations(seconds: float) -> None:
    text = _duration(seconds)
    assert text.endswith("s") and len(text.partition(".")[2].rstrip("s")) in (0, 3, 6, 9)
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("37s", 37.0),
        ("45.8s", 45.8),
        ("0.000000001s", 1e-9),
        ({"seconds": "12", "nanos": 500000000}, 12.5),
        ("-3s", None),
        ("3", None),
        ("3m", None),
        (37, None),
        ({"seconds": True}, None),
    ],
)
def test_durations_parse_like_protobuf_json(value: Any, seconds: float | None) -> None:
    assert parse_duration(value) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize("content", ["x", 3, ["parts"]])
def test_content_of_the_wrong_type_is_a_bad_response(content: Any) -> None:
    with pytest.raises(BadResponse):
        _image({"candidates": [{"content": content, "finishReason": "STOP"}]}, SECRET)
