"""tryon-example's tests: the plugin contract kit, and example/mirror through the gateway.

Run with ``uv run pytest`` in the plugin's folder: pyproject.toml puts pytest-asyncio in auto
mode for the async test.
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlsplit

import tryon_example
from PIL import Image, ImageOps

from tryon_core.testing import ProviderContract, gateway


class TestMirrorContract(ProviderContract):
    """What every provider must do. example/mirror has no upstream (its spec names no fake),
    so the kit skips the fault and resume checks and runs the others."""

    plugin = tryon_example
    provider = "example"


def photo(width: int = 240, height: int = 320) -> bytes:
    """A test 'person': left half dark, right half light, so a mirror is easy to see."""
    image = Image.new("RGB", (width, height), (230, 230, 230))
    image.paste((20, 20, 20), (0, 0, width // 2, height))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_mirror_through_the_gateway(tmp_path: Path) -> None:
    # The whole gateway in-process, on SQLite in tmp_path, with only this plugin loaded, and a
    # key whose account holds 5 credits.
    config = "[providers.example]\nenabled = true\n"
    async with gateway(config, plugins=[tryon_example], tmp_path=tmp_path, credits=5) as gw:
        person = photo()
        response = await gw.client.post(
            "/api/v1/tryon",
            headers=gw.headers,
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
        download = await gw.client.get(f"{link.path}?{link.query}")
        assert download.headers["content-type"] == "image/png"
        result = Image.open(io.BytesIO(download.content)).convert("RGB")
        expected = ImageOps.mirror(Image.open(io.BytesIO(person)).convert("RGB"))
        assert result.tobytes() == expected.tobytes()
        assert await gw.credits() == (4, 0)  # (balance, reserved)
