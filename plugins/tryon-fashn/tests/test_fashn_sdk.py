"""FASHN's official Python SDK (``fashn`` on PyPI) against the fake: the fake speaks FASHN.

The SDK builds the requests (paths, auth header, ``webhook_url`` in the query) and parses the
answers with its own types; whatever it accepts or raises here, it would against FASHN.
"""

from __future__ import annotations

import base64
import typing
from collections.abc import Iterator
from typing import Any

import fashn
import pytest
from fashn.types.prediction_status_response import Error
from tryon_fashn.fake import RUNTIME_NAMES, TEST_API_KEY, create_app

from tryon_core.testing import (
    FakeState,
    Fault,
    serve_app_in_thread,
    synthetic_garment,
    synthetic_person,
)


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


INPUTS = {
    "model_image": data_url(synthetic_person(384, 512), "image/jpeg"),
    "garment_image": data_url(synthetic_garment(320, 320), "image/png"),
}


@pytest.fixture
def served() -> Iterator[tuple[str, FakeState]]:
    app = create_app()
    with serve_app_in_thread(app) as url:
        yield url, app.state.fake


def client(url: str, key: str = TEST_API_KEY) -> fashn.Fashn:
    return fashn.Fashn(api_key=key, base_url=url, max_retries=0)


def test_subscribe_runs_a_try_on_to_the_end(served: tuple[str, FakeState]) -> None:
    url, fake = served
    updates: list[str] = []
    result = client(url).predictions.subscribe(
        model_name="tryon-v1.6",
        inputs={**INPUTS, "category": "tops", "num_samples": 2, "mode": "quality"},  # type: ignore[typeddict-item]
        poll_interval=10,
        on_queue_update=lambda status: updates.append(status.status),
    )
    assert result.status == "completed" and result.error is None
    assert result.credits_used == 2  # from x-fashn-credits-used
    assert result.output is not None and len(result.output) == 2
    assert all(item.startswith(f"{url}/_fake/files/") for item in result.output)  # CDN links
    assert updates == ["in_queue", "processing", "completed"]
    run = fake.requests[0]
    assert (run.method, run.path) == ("POST", "/v1/run")
    assert run.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert run.summary["inputs"] == {"category": "tops", "num_samples": 2, "mode": "quality"}


def test_return_base64_gives_data_uris(served: tuple[str, FakeState]) -> None:
    url, _ = served
    result = client(url).predictions.subscribe(
        model_name="tryon-v1.6",
        inputs={**INPUTS, "return_base64": True, "output_format": "jpeg"},  # type: ignore[typeddict-item]
        poll_interval=10,
    )
    assert result.output is not None
    assert result.output[0].startswith("data:image/jpeg;base64,")


def test_run_puts_webhook_url_in_the_query_and_status_reads_the_prediction(
    served: tuple[str, FakeState],
) -> None:
    url, fake = served
    api = client(url)
    started = api.predictions.run(
        model_name="tryon-v1.6",
        inputs=INPUTS,  # type: ignore[arg-type]
        webhook_url="https://example.test/hook",
    )
    assert started.error is None and started.id.endswith("-u1")
    assert fake.requests[0].summary["webhook_url"] == "https://example.test/hook"
    status = api.predictions.status(started.id)
    assert status.id == started.id and status.status == "in_queue" and status.output is None


def test_a_failed_prediction_carries_fashn_s_error(served: tuple[str, FakeState]) -> None:
    url, fake = served
    fake.inject(Fault(kind="content_refused"))
    result = client(url).predictions.subscribe(
        model_name="tryon-v1.6",
        inputs=INPUTS,  # type: ignore[arg-type]
        poll_interval=10,
    )
    assert result.status == "failed" and result.output is None
    assert result.error is not None and result.error.name == "ContentModerationError"
    assert result.credits_used == 0


def test_an_image_without_its_data_prefix_fails_with_image_load_error(
    served: tuple[str, FakeState],
) -> None:
    url, _ = served
    bare = INPUTS["garment_image"].split(",", 1)[1]
    result = client(url).predictions.subscribe(
        model_name="tryon-v1.6",
        inputs={**INPUTS, "garment_image": bare},  # type: ignore[typeddict-item]
        poll_interval=10,
    )
    assert result.status == "failed"
    assert result.error is not None and result.error.name == "ImageLoadError"


@pytest.mark.parametrize(
    ("fault", "raised", "name"),
    [
        (Fault(kind="auth"), fashn.AuthenticationError, "UnauthorizedAccess"),
        (Fault(kind="rate_limit"), fashn.RateLimitError, "RateLimitExceeded"),
        (Fault(kind="quota"), fashn.RateLimitError, "OutOfCredits"),
        (Fault(kind="invalid_input"), fashn.BadRequestError, "BadRequest"),
        (Fault(kind="server_error"), fashn.InternalServerError, "InternalServerError"),
    ],
)
def test_api_level_errors_are_the_sdk_s_exceptions(
    served: tuple[str, FakeState], fault: Fault, raised: type[Exception], name: str
) -> None:
    url, fake = served
    fake.inject(fault)
    with pytest.raises(raised) as caught:
        client(url).predictions.run(model_name="tryon-v1.6", inputs=INPUTS)  # type: ignore[arg-type]
    body: Any = caught.value.body  # type: ignore[attr-defined]
    assert body["error"] == name and body["message"]


def test_a_wrong_key_and_an_unknown_prediction(served: tuple[str, FakeState]) -> None:
    url, _ = served
    with pytest.raises(fashn.AuthenticationError):
        client(url, key="not-the-key").predictions.run(model_name="tryon-v1.6", inputs=INPUTS)  # type: ignore[arg-type]
    with pytest.raises(fashn.NotFoundError):
        client(url).predictions.status("no-such-prediction")


def test_a_refused_body_is_a_bad_request(served: tuple[str, FakeState]) -> None:
    url, fake = served
    with pytest.raises(fashn.BadRequestError):
        client(url).predictions.run(
            model_name="tryon-v1.6",
            inputs={**INPUTS, "num_samples": 5},  # type: ignore[typeddict-item]
        )
    assert fake.tasks == {}


async def test_the_async_client_too(served: tuple[str, FakeState]) -> None:
    url, _ = served
    async with fashn.AsyncFashn(api_key=TEST_API_KEY, base_url=url, max_retries=0) as api:
        result = await api.predictions.subscribe(
            model_name="tryon-v1.6",
            inputs=INPUTS,  # type: ignore[arg-type]
            poll_interval=10,
        )
    assert result.status == "completed" and result.output and len(result.output) == 1


def test_the_fake_renders_every_runtime_error_the_sdk_knows() -> None:
    known = set(typing.get_args(Error.model_fields["name"].annotation))
    assert known and known <= set(RUNTIME_NAMES)
