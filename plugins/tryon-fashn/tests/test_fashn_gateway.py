"""FASHN through the whole gateway's HTTP API: served, failed over, refused, and charged."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tryon_fashn.plugin
from tryon_fashn.fake import TEST_API_KEY, create_app

from tryon_core.testing import (
    FakeState,
    Fault,
    RunningGateway,
    ScriptedProvider,
    gateway,
    serve_app_in_thread,
    synthetic_garment,
    synthetic_person,
)


@dataclass
class Served:
    gw: RunningGateway
    fake: FakeState
    backup: ScriptedProvider

    async def tryon(self, **fields: Any) -> Any:
        body = {
            "model": "fashn/tryon-v1.6",
            "person_images": data_url(synthetic_person(480, 640), "image/jpeg"),
            "garment_images": [data_url(synthetic_garment(400, 400), "image/png")],
            **fields,
        }
        return await self.gw.client.post("/api/v1/tryon", json=body, headers=self.gw.headers)


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    fake = create_app()
    backup = ScriptedProvider()  # scripted/alpha: 3 credits an image
    # serve_app_in_thread: the gateway's test client blocks this test's event loop.
    with serve_app_in_thread(fake) as url:
        config = f"""
[providers.fashn]
enabled = true
api_key = "{TEST_API_KEY}"
base_url = "{url}"
poll_interval = 0.01
timeout = 20
[providers.scripted]
enabled = true
[routing.fallbacks]
"fashn/tryon-v1.6" = ["scripted/alpha"]
"""
        plugins = [tryon_fashn.plugin, backup]
        async with gateway(config, plugins=plugins, tmp_path=tmp_path) as gw:
            yield Served(gw, fake.state.fake, backup)


async def test_fashn_serves_and_only_its_images_are_charged(served: Served) -> None:
    response = await served.tryon(n=2, seed=11, output_format="webp")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model"] == "fashn/tryon-v1.6"
    assert result["usage"] == {"credits": 16}  # 8 an image
    assert [image["content_type"] for image in result["images"]] == ["image/webp"] * 2
    (attempt,) = result["attempts"]
    assert attempt["status"] == "succeeded" and attempt["task_id"] in served.fake.tasks
    (run,) = [r for r in served.fake.requests if r.path == "/v1/run"]
    assert run.summary["inputs"]["seed"] == 11 and run.summary["inputs"]["num_samples"] == 2
    assert await served.gw.credits() == (100 - 16, 0)
    assert served.backup.calls == []


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        (Fault(kind="quota"), "provider_misconfigured", "OutOfCredits"),
        (Fault(kind="rate_limit", retry_after=3), "rate_limit_exceeded", "RateLimitExceeded"),
        (Fault(kind="task_failed"), "task_failed", "PipelineError"),
    ],
)
async def test_a_fashn_failure_falls_back_and_only_the_fallback_is_charged(
    served: Served, fault: Fault, kind: str, code: str
) -> None:
    served.fake.inject(fault)
    response = await served.tryon(n=2)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model"] == "scripted/alpha"
    first, second = result["attempts"]
    assert (first["model"], first["status"]) == ("fashn/tryon-v1.6", "failed")
    assert first["error"]["type"] == kind and first["error"]["code"] == code
    assert (second["model"], second["status"]) == ("scripted/alpha", "succeeded")
    if fault.kind == "task_failed":  # the prediction was accepted, then failed
        assert first["task_id"] in served.fake.tasks
    assert result["usage"] == {"credits": 6}  # scripted/alpha's 3 x 2, nothing for FASHN
    assert await served.gw.credits() == (100 - 6, 0)
    assert TEST_API_KEY not in response.text


async def test_fashn_s_content_moderation_stops_the_request_and_costs_nothing(
    served: Served,
) -> None:
    served.fake.inject(Fault(kind="content_refused"))
    response = await served.tryon()
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "content_policy_violation"
    assert served.backup.calls == []  # no fallback: any model would get the same photos
    assert await served.gw.credits() == (100, 0)


async def test_the_models_are_listed_with_their_capabilities(served: Served) -> None:
    listed = await served.gw.client.get("/api/v1/models?output_modalities=all")
    models = {m["id"]: m for m in listed.json()["data"]}
    for slug in ("fashn/tryon-v1.6", "fashn/tryon-v1.5"):
        tryon = models[slug]["tryon"]
        assert tryon["max_outputs"] == 4 and tryon["max_garments"] == 1
        assert tryon["execution"] == "submit-poll"
        assert models[slug]["pricing"]["credits_per_image"] == 8
        assert "seed" in models[slug]["supported_parameters"]


async def test_options_reach_fashn_and_a_bad_one_costs_nothing(served: Served) -> None:
    """``options`` through POST /api/v1/tryon: published as JSON Schema, a bad value refused
    before any charge or call, good ones sent as FASHN inputs and recorded as applied, and
    dropped for a fallback model that does not declare them."""
    listed = (await served.gw.client.get("/api/v1/models", headers=served.gw.headers)).json()
    [model] = [m for m in listed["data"] if m["id"] == "fashn/tryon-v1.6"]
    schema = model["tryon"]["options"]
    properties = schema["properties"]
    assert sorted(properties["mode"]["enum"]) == ["balanced", "performance", "quality"]
    assert properties["segmentation_free"]["type"] == "boolean"
    assert all(p.get("description") for p in properties.values())

    bad = await served.tryon(options={"mode": "fast"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["param"] == "options.mode"
    assert served.fake.requests == []  # refused before FASHN was called
    assert await served.gw.credits() == (100, 0)

    chosen = {"mode": "quality", "moderation_level": "conservative", "segmentation_free": False}
    good = await served.tryon(options=chosen)
    assert good.status_code == 200, good.text
    assert good.json()["attempts"][0]["options"] == {"applied": list(chosen), "dropped": []}
    (run,) = [r for r in served.fake.requests if r.path == "/v1/run"]
    assert {k: run.summary["inputs"][k] for k in chosen} == chosen
    assert "garment_photo_type" not in run.summary["inputs"]  # unset: FASHN's default

    served.fake.inject(Fault(kind="task_failed"))
    fell = await served.tryon(options={"garment_photo_type": "flat-lay"})
    assert fell.status_code == 200, fell.text
    first, second = fell.json()["attempts"]
    assert first["options"] == {"applied": ["garment_photo_type"], "dropped": []}
    assert (second["model"], second["options"]) == (
        "scripted/alpha",
        {"applied": [], "dropped": ["garment_photo_type"]},
    )
    assert await served.gw.credits() == (100 - 8 - 3, 0)  # FASHN once, scripted/alpha once
