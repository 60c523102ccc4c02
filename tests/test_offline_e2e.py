"""The out-of-the-box path: the installed offline engine through its entry point, over HTTP."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlsplit

from litestar.testing import AsyncTestClient
from PIL import Image

from tests.helpers import SAMPLES, auth, new_key
from tryon_core.api import create_app
from tryon_core.config import parse_settings


async def test_the_offline_engine_dresses_the_sample_person(tmp_path: Path) -> None:
    settings = parse_settings(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
        f'[storage]\npath = "{tmp_path}/files"\n[providers.local]\nenabled = true\n'
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        models = [m["id"] for m in (await client.get("/api/v1/models")).json()["data"]]
        assert models == ["auto", "local/overlay"]
        key, _ = await new_key(client, credits=3)
        response = await client.post(
            "/api/v1/tryon",
            files=[
                ("person_images", ("p.jpg", (SAMPLES / "person.jpg").read_bytes(), "image/jpeg")),
                ("garment_images", ("g.png", (SAMPLES / "garment.png").read_bytes(), "image/png")),
            ],
            data={"category": "tops", "output_format": "jpeg"},
            headers=auth(key),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == "local/overlay" and body["usage"] == {"credits": 1}
        link = urlsplit(body["images"][0]["url"])
        image = await client.get(f"{link.path}?{link.query}")
        assert image.headers["content-type"] == "image/jpeg"
        with (
            Image.open(io.BytesIO(image.content)) as result,
            Image.open(SAMPLES / "person.jpg") as person,
        ):
            assert result.size == person.size
        credits = (await client.get("/api/v1/credits", headers=auth(key))).json()
        assert (credits["balance"], credits["reserved"]) == (2, 0)
