"""tryon-example's tests: the plugin contract kit, and example/mirror through the gateway.

Run with ``uv run pytest`` in the plugin's folder: pyproject.toml puts pytest-asyncio in auto
mode for the async test.
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlsplit

import tryon_example
from litestar.testing import AsyncTestClient
from PIL import Image, ImageOps

from tryon_core import accounts, billing
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.db import create_database
from tryon_core.testing import ProviderContract


class TestMirrorContract(ProviderContract):
    """What every provider must do. example/mirror has no upstream (its spec names no fake),
    so the kit skips the fault and resume checks and runs the others."""

    plugin = tryon_example
    provider = "example"


async def new_key(database_url: str, credits: int) -> str:
    """An account with ``credits`` and a key for it, written straight to the database."""
    database = create_database(database_url)
    try:
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn, name="test")
            _, key = await accounts.create_key(conn, account_id=account_id, name="test")
            await billing.grant(conn, account_id, credits)
    finally:
        await database.dispose()
    return key


def photo(width: int = 240, height: int = 320) -> bytes:
    """A test 'person': left half dark, right half light, so a mirror is easy to see."""
    image = Image.new("RGB", (width, height), (230, 230, 230))
    image.paste((20, 20, 20), (0, 0, width // 2, height))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_mirror_through_the_gateway(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/test.db"
    settings = parse_settings(
        f"""
[database]
url = "{database_url}"
[storage]
path = "{tmp_path}/files"
[providers.example]
enabled = true
"""
    )
    app = create_app(settings, extra_plugins=[tryon_example], load_entry_points=False)
    async with AsyncTestClient(app=app) as client:  # runs start-up: migrations included
        key = await new_key(database_url, credits=5)
        person = photo()
        response = await client.post(
            "/api/v1/tryon",
            headers={"Authorization": f"Bearer {key}"},
            files=[
                ("person_images", ("person.png", person, "image/png")),
                ("garment_images", ("garment.png", photo(100, 100), "image/png")),
            ],
            data={"model": "example/mirror"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == "example/mirror"
        assert body["usage"] == {"credits": 1}

        # The signed URL needs no key. The test client serves the app under another host
        # name than server.public_url, so only the path and query are used here.
        link = urlsplit(body["images"][0]["url"])
        download = await client.get(f"{link.path}?{link.query}")
        assert download.headers["content-type"] == "image/png"
        result = Image.open(io.BytesIO(download.content)).convert("RGB")
        expected = ImageOps.mirror(Image.open(io.BytesIO(person)).convert("RGB"))
        assert result.tobytes() == expected.tobytes()

        credits = await client.get("/api/v1/credits", headers={"Authorization": f"Bearer {key}"})
        assert credits.json()["balance"] == 4
