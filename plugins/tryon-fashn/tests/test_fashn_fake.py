"""The fake FASHN API refuses what FASHN refuses, in FASHN's words, at the stage FASHN does."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tryon_fashn.fake import TEST_API_KEY, create_app
from tryon_fashn.fake_inputs import ENUMS, check_run

from tryon_core.testing import FakeState, serve_app_in_thread, synthetic_garment, synthetic_person

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
JPEG = synthetic_person(256, 320, "JPEG")
PNG = synthetic_garment(200, 200, "PNG")


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def body(**inputs: Any) -> dict[str, Any]:
    images = {
        "model_image": data_url(JPEG, "image/jpeg"),
        "garment_image": data_url(PNG, "image/png"),
    }
    return {"model_name": "tryon-v1.6", "inputs": {**images, **inputs}}


@pytest.fixture
def api() -> Iterator[tuple[httpx.Client, FakeState]]:
    app = create_app(running_polls=1)
    with serve_app_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http, app.state.fake


def finish(http: httpx.Client, prediction: str) -> dict[str, Any]:
    """Poll until the prediction ends; its status answer."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer: dict[str, Any] = http.get(f"/v1/status/{prediction}", headers=AUTH).json()
        if answer["status"] not in ("starting", "in_queue", "processing"):
            return answer
    raise AssertionError("the prediction did not end")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": TEST_API_KEY},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"bearer {TEST_API_KEY}"},
    ],
)
def test_a_missing_or_wrong_key_is_unauthorized(
    api: tuple[httpx.Client, FakeState], headers: dict[str, str]
) -> None:
    http, fake = api
    response = http.post("/v1/run", json=body(), headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": "UnauthorizedAccess",
        "message": "Unauthorized: Invalid token",
    }
    assert fake.tasks == {} and len(fake.requests) == 1  # counted, not run


@pytest.mark.parametrize(
    ("sent", "says"),
    [
        ({"model_name": "tryon-v1.6"}, "inputs"),
        ({"inputs": body()["inputs"]}, "model_name"),
        ({**body(), "model_name": "tryon-v2"}, "model_name"),
        ({**body(), "webhook_url": "https://x.test"}, "webhook_url"),  # a query parameter
        (body(category="dress"), "category"),
        (body(mode="fast"), "mode"),
        (body(garment_photo_type="flatlay"), "garment_photo_type"),
        (body(moderation_level="off"), "moderation_level"),
        (body(output_format="webp"), "output_format"),
        (body(num_samples=0), "num_samples"),
        (body(num_samples=5), "num_samples"),
        (body(num_samples=True), "num_samples"),
        (body(seed=-1), "seed"),
        (body(seed=2**32), "seed"),
        (body(seed="42"), "seed"),
        (body(return_base64="true"), "return_base64"),
        (body(segmentation_free=1), "segmentation_free"),
        (body(guidance_scale=2.0), "guidance_scale"),  # v1.5-era inputs are gone
        (body(model_image=None), "model_image"),
        ({"model_name": "tryon-v1.6", "inputs": {"model_image": "x"}}, "garment_image"),
    ],
)
def test_a_malformed_run_is_a_bad_request_naming_the_field(
    api: tuple[httpx.Client, FakeState], sent: dict[str, Any], says: str
) -> None:
    http, fake = api
    response = http.post("/v1/run", json=sent, headers=AUTH)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["error"] == "BadRequest" and says in answer["message"]
    assert fake.tasks == {}


def test_a_body_that_is_not_json_or_not_declared_json_is_a_bad_request(
    api: tuple[httpx.Client, FakeState],
) -> None:
    http, _ = api
    headers = {**AUTH, "Content-Type": "application/json"}
    assert http.post("/v1/run", content=b"{nope", headers=headers).status_code == 400
    plain = http.post("/v1/run", content=b"{}", headers={**AUTH, "Content-Type": "text/plain"})
    assert plain.status_code == 400 and plain.json()["error"] == "BadRequest"


