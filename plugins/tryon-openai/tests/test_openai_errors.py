"""Every upstream failure becomes the right error class, keeps OpenAI's code, and no secret."""

from __future__ import annotations

import base64
import json
import string
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tryon_openai.adapter import OpenAIAdapter, OpenAIConfig, _redact
from tryon_openai.fake import _masked

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
)
from tryon_core.testing import FakeState, Fault

Make = Callable[..., Any]

# kind or Fault -> (error class, provider_code, retry_after)
FAULTS: list[tuple[Fault, type[ProviderError], str | None, float | None]] = [
    (Fault(kind="rate_limit", retry_after=2.5), RateLimited, "rate_limit_exceeded", 2.5),
    (Fault(kind="rate_limit"), RateLimited, "rate_limit_exceeded", None),
    (Fault(kind="quota"), ProviderMisconfigured, "insufficient_quota", None),
    (Fault(kind="server_error"), ProviderUnavailable, "server_error", None),
    (Fault(kind="server_error", status=502), ProviderUnavailable, "server_error", None),
    (Fault(kind="server_error", status=503), ProviderUnavailable, "server_error", None),
    (Fault(kind="malformed"), BadResponse, "200", None),
    (Fault(kind="no_image"), NoImage, None, None),
    (Fault(kind="bad_image"), BadResponse, None, None),
    (Fault(kind="content_refused"), ContentRefused, "moderation_blocked", None),
    (Fault(kind="invalid_input"), InputRejected, "invalid_image_file", None),
    (
        Fault(kind="invalid_input", code="unsupported_file_mimetype"),
        InputRejected,
        "unsupported_file_mimetype",
        None,
    ),
    (Fault(kind="auth"), ProviderMisconfigured, "invalid_api_key", None),
]


@pytest.mark.parametrize(("fault", "error", "code", "wait"), FAULTS, ids=lambda v: repr(v))
async def test_fault_maps_to_error(
    fault: Fault,
    error: type[ProviderError],
    code: str | None,
    wait: float | None,
    make_request: Make,
    make_context: Make,
    state: FakeState,
) -> None:
    state.inject(fault)
    with pytest.raises(ProviderError) as caught:
        await OpenAIAdapter().run(make_request(), make_context())
    assert type(caught.value) is error
    assert caught.value.provider_code == code
    assert caught.value.retry_after == wait
    assert "test-key" not in str(caught.value)
    assert "test-key" not in (caught.value.upstream_message or "")
    assert len(state.requests) == 1


async def test_after_a_fault_the_next_call_succeeds(
    make_request: Make, make_context: Make, state: FakeState
) -> None:
    state.inject("server_error")
    adapter = OpenAIAdapter()
    with pytest.raises(ProviderUnavailable):
        await adapter.run(make_request(), make_context())
    assert len(await adapter.run(make_request(), make_context())) == 1


async def test_quota_is_not_retryable(
    make_request: Make, make_context: Make, state: FakeState
) -> None:
    state.inject("quota")
    with pytest.raises(ProviderMisconfigured) as caught:
        await OpenAIAdapter().run(make_request(), make_context())
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.upstream_message is not None
    assert caught.value.upstream_message.startswith("You exceeded your current quota")


async def test_refusal_and_rejected_input_stop_the_fallback(
    make_request: Make, make_context: Make, state: FakeState
) -> None:
    state.inject("content_refused", "invalid_input")
    for expected in (ContentRefused, InputRejected):
        with pytest.raises(expected) as caught:
            await OpenAIAdapter().run(make_request(), make_context())
        assert caught.value.fallback is False
        assert caught.value.upstream_message


SECRET = "sk-proj-SECRETsecret0123456789abcdWXYZ"


async def test_a_wrong_key_never_shows_in_the_error(
    make_request: Make, make_context: Make, state: FakeState
) -> None:
    with pytest.raises(ProviderMisconfigured) as caught:
        await OpenAIAdapter().run(make_request(), make_context(api_key=SECRET))
    error = caught.value
    # The fake, like OpenAI, quotes the key it was sent (masked, with its last characters).
    assert state.requests[0].summary["error"] == "invalid_api_key"
    assert error.provider_code == "invalid_api_key"
    for text in (str(error), error.message, error.upstream_message or "", repr(error.args)):
        assert SECRET not in text
        assert "WXYZ" not in text
        assert _masked(SECRET) not in text
    assert error.upstream_message is not None
    assert "Incorrect API key provided: [redacted]" in error.upstream_message


async def test_a_wrong_organization_never_shows_in_the_error(
    make_request: Make, make_context: Make
) -> None:
    with pytest.raises(ProviderMisconfigured) as caught:
        await OpenAIAdapter().run(make_request(), make_context(organization="org-Secret42"))
    assert caught.value.provider_code == "mismatched_organization"
    assert "Secret42" not in str(caught.value)
    assert "Secret42" not in (caught.value.upstream_message or "")


