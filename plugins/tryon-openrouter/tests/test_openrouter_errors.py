"""Every way OpenRouter says no, and the core error it becomes: which fall back, which stop.

The fake renders each fault as OpenRouter does (its ``code`` picks a variant); shapes the fake
has no fault for are given to ``status_failure`` as OpenRouter's error objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tryon_openrouter.errors import status_failure

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    InputRejected,
    NoImage,
    ProviderError,
    ProviderMisconfigured,
    ProviderRequest,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)
from tryon_core.testing import Fault

MakeAttempt = Callable[..., Any]
FLUX = "openrouter/flux-2-pro"


async def failure(attempt: MakeAttempt, request: ProviderRequest, **keys: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await attempt(**keys).run(request)
    return caught.value


FAULTS = [
    # fault, error class, provider_code, retry_after
    (Fault(kind="rate_limit", retry_after=7), RateLimited, "rate_limit_exceeded", 7.0),
    (Fault(kind="rate_limit"), RateLimited, "rate_limit_exceeded", None),
    (Fault(kind="rate_limit", code="upstream"), RateLimited, "rate_limit_exceeded", None),
    (Fault(kind="quota"), ProviderMisconfigured, "openrouter_credits", None),
    (Fault(kind="quota", code="key_limit"), ProviderMisconfigured, "openrouter_key_limit", None),
    (
        Fault(kind="quota", code="in_flight_budget", retry_after=3),
        RateLimited,
        "openrouter_in_flight_budget",
        3.0,
    ),
    (Fault(kind="auth"), ProviderMisconfigured, "401", None),
    (Fault(kind="server_error"), ProviderUnavailable, "server", None),
    (Fault(kind="server_error", status=502), ProviderUnavailable, "provider_unavailable", None),
    (
        Fault(kind="server_error", status=503, retry_after=4),
        ProviderUnavailable,
        "provider_overloaded",
        4.0,
    ),
    (Fault(kind="server_error", status=529), ProviderUnavailable, "provider_overloaded", None),
    (Fault(kind="content_refused"), ContentRefused, "moderation", None),
    (
        Fault(kind="content_refused", code="policy"),
        ContentRefused,
        "content_policy_violation",
        None,
    ),
    (Fault(kind="content_refused", code="content_filter"), ContentRefused, "IMAGE_SAFETY", None),
    (Fault(kind="invalid_input"), InputRejected, "invalid_image", None),
    (Fault(kind="invalid_input", code="image_too_large"), InputRejected, "image_too_large", None),
    (Fault(kind="task_failed"), TaskFailed, "provider_unavailable", None),
    (Fault(kind="no_image"), NoImage, "STOP", None),
    (Fault(kind="bad_image"), BadResponse, None, None),
    (Fault(kind="malformed"), BadResponse, "200", None),
]


@pytest.mark.parametrize(
    ("fault", "error", "code", "wait"),
    FAULTS,
    ids=[f"{f.kind}-{f.code or f.status}" for f, *_ in FAULTS],
)
async def test_each_fault_becomes_its_error(
    attempt: MakeAttempt,
    fake: Any,
    tryon: Callable[..., ProviderRequest],
    fault: Fault,
    error: type[ProviderError],
    code: Any,
    wait: float | None,
) -> None:
    fake.state.inject(fault)
    raised = await failure(attempt, tryon())
    assert type(raised) is error, raised
    assert raised.provider_code == code
    assert raised.retry_after == wait
    # refusals stop the request; everything else lets the next model try
    assert raised.fallback is (error not in (ContentRefused, InputRejected))


async def test_a_moderation_refusal_keeps_the_reasons_for_the_logs(
    attempt: MakeAttempt, fake: Any, tryon: Callable[..., ProviderRequest]
) -> None:
    fake.state.inject(Fault(kind="content_refused"))
    raised = await failure(attempt, tryon())
    assert "reasons: sexual/minors" in (raised.upstream_message or "")
    assert "Google AI Studio" in (raised.upstream_message or "")


async def test_a_wrong_key_is_the_gateway_s_problem(
    attempt: MakeAttempt, tryon: Callable[..., ProviderRequest]
) -> None:
    raised = await failure(attempt, tryon(), api_key="sk-or-v1-not-the-key")
    assert isinstance(raised, ProviderMisconfigured)
    assert raised.upstream_message == "User not found."


async def test_an_unknown_upstream_slug_is_the_operator_s_problem(
    attempt: MakeAttempt, tryon: Callable[..., ProviderRequest]
) -> None:
    models = {"openrouter/nope": {"upstream": "google/no-such-model", "credits": 1}}
    raised = await failure(attempt, tryon("openrouter/nope"), models=models)
    assert isinstance(raised, ProviderMisconfigured)
    assert "not a valid model ID" in (raised.upstream_message or "")


async def test_asking_an_image_only_model_for_text_is_the_operator_s_problem(
    attempt: MakeAttempt, tryon: Callable[..., ProviderRequest]
) -> None:
    flux = {"upstream": "black-forest-labs/flux.2-pro", "credits": 4}  # modalities left default
    raised = await failure(attempt, tryon("openrouter/flux"), models={"openrouter/flux": flux})
    assert isinstance(raised, ProviderMisconfigured) and raised.provider_code == "404"
    assert "output modalities: image, text" in (raised.upstream_message or "")


async def test_an_option_the_model_refuses_stops_the_request(
    attempt: MakeAttempt, tryon: Callable[..., ProviderRequest]
) -> None:
    """gemini-2.5-flash-image makes 1K images only: a 4K request is the client's to change."""
    from tryon_openrouter.options import ImageConfigOptions

    gemini = {
        "upstream": "google/gemini-2.5-flash-image",
        "credits": 5,
        "image_config": ["aspect_ratio", "image_size"],
    }
    raised = await failure(
        attempt,
        tryon("openrouter/g", options=ImageConfigOptions(image_size="4K")),
        models={"openrouter/g": gemini},
    )
    assert isinstance(raised, InputRejected) and not raised.fallback


