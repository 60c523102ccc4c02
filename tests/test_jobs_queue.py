"""The job queue on Redis, in process: an outage of Redis while serving refuses new async jobs
with a clean 503 (nothing kept, nothing charged) and loses none already accepted; ``tryon
worker`` refuses to start without Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.helpers import ROOT, auth, live_server, new_key
from tests.jobs_helpers import money
from tests.served import SERVE, free_port
from tests.tcp_proxy import TcpProxy
from tryon_core.api import create_app
from tryon_core.config import Settings
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

PRICE = 3  # scripted/alpha


async def _status(http: httpx.AsyncClient, key: str, job_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/v1/tryon/{job_id}", headers=auth(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _until(
    http: httpx.AsyncClient, key: str, job_id: str, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    end = time.monotonic() + 30
    while True:
        body = await _status(http, key, job_id)
        if ready(body):
            return body
        assert time.monotonic() < end, f"job {job_id} stayed {body['status']}: {body}"
        await asyncio.sleep(0.05)


def _ended(body: dict[str, Any]) -> bool:
    return body["status"] in ("completed", "failed")


async def test_a_redis_outage_refuses_new_jobs_with_a_503_and_loses_none(
    make_settings: Callable[..., Settings], redis_settings: str, tryon_body: Any
) -> None:
    table = tomllib.loads(redis_settings)["redis"]
    target = urlsplit(table["url"])
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 6379))
    await proxy.start()
    settings = make_settings(
        extra=f"""
[redis]
url = "redis://127.0.0.1:{proxy.port}{target.path}"
prefix = "{table["prefix"]}"
timeout = 1.0
[jobs]
workers = 1
sweep_interval_seconds = 0.2
"""
    )
    scripted = ScriptedProvider()
    scripted.script("scripted/alpha", Sleep(1.0))  # the first job holds the only worker
    app = create_app(settings, extra_plugins=[scripted], load_entry_points=False)
    body = tryon_body(model="scripted/alpha", mode="async")
    try:
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            key, account = await new_key(app, credits=100)
            ids = []
            for _ in range(2):
                response = await http.post("/api/v1/tryon", json=body, headers=auth(key))
                assert response.status_code == 202, response.text
                ids.append(response.json()["jobId"])
            running, waiting = ids
            await _until(http, key, running, lambda job: bool(job["attempts"]))
            await proxy.cut()

            before = await money(app, account)
            refused = await http.post("/api/v1/tryon", json=body, headers=auth(key))
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["type"] == "service_unavailable"
            assert int(refused.headers["retry-after"]) >= 1
            assert await money(app, account) == before  # nothing reserved, nothing kept
            listed = (await http.get("/api/v1/tryon", headers=auth(key))).json()["data"]
            assert sorted(job["id"] for job in listed) == sorted(ids)

            # the running job needs only the database: it completes during the outage
            assert (await _until(http, key, running, _ended))["status"] == "completed"
            # the queued one cannot be taken while Redis is away; it is not lost either
            assert (await _status(http, key, waiting))["status"] == "queued"

            await proxy.restore()
            assert (await _until(http, key, waiting, _ended))["status"] == "completed"
            again = await http.post("/api/v1/tryon", json=body, headers=auth(key))
            assert again.status_code == 202, again.text
            later = again.json()["jobId"]
            assert (await _until(http, key, later, _ended))["status"] == "completed"
            spent = 3 * PRICE
            assert await money(app, account) == (100 - spent, 0, 100 - spent, 0)
    finally:
        await proxy.close()


def test_tryon_worker_refuses_to_start_when_redis_does_not_answer(tmp_path: Path) -> None:
    config = tmp_path / "tryon.toml"
    config.write_text(
        f"""
[database]
url = "sqlite+aiosqlite:///{tmp_path}/tryon.db"
[storage]
path = "{tmp_path}/files"
signing_secret = "test-secret-long-enough-for-replicas"
[redis]
url = "redis://127.0.0.1:{free_port()}/0"
timeout = 1.0
"""
    )
    done = subprocess.run(
        [sys.executable, "-c", SERVE, "worker", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("tryon: configuration error: redis.url: "), line