@given(
    # What OpenAI's keys are made of; short strings could occur in the message by chance.
    key=st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=12, max_size=80),
    prefix=st.sampled_from(["", "sk-", "sk-proj-"]),
)
def test_redaction_hides_any_key_the_upstream_quotes(key: str, prefix: str) -> None:
    secret = prefix + key
    config = OpenAIConfig(enabled=True, api_key=secret)
    for message in (
        f"Incorrect API key provided: {_masked(secret)}. You can find your API key at …",
        f"Incorrect API key provided: {secret}.",
        f"The key {secret} was refused.",
    ):
        redacted = _redact(message, config)
        assert secret not in redacted
        if len(secret) > 8:
            assert _masked(secret) not in redacted


# Answers the fake never gives but OpenAI (or a proxy in front of it) may: mapped the same way.
ANSWERS: list[tuple[int, Any, dict[str, str], type[ProviderError], str | None, float | None]] = [
    (
        429,
        {"error": {"type": "insufficient_quota", "code": None}},
        {},
        ProviderMisconfigured,
        "insufficient_quota",
        None,
    ),
    (
        429,
        {"error": {"code": "rate_limit_exceeded"}},
        {"retry-after": "7"},
        RateLimited,
        "rate_limit_exceeded",
        7.0,
    ),
    (
        429,
        "Too Many Requests",
        {"retry-after-ms": "1500", "retry-after": "2"},
        RateLimited,
        "429",
        1.5,
    ),
    (
        403,
        {
            "error": {
                "message": "Your organization must be verified to use the model `gpt-image-1`.",
                "type": "invalid_request_error",
                "code": None,
            }
        },
        {},
        ProviderMisconfigured,
        "invalid_request_error",
        None,
    ),
    (
        404,
        {"error": {"code": "model_not_found"}},
        {},
        ProviderMisconfigured,
        "model_not_found",
        None,
    ),
    (
        400,
        {"error": {"code": "moderation_blocked", "type": "image_generation_user_error"}},
        {},
        ContentRefused,
        "moderation_blocked",
        None,
    ),
    (
        400,
        {"error": {"code": "unsupported_file_mimetype", "param": "image"}},
        {},
        InputRejected,
        "unsupported_file_mimetype",
        None,
    ),
    (400, "<html>bad request</html>", {}, InputRejected, "400", None),
    (413, {"error": {"message": "Request too large"}}, {}, InputRejected, "413", None),
    (
        500,
        {"error": {"type": "server_error", "code": None}},
        {},
        ProviderUnavailable,
        "server_error",
        None,
    ),
    (502, "<html>Bad Gateway</html>", {}, ProviderUnavailable, "502", None),
    (504, "<html>Gateway Timeout</html>", {}, ProviderTimeout, "504", None),
    (200, [1, 2], {}, BadResponse, None, None),
    (200, {"data": {"b64_json": "x"}}, {}, BadResponse, None, None),
    (200, {"created": 1}, {}, BadResponse, None, None),
    (200, {"data": [{"url": "https://example.com/x.png"}]}, {}, NoImage, None, None),
    (200, {"data": [{"b64_json": ""}]}, {}, NoImage, None, None),
    (200, {"data": [{"b64_json": 12}]}, {}, BadResponse, None, None),
    (200, {"data": [{"b64_json": "not base64!"}]}, {}, BadResponse, None, None),
    # URL-safe alphabet: OpenAI sends standard base64, so "-" and "_" are errors.
    (200, {"data": [{"b64_json": "iVBORw0KGgo-_w=="}]}, {}, BadResponse, None, None),
]


@pytest.mark.parametrize(("status", "body", "headers", "error", "code", "wait"), ANSWERS)
async def test_upstream_answer_maps_to_error(
    status: int,
    body: Any,
    headers: dict[str, str],
    error: type[ProviderError],
    code: str | None,
    wait: float | None,
    make_request: Make,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        context = _context(client)
        with pytest.raises(ProviderError) as caught:
            await OpenAIAdapter().run(make_request(), context)
    assert type(caught.value) is error
    assert caught.value.provider_code == code
    assert caught.value.retry_after == wait


async def test_standard_base64_images_are_returned_as_bytes(
    make_request: Make, person: Any
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        encoded = base64.b64encode(person.data).decode()
        return httpx.Response(200, json={"data": [{"b64_json": encoded}, {"b64_json": encoded}]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        outputs = await OpenAIAdapter().run(make_request(n=2), _context(client))
    assert [o.data for o in outputs] == [person.data, person.data]


def _context(client: httpx.AsyncClient) -> ProviderContext:
    async def record(task_id: str) -> None:
        raise AssertionError("a synchronous call records no task")

    return ProviderContext(
        http=client,
        config=OpenAIConfig(enabled=True, api_key="test-key", base_url="http://upstream/v1"),
        timeout=5.0,
        record_task=record,
    )
