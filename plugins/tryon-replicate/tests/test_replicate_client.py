"""The official ``replicate`` client, pointed at the fake on 127.0.0.1, creates, reads, waits
for and cancels predictions: the fake speaks Replicate's protocol as that client expects it,
errors included."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import replicate
from replicate.exceptions import ModelError, ReplicateError
from tryon_replicate.examples import IDM_VTON
from tryon_replicate.fake import TEST_TOKEN, create_app

from tryon_core.testing import Fault, serve_app_in_thread, synthetic_garment, synthetic_person

VERSION = IDM_VTON["version"]


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


INPUT = {
    "human_img": data_url(synthetic_person(384, 512), "image/jpeg"),
    "garm_img": data_url(synthetic_garment(300, 300), "image/png"),
    "category": "upper_body",
}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Any]]:
    app = create_app(run_seconds=0.05)
    with serve_app_in_thread(app) as url:
        yield url, app.state.fake


@pytest.fixture
def client(served: tuple[str, Any]) -> Iterator[replicate.Client]:
    served[1].reset()
    official = replicate.Client(api_token=TEST_TOKEN, base_url=served[0])
    official.poll_interval = 0.02
    yield official
    official._client.close()  # the client keeps an httpx.Client open otherwise


def test_create_get_and_wait_by_version(client: replicate.Client, served: tuple[str, Any]) -> None:
    prediction = client.predictions.create(version=VERSION, input=INPUT)
    assert prediction.status == "starting" and prediction.version == VERSION
    assert prediction.model == "cuuupid/idm-vton"
    assert prediction.urls is not None and prediction.urls["get"].endswith(prediction.id)
    prediction.wait()
    assert prediction.status == "succeeded" and prediction.error is None
    assert isinstance(prediction.output, str) and prediction.output.startswith(served[0])
    again = client.predictions.get(prediction.id)
    assert again.output == prediction.output and again.metrics is not None
    [create] = [r for r in served[1].requests if r.summary.get("call") == "create"]
    assert create.headers["authorization"] == f"Bearer {TEST_TOKEN}"
    assert create.summary["unknown_inputs"] == [] and create.summary["errors"] == []


def test_run_by_name_with_sync_mode_returns_file_outputs(client: replicate.Client) -> None:
    output = client.run(
        "tryon-test/outfit",
        input={
            "person_image": INPUT["human_img"],
            "garment_image": INPUT["garm_img"],
            "num_outputs": 2,
        },
        wait=5,
    )
    assert isinstance(output, list) and len(output) == 2
    assert all(str(item).startswith("data:image/png;base64,") for item in output)
    assert output[0].read().startswith(b"\x89PNG")


def test_run_by_version_polls_and_returns_the_result_link(
    client: replicate.Client, served: tuple[str, Any]
) -> None:
    output = client.run(f"cuuupid/idm-vton:{VERSION}", input=INPUT, wait=False)
    # the client wraps https: and data: links in FileOutput; the fake's are http://127.0.0.1
    assert isinstance(output, str) and output.startswith(f"{served[0]}/_fake/files/")
    calls = [r.summary["call"] for r in served[1].requests]
    assert calls[0] == "create" and "version" in calls and calls[-1] == "get"
    assert client._client.get(output).content.startswith(b"\x89PNG")


def test_cancel(client: replicate.Client, served: tuple[str, Any]) -> None:
    served[1].inject(Fault(kind="slow_task", seconds=30))
    prediction = client.predictions.create(version=VERSION, input=INPUT)
    canceled = client.predictions.cancel(prediction.id)
    assert canceled.status == "canceled" and canceled.id == prediction.id
    prediction.reload()
    assert prediction.status == "canceled"


def test_a_failed_prediction_is_a_model_error(
    client: replicate.Client, served: tuple[str, Any]
) -> None:
    served[1].inject(Fault(kind="task_failed", code="Killed"))
    with pytest.raises(ModelError) as raised:
        client.run(f"cuuupid/idm-vton:{VERSION}", input=INPUT, wait=False)
    assert raised.value.prediction.error == "Killed"


@pytest.mark.parametrize(
    ("call", "status", "title"),
    [
        ("token", 401, "Unauthenticated"),
        ("enum", 422, "Input validation failed"),
        ("version", 422, "Invalid version or not permitted"),
        ("by name", 404, "Not found"),
        ("quota", 402, "Insufficient credit"),
    ],
)
def test_errors_arrive_as_replicate_errors(
    call: str, status: int, title: str, client: replicate.Client, served: tuple[str, Any]
) -> None:
    with pytest.raises(ReplicateError) as raised:
        if call == "token":
            wrong = replicate.Client(api_token="r8_wrong", base_url=served[0])
            try:
                wrong.predictions.create(version=VERSION, input=INPUT)
            finally:
                wrong._client.close()
        elif call == "enum":
            client.predictions.create(version=VERSION, input={**INPUT, "category": "hats"})
        elif call == "version":
            client.predictions.create(version="0" * 64, input=INPUT)
        elif call == "by name":
            client.models.predictions.create(model="cuuupid/idm-vton", input=INPUT)
        else:
            served[1].inject(Fault(kind="quota"))
            client.predictions.create(version=VERSION, input=INPUT)
    error = raised.value
    assert (error.status, error.title) == (status, title)
    assert error.detail
    if call == "enum":
        assert "input.category" in error.detail
