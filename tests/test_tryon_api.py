"""POST /api/v1/tryon through HTTP: success, routing, fallback, credits, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import SAMPLES, auth, new_key
from tryon_core.errors import ContentRefused, ProviderUnavailable, RateLimited
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Garbage

Client = AsyncTestClient[Litestar]


async def credits_of(client: Client, key: str) -> dict[str, Any]:
    response = await client.get("/api/v1/credits", headers=auth(key))
    assert response.status_code == 200
    return response.json()


async def test_json_tryon_returns_a_signed_image_and_charges_the_served_model(
    client: Client, tryon_body: Any
) -> None:
    key, _ = await new_key(client, credits=10)
    response = await client.post(
        "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith("gen_")
    assert body["status"] == "completed"
    assert body["model"] == "scripted/alpha"
    assert body["usage"] == {"credits": 3}
    assert [a["status"] for a in body["attempts"]] == ["succeeded"]
    (image,) = body["images"]
    assert image["content_type"] == "image/png"
    assert image["url"].startswith("http://testserver.local/api/v1/files/file_")
    download = await client.get(image["url"].removeprefix("http://testserver.local"))
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert download.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert await credits_of(client, key) == {
        "object": "credits",
        "account_id": (await credits_of(client, key))["account_id"],
        "balance": 7,
        "reserved": 0,
    }


async def test_multipart_upload_is_the_same_request(
    client: Client, scripted: ScriptedProvider
) -> None:
    key, _ = await new_key(client)
    files = [
        ("person_images", ("me.jpg", (SAMPLES / "person.jpg").read_bytes(), "image/jpeg")),
        ("garment_images", ("shirt.png", (SAMPLES / "garment.png").read_bytes(), "image/png")),
    ]
    response = await client.post(
        "/api/v1/tryon",
        files=files,
        data={"model": "scripted/alpha", "n": "2", "seed": "7", "category": "tops"},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["images"]) == 2
    (call,) = scripted.calls
    assert call.n == 2 and call.seed == 7 and call.category == "tops"
    assert call.person.content_type == "image/jpeg"
    assert call.garments[0].content_type == "image/png"


async def test_fallback_on_upstream_failure_charges_only_the_model_that_served(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, _ = await new_key(client, credits=20)
    scripted.script("scripted/gamma", ProviderUnavailable("down", provider_code="503"))
    response = await client.post(
        "/api/v1/tryon",
        json=tryon_body(models=["scripted/gamma", "scripted/alpha"]),
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "scripted/alpha"
    assert [(a["model"], a["status"]) for a in body["attempts"]] == [
        ("scripted/gamma", "failed"),
        ("scripted/alpha", "succeeded"),
    ]
    assert body["attempts"][0]["error"]["type"] == "provider_unavailable"
    assert body["usage"]["credits"] == 3
    assert (await credits_of(client, key))["balance"] == 17


async def test_content_refusal_stops_without_fallback_and_costs_nothing(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, _ = await new_key(client, credits=20)
    scripted.script("scripted/gamma", ContentRefused("refused", provider_code="1301"))
    response = await client.post(
        "/api/v1/tryon",
        json=tryon_body(models=["scripted/gamma", "scripted/alpha"]),
        headers=auth(key),
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "content_policy_violation"
    assert [a["model"] for a in error["metadata"]["attempts"]] == ["scripted/gamma"]
    assert scripted.calls_to("scripted/alpha") == []
    assert await credits_of(client, key) == {
        **(await credits_of(client, key)),
        "balance": 20,
        "reserved": 0,
    }


@pytest.mark.parametrize(
    ("failure", "status", "kind"),
    [
        (RateLimited("slow down", retry_after=7), 429, "rate_limit_exceeded"),
        (ProviderUnavailable("down"), 502, "provider_unavailable"),
        (Garbage(), 502, "bad_response"),
        ("empty", 502, "no_image"),
    ],
)
async def test_every_candidate_failing_releases_everything(
    client: Client,
    scripted: ScriptedProvider,
    tryon_body: Any,
    failure: Any,
    status: int,
    kind: str,
) -> None:
    key, _ = await new_key(client, credits=20)
    scripted.script("scripted/alpha", failure)
    response = await client.post(
        "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == kind
    if status == 429:
        assert response.headers["retry-after"] == "7"
    credits = await credits_of(client, key)
    assert (credits["balance"], credits["reserved"]) == (20, 0)


async def test_insufficient_credits_is_402_and_calls_no_upstream(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, _ = await new_key(client, credits=2)
    response = await client.post(
        "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
    )
    assert response.status_code == 402
    assert response.json()["error"]["type"] == "payment_required"
    assert scripted.calls == []


async def test_reservation_uses_the_dearest_candidate_times_n(
    client: Client, tryon_body: Any
) -> None:
    # gamma (5) then alpha (3), n=2: 10 credits must be available even though alpha may serve.
    key, _ = await new_key(client, credits=9)
    response = await client.post(
        "/api/v1/tryon",
        json=tryon_body(models=["scripted/gamma", "scripted/alpha"], n=2),
        headers=auth(key),
    )
    assert response.status_code == 402
    assert response.json()["error"]["metadata"]["required"] == 10


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"person_images": []}, 400, "person_images"),
        ({"garment_images": []}, 400, "garment_images"),
        ({"n": 0}, 400, "n"),
        ({"n": 5}, 400, "n"),
        ({"category": "hats"}, 400, "category"),
        ({"output_format": "gif"}, 400, "output_format"),
        ({"surprise": 1}, 400, "surprise"),
        ({"model": "nobody/nothing"}, 404, "model"),
        ({"mode": "later"}, 400, "mode"),
        ({"webhook_url": "https://example.com/hook"}, 400, "webhook_url"),
        ({"person_images": ["data:image/png;base64,AAAA"]}, 415, "person_images[0]"),
        ({"garment_images": ["ftp://example.com/x.png"]}, 400, "garment_images[0]"),
    ],
)
async def test_bad_input_gets_a_clear_error_and_costs_nothing(
    client: Client,
    scripted: ScriptedProvider,
    tryon_body: Any,
    change: dict[str, Any],
    status: int,
    param: str,
) -> None:
    key, _ = await new_key(client, credits=10)
    response = await client.post("/api/v1/tryon", json=tryon_body(**change), headers=auth(key))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    assert error["param"] == param
    assert error["message"]
    assert scripted.calls == []
    assert (await credits_of(client, key))["balance"] == 10


async def test_no_capable_model_is_422_and_says_why(
    client: Client, tryon_body: Any, garment_url: str
) -> None:
    key, _ = await new_key(client)
    response = await client.post(
        "/api/v1/tryon",
        json=tryon_body(model="scripted/beta", garment_images=[garment_url, garment_url]),
        headers=auth(key),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "no_capable_model"
    assert error["param"] == "garment_images"
    assert "scripted/beta" in error["metadata"]["reasons"]


async def test_malformed_json_and_wrong_content_type(client: Client) -> None:
    key, _ = await new_key(client)
    bad = await client.post(
        "/api/v1/tryon",
        content=b"{not json",
        headers={**auth(key), "content-type": "application/json"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request"
    text = await client.post(
        "/api/v1/tryon", content=b"hello", headers={**auth(key), "content-type": "text/plain"}
    )
    assert text.status_code == 415 and text.json()["error"]["type"] == "unsupported_media_type"


async def test_prompt_reaches_only_models_that_use_it(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, _ = await new_key(client)
    for model in ("scripted/gamma", "scripted/alpha"):
        response = await client.post(
            "/api/v1/tryon", json=tryon_body(model=model, prompt="tuck it in"), headers=auth(key)
        )
        assert response.status_code == 200
    assert scripted.calls_to("scripted/gamma")[0].prompt == "tuck it in"
    assert scripted.calls_to("scripted/alpha")[0].prompt is None


async def test_secrets_never_reach_the_client_even_if_an_adapter_leaks_them(
    make_app: Any, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    from tryon_core.testing.scripted import ScriptedConfig

    class Keyed(ScriptedConfig, kw_only=True, forbid_unknown_fields=True):
        secrets = ("api_key",)
        api_key: str | None = None

    app = make_app()
    entry = app.state.gateway.catalog.entries["scripted/alpha"]
    leaky = Keyed(enabled=True, timeout=5.0, api_key="sk-very-secret")
    app.state.gateway.catalog.entries["scripted/alpha"] = type(entry)(
        model=entry.model,
        provider=entry.provider,
        config=leaky,
        adapter=entry.adapter,
        credits=entry.credits,
    )
    scripted.script(
        "scripted/alpha",
        ProviderUnavailable("key sk-very-secret refused", upstream_message="sk-very-secret"),
    )
    async with AsyncTestClient(app=app) as client:
        key, _ = await new_key(client)
        response = await client.post(
            "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
        )
        assert response.status_code == 502
        assert "sk-very-secret" not in response.text
        assert "[redacted]" in response.text
