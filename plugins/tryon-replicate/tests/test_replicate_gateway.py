"""Replicate models through the whole gateway over HTTP, against the fake on 127.0.0.1: the
prediction id kept with the attempt, a failure falling back to another model with only the
model that served charged, and a refusal stopping at once for nothing."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import tryon_replicate.plugin
from tryon_replicate.fake import TEST_TOKEN, create_app

from tryon_core.testing import (
    Fault,
    ScriptedProvider,
    gateway,
    serve_app_in_thread,
    synthetic_garment,
    synthetic_person,
)

TOKEN = "r8_gateway-secret-token"
SLUG = "replicate/idm-vton"


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def config(url: str) -> str:
    """The README's IDM-VTON entry, pointed at the fake, falling back to scripted/alpha."""
    return f"""
[providers.replicate]
enabled = true
api_token = "${{REPLICATE_API_TOKEN}}"
base_url = "{url}"
poll_interval = 0.02
timeout = 20

[providers.replicate.models."{SLUG}"]
model = "cuuupid/idm-vton"
version = "c871bb9b046607b680449ecbae55fd8c6d945e0a1948644bf2361b3d021d3ff4"
credits = 3
person = "human_img"
garment = "garm_img"
category = "category"
categories = {{ tops = "upper_body", bottoms = "lower_body", one-pieces = "dresses" }}
prompt = "garment_des"
inputs = {{ steps = 30 }}

[providers.scripted]
enabled = true

[routing.fallbacks]
"{SLUG}" = ["scripted/alpha"]
"""


def tryon(**fields: Any) -> dict[str, Any]:
    return {
        "model": SLUG,
        "person_images": data_url(synthetic_person(480, 640), "image/jpeg"),
        "garment_images": [data_url(synthetic_garment(400, 400), "image/png")],
        "category": "tops",
        **fields,
    }


@pytest.mark.parametrize(
    ("fault", "status", "served", "charged"),
    [
        (None, 200, SLUG, 3),
        (Fault(kind="task_failed"), 200, "scripted/alpha", 3 * 1),
        (Fault(kind="server_error", status=503), 200, "scripted/alpha", 3),
        (Fault(kind="rate_limit", retry_after=5), 200, "scripted/alpha", 3),
        (Fault(kind="content_refused"), 400, None, 0),
        (Fault(kind="invalid_input"), 422, None, 0),
    ],
    ids=["served", "task_failed", "server_error", "rate_limit", "content_refused", "invalid"],
)
async def test_a_tryon_through_the_gateway(
    fault: Fault | None, status: int, served: str | None, charged: int, tmp_path: Path
) -> None:
    fake = create_app(api_token=TOKEN, run_seconds=0.02)
    if fault is not None:
        fake.state.fake.inject(fault)
    backup = ScriptedProvider()  # scripted/alpha: 3 credits an image
    with serve_app_in_thread(fake) as url:
        async with gateway(
            config(url),
            plugins=[tryon_replicate.plugin, backup],
            tmp_path=tmp_path,
            environ={"REPLICATE_API_TOKEN": TOKEN},
        ) as gw:
            response = await gw.client.post("/api/v1/tryon", json=tryon(), headers=gw.headers)
            balance, reserved = await gw.credits()

    assert response.status_code == status, response.text
    assert TOKEN not in response.text and TEST_TOKEN not in response.text
    body = response.json()
    creates = [r for r in fake.state.fake.requests if r.summary.get("call") == "create"]
    assert len(creates) == 1
    if served is None:
        attempts = body["error"]["metadata"]["attempts"]
        assert [(a["model"], a["status"]) for a in attempts] == [(SLUG, "failed")]
        assert backup.calls == []  # a refusal is not sent to another model
    else:
        attempts = body["attempts"]
        assert body["model"] == served and len(body["images"]) == 1
        assert attempts[-1] == {**attempts[-1], "model": served, "status": "succeeded"}
        if served != SLUG:
            assert [a["model"] for a in attempts] == [SLUG, served]
            assert attempts[0]["status"] == "failed"
        assert body["usage"] == {"credits": charged}
    if "prediction_id" in creates[0].summary and served == SLUG:
        assert attempts[0]["task_id"] == creates[0].summary["prediction_id"]
    assert (balance, reserved) == (100 - charged, 0)


async def test_options_reach_the_prediction_and_a_bad_one_costs_nothing(tmp_path: Path) -> None:
    """A client's ``options``: published as JSON Schema, validated before any charge, sent to
    the prediction as the model's inputs, recorded as applied (and dropped for a fallback
    model that does not declare them)."""
    fake = create_app(api_token=TOKEN, run_seconds=0.02)
    backup = ScriptedProvider()
    with serve_app_in_thread(fake) as url:
        async with gateway(
            config(url).replace("inputs = { steps = 30 }", _OPTIONS),
            plugins=[tryon_replicate.plugin, backup],
            tmp_path=tmp_path,
            environ={"REPLICATE_API_TOKEN": TOKEN},
        ) as gw:
            listed = (await gw.client.get("/api/v1/models", headers=gw.headers)).json()
            [model] = [m for m in listed["data"] if m["id"] == SLUG]
            schema = msgspec_json(model)
            assert schema["steps"]["maximum"] == 40 and schema["crop"]["type"] == "boolean"

            bad = await gw.client.post(
                "/api/v1/tryon", json=tryon(options={"steps": 99}), headers=gw.headers
            )
            assert bad.status_code == 422, bad.text
            assert bad.json()["error"]["param"] == "options.steps"
            assert fake.state.fake.requests == []  # refused before Replicate was called

            good = await gw.client.post(
                "/api/v1/tryon", json=tryon(options={"steps": 12}), headers=gw.headers
            )
            assert good.status_code == 200, good.text
            assert good.json()["attempts"][0]["options"] == {"applied": ["steps"], "dropped": []}

            fake.state.fake.inject(Fault(kind="task_failed"))
            fell = await gw.client.post(
                "/api/v1/tryon", json=tryon(options={"crop": True}), headers=gw.headers
            )
            assert fell.status_code == 200, fell.text
            attempts = fell.json()["attempts"]
            assert attempts[1]["model"] == "scripted/alpha"
            assert attempts[1]["options"] == {"applied": [], "dropped": ["crop"]}
            assert await gw.credits() == (100 - 3 - 3, 0)  # IDM-VTON once, scripted/alpha once

    creates = [r for r in fake.state.fake.requests if r.summary.get("call") == "create"]
    assert [c.summary["errors"] for c in creates] == [[], []]
    sent = [fake.state.fake.tasks[c.summary["prediction_id"]].data["input"] for c in creates]
    assert (sent[0]["steps"], sent[0]["crop"]) == (12, False)  # the option over the fixed input
    assert (sent[1]["steps"], sent[1]["crop"]) == (30, True)


_OPTIONS = """inputs = { steps = 30, crop = false }
options.steps = { type = "integer", minimum = 1, maximum = 40 }
options.crop = { type = "boolean" }"""


def msgspec_json(model: dict[str, Any]) -> dict[str, Any]:
    """The properties of the options JSON Schema ``GET /api/v1/models`` publishes."""
    options = model["tryon"]["options"] if "tryon" in model else model["options"]
    if "$ref" in options:
        options = options["$defs"][options["$ref"].rsplit("/", 1)[1]]
    properties: dict[str, Any] = options["properties"]
    return properties
