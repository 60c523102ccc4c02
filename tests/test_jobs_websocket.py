"""The job WebSocket against a real uvicorn server, with a real WebSocket client.

Poll and WebSocket subscribers must agree on the sequence of states; a browser can open the
socket with the job token of ``wsUrl`` or with its key as a subprotocol; refusals say why.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import auth, live_server, new_key
from tryon_core.errors import ProviderUnavailable
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

ORDER = {"queued": 0, "processing": 1, "completed": 2, "failed": 2}


@asynccontextmanager
async def gateway(
    make_app: Callable[..., Litestar], database_url: str
) -> AsyncIterator[tuple[Litestar, str, httpx.AsyncClient]]:
    app = make_app(database_url)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield app, url, http


def on(url: str, ws_url: str) -> str:
    """The wsUrl the API returned (for its public_url), pointed at the live server."""
    parts = urlsplit(ws_url)
    return f"ws://{urlsplit(url).netloc}{parts.path}?{parts.query}"


async def messages(socket: ClientConnection) -> list[dict[str, Any]]:
    received = []
    try:
        async for raw in socket:
            received.append(json.loads(raw))
    except ConnectionClosed:
        pass
    return received


async def submit(http: httpx.AsyncClient, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/api/v1/tryon", json={**body, "mode": "async"}, headers=auth(key))
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def test_poll_and_websocket_agree_on_the_sequence_of_states(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Any,
) -> None:
    scripted.script("scripted/alpha", Sleep(0.4, then=ProviderUnavailable("down")))
    scripted.script("scripted/beta", Sleep(0.4))
    async with gateway(make_app, database_url) as (app, url, http):
        key, _ = await new_key(app)
        accepted = await submit(
            http, key, tryon_body(model="scripted/alpha", models=["scripted/beta"])
        )
        job_url = f"/api/v1/tryon/{accepted['jobId']}"
        polled: list[dict[str, Any]] = []

        async def poll() -> None:
            while True:
                body = (await http.get(job_url, headers=auth(key))).json()
                if not polled or polled[-1]["updated_at"] != body["updated_at"]:
                    polled.append(body)
                if body["status"] in ("completed", "failed"):
                    return
                await asyncio.sleep(0.02)

        async with connect(on(url, accepted["wsUrl"])) as socket:
            received, _ = await asyncio.gather(messages(socket), poll())
            assert socket.close_code == 1000
        assert all(m["type"] == "status" for m in received)
        statuses = [m["job"]["status"] for m in received]
        assert statuses[-1] == "completed"
        assert [ORDER[s] for s in statuses] == sorted(ORDER[s] for s in statuses)
        progress = [m["job"]["progress"] for m in received if m["job"]["progress"]]
        assert {(p["attempt"], p["model"]) for p in progress} >= {
            (1, "scripted/alpha"),
            (2, "scripted/beta"),
        }
        # the same job, the same end, and one order of states for both subscribers
        assert received[-1]["job"]["attempts"] == polled[-1]["attempts"]
        assert received[-1]["job"]["usage"] == polled[-1]["usage"]
        merged = sorted(
            [(m["job"]["updated_at"], m["job"]["status"]) for m in received]
            + [(p["updated_at"], p["status"]) for p in polled]
        )
        assert [ORDER[s] for _, s in merged] == sorted(ORDER[s] for _, s in merged)


async def test_a_subscriber_after_the_end_gets_the_final_status_and_the_close(
    make_app: Callable[..., Litestar], database_url: str, tryon_body: Any
) -> None:
    async with gateway(make_app, database_url) as (app, url, http):
        key, _ = await new_key(app)
        accepted = await submit(http, key, tryon_body())
        for _ in range(200):
            body = (await http.get(f"/api/v1/tryon/{accepted['jobId']}", headers=auth(key))).json()
            if body["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        async with connect(on(url, accepted["wsUrl"])) as socket:
            received = await messages(socket)
            assert socket.close_code == 1000
        assert [m["job"]["status"] for m in received] == ["completed"]
        assert received[0]["job"]["images"][0]["url"].startswith("http://testserver.local/")


async def test_a_browser_can_send_its_key_as_a_subprotocol(
    make_app: Callable[..., Litestar], database_url: str, tryon_body: Any
) -> None:
    async with gateway(make_app, database_url) as (app, url, http):
        key, _ = await new_key(app)
        accepted = await submit(http, key, tryon_body())
        plain = f"ws://{urlsplit(url).netloc}/api/v1/tryon/{accepted['jobId']}/ws"
        async with connect(plain, subprotocols=["tryon", f"tryon-key.{key}"]) as socket:  # type: ignore[list-item]
            assert socket.subprotocol == "tryon"
            received = await messages(socket)
        assert received[-1]["job"]["status"] == "completed"
        async with connect(plain, additional_headers=auth(key)) as socket:
            received = await messages(socket)
        assert received[-1]["job"]["status"] == "completed"


@pytest.mark.parametrize("case", ["tampered", "other_job", "no_credentials", "other_account"])
async def test_refusals_say_why_and_close(
    make_app: Callable[..., Litestar], database_url: str, tryon_body: Any, case: str
) -> None:
    async with gateway(make_app, database_url) as (app, url, http):
        key, _ = await new_key(app)
        stranger, _ = await new_key(app)
        first = await submit(http, key, tryon_body())
        second = await submit(http, key, tryon_body())
        base = f"ws://{urlsplit(url).netloc}/api/v1/tryon/{first['jobId']}/ws"
        token = urlsplit(first["wsUrl"]).query.removeprefix("token=")
        other_token = urlsplit(second["wsUrl"]).query.removeprefix("token=")
        target, options = {
            "tampered": (f"{base}?token={token[:-1]}{'0' if token[-1] != '0' else '1'}", {}),
            "other_job": (f"{base}?token={other_token}", {}),
            "no_credentials": (base, {}),
            "other_account": (base, {"additional_headers": auth(stranger)}),
        }[case]
        async with connect(target, **options) as socket:
            received = await messages(socket)
            code = socket.close_code
        expected = 404 if case == "other_account" else 401
        assert code == 4000 + expected
        (message,) = received
        assert message["type"] == "error"
        assert message["error"]["code"] == expected
        assert message["error"]["message"]
        assert key not in json.dumps(message)