def error(code: int, message: str = "", **metadata: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **({"metadata": metadata} if metadata else {})}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (408, error(408, "Request timed out"), ProviderTimeout),
        (524, error(524, "Provider timed out"), ProviderTimeout),
        (502, error(502, "x", error_type="timeout"), ProviderTimeout),
        (413, error(413, "Payload too large", error_type="payload_too_large"), InputRejected),
        (400, error(400, "bad", error_type="refusal"), ContentRefused),
        (403, error(403, "Request blocked", patterns=["ignore all"]), ProviderMisconfigured),
        (
            400,
            {**error(400, "Model deprecated"), "availability": {"code": "model_deprecated"}},
            ProviderMisconfigured,
        ),
        (404, error(404, "No endpoints found matching your data policy"), ProviderMisconfigured),
        (500, {}, ProviderUnavailable),  # an HTML page from a proxy: nothing to read
        (429, error(429, "Rate limit exceeded"), RateLimited),
    ],
)
def test_other_statuses_and_error_types(
    status: int, body: dict[str, Any], expected: type[ProviderError]
) -> None:
    assert type(status_failure(status, body, "openrouter/x")) is expected


async def test_an_error_inside_a_200_is_read_like_its_status(
    tryon: Callable[..., ProviderRequest], answered: Callable[..., Any]
) -> None:
    answers = [
        {"error": {"code": 429, "message": "Rate limit exceeded"}},
        {"error": {"code": 402, "message": "Insufficient credits"}},
        {
            "id": "gen-2",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "error",
                    "message": {"role": "assistant", "content": ""},
                    "error": {
                        "code": 400,
                        "message": "Output blocked",
                        "metadata": {"error_type": "content_policy_violation"},
                    },
                }
            ],
        },
        {"id": "gen-3", "choices": [{"index": 0, "finish_reason": "error", "message": {}}]},
        {
            "id": "gen-4",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"refusal": "No."}}],
        },
        {"id": "gen-5", "choices": []},
    ]
    expected = [
        RateLimited,
        ProviderMisconfigured,
        ContentRefused,
        TaskFailed,
        ContentRefused,
        BadResponse,
    ]
    for answer, kind in zip(answers, expected, strict=True):
        with pytest.raises(kind):
            await answered(answer, tryon())


def test_a_key_echoed_by_the_upstream_is_cut_out() -> None:
    raised = status_failure(401, error(401, "Invalid key sk-or-v1-0123456789abcdef"), "x/y")
    assert "sk-or-v1-0123" not in (raised.upstream_message or "")
    assert "[redacted]" in (raised.upstream_message or "")


async def test_the_adapter_makes_one_call_per_attempt(
    attempt: MakeAttempt, fake: Any, tryon: Callable[..., ProviderRequest]
) -> None:
    """One call per attempt: the adapter retries nothing itself (the core falls back)."""
    fake.state.inject(Fault(kind="server_error", status=502))
    await failure(attempt, tryon(FLUX))
    assert len(fake.state.requests) == 1


ERROR_TYPES = st.sampled_from(
    [
        None,
        "rate_limit_exceeded",
        "content_policy_violation",
        "refusal",
        "invalid_image",
        "provider_unavailable",
        "provider_overloaded",
        "server",
        "timeout",
        "authentication",
        "payment_required",
        "unmapped",
    ]
)


@given(
    status=st.integers(400, 599),
    kind=ERROR_TYPES,
    message=st.text(max_size=40),
    wait=st.one_of(st.none(), st.floats(1, 60)),
)
def test_every_error_is_classified_and_refusals_never_fall_back(
    status: int, kind: str | None, message: str, wait: float | None
) -> None:
    body = error(status, message, **({"error_type": kind} if kind else {}))
    raised = status_failure(status, body, "openrouter/x", wait)
    assert isinstance(raised, ProviderError)
    refused = kind in ("content_policy_violation", "refusal")
    assert isinstance(raised, ContentRefused) is refused
    if status >= 500 and not refused:
        assert type(raised) in (ProviderUnavailable, ProviderTimeout)
    if status == 429 and not refused:
        assert isinstance(raised, RateLimited) and raised.retry_after == wait
    assert message.strip() == "" or " ".join(message.split()) in (raised.upstream_message or "")
