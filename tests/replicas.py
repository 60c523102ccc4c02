"""Replicas in this process: gateways (apps served on ports of their own) on one database, as
several ``tryon serve`` processes of one deployment; and what tests do with them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import auth, live_server
from tryon_core.gateway import Gateway


@dataclass
class Replica:
    app: Litestar
    url: str
    http: httpx.AsyncClient

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway

    def socket(self, job_id: str, key: str) -> Any:
        ws = f"ws://{urlsplit(self.url).netloc}/api/v1/tryon/{job_id}/ws"
        return connect(ws, subprotocols=[f"tryon-key.{key}"])  # type: ignore[list-item]

    def token_socket(self, ws_url: str) -> Any:
        """The job's WebSocket on this replica, opened with the token of its ``wsUrl`` (no key:
        nothing is checked on a timer)."""
        parts = urlsplit(ws_url)
        return connect(f"ws://{urlsplit(self.url).netloc}{parts.path}?{parts.query}")


@asynccontextmanager
async def serve_replicas(
    make_app: Callable[..., Litestar], database_url: str, configs: Iterable[str]
) -> AsyncIterator[list[Replica]]:
    """One replica per config (its extra TOML), all on ``database_url``, served while inside."""
    async with AsyncExitStack() as stack:
        started = []
        for extra in configs:
            app = make_app(database_url, extra=extra)
            url = await stack.enter_async_context(live_server(app))
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            started.append(Replica(app, url, http))
        yield started


async def messages(socket: ClientConnection) -> list[dict[str, Any]]:
    """Every message until the server closes the socket (20 s at most: a lost event)."""
    received = []
    with pytest.raises(ConnectionClosed):
        while True:
            received.append(json.loads(await asyncio.wait_for(socket.recv(), 20)))
    return received


async def accept(replica: Replica, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """The ``202`` answer to an async try-on of ``body`` through ``replica``."""
    response = await replica.http.post(
        "/api/v1/tryon", json={**body, "mode": "async"}, headers=auth(key)
    )
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def submit(replica: Replica, key: str, body: dict[str, Any]) -> str:
    job_id: str = (await accept(replica, key, body))["jobId"]
    return job_id


async def status(replica: Replica, key: str, job_id: str) -> str:
    response = await replica.http.get(f"/api/v1/tryon/{job_id}", headers=auth(key))
    assert response.status_code == 200, response.text
    value: str = response.json()["status"]
    return value


async def has_status(replica: Replica, key: str, job_id: str, expected: str) -> bool:
    return await status(replica, key, job_id) == expected