@pytest.mark.parametrize(
    ("image", "says"),
    [
        (base64.b64encode(PNG).decode(), "data:image/<format>;base64"),  # no prefix
        (data_url(PNG, "image/jpeg"), "the data is png"),  # the prefix lies
        (data_url(PNG, "image/gif"), "data:image/<format>;base64"),
        ("data:image/png;base64,not base64!", "not valid"),
        (data_url(b"GIF89a not an image", "image/png"), "not a readable image"),
        ("https://cdn.example.test/garment.png", "downloads no URLs"),
        ("saved:my-model", "no saved model"),
    ],
)
def test_an_image_fashn_cannot_load_fails_the_prediction_not_the_run(
    api: tuple[httpx.Client, FakeState], image: str, says: str
) -> None:
    http, _ = api
    run = http.post("/v1/run", json=body(garment_image=image), headers=AUTH)
    assert run.status_code == 200 and run.json()["error"] is None  # accepted: an id is issued
    ended = finish(http, run.json()["id"])
    assert ended["status"] == "failed" and ended["output"] is None
    assert ended["error"]["name"] == "ImageLoadError" and says in ended["error"]["message"]


def test_a_prediction_s_life_and_its_answers(api: tuple[httpx.Client, FakeState]) -> None:
    http, _ = api
    run = http.post("/v1/run", json=body(num_samples=3, return_base64=True), headers=AUTH)
    prediction = run.json()["id"]
    assert run.json() == {"id": prediction, "error": None}
    first = http.get(f"/v1/status/{prediction}", headers=AUTH)
    assert first.json() == {"id": prediction, "status": "in_queue", "output": None, "error": None}
    assert "x-fashn-credits-used" not in first.headers
    done = http.get(f"/v1/status/{prediction}", headers=AUTH)
    answer = done.json()
    assert answer["status"] == "completed" and answer["error"] is None
    assert [o[:22] for o in answer["output"]] == ["data:image/png;base64,"] * 3
    assert done.headers["x-fashn-credits-used"] == "3"


def test_unknown_predictions_and_paths_are_not_found(api: tuple[httpx.Client, FakeState]) -> None:
    http, _ = api
    gone = http.get("/v1/status/nope-u1", headers=AUTH)
    assert gone.status_code == 404 and gone.json()["error"] == "NotFound"
    for method, path in (("GET", "/v1/predictions"), ("GET", "/v1/run"), ("POST", "/v2/run")):
        answer = http.request(method, path, headers=AUTH)
        assert answer.status_code == 404 and answer.json()["error"] == "NotFound", path


VALID_INPUTS = st.fixed_dictionaries(
    {},
    optional={
        **{name: st.sampled_from(values) for name, values in ENUMS.items()},
        "num_samples": st.integers(1, 4),
        "seed": st.integers(0, 2**32 - 1),
        "return_base64": st.booleans(),
        "segmentation_free": st.booleans(),
    },
)


@settings(max_examples=200)
@given(inputs=VALID_INPUTS, model=st.sampled_from(["tryon-v1.6", "tryon-v1.5"]))
def test_every_documented_combination_is_accepted(inputs: dict[str, Any], model: str) -> None:
    checked = check_run({"model_name": model, "inputs": {**body()["inputs"], **inputs}})
    assert not isinstance(checked, str), checked
    assert checked[0] == model


@settings(max_examples=200)
@given(
    inputs=VALID_INPUTS,
    field=st.sampled_from([*ENUMS, "num_samples", "seed", "return_base64", "segmentation_free"]),
    junk=st.one_of(st.text(max_size=5), st.integers(-3, -1), st.none(), st.floats()),
)
def test_one_bad_value_is_enough_to_refuse(inputs: dict[str, Any], field: str, junk: Any) -> None:
    checked = check_run(body(**{**inputs, field: junk}))
    assert isinstance(checked, str) and field in checked
