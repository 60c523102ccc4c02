"""fal's error answers, one by one, and the key scrubbed from whatever fal says."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tryon_fal.errors import answer, error_for, failed_request, scrub

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    InputRejected,
    ProviderError,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)

SLUG = "fal/flux-kontext-pro"
KEY = "3f2a9c1e-key-id:7d41b0aa99secret"
FLAGGED = [{"loc": ["body", "prompt"], "msg": "flagged", "type": "content_policy_violation"}]
INVALID = [{"loc": ["body", "image_urls", 0], "msg": "too small", "type": "image_too_small"}]


def response(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = httpx.Request("GET", "https://queue.fal.run/fal-ai/flux-pro/requests/x")
    return httpx.Response(status, content=content, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "body", "headers", "stage", "cls", "code"),
    [
        (401, {"detail": "Unauthorized"}, {}, "submit", ProviderMisconfigured, "401"),
        (
            403,
            {"detail": "User is locked. Reason: Exhausted balance."},
            {},
            "submit",
            ProviderMisconfigured,
            "403",
        ),
        (402, {"detail": "Payment required"}, {}, "submit", ProviderMisconfigured, "402"),
        (
            400,
            {"detail": "User is locked. Reason: Exhausted balance."},
            {},
            "submit",
            ProviderMisconfigured,
            "400",
        ),
        (429, {"detail": "Too many requests"}, {"Retry-After": "12"}, "status", RateLimited, "429"),
        (422, {"detail": FLAGGED}, {}, "result", ContentRefused, "content_policy_violation"),
        (
            422,
            {"detail": [*INVALID, *FLAGGED]},
            {},
            "result",
            ContentRefused,
            "content_policy_violation",
        ),
        (422, {"detail": INVALID}, {}, "result", InputRejected, "image_too_small"),
        (400, {"detail": INVALID}, {}, "submit", InputRejected, "image_too_small"),
        (413, b"too large", {}, "submit", InputRejected, "413"),
        (
            504,
            {"detail": "Request timed out", "error_type": "request_timeout"},
            {"X-Fal-Error-Type": "request_timeout"},
            "result",
            ProviderTimeout,
            "request_timeout",
        ),
        (
            504,
            {"detail": "Runner did not start"},
            {"X-Fal-Error-Type": "startup_timeout"},
            "result",
            ProviderTimeout,
            "startup_timeout",
        ),
        (
            503,
            {"detail": "No runner", "error_type": "runner_scheduling_failure"},
            {},
            "submit",
            ProviderUnavailable,
            "runner_scheduling_failure",
        ),
        (
            503,
            {"detail": "Runner connection timed out", "error_type": "runner_connection_timeout"},
            {},
            "result",
            ProviderUnavailable,
            "runner_connection_timeout",
        ),
        (500, {"detail": "Internal Server Error"}, {}, "status", ProviderUnavailable, "500"),
        (502, b"<html>nginx</html>", {}, "status", ProviderUnavailable, "502"),
        (404, {"detail": "Application not found"}, {}, "submit", ProviderMisconfigured, "404"),
        (404, {"detail": "Request not found"}, {}, "status", TaskFailed, "404"),
        (409, {"detail": "Conflict"}, {}, "status", ProviderUnavailable, "409"),
    ],
)
def test_each_error_answer_means_one_class(
    status: int,
    body: Any,
    headers: dict[str, str],
    stage: Any,
    cls: type[ProviderError],
    code: str,
) -> None:
    error = error_for(response(status, body, headers), SLUG, secret=KEY, stage=stage)
    assert type(error) is cls
    assert error.provider_code == code
    assert error.message.startswith(SLUG)
    assert error.retry_after == (12.0 if status == 429 else None)
    if isinstance(body, dict):
        assert error.upstream_message  # fal's own words are kept for the attempt record
        assert error.upstream_message not in error.message  # …but never shown to the client


@pytest.mark.parametrize(
    ("error_type", "cls", "code"),
    [
        ("request_timeout", ProviderTimeout, "request_timeout"),
        ("startup_timeout", ProviderTimeout, "startup_timeout"),
        ("runner_disconnected", ProviderUnavailable, "runner_disconnected"),
        ("runner_scheduling_failure", ProviderUnavailable, "runner_scheduling_failure"),
        (None, TaskFailed, "error"),
        ("", TaskFailed, "error"),
        ("something_new", TaskFailed, "something_new"),
    ],
)
def test_a_completed_request_with_an_error_failed(
    error_type: str | None, cls: type[ProviderError], code: str
) -> None:
    error = failed_request(SLUG, f"boom with {KEY}", error_type, secret=KEY)
    assert type(error) is cls and error.provider_code == code
    assert error.upstream_message == "boom with ***"


def test_only_a_json_object_is_an_answer() -> None:
    assert answer(response(200, {"a": 1}), SLUG, secret=KEY, stage="status") == {"a": 1}
    assert answer(response(202, {"a": 1}), SLUG, secret=KEY, stage="status") == {"a": 1}
    for body in (b"<html></html>", [1, 2], "text"):
        with pytest.raises(BadResponse):
            answer(response(200, body), SLUG, secret=KEY, stage="status")
    with pytest.raises(RateLimited):
        answer(response(429, {"detail": "slow down"}), SLUG, secret=KEY, stage="submit")


@given(
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    which=st.sampled_from([KEY, KEY.split(":")[0], KEY.split(":")[1]]),
)
def test_the_key_and_its_halves_are_scrubbed_from_fals_words(
    before: str, after: str, which: str
) -> None:
    text = scrub(before + which + after, KEY)
    assert KEY not in text and KEY.split(":")[1] not in text and KEY.split(":")[0] not in text
    assert len(text) <= 500


def test_an_answer_echoing_the_key_does_not_leak_it() -> None:
    echoed = {"detail": f"Bad header: Authorization: Key {KEY}"}
    error = error_for(response(401, echoed), SLUG, secret=KEY, stage="submit")
    shown = f"{error} {error.upstream_message} {error.provider_code}"
    assert "Key ***" in shown and KEY.split(":")[1] not in shown
