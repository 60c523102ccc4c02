"""Faults around the upstream call: timeouts, cool-downs, storage and database failures."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import auth, new_key
from tryon_core.errors import ProviderUnavailable
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Hang

Client = AsyncTestClient[Litestar]


async def balance(client: Client, key: str) -> tuple[int, int]:
    body = (await client.get("/api/v1/credits", headers=auth(key))).json()
    return body["balance"], body["reserved"]


async def test_a_hanging_upstream_times_out_falls_back_and_is_not_charged(
    make_app: Any, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    scripted.script("scripted/gamma", Hang())
    app = make_app()
    app.state.gateway.catalog.entries["scripted/gamma"].config.timeout = 0.3  # per attempt
    async with AsyncTestClient(app=app) as client:
        key, _ = await new_key(client, credits=10)
        response = await client.post(
            "/api/v1/tryon",
            json=tryon_body(models=["scripted/gamma", "scripted/alpha"]),
            headers=auth(key),
        )
        assert response.status_code == 200, response.text
        attempts = response.json()["attempts"]
        assert attempts[0]["error"]["type"] == "timeout"
        assert await balance(client, key) == (7, 0)

        scripted.script("scripted/gamma", Hang())
        alone = await client.post(
            "/api/v1/tryon", json=tryon_body(model="scripted/gamma"), headers=auth(key)
        )
        assert alone.status_code == 504 and alone.json()["error"]["type"] == "timeout"
        assert await balance(client, key) == (7, 0)


async def test_a_model_that_keeps_failing_cools_down_unless_it_is_the_last(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, _ = await new_key(client, credits=100)
    scripted.script("scripted/gamma", *[ProviderUnavailable("down")] * 3)
    body = tryon_body(models=["scripted/gamma", "scripted/alpha"])
    for _ in range(3):
        response = await client.post("/api/v1/tryon", json=body, headers=auth(key))
        assert response.json()["attempts"][0]["model"] == "scripted/gamma"
    # Three failures in a row: gamma is skipped while it cools down...
    skipped = await client.post("/api/v1/tryon", json=body, headers=auth(key))
    assert [a["model"] for a in skipped.json()["attempts"]] == ["scripted/alpha"]
    # ...unless it is the only candidate left.
    alone = await client.post(
        "/api/v1/tryon", json=tryon_body(model="scripted/gamma"), headers=auth(key)
    )
    assert alone.status_code == 200 and alone.json()["model"] == "scripted/gamma"


class BrokenStore:
    async def put(self, key: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    async def get(self, key: str) -> bytes:
        raise FileNotFoundError(key)

    async def delete(self, key: str) -> None:
        return None


async def test_a_full_disk_fails_cleanly_and_releases_the_credits(
    client: Client, tryon_body: Any
) -> None:
    key, _ = await new_key(client, credits=10)
    client.app.state.gateway.store = BrokenStore()
    response = await client.post(
        "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
    )
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "service_unavailable"
    assert "retry-after" in response.headers
    assert await balance(client, key) == (10, 0)


async def test_readiness_fails_with_503_when_the_database_is_unreachable(make_app: Any) -> None:
    app = make_app("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app.state.gateway.settings.database.migrate_on_start = False
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["type"] == "service_unavailable"
        unauth = await client.get("/api/v1/credits", headers=auth("tryon_" + "a" * 43))
        assert unauth.status_code == 503
