"""The fake itself refuses what Replicate refuses, in Replicate's shapes, and walks a
prediction through Replicate's statuses: the adapter's tests can only trust it if it does."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest
from tryon_replicate.examples import IDM_VTON
from tryon_replicate.fake import TEST_TOKEN

from tryon_core.testing import FAULT_KINDS, synthetic_garment, synthetic_person

VERSION = IDM_VTON["version"]
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


INPUT = {
    "human_img": data_url(synthetic_person(200, 260), "image/jpeg"),
    "garm_img": data_url(synthetic_garment(160, 160), "image/png"),
}


@pytest.fixture
def api(fake: Any) -> Any:
    with httpx.Client(base_url=fake.url, headers=AUTH, timeout=10) as client:
        yield client


def problem(response: httpx.Response, status: int, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["status"], body["title"]) == (status, title)
    return body


def test_every_fault_kind_is_offered(api: httpx.Client) -> None:
    assert set(api.get("/_fake/faults").json()["supported"]) == set(FAULT_KINDS)


@pytest.mark.parametrize("header", [None, "Bearer r8_wrong", f"Token {TEST_TOKEN}", TEST_TOKEN])
def test_the_token_is_checked_on_every_call(header: str | None, fake: Any) -> None:
    headers = {} if header is None else {"Authorization": header}
    with httpx.Client(base_url=fake.url, headers=headers) as client:
        for response in (
            client.post("/v1/predictions", json={"version": VERSION, "input": INPUT}),
            client.get("/v1/predictions/abc"),
            client.post("/v1/predictions/abc/cancel"),
        ):
            problem(response, 401, "Unauthenticated")
    assert fake.calls("create")[0].summary["refused"] == 401  # recorded, refused ones too


@pytest.mark.parametrize(
    ("body", "status", "title", "field"),
    [
        ({"version": VERSION}, 422, "Invalid request", "(root)"),
        ({"input": INPUT}, 422, "Invalid request", "(root)"),
        ({"version": VERSION, "input": INPUT, "model": "x"}, 422, "Invalid request", "(root)"),
        ({"version": VERSION, "input": "text"}, 422, "Input validation failed", "input"),
        ({"version": "0" * 64, "input": INPUT}, 422, "Invalid version or not permitted", None),
        (
            {"version": VERSION, "input": {"garm_img": INPUT["garm_img"]}},
            422,
            "Input validation failed",
            "input",
        ),
        (
            {"version": VERSION, "input": {**INPUT, "category": "hats"}},
            422,
            "Input validation failed",
            "input.category",
        ),
        (
            {"version": VERSION, "input": {**INPUT, "steps": 41}},
            422,
            "Input validation failed",
            "input.steps",
        ),
        (
            {"version": VERSION, "input": {**INPUT, "steps": "30"}},
            422,
            "Input validation failed",
            "input.steps",
        ),
        (
            {"version": VERSION, "input": {**INPUT, "crop": 1}},
            422,
            "Input validation failed",
            "input.crop",
        ),
        (
            {"version": VERSION, "input": {**INPUT, "human_img": "person.jpg"}},
            422,
            "Input validation failed",
            "input.human_img",
        ),
        (
            {"version": VERSION, "input": {**INPUT, "human_img": "data:image/jpeg;base64,@@"}},
            422,
            "Input validation failed",
            "input.human_img",
        ),
    ],
)
def test_a_create_replicate_would_refuse_is_refused(
    body: dict[str, Any], status: int, title: str, field: str | None, api: httpx.Client, fake: Any
) -> None:
    answer = problem(api.post("/v1/predictions", json=body), status, title)
    if field is not None:
        assert answer["invalid_fields"][0]["field"] == field
        assert answer["detail"].startswith(f"- {field}: ")
    assert fake.state.tasks == {}


def test_a_bad_prefer_header_and_a_bad_route_are_refused(api: httpx.Client) -> None:
    body = {"version": VERSION, "input": INPUT}
    problem(
        api.post("/v1/predictions", json=body, headers={"Prefer": "wait=61"}),
        400,
        "Invalid Prefer header",
    )
    problem(
        api.post("/v1/models/cuuupid/idm-vton/predictions", json={"input": INPUT}), 404, "Not found"
    )
    problem(
        api.post("/v1/deployments/acme/nope/predictions", json={"input": INPUT}), 404, "Not found"
    )
    problem(api.get("/v1/predictions/nosuchprediction"), 404, "Not found")


def test_inputs_the_schema_does_not_name_are_accepted_and_noted(
    api: httpx.Client, fake: Any
) -> None:
    response = api.post(
        "/v1/predictions", json={"version": VERSION, "input": {**INPUT, "extra": 1}}
    )
    assert response.status_code == 201
    assert fake.calls("create")[0].summary["unknown_inputs"] == ["extra"]


def test_a_prediction_goes_through_replicates_statuses(api: httpx.Client) -> None:
    created = api.post("/v1/predictions", json={"version": VERSION, "input": INPUT})
    assert created.status_code == 201
    prediction = created.json()
    assert prediction["status"] == "starting" and prediction["output"] is None
    assert prediction["urls"]["get"].endswith(f"/v1/predictions/{prediction['id']}")
    seen = []
    for _ in range(200):
        current = api.get(f"/v1/predictions/{prediction['id']}").json()
        seen.append(current["status"])
        if current["status"] == "succeeded":
            break
        time.sleep(0.01)
    assert seen[0] == "starting" and "processing" in seen and seen[-1] == "succeeded"
    assert isinstance(current["output"], str) and current["metrics"]["predict_time"] >= 0
    image = api.get(current["output"])
    assert image.content.startswith(b"\x89PNG")
    ended = api.post(f"/v1/predictions/{prediction['id']}/cancel").json()
    assert ended["status"] == "succeeded"  # too late to cancel: returned as it is
