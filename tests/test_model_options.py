"""Per-model options through the HTTP API: published as JSON Schema, validated before anything
is charged (422 naming the option), handed only to the models that declare them, and recorded
on each attempt as applied or dropped."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import SAMPLES, auth, new_key
from tests.jobs_helpers import submit, wait_for
from tryon_core.errors import ProviderUnavailable
from tryon_core.plugin import Capabilities, ModelSpec
from tryon_core.testing import ScriptedProvider

Client = AsyncTestClient[Litestar]


class StudioOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of acme/studio."""

    mode: (
        Annotated[Literal["fast", "quality"], msgspec.Meta(description="Speed against fidelity.")]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    strength: Annotated[float, msgspec.Meta(ge=0, le=1)] | msgspec.UnsetType = msgspec.UNSET
    steps: Annotated[int, msgspec.Meta(ge=1, le=50)] = 28


class DraftOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    steps: Annotated[int, msgspec.Meta(ge=1, le=8)] = 4


MODELS = (
    ModelSpec(
        slug="acme/studio", name="Studio", description="takes options", credits=5,
        options=StudioOptions, capabilities=Capabilities(max_outputs=2),
    ),
    ModelSpec(
        slug="acme/draft", name="Draft", description="takes fewer steps", credits=2,
        options=DraftOptions,
    ),
    ModelSpec(slug="acme/plain", name="Plain", description="takes no options", credits=1),
)  # fmt: skip


@pytest.fixture
def scripted() -> ScriptedProvider:
    return ScriptedProvider(models=MODELS)


async def credits(client: Client, key: str) -> tuple[int, int]:
    body = (await client.get("/api/v1/credits", headers=auth(key))).json()
    return body["balance"], body["reserved"]


async def test_each_model_publishes_its_options_as_json_schema(client: Client) -> None:
    listed = (await client.get("/api/v1/models")).json()["data"]
    by_id = {model["id"]: model for model in listed}
    studio = by_id["acme/studio"]["tryon"]["options"]
    assert studio["type"] == "object" and studio["description"] == "Options of acme/studio."
    assert studio["properties"]["mode"] == {
        "enum": ["fast", "quality"],
        "description": "Speed against fidelity.",
    }
    assert studio["properties"]["strength"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert studio["properties"]["steps"] == {
        "type": "integer", "minimum": 1, "maximum": 50, "default": 28,
    }  # fmt: skip
    assert studio.get("required", []) == []
    assert by_id["acme/draft"]["tryon"]["options"]["properties"]["steps"]["maximum"] == 8
    assert by_id["acme/plain"]["tryon"]["options"] is None


async def test_options_reach_the_model_that_declares_them(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, _ = await new_key(client, credits=20)
    response = await client.post(
        "/api/v1/tryon",
        json=tryon_body(model="acme/studio", options={"mode": "quality", "strength": 0.5}),
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    assert response.json()["attempts"][0]["options"] == {
        "applied": ["mode", "strength"],
        "dropped": [],
    }
    (call,) = scripted.calls
    assert call.options == StudioOptions(mode="quality", strength=0.5)
    assert msgspec.to_builtins(call.options) == {"mode": "quality", "strength": 0.5, "steps": 28}
    assert await credits(client, key) == (15, 0)


async def test_without_options_a_model_gets_its_defaults_and_attempts_say_nothing(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, _ = await new_key(client, credits=20)
    response = await client.post(
        "/api/v1/tryon", json=tryon_body(model="acme/studio"), headers=auth(key)
    )
    assert response.status_code == 200, response.text
    assert "options" not in response.json()["attempts"][0]
    assert scripted.calls[0].options == StudioOptions()


@pytest.mark.parametrize(
    ("options", "param", "words"),
    [
        ({"colour": "red"}, "options.colour", "not taken by any model"),
        ({"mode": "slow"}, "options.mode", "acme/studio refuses options.mode"),
        ({"strength": 2}, "options.strength", "<= 1"),
        ({"steps": "many"}, "options.steps", "Expected `int`"),
        ({"steps": 40}, "options.steps", "acme/draft refuses options.steps"),
    ],
)
async def test_a_bad_option_is_a_422_naming_it_and_charges_nothing(
    client: Client,
    scripted: ScriptedProvider,
    tryon_body: Any,
    options: dict[str, Any],
    param: str,
    words: str,
) -> None:
    key, _ = await new_key(client, credits=20)
    response = await client.post(
        "/api/v1/tryon",
        json=tryon_body(models=["acme/studio", "acme/draft"], options=options),
        headers=auth(key),
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_option", param)
    assert words in error["message"]
    assert scripted.calls == []
    assert await credits(client, key) == (20, 0)
    generations = await client.get("/api/v1/generations", headers=auth(key))
    assert generations.json()["data"] == []


async def test_a_fallback_model_gets_only_the_options_it_declares(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, _ = await new_key(client, credits=20)
    scripted.script("acme/studio", ProviderUnavailable("down"))
    scripted.script("acme/draft", ProviderUnavailable("down"))
    response = await client.post(
        "/api/v1/tryon",
        json=tryon_body(
            models=["acme/studio", "acme/draft", "acme/plain"],
            options={"mode": "fast", "steps": 6},
        ),
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(a["model"], a["status"], a["options"]) for a in body["attempts"]] == [
        ("acme/studio", "failed", {"applied": ["mode", "steps"], "dropped": []}),
        ("acme/draft", "failed", {"applied": ["steps"], "dropped": ["mode"]}),
        ("acme/plain", "succeeded", {"applied": [], "dropped": ["mode", "steps"]}),
    ]
    studio, draft, plain = scripted.calls
    assert studio.options == StudioOptions(mode="fast", steps=6)
    assert draft.options == DraftOptions(steps=6)
    assert plain.options is None
    assert await credits(client, key) == (19, 0)  # only acme/plain served, at 1 credit
    # the generation's record keeps the same attempts
    (stored,) = (await client.get("/api/v1/generations", headers=auth(key))).json()["data"]
    assert [a.get("options") for a in stored["attempts"]] == [
        a["options"] for a in body["attempts"]
    ]


async def test_multipart_takes_options_as_a_json_object(
    client: Client, scripted: ScriptedProvider
) -> None:
    key, _ = await new_key(client, credits=20)
    files = [
        ("person_images", ("person.jpg", (SAMPLES / "person.jpg").read_bytes(), "image/jpeg")),
        ("garment_images", ("garment.png", (SAMPLES / "garment.png").read_bytes(), "image/png")),
    ]
    response = await client.post(
        "/api/v1/tryon",
        files=files,
        data={"model": "acme/studio", "options": json.dumps({"mode": "quality"})},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    assert scripted.calls[0].options == StudioOptions(mode="quality")
    for text, status in [("{not json", 400), ('["mode"]', 400), ('{"mode": 1}', 422)]:
        refused = await client.post(
            "/api/v1/tryon",
            files=files,
            data={"model": "acme/studio", "options": text},
            headers=auth(key),
        )
        assert refused.status_code == status, (text, refused.text)
        assert refused.json()["error"]["param"].startswith("options")
    assert len(scripted.calls) == 1
    assert await credits(client, key) == (15, 0)


async def test_chat_completions_take_options_in_the_tryon_object(
    client: Client, scripted: ScriptedProvider, person_url: str, garment_url: str
) -> None:
    key, _ = await new_key(client, credits=20)
    content = [
        {"type": "image_url", "image_url": {"url": person_url}, "tryon_role": "person"},
        {"type": "image_url", "image_url": {"url": garment_url}, "tryon_role": "garment"},
    ]
    body = {
        "model": "acme/studio",
        "messages": [{"role": "user", "content": content}],
        "tryon": {"options": {"mode": "quality", "steps": 12}},
    }
    response = await client.post("/api/v1/chat/completions", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    assert scripted.calls[0].options == StudioOptions(mode="quality", steps=12)
    body["tryon"] = {"options": {"steps": 0}}
    refused = await client.post("/api/v1/chat/completions", json=body, headers=auth(key))
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "options.steps"


async def test_an_async_job_keeps_its_options_for_the_worker(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, _ = await new_key(client, credits=20)
    accepted = await submit(
        client, key, tryon_body(models=["acme/draft", "acme/studio"], options={"steps": 3})
    )
    done = await wait_for(client, key, accepted["jobId"])
    assert done["status"] == "completed", done
    assert done["attempts"][0]["options"] == {"applied": ["steps"], "dropped": []}
    assert scripted.calls[0].options == DraftOptions(steps=3)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-100, 100) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    options=st.dictionaries(
        st.sampled_from(["mode", "strength", "steps", "colour"]) | st.text(max_size=8),
        JSON_VALUES | st.sampled_from(["fast", "quality", 0.25, 3]),
        max_size=4,
    )
)
async def test_any_options_object_is_served_or_refused_and_the_money_adds_up(
    make_app: Any, scripted: ScriptedProvider, tryon_body: Any, options: dict[str, Any]
) -> None:
    scripted.calls.clear()
    async with AsyncTestClient(app=make_app()) as client:
        key, _ = await new_key(client, credits=20)
        response = await client.post(
            "/api/v1/tryon",
            json=tryon_body(models=["acme/studio", "acme/draft"], options=options),
            headers=auth(key),
        )
        assert response.status_code in (200, 400, 422), response.text
        balance = await credits(client, key)
    if response.status_code == 200:
        assert balance == (15, 0)
        sent = scripted.calls[0].options
        assert isinstance(sent, StudioOptions)
        assert set(options) <= {"mode", "strength", "steps"}
    else:
        assert balance == (20, 0) and scripted.calls == []
        assert response.json()["error"]["param"].startswith("options")
