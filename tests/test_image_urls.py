"""Image URLs through the API: fetched behind the egress guard, refused clearly, never charged."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from litestar import Litestar, Response, get
from litestar.params import FromPath

from tests.helpers import SAMPLES, auth, live_server, new_key
from tryon_core.testing import ScriptedProvider

hits: list[str] = []


@get("/{name:str}")
async def serve(name: FromPath[str]) -> Response[bytes]:
    hits.append(name)
    if name == "away":
        return Response(b"", status_code=302, headers={"Location": "http://169.254.169.254/x"})
    path = SAMPLES / name
    if not path.is_file():
        return Response(b"missing", status_code=404)
    return Response(path.read_bytes(), media_type="application/octet-stream")


async def test_urls_are_fetched_only_from_allowed_hosts(
    make_app: Any, scripted: ScriptedProvider
) -> None:
    hits.clear()
    origin_app = Litestar([serve], logging_config=None)
    async with live_server(origin_app) as origin:
        port = urlsplit(origin).port
        allowed = make_app(extra=f'[fetch]\nallow_hosts = ["127.0.0.1:{port}"]\n')
        closed = make_app()
        async with live_server(allowed) as gateway, httpx.AsyncClient(base_url=gateway) as client:
            key, _ = await new_key(allowed, credits=10)
            body = {
                "model": "scripted/alpha",
                "person_images": f"{origin}/person.jpg",
                "garment_images": [f"{origin}/garment.png"],
            }
            ok = await client.post("/api/v1/tryon", json=body, headers=auth(key))
            assert ok.status_code == 200, ok.text
            assert scripted.calls[-1].person.content_type == "image/jpeg"

            for garment, kind in (("missing.png", "image_not_found"), ("away", "forbidden_url")):
                refused = await client.post(
                    "/api/v1/tryon",
                    json={**body, "garment_images": [f"{origin}/{garment}"]},
                    headers=auth(key),
                )
                assert refused.status_code == 400, refused.text
                error = refused.json()["error"]
                assert (error["type"], error["param"]) == (kind, "garment_images[0]")
            credits = (await client.get("/api/v1/credits", headers=auth(key))).json()
            assert (credits["balance"], credits["reserved"]) == (7, 0)

        before = len(hits)
        async with live_server(closed) as gateway, httpx.AsyncClient(base_url=gateway) as client:
            key, _ = await new_key(closed, credits=10)
            refused = await client.post("/api/v1/tryon", json=body, headers=auth(key))
            assert refused.status_code == 400
            assert refused.json()["error"]["type"] == "forbidden_url"
            assert refused.json()["error"]["param"] == "person_images[0]"
        assert len(hits) == before  # the loopback origin never heard from the closed gateway
