"""Keys, credits, files, models, health and the envelope on every unhappy path."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import auth, new_key

Client = AsyncTestClient[Litestar]


def assert_envelope(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "type", "param", "metadata"}
    assert error["code"] == status and error["type"] == kind and error["message"]
    return error


@pytest.mark.parametrize(
    "header",
    [None, "tryon_abc", "Bearer", "Bearer nope", "Basic dHJ5b246", "Bearer tryon_" + "x" * 43],
)
async def test_bad_keys_are_401_with_the_envelope(client: Client, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    error = assert_envelope(
        await client.get("/api/v1/credits", headers=headers), 401, "authentication"
    )
    secret = (header or "").split()[-1:]
    if secret and secret[0] != "Bearer":
        assert secret[0] not in error["message"]


async def test_key_lifecycle(client: Client) -> None:
    key, account_id = await new_key(client, credits=5, scope="management")
    me = (await client.get("/api/v1/key", headers=auth(key))).json()["data"]
    assert me["account_id"] == account_id and key.startswith(me["prefix"])
    assert me["scope"] == "management"
    assert len(key) >= len("tryon_") + 32

    created = await client.post("/api/v1/keys", json={"name": "second"}, headers=auth(key))
    assert created.status_code == 201
    second = created.json()
    assert second["key"].startswith("tryon_") and second["data"]["name"] == "second"
    assert second["data"]["scope"] == "inference"  # the default
    assert "key" not in second["data"]

    unnamed = await client.post("/api/v1/keys", headers=auth(key))
    assert unnamed.status_code == 201 and unnamed.json()["data"]["name"] == ""
    await client.delete(f"/api/v1/keys/{unnamed.json()['data']['id']}", headers=auth(key))

    listed = (await client.get("/api/v1/keys", headers=auth(key))).json()["data"]
    assert {k["id"] for k in listed} == {
        me["id"],
        second["data"]["id"],
        unnamed.json()["data"]["id"],
    }
    assert all("key" not in k and "hash" not in k for k in listed)

    credits = (await client.get("/api/v1/credits", headers=auth(second["key"]))).json()
    assert (credits["account_id"], credits["balance"]) == (account_id, 5)

    revoked = await client.delete(f"/api/v1/keys/{second['data']['id']}", headers=auth(key))
    assert revoked.status_code == 200 and revoked.json()["data"]["revoked_at"]
    assert_envelope(
        await client.get("/api/v1/credits", headers=auth(second["key"])), 401, "authentication"
    )


async def test_accounts_cannot_touch_each_others_keys_or_files(
    client: Client, tryon_body: Any
) -> None:
    alice, alice_account = await new_key(client)
    alice_manager, _ = await new_key(client, 0, scope="management", account=alice_account)
    bob, _ = await new_key(client)
    bob_key_id = (await client.get("/api/v1/key", headers=auth(bob))).json()["data"]["id"]
    assert_envelope(
        await client.delete(f"/api/v1/keys/{bob_key_id}", headers=auth(alice_manager)),
        404,
        "not_found",
    )
    assert_envelope(
        await client.delete("/api/v1/keys/key_nothing", headers=auth(alice_manager)),
        404,
        "not_found",
    )
    assert (await client.get("/api/v1/credits", headers=auth(bob))).status_code == 200

    result = await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(alice))
    url = urlsplit(result.json()["images"][0]["url"])
    file_id = url.path.rsplit("/", 1)[1]
    owner = await client.get(f"/api/v1/files/{file_id}", headers=auth(alice))
    assert owner.status_code == 200
    stranger = await client.get(f"/api/v1/files/{file_id}", headers=auth(bob))
    absent = await client.get("/api/v1/files/file_absent", headers=auth(bob))
    assert_envelope(stranger, 404, "not_found")
    assert stranger.json() == absent.json()


async def test_signed_file_urls_refuse_tampering_expiry_and_reuse(
    client: Client, tryon_body: Any
) -> None:
    key, _ = await new_key(client)
    result = await client.post(
        "/api/v1/tryon", json=tryon_body(n=2, model="scripted/alpha"), headers=auth(key)
    )
    first, second = (urlsplit(i["url"]) for i in result.json()["images"])
    query = {k: v[0] for k, v in parse_qs(first.query).items()}
    path = first.path
    assert (await client.get(path, params=query)).status_code == 200
    tampered = {**query, "sig": query["sig"][:-1] + ("0" if query["sig"][-1] != "0" else "1")}
    assert_envelope(await client.get(path, params=tampered), 403, "invalid_signature")
    later = {**query, "expires": str(int(query["expires"]) + 1)}
    assert_envelope(await client.get(path, params=later), 403, "invalid_signature")
    expired = {**query, "expires": "1000"}
    assert_envelope(await client.get(path, params=expired), 403, "invalid_signature")
    assert_envelope(await client.get(second.path, params=query), 403, "invalid_signature")
    assert_envelope(await client.get(path), 401, "authentication")


async def test_models_list_reads_like_openai_and_openrouter(client: Client) -> None:
    response = await client.get("/api/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert ids[0] == "auto"
    assert {"scripted/alpha", "scripted/beta", "scripted/gamma"} <= set(ids)
    alpha = next(m for m in body["data"] if m["id"] == "scripted/alpha")
    assert alpha["object"] == "model" and alpha["owned_by"] == "scripted"
    assert alpha["pricing"]["credits_per_image"] == 3
    assert alpha["architecture"]["output_modalities"] == ["image"]
    assert alpha["tryon"]["max_garments"] == 2 and alpha["tryon"]["execution"] == "sync"


async def test_model_overrides_change_price_and_visibility(make_app: Any) -> None:
    extra = '[models."scripted/alpha"]\ncredits = 9\n[models."scripted/beta"]\nenabled = false\n'
    async with AsyncTestClient(app=make_app(extra=extra)) as client:
        data = (await client.get("/api/v1/models")).json()["data"]
        prices = {m["id"]: m["pricing"]["credits_per_image"] for m in data}
        assert prices["scripted/alpha"] == 9 and "scripted/beta" not in prices
        key, _ = await new_key(client)
        refused = await client.post(
            "/api/v1/tryon",
            json={"model": "scripted/beta", "person_images": "x", "garment_images": "y"},
            headers=auth(key),
        )
        assert_envelope(refused, 404, "model_not_found")


async def test_health_and_schema(client: Client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    schema = (await client.get("/schema/openapi.json")).json()
    body = schema["paths"]["/api/v1/tryon"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert body["application/json"]["schema"]["required"] == ["person_images", "garment_images"]


async def test_unknown_routes_and_methods_use_the_envelope(client: Client) -> None:
    assert_envelope(await client.get("/api/v1/nothing"), 404, "not_found")
    assert_envelope(await client.put("/api/v1/models"), 405, "method_not_allowed")


async def test_oversized_body_is_413(make_app: Any) -> None:
    async with AsyncTestClient(app=make_app(extra="")) as client:
        key, _ = await new_key(client)
        limit = client.app.state.gateway.settings.server.max_body_bytes
        response = await client.post(
            "/api/v1/tryon",
            content=b"x" * (limit + 1),
            headers={**auth(key), "content-type": "application/json"},
        )
        error = assert_envelope(response, 413, "payload_too_large")
        assert error["message"] == f"The request body is larger than the {limit}-byte limit."


async def test_each_key_shows_its_usage(client: Client, tryon_body: Any) -> None:
    """A management key sees what every key of the account spent (credits charged)."""
    spender, account = await new_key(client, credits=20)
    idle, _ = await new_key(client, account=account)
    manager, _ = await new_key(client, account=account, scope="management")
    for _ in range(2):
        answer = await client.post(
            "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(spender)
        )
        assert answer.status_code == 200, answer.text
    listing = (await client.get("/api/v1/keys", headers=auth(manager))).json()["data"]
    spent = {k["prefix"]: k["credits_spent"] for k in listing}
    assert spent == {spender[:12]: 6, idle[:12]: 0, manager[:12]: 0}
    own = (await client.get("/api/v1/key", headers=auth(spender))).json()["data"]
    assert own["credits_spent"] == 6
