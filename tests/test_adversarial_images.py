"""Hostile images through the HTTP API, as file uploads and as data URLs.

Bombs, broken files, lies about the type, non-images and animations are refused with a clear
4xx naming the field; CMYK, 16-bit and EXIF-rotated photos are normalized and served. Never a
500, never a hang, never a credit taken for a refusal.
"""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image

from tests._images import (
    NOT_IMAGES,
    animated,
    exif_rotated_jpeg,
    forged_jpeg,
    forged_png,
    forged_webp,
    make,
)
from tests.helpers import SAMPLES, auth, new_key
from tryon_core.testing import ScriptedProvider

Client = AsyncTestClient[Litestar]
PERSON = (SAMPLES / "person.jpg").read_bytes()
JPEG = make("RGB", (96, 80), "JPEG")
PNG = make("RGB", (96, 80), "PNG")

REFUSED: list[tuple[str, bytes, int, str]] = [
    ("bomb png", forged_png(100_000, 100_000), 413, "image_too_large"),
    ("bomb png wide", forged_png(65_535, 64), 413, "image_too_large"),
    ("bomb jpeg", forged_jpeg(65_000, 65_000), 413, "image_too_large"),
    ("bomb webp", forged_webp(16_000, 16_000), 413, "image_too_large"),
    ("truncated png", PNG[: len(PNG) // 2], 400, "invalid_image"),
    ("truncated jpeg", JPEG[: len(JPEG) // 2], 400, "invalid_image"),
    ("truncated webp", make("RGB", (96, 80), "WEBP")[:60], 400, "invalid_image"),
    ("png header only", PNG[:33], 400, "invalid_image"),
    ("corrupt png", PNG[:40] + b"\x00" * (len(PNG) - 40), 400, "invalid_image"),
    ("corrupt jpeg", JPEG[:200] + b"\xff" * 400, 400, "invalid_image"),
    ("signature only", b"\x89PNG\r\n\x1a\n", 400, "invalid_image"),
    ("empty size png", forged_png(0, 0), 400, "invalid_image"),
    *((name, data, 415, "unsupported_image_format") for name, data in NOT_IMAGES.items()
      if name != "empty"),
    ("animated gif", animated("GIF"), 415, "unsupported_image_format"),
]  # fmt: skip

NORMALIZED: list[tuple[str, bytes, tuple[int, int]]] = [
    ("cmyk jpeg", make("CMYK", (96, 80), "JPEG"), (96, 80)),
    ("16-bit png", make("I;16", (96, 80), "PNG"), (96, 80)),
    ("exif rotated", exif_rotated_jpeg((120, 80), orientation=6), (80, 120)),
    ("png named jpg", PNG, (96, 80)),
    ("animated png", animated("PNG"), (80, 80)),
    ("animated webp", animated("WEBP"), (80, 80)),
]


def data_url(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode()


async def send(client: Client, key: str, garment: bytes, how: str, name: str) -> Any:
    """One try-on with ``garment`` as an upload (named .jpg, typed image/jpeg) or a data URL."""
    async with asyncio.timeout(20):
        if how == "upload":
            files: list[tuple[str, Any]] = [
                ("person_images", ("person.jpg", PERSON, "image/jpeg")),
                ("garment_images", (f"{name}.jpg", garment, "image/jpeg")),
                ("model", (None, "scripted/alpha")),
            ]
            return await client.post("/api/v1/tryon", files=files, headers=auth(key))
        body = {
            "model": "scripted/alpha",
            "person_images": data_url(PERSON, "image/jpeg"),
            "garment_images": [data_url(garment, "image/png")],  # the declared type lies, too
        }
        return await client.post("/api/v1/tryon", json=body, headers=auth(key))


@pytest.mark.parametrize("how", ["upload", "data_url"])
async def test_hostile_images_are_refused_clearly_and_cost_nothing(
    client: Client, scripted: ScriptedProvider, how: str
) -> None:
    key, _ = await new_key(client, credits=10)
    wrong = []
    for name, data, status, kind in REFUSED:
        response = await send(client, key, data, how, name)
        error = response.json().get("error", {})
        got = (response.status_code, error.get("type"), error.get("param"))
        if got != (status, kind, "garment_images[0]"):
            wrong.append(f"{name}: {got} {error.get('message')}")
    assert wrong == []
    assert scripted.calls == []
    credits = (await client.get("/api/v1/credits", headers=auth(key))).json()
    assert (credits["balance"], credits["reserved"]) == (10, 0)


@pytest.mark.parametrize("how", ["upload", "data_url"])
@pytest.mark.parametrize(("name", "data", "size"), NORMALIZED, ids=[n for n, _, _ in NORMALIZED])
async def test_odd_but_honest_images_are_normalized(
    client: Client,
    scripted: ScriptedProvider,
    how: str,
    name: str,
    data: bytes,
    size: tuple[int, int],
) -> None:
    key, _ = await new_key(client, credits=10)
    response = await send(client, key, data, how, name)
    assert response.status_code == 200, response.text
    garment = scripted.calls[-1].garments[0]
    assert (garment.width, garment.height) == size
    image = Image.open(io.BytesIO(garment.data))
    assert image.size == size
    assert image.mode in ("RGB", "RGBA")
    assert getattr(image, "n_frames", 1) == 1
    assert image.getexif().get(0x0112, 1) == 1  # what reaches the model is upright


async def test_a_data_url_declaring_a_non_image_is_refused(client: Client) -> None:
    """A non-image type is refused whatever the bytes; an image/* type is never trusted: the
    bytes decide (an SVG is refused, a PNG labelled image/svg+xml is read as the PNG it is)."""
    key, _ = await new_key(client, credits=10)
    cases = [
        ("text/html", PNG, 415),
        ("application/pdf", PNG, 415),
        ("application/zip", PNG, 415),
        ("image/svg+xml", NOT_IMAGES["svg"], 415),
        ("image/svg+xml", PNG, 200),
    ]
    for media_type, data, status in cases:
        body = {
            "model": "scripted/alpha",
            "person_images": data_url(PERSON, "image/jpeg"),
            "garment_images": [data_url(data, media_type)],
        }
        response = await client.post("/api/v1/tryon", json=body, headers=auth(key))
        assert response.status_code == status, (media_type, response.text)
        if status != 200:
            error = response.json()["error"]
            assert (error["type"], error["param"]) == (
                "unsupported_image_format",
                "garment_images[0]",
            )
