"""POST /api/v1/chat/completions, non-streamed: shapes, roles, errors, credits."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests._images import make
from tests.helpers import SAMPLES, auth, new_key
from tryon_core.errors import ProviderUnavailable, RateLimited
from tryon_core.testing import ScriptedProvider

Client = AsyncTestClient[Litestar]
ENDPOINT = "/api/v1/chat/completions"


def image(url: str, role: str | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if role:
        part["tryon_role"] = role
    return part


@pytest.fixture
def chat_body(person_url: str, garment_url: str) -> Callable[..., dict[str, Any]]:
    def body(*parts: dict[str, Any], **fields: Any) -> dict[str, Any]:
        content = list(parts) or [
            {"type": "text", "text": "Put this shirt on this person"},
            image(person_url),
            image(garment_url),
        ]
        return {"model": "scripted/alpha", "messages": [{"role": "user", "content": content}]} | (
            fields
        )

    return body


async def credits_of(client: Client, key: str) -> tuple[int, int]:
    body = (await client.get("/api/v1/credits", headers=auth(key))).json()
    return body["balance"], body["reserved"]


async def test_a_chat_completion_carries_the_image_as_a_data_url(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, _ = await new_key(client, credits=10)
    response = await client.post(ENDPOINT, json=chat_body(), headers=auth(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith("gen_")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "scripted/alpha"
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"]
    (item,) = message["images"]
    assert item["type"] == "image_url"
    prefix, encoded = item["image_url"]["url"].split(",", 1)
    assert prefix == "data:image/png;base64"
    assert base64.b64decode(encoded)[:8] == b"\x89PNG\r\n\x1a\n"
    assert body["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "credits": 3,
    }
    assert body["tryon"]["credits"] == 3
    assert [a["status"] for a in body["tryon"]["attempts"]] == ["succeeded"]
    assert response.headers["x-tryon-model"] == "scripted/alpha"
    assert response.headers["x-tryon-attempts"] == "scripted/alpha=succeeded"
    assert response.headers["x-tryon-generation"] == body["id"]
    assert (await credits_of(client, key)) == (7, 0)
    (call,) = scripted.calls
    assert call.prompt is None  # alpha does not use prompts
    assert call.person.content_type == "image/jpeg"
    assert call.garments[0].content_type == "image/png"


async def test_signed_urls_on_request_and_options_through_tryon(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, _ = await new_key(client, credits=20)
    response = await client.post(
        ENDPOINT,
        json=chat_body(
            model="scripted/gamma",
            n=2,
            seed=11,
            modalities=["image"],
            user="someone",
            temperature=0.3,
            image_config={"aspect_ratio": "3:4"},
            provider={"order": ["x"]},
            stream_options={"include_usage": True},
            tryon={"category": "tops", "output_format": "jpeg", "image_delivery": "url"},
        ),
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    message = response.json()["choices"][0]["message"]
    assert message["content"] is None  # modalities ["image"]: no text
    assert len(message["images"]) == 2
    url = message["images"][0]["image_url"]["url"]
    assert url.startswith("http://testserver.local/api/v1/files/file_")
    download = await client.get(url.removeprefix("http://testserver.local"))
    assert download.headers["content-type"] == "image/jpeg"
    (call,) = scripted.calls
    assert (call.n, call.seed, call.category, call.output_format) == (2, 11, "tops", "jpeg")
    assert call.prompt == "Put this shirt on this person"


async def test_fallback_list_and_attempts(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    key, _ = await new_key(client, credits=20)
    scripted.script("scripted/gamma", ProviderUnavailable("down"))
    response = await client.post(
        ENDPOINT,
        json=chat_body(model="scripted/gamma", models=["scripted/alpha"]),
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "scripted/alpha"
    assert [(a["model"], a["status"]) for a in body["tryon"]["attempts"]] == [
        ("scripted/gamma", "failed"),
        ("scripted/alpha", "succeeded"),
    ]
    assert response.headers["x-tryon-attempts"] == (
        "scripted/gamma=failed, scripted/alpha=succeeded"
    )
    assert (await credits_of(client, key)) == (17, 0)


@pytest.mark.parametrize(
    ("roles", "person", "garments"),
    [
        ((None, None, None), 0, [1, 2]),
        (("garment", None, None), 1, [0, 2]),
        (("garment", "person", None), 1, [0, 2]),
        ((None, "person", None), 1, [0, 2]),
        (("garment", "garment", "person"), 2, [0, 1]),
        ((None, "garment", None), 0, [1, 2]),
    ],
)
async def test_the_roles_rule(
    client: Client,
    scripted: ScriptedProvider,
    chat_body: Any,
    person_url: str,
    garment_url: str,
    roles: tuple[str | None, ...],
    person: int,
    garments: list[int],
) -> None:
    """Tagged parts take their role; untagged ones fill in: the person first, then garments."""
    jpeg_garment = (
        "data:image/jpeg;base64," + base64.b64encode(make(size=(300, 400), fmt="JPEG")).decode()
    )
    sources = {person: person_url, garments[0]: garment_url, garments[1]: jpeg_garment}
    parts = [image(sources[i], role) for i, role in enumerate(roles)]
    key, _ = await new_key(client, credits=10)
    response = await client.post(ENDPOINT, json=chat_body(*parts), headers=auth(key))
    assert response.status_code == 200, response.text
    (call,) = scripted.calls
    assert call.person.data == (SAMPLES / "person.jpg").read_bytes()
    assert [g.content_type for g in call.garments] == ["image/png", "image/jpeg"]
    assert (call.garments[1].width, call.garments[1].height) == (300, 400)


@pytest.mark.parametrize(
    ("messages", "status", "param"),
    [
        ([{"role": "user", "content": "dress me"}], 400, "messages[0].content"),
        ([{"role": "system", "content": "hi"}], 400, "messages"),
        ([{"role": "user", "content": ["P"]}], 400, "messages[0].content"),
        (
            [{"role": "user", "content": ["P", "G", {"type": "image_url"}]}],
            400,
            "messages[0].content[2].image_url",
        ),
        (
            [{"role": "user", "content": ["P", "G", {"type": "image_url", "image_url": {}}]}],
            400,
            "messages[0].content[2].image_url",
        ),
        (
            [{"role": "user", "content": ["P", "G", {"type": "input_audio"}]}],
            400,
            "messages[0].content[2].type",
        ),
        (
            [{"role": "assistant", "content": ["P"]}, {"role": "user", "content": ["P", "G"]}],
            400,
            "messages[0].content[0]",
        ),
        (
            [{"role": "user", "content": [("P", "person"), ("G", "person")]}],
            400,
            "messages[0].content[1].tryon_role",
        ),
        (
            [{"role": "user", "content": [("P", "person"), "G", ("G", "hat")]}],
            400,
            "messages[0].content[2].tryon_role",
        ),
        (
            [{"role": "user", "content": [("G", "garment"), ("G", "garment")]}],
            400,
            "messages[0].content",
        ),
        (
            [{"role": "user", "content": ["P", "G", "G", "G", "G", "G"]}],
            400,
            "messages[0].content[5].image_url",
        ),
        (
            [{"role": "user", "content": ["P", "data:image/png;base64,AAAA"]}],
            415,
            "messages[0].content[1].image_url",
        ),
        ([{"role": "wizard", "content": ["P", "G"]}], 400, "messages[0].role"),
    ],
)
async def test_bad_shapes_name_the_part(
    client: Client,
    scripted: ScriptedProvider,
    person_url: str,
    garment_url: str,
    messages: list[dict[str, Any]],
    status: int,
    param: str,
) -> None:
    def expand(part: Any) -> Any:
        if isinstance(part, tuple):
            return image(expand(part[0])["image_url"]["url"], part[1])
        if part == "P":
            return image(person_url)
        if part == "G":
            return image(garment_url)
        if isinstance(part, str):
            return image(part)
        return part

    for message in messages:
        if isinstance(message["content"], list):
            message["content"] = [expand(p) for p in message["content"]]
    key, _ = await new_key(client, credits=10)
    response = await client.post(
        ENDPOINT, json={"model": "scripted/alpha", "messages": messages}, headers=auth(key)
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["message"]
    assert error["param"] == param
    assert scripted.calls == []
    assert (await credits_of(client, key)) == (10, 0)


@pytest.mark.parametrize(
    ("fields", "status", "param", "kind"),
    [
        ({"n": 5}, 422, "n", "no_capable_model"),
        ({"n": 0}, 400, "n", "invalid_request"),
        ({"model": "nobody/nothing"}, 404, "model", "model_not_found"),
        ({"models": ["scripted/alpha", "nobody/x"]}, 404, "models[1]", "model_not_found"),
        ({"modalities": ["text"]}, 422, "modalities", "unsupported_modalities"),
        ({"tryon": {"category": "hats"}}, 400, "tryon.category", "invalid_request"),
        ({"tryon": {"surprise": 1}}, 400, "tryon.surprise", "invalid_request"),
        ({"tryon": {"image_delivery": "ftp"}}, 400, "tryon.image_delivery", "invalid_request"),
        ({"seed": -1}, 400, "seed", "invalid_request"),
    ],
)
async def test_fields_that_cannot_be_honoured(
    client: Client,
    scripted: ScriptedProvider,
    chat_body: Any,
    fields: dict[str, Any],
    status: int,
    param: str,
    kind: str,
) -> None:
    key, _ = await new_key(client, credits=100)
    response = await client.post(ENDPOINT, json=chat_body(**fields), headers=auth(key))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (status, param, kind)
    assert scripted.calls == []


async def test_auth_credits_and_rate_limits_use_the_one_envelope(
    client: Client, scripted: ScriptedProvider, chat_body: Any
) -> None:
    anonymous = await client.post(ENDPOINT, json=chat_body())
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication"
    poor, _ = await new_key(client, credits=1)
    broke = await client.post(ENDPOINT, json=chat_body(), headers=auth(poor))
    assert broke.status_code == 402
    assert broke.json()["error"]["type"] == "payment_required"
    key, _ = await new_key(client, credits=10)
    scripted.script("scripted/alpha", RateLimited("busy", retry_after=600))
    limited = await client.post(ENDPOINT, json=chat_body(), headers=auth(key))
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "60"
    assert (await credits_of(client, key)) == (10, 0)
    bad = await client.post(
        ENDPOINT, content=b"{nope", headers={**auth(key), "content-type": "application/json"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request"


async def test_the_schema_documents_the_body(client: Client) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    body = schema["paths"]["/api/v1/chat/completions"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["required"] == ["messages"]


async def test_an_adapter_gets_a_data_urls_bytes_however_its_base64_is_wrapped(
    client: Client, scripted: ScriptedProvider, chat_body: Any, person_url: str
) -> None:
    """A data URL's base64 reaches the adapter decoded, the same bytes with line breaks in the
    text or without them (the gateway keeps no image's text: encoding again is cheap)."""
    key, _ = await new_key(client, credits=10)
    prefix, text = person_url.split(",", 1)
    garment = f"{prefix},{text[:76]}\n{text[76:]}"  # a line break: cleaned, then decoded
    parts = [{"type": "text", "text": "Put this on"}, image(person_url), image(garment)]
    response = await client.post(ENDPOINT, json=chat_body(*parts), headers=auth(key))
    assert response.status_code == 200, response.text
    (call,) = scripted.calls
    assert call.person.data == call.garments[0].data == base64.b64decode(text)
    assert not hasattr(call.person, "base64")
