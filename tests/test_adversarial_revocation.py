"""Revoking a key ends the live work it started (issue 15, finding 10).

A WebSocket opened with the key closes (4401) and sends no status after the revocation; a
chat stream on the key stops, ends with the error and charges nothing; a sync generation that
finishes after the revocation is not charged either.
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
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import auth, live_server, new_key, own_database
from tests.jobs_helpers import money
from tests.test_chat_sdk import MESSAGES
from tryon_core import accounts
from tryon_core.api.routes import chat as chat_route
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep


@asynccontextmanager
async def served(
    make_app: Callable[..., Litestar],
) -> AsyncIterator[tuple[Litestar, str, httpx.AsyncClient]]:
    app = make_app()
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield app, url, http


async def revoke(app: Litestar, key: str) -> None:
    async with own_database(app) as database, database.transaction() as conn:
        for info in await accounts.list_keys(conn):
            if key.startswith(info.prefix):
                await accounts.revoke_key(conn, info.id)


async def test_a_websocket_opened_with_a_key_closes_when_it_is_revoked(
    make_app: Callable[..., Litestar],
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    scripted.script("scripted/alpha", Sleep(20.0))
    async with served(make_app) as (app, url, http):
        key, _ = await new_key(app, credits=10)
        body = tryon_body(model="scripted/alpha", mode="async")
        accepted = await http.post("/api/v1/tryon", json=body, headers=auth(key))
        job_id = accepted.json()["jobId"]
        ws = f"ws://{urlsplit(url).netloc}/api/v1/tryon/{job_id}/ws"
        async with connect(ws, subprotocols=[f"tryon-key.{key}"]) as socket:  # type: ignore[list-item]
            while True:  # until the attempt runs: from then on, nothing changes for 20 s
                job = json.loads(await socket.recv())["job"]
                if job["status"] == "processing" and job.get("progress"):
                    break
            await revoke(app, key)
            after = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    after.append(json.loads(await asyncio.wait_for(socket.recv(), 15)))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert [m["type"] for m in after] == ["error"]
        assert after[0]["error"]["type"] == "key_revoked"


async def test_a_chat_stream_on_a_revoked_key_ends_and_charges_nothing(
    make_app: Callable[..., Litestar],
    scripted: ScriptedProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chat_route, "HOLD_SECONDS", 0.0)
    monkeypatch.setattr(chat_route, "KEEPALIVE_SECONDS", 0.1)
    scripted.script("scripted/alpha", Sleep(3.0))
    async with served(make_app) as (app, _, http):
        key, account = await new_key(app, credits=10)
        body = {"model": "scripted/alpha", "messages": MESSAGES, "stream": True}
        events = []
        async with http.stream(
            "POST", "/api/v1/chat/completions", json=body, headers=auth(key)
        ) as response:
            async for line in response.aiter_lines():
                if line:
                    events.append(line)
                if len(events) == 2:
                    await revoke(app, key)
        data = [json.loads(e[6:]) for e in events if e.startswith("data: {")]
        assert events[-1] == "data: [DONE]"
        assert [d["choices"][0]["finish_reason"] for d in data] == ["error"]
        assert data[0]["error"]["type"] == "key_revoked"
        for _ in range(100):
            balance, reserved, ledger, _ = await money(app, account)
            if reserved == 0:
                break
            await asyncio.sleep(0.05)
        assert (balance, reserved, ledger) == (10, 0, 10)


async def test_a_sync_generation_finishing_after_revocation_is_not_charged(
    make_app: Callable[..., Litestar],
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    scripted.script("scripted/alpha", Sleep(1.0))
    async with served(make_app) as (app, _, http):
        key, account = await new_key(app, credits=10)
        pending = asyncio.ensure_future(
            http.post("/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key))
        )
        await asyncio.sleep(0.4)
        await revoke(app, key)
        answer = await pending
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["type"] == "key_revoked"
        assert await money(app, account) == (10, 0, 10, 0)
