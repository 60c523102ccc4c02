"""openai/gpt-image-1 through the whole gateway, against the fake on 127.0.0.1.

The gateway runs on its own port in the test's event loop, beside the fake (a test client that
calls the app from another thread would block the loop the fake answers on). Shows what the
core adds around the adapter: config with a secret, prices, the per-attempt
timeout (a hanging upstream), the check of the returned bytes, and the error envelope.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from PIL import Image
from tryon_openai import plugin

from tryon_core import accounts, billing
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.db import create_database
from tryon_core.provider import InputImage
from tryon_core.testing.fakes import FakeState
from tryon_core.testing.server import serve_app

SECRET = "sk-gateway-SECRET-0123456789"


async def new_key(database_url: str, credits: int) -> str:
    database = create_database(database_url)
    try:
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn, name="test")
            _, key = await accounts.create_key(conn, account_id=account_id, name="test")
            await billing.grant(conn, account_id, credits)
    finally:
        await database.dispose()
    return key


async def test_try_on_and_failures_through_the_gateway(
    tmp_path: Path,
    fake_url: str,
    state: FakeState,
    person: InputImage,
    garment: InputImage,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/test.db"
    settings = parse_settings(
        f"""
[database]
url = "{database_url}"
[storage]
path = "{tmp_path}/files"
[providers.openai]
enabled = true
api_key = "test-key"
base_url = "{fake_url}/v1"
timeout = 1.5
"""
    )
    app = create_app(settings, extra_plugins=[plugin], load_entry_points=False)
    async with serve_app(app) as gateway, httpx.AsyncClient(base_url=gateway) as client:
        key = await new_key(database_url, credits=100)
        headers = {"Authorization": f"Bearer {key}"}

        async def try_on(**fields: Any) -> Any:
            return await client.post(
                "/api/v1/tryon",
                headers=headers,
                files=[
                    ("person_images", ("person.png", person.data, "image/png")),
                    ("garment_images", ("garment.jpg", garment.data, "image/jpeg")),
                ],
                data={"model": "openai/gpt-image-1", **fields},
            )

        async def balance() -> int:
            credits = await client.get("/api/v1/credits", headers=headers)
            value: int = credits.json()["balance"]
            return value

        ok = await try_on(output_format="jpeg", prompt="roll up the sleeves")
        assert ok.status_code == 200, ok.text
        assert ok.json()["usage"] == {"credits": 30}
        assert "roll up the sleeves" in state.requests[-1].summary["fields"]["prompt"]
        link = urlsplit(ok.json()["images"][0]["url"])
        download = await client.get(f"{link.path}?{link.query}")
        assert download.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(download.content)) as result:
            assert result.size == (person.width, person.height)
        assert await balance() == 70

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
            failed = await try_on()
            assert (failed.status_code, failed.json()["error"]["type"]) == (status, error_type)
            assert await balance() == 70  # a failure costs nothing

    # The gateway's own key never reaches a client, whatever the upstream says about it.
    settings = parse_settings(
        f"""
[database]
url = "{database_url}"
[storage]
path = "{tmp_path}/files"
[providers.openai]
enabled = true
api_key = "{SECRET}"
base_url = "{fake_url}/v1"
"""
    )
    app = create_app(settings, extra_plugins=[plugin], load_entry_points=False)
    async with serve_app(app) as gateway, httpx.AsyncClient(base_url=gateway) as client:
        response = await client.post(
            "/api/v1/tryon",
            headers={"Authorization": f"Bearer {key}"},
            files=[
                ("person_images", ("person.png", person.data, "image/png")),
                ("garment_images", ("garment.jpg", garment.data, "image/jpeg")),
            ],
            data={"model": "openai/gpt-image-1"},
        )
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "provider_misconfigured"
        assert SECRET not in response.text
        assert SECRET[-4:] not in response.text
