"""openai/gpt-image-1 through the whole gateway, against the fake on 127.0.0.1.

The gateway runs on its own port in the test's event loop, beside the fake (Litestar's
AsyncTestClient calls the app synchronously, which would block the loop the fake answers on).
Shows what the core adds around the adapter: config with a secret, prices, the per-attempt
timeout (a hanging upstream), the check of the returned bytes, and the error envelope.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from litestar import Litestar
from PIL import Image
from tryon_openai import plugin

from tryon_core import accounts, billing
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.plugin import InputImage
from tryon_core.testing import FakeState, serve_app

SECRET = "sk-gateway-SECRET-0123456789"


@asynccontextmanager
async def gateway(tmp_path: Path, section: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The gateway with ``[providers.openai]`` = ``section``, served; a client and a key."""
    settings = parse_settings(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/test.db"\n'
        f'[storage]\npath = "{tmp_path}/files"\n'
        f"[providers.openai]\nenabled = true\n{section}"
    )
    app: Litestar = create_app(settings, extra_plugins=[plugin], load_entry_points=False)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        async with app.state.gateway.database.transaction() as conn:
            account_id = await accounts.create_account(conn, name="test")
            _, key = await accounts.create_key(conn, account_id=account_id, name="test")
            await billing.grant(conn, account_id, 100)
        yield client, key


async def try_on(
    client: httpx.AsyncClient, key: str, person: InputImage, garment: InputImage, **fields: Any
) -> httpx.Response:
    return await client.post(
        "/api/v1/tryon",
        headers={"Authorization": f"Bearer {key}"},
        files=[
            ("person_images", ("person.png", person.data, "image/png")),
            ("garment_images", ("garment.jpg", garment.data, "image/jpeg")),
        ],
        data={"model": "openai/gpt-image-1", **fields},
    )


async def balance(client: httpx.AsyncClient, key: str) -> int:
    credits = await client.get("/api/v1/credits", headers={"Authorization": f"Bearer {key}"})
    value: int = credits.json()["balance"]
    return value


async def test_try_on_and_failures_through_the_gateway(
    tmp_path: Path,
    fake_url: str,
    state: FakeState,
    person: InputImage,
    garment: InputImage,
) -> None:
    section = f'api_key = "test-key"\nbase_url = "{fake_url}/v1"\ntimeout = 1.5\n'
    async with gateway(tmp_path, section) as (client, key):
        ok = await try_on(
            client, key, person, garment, output_format="jpeg", prompt="roll up the sleeves"
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["usage"] == {"credits": 30}
        assert "roll up the sleeves" in state.requests[-1].summary["fields"]["prompt"]
        link = urlsplit(ok.json()["images"][0]["url"])
        download = await client.get(f"{link.path}?{link.query}")
        assert download.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(download.content)) as result:
            assert result.size == (person.width, person.height)
        assert await balance(client, key) == 70

        expected = {
            "hang": (504, "timeout"),
            "bad_image": (502, "bad_response"),
            "no_image": (502, "no_image"),
            "quota": (502, "provider_misconfigured"),
            "rate_limit": (429, "rate_limit_exceeded"),
            "content_refused": (400, "content_policy_violation"),
            "invalid_input": (422, "invalid_input"),
        }
        for kind, (status, error_type) in expected.items():
            state.inject(kind)
            failed = await try_on(client, key, person, garment)
            assert (failed.status_code, failed.json()["error"]["type"]) == (status, error_type)
            assert await balance(client, key) == 70  # a failure costs nothing


async def test_the_gateway_s_key_never_reaches_a_client(
    tmp_path: Path, fake_url: str, person: InputImage, garment: InputImage
) -> None:
    """Whatever the upstream says about a wrong key (OpenAI quotes it, masked)."""
    async with gateway(tmp_path, f'api_key = "{SECRET}"\nbase_url = "{fake_url}/v1"\n') as (
        client,
        key,
    ):
        response = await try_on(client, key, person, garment)
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "provider_misconfigured"
    assert SECRET not in response.text
    assert SECRET[-4:] not in response.text
