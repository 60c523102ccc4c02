"""google/gemini-2.5-flash-image through the whole gateway, with the fake as its upstream."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import tryon_gemini.plugin
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tryon_gemini.fake import create_app as create_fake

from tryon_core import accounts, billing
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.testing import FakeState, Fault, serve_app_in_thread

MODEL = "google/gemini-2.5-flash-image"


class Fake(msgspec.Struct):
    url: str
    state: FakeState


@pytest.fixture
def fake() -> Iterator[Fake]:
    """The fake in a thread of its own: the test client blocks this test's event loop."""
    app = create_fake()
    with serve_app_in_thread(app) as url:
        yield Fake(url, app.state.fake)


@pytest.fixture
async def gateway(
    fake: Any, tmp_path: Path
) -> AsyncIterator[tuple[AsyncTestClient[Litestar], str]]:
    settings = parse_settings(
        f"""
[database]
url = "sqlite+aiosqlite:///{tmp_path}/test.db"
[storage]
path = "{tmp_path}/files"
[providers.gemini]
enabled = true
api_key = "test-key"
base_url = "{fake.url}"
timeout = 20
"""
    )
    app = create_app(settings, extra_plugins=[tryon_gemini.plugin], load_entry_points=False)
    async with AsyncTestClient(app=app) as client:
        async with app.state.gateway.database.transaction() as conn:
            account = await accounts.create_account(conn, name="test")
            _, key = await accounts.create_key(conn, account_id=account, name="test")
            await billing.grant(conn, account, 20)
        yield client, key


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


async def tryon(client: AsyncTestClient[Litestar], key: str, picture: Any, **extra: Any) -> Any:
    body = {
        "model": MODEL,
        "person_images": data_url(picture(300, 400, "JPEG"), "image/jpeg"),
        "garment_images": [data_url(picture(200, 200, colour=(200, 20, 20)), "image/png")],
        "output_format": "webp",
        **extra,
    }
    return await client.post("/api/v1/tryon", json=body, headers={"Authorization": f"Bearer {key}"})


async def balance(client: AsyncTestClient[Litestar], key: str) -> int:
    credits = await client.get("/api/v1/credits", headers={"Authorization": f"Bearer {key}"})
    return int(credits.json()["balance"])


async def test_a_try_on_is_served_charged_and_recorded(
    gateway: Any, fake: Any, picture: Any
) -> None:
    client, key = gateway
    models = (await client.get("/api/v1/models", headers={"Authorization": f"Bearer {key}"})).json()
    [listed] = [m for m in models["data"] if m["id"] == MODEL]
    response = await tryon(client, key, picture, prompt="sleeves rolled up", category="tops")
    assert response.status_code == 200, (response.text, fake.state.requests)
    body = response.json()
    [image] = body["images"]
    assert (image["content_type"], image["width"], image["height"]) == ("image/webp", 864, 1184)
    assert body["usage"] == {"credits": 4}
    [attempt] = body["attempts"]
    assert attempt["status"] == "succeeded" and len(attempt["task_id"]) == 23
    [request] = fake.state.requests
    assert request.summary["texts"][0].endswith("sleeves rolled up")
    assert await balance(client, key) == 16
    assert listed["id"] == MODEL


async def test_a_refusal_stops_and_costs_nothing(gateway: Any, fake: Any, picture: Any) -> None:
    client, key = gateway
    fake.state.inject(Fault(kind="content_refused", code="IMAGE_SAFETY"))
    response = await tryon(client, key, picture)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "content_policy_violation"
    assert error["metadata"]["attempts"][0]["error"]["code"] == "IMAGE_SAFETY"
    assert await balance(client, key) == 20


async def test_a_rate_limit_carries_gemini_s_retry_delay(
    gateway: Any, fake: Any, picture: Any
) -> None:
    client, key = gateway
    fake.state.inject(Fault(kind="rate_limit", retry_after=7))
    response = await tryon(client, key, picture)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert "test-key" not in response.text
    assert await balance(client, key) == 20
