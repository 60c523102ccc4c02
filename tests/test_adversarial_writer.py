"""Nothing a request does needs SQLite's one writer for longer than its own statements
(issue 15, finding 2): authentication only reads, and /readyz tells when no write can start."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar

from tests.helpers import auth, live_server, new_key


@contextlib.contextmanager
def write_lock_held(app: Litestar) -> Iterator[None]:
    """Another process's connection holds the database's write lock (BEGIN IMMEDIATE)."""
    path = Path(app.state.gateway.settings.database.url.split("///", 1)[1])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_reads_answer_and_readyz_fails_while_the_write_lock_is_held(
    make_app: Callable[..., Litestar], tryon_body: Callable[..., dict[str, Any]]
) -> None:
    app = make_app()
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        key, _ = await new_key(app, credits=10)
        job = await http.post(
            "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
        )
        assert (await http.get("/readyz")).status_code == 200
        with write_lock_held(app):
            # every authenticated read answers at once: authentication takes no write lock
            for path in ("/api/v1/credits", "/api/v1/key", "/api/v1/models", "/api/v1/tryon"):
                answer = await http.get(path, headers=auth(key))
                assert answer.status_code == 200, (path, answer.text)
            answer = await http.get(f"/api/v1/tryon/{job.json()['id']}", headers=auth(key))
            assert answer.status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["error"]["type"] == "service_unavailable"
            assert "write" in ready.json()["error"]["message"]
        assert (await http.get("/readyz")).status_code == 200


async def test_the_last_use_of_a_key_is_still_recorded(make_app: Callable[..., Litestar]) -> None:
    app = make_app()
    async with live_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        key, account = await new_key(app, credits=10)
        manager, _ = await new_key(app, 0, scope="management", account=account)
        assert (await http.get("/api/v1/credits", headers=auth(key))).status_code == 200
        for _ in range(150):  # written by a background task within seconds
            keys = (await http.get("/api/v1/keys", headers=auth(manager))).json()["data"]
            if keys[0]["last_used_at"] is not None:
                break
            await asyncio.sleep(0.1)
        assert keys[0]["last_used_at"] is not None
