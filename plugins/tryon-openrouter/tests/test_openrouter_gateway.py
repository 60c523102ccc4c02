"""OpenRouter models through the whole gateway (its HTTP API) against the fake: the models an
operator lists, a try-on, a failure that falls back to another model, a refusal that stops,
and who is charged."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import tryon_openrouter.plugin
from tryon_openrouter.fake import TEST_API_KEY, create_app

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

SLUG = "openrouter/gemini-2.5-flash-image"


def section(url: str, extra: str = "") -> str:
    return f"""
[providers.openrouter]
enabled = true
api_key = "{TEST_API_KEY}"
base_url = "{url}/api/v1"
timeout = 10
[providers.openrouter.models."{SLUG}"]
upstream = "google/gemini-2.5-flash-image"
credits = 5
name = "Gemini 2.5 Flash Image via OpenRouter"
[providers.openrouter.models."openrouter/flux-2-pro"]
upstream = "black-forest-labs/flux.2-pro"
credits = 4
modalities = ["image"]
max_garments = 1
image_config = ["aspect_ratio", "image_size"]
{extra}"""


@pytest.fixture
def fake() -> Iterator[tuple[str, FakeState]]:
    app = create_app()
    # the gateway runs on the test client's loop: the fake needs a thread and a loop of its own
    with serve_app_in_thread(app) as url:
        yield url, app.state.fake


@pytest.fixture
async def gw(fake: tuple[str, FakeState], tmp_path: Path) -> AsyncIterator[RunningGateway]:
    config = section(
        fake[0],
        '[providers.scripted]\nenabled = true\n[routing.fallbacks]\n"'
        + SLUG
        + '" = ["scripted/alpha"]\n',
    )
    plugins = [tryon_openrouter.plugin, ScriptedProvider()]
    async with gateway(config, plugins=plugins, tmp_path=tmp_path) as running:
        yield running


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def tryon(**changes: Any) -> dict[str, Any]:
    return {
        "model": SLUG,
        "person_images": data_url(synthetic_person(480, 640), "image/jpeg"),
        "garment_images": [data_url(synthetic_garment(400, 400), "image/png")],
        **changes,
    }


def test_the_entry_point_names_the_plugin_module() -> None:
    found = {e.name: e.value for e in entry_points(group="tryon")}
    assert found.get("openrouter") == "tryon_openrouter.plugin"


async def test_the_listed_models_are_served_with_their_prices(gw: RunningGateway) -> None:
    listed = (await gw.client.get("/api/v1/models?output_modalities=all")).json()["data"]
    models = {m["id"]: m for m in listed}
    gemini, flux = models[SLUG], models["openrouter/flux-2-pro"]
    assert gemini["name"] == "Gemini 2.5 Flash Image via OpenRouter"
    assert flux["name"] == "black-forest-labs/flux.2-pro (OpenRouter)"
    assert (gemini["owned_by"], flux["owned_by"]) == ("google", "black-forest-labs")
    assert gemini["tryon"]["max_garments"] == 2 and flux["tryon"]["max_garments"] == 1
    assert gemini["tryon"]["max_outputs"] == flux["tryon"]["max_outputs"] == 1


async def test_a_try_on_is_charged_the_configured_price(
    gw: RunningGateway, fake: tuple[str, FakeState]
) -> None:
    response = await gw.client.post(
        "/api/v1/tryon", json=tryon(prompt="tuck the shirt in"), headers=gw.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == SLUG and body["usage"] == {"credits": 5}
    [attempt] = body["attempts"]
    assert attempt["status"] == "succeeded" and attempt["task_id"].startswith("gen-")
    assert await gw.credits() == (95, 0)
    [sent] = fake[1].requests
    assert sent.summary["model"] == "google/gemini-2.5-flash-image"
    assert sent.summary["image_config"] == {"aspect_ratio": "3:4"}
    assert "tuck the shirt in" in sent.summary["texts"][0]


async def test_a_provider_failure_falls_back_and_only_the_server_is_charged(
    gw: RunningGateway, fake: tuple[str, FakeState]
) -> None:
    fake[1].inject(Fault(kind="server_error", status=502))
    response = await gw.client.post("/api/v1/tryon", json=tryon(), headers=gw.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(a["model"], a["status"]) for a in body["attempts"]] == [
        (SLUG, "failed"),
        ("scripted/alpha", "succeeded"),
    ]
    assert body["attempts"][0]["error"]["type"] == "provider_unavailable"
    assert body["usage"] == {"credits": 3}  # scripted/alpha's price; nothing for OpenRouter
    assert await gw.credits() == (97, 0)


async def test_no_credits_at_openrouter_falls_back_too(
    gw: RunningGateway, fake: tuple[str, FakeState]
) -> None:
    fake[1].inject(Fault(kind="quota"))
    response = await gw.client.post("/api/v1/tryon", json=tryon(), headers=gw.headers)
    body = response.json()
    assert response.status_code == 200, response.text
    assert body["attempts"][0]["error"]["type"] == "provider_misconfigured"
    assert body["model"] == "scripted/alpha" and await gw.credits() == (97, 0)


async def test_a_moderation_refusal_stops_at_once_and_costs_nothing(
    gw: RunningGateway, fake: tuple[str, FakeState]
) -> None:
    fake[1].inject(Fault(kind="content_refused"))
    response = await gw.client.post("/api/v1/tryon", json=tryon(), headers=gw.headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "content_policy_violation"
    assert [a["model"] for a in error["metadata"]["attempts"]] == [SLUG]  # no fallback
    assert await gw.credits() == (100, 0)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (
            '[providers.openrouter.models."openrouter/google/gemini-2.5-flash-image"]\n'
            'upstream = "google/gemini-2.5-flash-image"\ncredits = 5\n',
            "vendor/model",
        ),
        (
            '[providers.openrouter.models."openrouter/x"]\nupstream = "x"\ncredits = 5\n',
            "upstream",
        ),
        ('[providers.openrouter.models."openrouter/x"]\nupstream = "a/b"\n', "credits"),
        (
            '[providers.openrouter.models."openrouter/x"]\nupstream = "a/b"\ncredits = 1\n'
            'modalities = ["text"]\n',
            "modalities must include 'image'",
        ),
        (
            '[providers.openrouter.models."openrouter/x"]\nupstream = "a/b"\ncredits = 1\n'
            'image_config = ["quality"]\n',
            "image_config",
        ),
        (
            '[providers.openrouter.models."openrouter/x"]\nupstream = "a/b"\ncredits = 1\n'
            "max_garments = 9\n",
            "max_garments",
        ),
    ],
)
async def test_a_bad_model_table_stops_the_start_naming_it(
    extra: str, says: str, tmp_path: Path
) -> None:
    with pytest.raises(Exception, match=r"providers\.openrouter") as caught:
        async with gateway(
            section("http://127.0.0.1:9", extra),
            plugins=[tryon_openrouter.plugin],
            tmp_path=tmp_path,
        ):
            pass
    assert says in str(caught.value)
    assert type(caught.value).__name__ == "ConfigError"


async def test_options_go_through_the_api_to_image_config(
    gw: RunningGateway, fake: tuple[str, FakeState]
) -> None:
    """The FLUX model declares aspect_ratio and image_size; they reach OpenRouter as
    image_config, an option it does not declare is refused before anything is charged, and
    the fallback model is not sent what it lacks."""
    listed = (await gw.client.get("/api/v1/models?output_modalities=all")).json()["data"]
    schemas = {m["id"]: m["tryon"]["options"] for m in listed if m["tryon"]}
    assert set(schemas["openrouter/flux-2-pro"]["properties"]) == {"aspect_ratio", "image_size"}
    assert set(schemas[SLUG]["properties"]) == {"aspect_ratio"}

    wide = tryon(
        model="openrouter/flux-2-pro", options={"aspect_ratio": "16:9", "image_size": "2K"}
    )
    response = await gw.client.post("/api/v1/tryon", json=wide, headers=gw.headers)
    assert response.status_code == 200, response.text
    [attempt] = response.json()["attempts"]
    assert sorted(attempt["options"]["applied"]) == ["aspect_ratio", "image_size"]
    assert fake[1].requests[-1].summary["image_config"] == {
        "aspect_ratio": "16:9",
        "image_size": "2K",
    }
    assert await gw.credits() == (96, 0)

    bad = tryon(model="openrouter/flux-2-pro", options={"aspect_ratio": "7:5"})
    refused = await gw.client.post("/api/v1/tryon", json=bad, headers=gw.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["param"] == "options.aspect_ratio"
    assert len(fake[1].requests) == 1 and await gw.credits() == (96, 0)

    fake[1].inject(Fault(kind="server_error", status=503))
    portrait = tryon(options={"aspect_ratio": "4:5"})  # Gemini, falling back to scripted/alpha
    response = await gw.client.post("/api/v1/tryon", json=portrait, headers=gw.headers)
    assert response.status_code == 200, response.text
    first, second = response.json()["attempts"]
    assert first["options"] == {"applied": ["aspect_ratio"], "dropped": []}
    assert second["model"] == "scripted/alpha"
    assert second["options"] == {"applied": [], "dropped": ["aspect_ratio"]}
    assert fake[1].requests[-1].summary == {"refused": 503}
