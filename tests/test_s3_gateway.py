"""The gateway on a real S3 store (SeaweedFS): results, job inputs, links, retention, start-up
refusals and an outage of the store, through the public surface (HTTP, the CLI)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from litestar import Litestar

from tests.helpers import SAMPLES, auth, live_server, new_key
from tests.jobs_helpers import money, wait_for
from tests.seaweed import SeaweedFS, free_ports
from tests.tcp_proxy import TcpProxy
from tryon_core import retention
from tryon_core.api import create_app
from tryon_core.cli import main
from tryon_core.config import parse_settings
from tryon_core.ids import utcnow
from tryon_core.pipeline import save_images
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep


class Image(msgspec.Struct, frozen=True):
    data: bytes
    content_type: str = "image/png"
    width: int = 64
    height: int = 64


def _config(tmp_path: Path, storage: str, extra: str = "") -> str:
    return f"""{extra}
[database]
url = "sqlite+aiosqlite:///{tmp_path}/tryon.db"
[storage]
backend = "s3"
path = "{tmp_path}/files"
signing_secret = "test-secret-long-enough-for-replicas"
{storage}
[providers.scripted]
enabled = true
timeout = 5.0
"""


@pytest.fixture
def s3_app(
    seaweedfs: SeaweedFS, tmp_path: Path, scripted: ScriptedProvider
) -> Callable[..., tuple[Litestar, str]]:
    """``make(presign=, endpoint=, extra=)``: an app on a fresh bucket, and that bucket."""

    def make(
        *, presign: bool = False, endpoint: str | None = None, extra: str = ""
    ) -> tuple[Litestar, str]:
        bucket = seaweedfs.new_bucket()
        storage = seaweedfs.storage_toml(bucket, presign=presign, endpoint=endpoint)
        settings = parse_settings(_config(tmp_path, storage, extra))
        app = create_app(settings, extra_plugins=[scripted], load_entry_points=False)
        return app, bucket

    return make


def _local(link: str) -> str:
    """A gateway link as a path and query (the test server's address differs)."""
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def _results(keys: set[str]) -> set[str]:
    return {key for key in keys if not key.startswith("tryon/inputs/")}


async def test_a_sync_tryon_keeps_its_result_in_the_bucket_and_the_gateway_serves_it(
    s3_app: Callable[..., tuple[Litestar, str]],
    seaweedfs: SeaweedFS,
    tryon_body: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    app, bucket = s3_app()
    async with live_server(app) as base, httpx.AsyncClient(base_url=base) as http:
        key, account = await new_key(app)
        made = await http.post("/api/v1/tryon", json=tryon_body(), headers=auth(key))
        assert made.status_code == 200, made.text
        link = made.json()["images"][0]["url"]
        assert "/api/v1/files/file_" in link and "sig=" in link  # a gateway link
        download = await http.get(_local(link))
        assert download.status_code == 200
        assert download.headers["content-type"] == "image/png"
        (stored,) = seaweedfs.keys(bucket)
        assert stored.startswith("tryon/") and stored.endswith(".png")
        client = seaweedfs.client()
        try:
            assert client.get_object(Bucket=bucket, Key=stored)["Body"].read() == download.content
        finally:
            client.close()
        balance, reserved, *ledger = await money(app, account)
        assert (balance, reserved) == tuple(ledger) and balance < 100 and reserved == 0
    assert not any((tmp_path / "files").glob("**/file_*"))  # nothing on the local disk


async def test_with_presign_the_links_are_the_stores_own(
    s3_app: Callable[..., tuple[Litestar, str]],
    seaweedfs: SeaweedFS,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    app, _ = s3_app(presign=True)
    async with live_server(app) as base, httpx.AsyncClient(base_url=base) as http:
        key, _ = await new_key(app)
        made = await http.post("/api/v1/tryon", json=tryon_body(), headers=auth(key))
        assert made.status_code == 200, made.text
        link = made.json()["images"][0]["url"]
        assert link.startswith(f"{seaweedfs.endpoint}/") and "X-Amz-Expires=3600" in link
        direct = await http.get(link)  # straight from the store, not through the gateway
        assert direct.status_code == 200 and direct.headers["content-type"] == "image/png"
        file_id = urlsplit(link).path.rsplit("/", 1)[-1].split(".")[0]
        owner = await http.get(f"/api/v1/files/{file_id}", headers=auth(key))
        assert owner.status_code == 200 and owner.content == direct.content
        chat = await http.post(
            "/api/v1/chat/completions",
            json={
                "model": "scripted/alpha",
                "tryon": {"image_delivery": "url"},
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": tryon_body()[k][0]}}
                            for k in ("person_images", "garment_images")
                        ],
                    }
                ],
            },
            headers=auth(key),
        )
        assert chat.status_code == 200, chat.text
        chat_link = chat.json()["choices"][0]["message"]["images"][0]["image_url"]["url"]
        assert chat_link.startswith(f"{seaweedfs.endpoint}/")
        assert (await http.get(chat_link)).status_code == 200


async def test_an_async_tryon_reads_its_inputs_from_the_bucket_and_drops_them_after(
    s3_app: Callable[..., tuple[Litestar, str]],
    seaweedfs: SeaweedFS,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    app, bucket = s3_app(presign=True)
    async with live_server(app) as base, httpx.AsyncClient(base_url=base) as http:
        key, account = await new_key(app)
        accepted = await http.post(
            "/api/v1/tryon", json=tryon_body(mode="async"), headers=auth(key)
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["jobId"]
        body = await wait_for(http, key, job_id)  # type: ignore[arg-type]
        assert body["status"] == "completed", body
        link = body["images"][0]["url"]
        assert link.startswith(f"{seaweedfs.endpoint}/")
        assert (await http.get(link)).status_code == 200
        keys = seaweedfs.keys(bucket)
        assert keys == _results(keys) and len(keys) == 1  # the inputs are gone, the result kept
        balance, reserved, *ledger = await money(app, account)
        assert (balance, reserved) == tuple(ledger) and reserved == 0 and balance < 100


async def test_retention_and_the_orphan_sweep_work_on_the_bucket(
    s3_app: Callable[..., tuple[Litestar, str]],
    seaweedfs: SeaweedFS,
    tryon_body: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, bucket = s3_app()
    gateway = app.state.gateway
    client = seaweedfs.client()
    try:
        for name in (
            "tryon/notes.txt",
            "tryon/2001/02/06/file_Row.png.bak",
            "elsewhere/file_X.png",
        ):
            client.put_object(Bucket=bucket, Key=name, Body=b"not ours")
    finally:
        client.close()
    async with live_server(app) as base, httpx.AsyncClient(base_url=base) as http:
        key, _ = await new_key(app)
        made = await http.post("/api/v1/tryon", json=tryon_body(), headers=auth(key))
        assert made.status_code == 200, made.text
        link = _local(made.json()["images"][0]["url"])
        (kept,) = {
            k for k in seaweedfs.keys(bucket) if k.startswith("tryon/2") and k.endswith(".png")
        }
        image = Image((SAMPLES / "garment.png").read_bytes())
        orphans = [
            key
            for folder in ("2001/02/03", "inputs/2001/02/03", "2001/02/04")
            for ((_, key),) in [await save_images(gateway, [image], folder=folder, failure="")]
        ]
        before = seaweedfs.keys(bucket)
        assert {f"tryon/{o}" for o in orphans} <= before

        now = utcnow()
        monkeypatch.setattr(retention, "utcnow", lambda: now)  # all still within their grace
        assert await retention.sweep_orphans(gateway, batch=2) == 0
        later = now + retention.orphan_grace(gateway) + timedelta(minutes=10)
        monkeypatch.setattr(retention, "utcnow", lambda: later)
        assert await retention.sweep_orphans(gateway, batch=2) == 3
        assert seaweedfs.keys(bucket) == before - {f"tryon/{o}" for o in orphans}
        assert (await http.get(link)).status_code == 200  # the result with its row stays

        expired = now + timedelta(hours=gateway.settings.storage.retention_hours, minutes=10)
        monkeypatch.setattr(retention, "utcnow", lambda: expired)
        assert await retention.purge_expired(gateway) == 1
        assert kept not in seaweedfs.keys(bucket)
        assert {"tryon/notes.txt", "elsewhere/file_X.png"} <= seaweedfs.keys(bucket)


def _serve(tmp_path: Path, storage: str, capsys: pytest.CaptureFixture[str]) -> str:
    config = tmp_path / "tryon.toml"
    config.write_text(_config(tmp_path, storage))
    code = main(["serve", "--config", str(config), "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("tryon: configuration error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_serve_refuses_a_store_it_cannot_use_in_one_line(
    seaweedfs: SeaweedFS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = seaweedfs.new_bucket()
    (nobody,) = free_ports(1)
    err = _serve(
        tmp_path, seaweedfs.storage_toml(bucket, endpoint=f"http://127.0.0.1:{nobody}"), capsys
    )
    assert "storage.s3.endpoint_url: cannot reach" in err

    err = _serve(tmp_path, seaweedfs.storage_toml("no-such-bucket"), capsys)
    assert "storage.s3.bucket:" in err and "no-such-bucket" in err

    wrong = seaweedfs.storage_toml(bucket).replace(seaweedfs.secret_key, "not-the-secret")
    err = _serve(tmp_path, wrong, capsys)
    assert "storage.s3.access_key_id:" in err and "refused these credentials" in err

    missing = "\n".join(
        line for line in seaweedfs.storage_toml(bucket).splitlines() if "access_key" not in line
    )
    err = _serve(tmp_path, missing, capsys)
    assert "storage.s3" in err and "access_key_id" in err

    err = _serve(tmp_path, "", capsys)  # backend = "s3" without its table
    assert 'storage: backend = "s3" needs a [storage.s3] table' in err


async def test_a_store_outage_is_a_503_that_charges_nothing_and_service_resumes(
    s3_app: Callable[..., tuple[Litestar, str]],
    seaweedfs: SeaweedFS,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    target = urlsplit(seaweedfs.endpoint)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 80))
    await proxy.start()
    app, bucket = s3_app(endpoint=f"http://127.0.0.1:{proxy.port}")
    try:
        async with live_server(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as h:
            key, account = await new_key(app)
            made = await h.post("/api/v1/tryon", json=tryon_body(), headers=auth(key))
            assert made.status_code == 200, made.text
            link = _local(made.json()["images"][0]["url"])
            kept = await money(app, account)

            await proxy.cut()  # the store stops answering
            for body in (tryon_body(), tryon_body(mode="async")):
                refused = await h.post("/api/v1/tryon", json=body, headers=auth(key))
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"]["type"] == "service_unavailable"
                assert int(refused.headers["Retry-After"]) >= 1
            download = await h.get(link)
            assert download.status_code == 503 and "Retry-After" in download.headers
            assert download.json()["error"]["type"] == "service_unavailable"
            assert await money(app, account) == kept  # nothing charged, nothing held

            await proxy.restore()  # and it serves again
            assert (await h.get(link)).status_code == 200
            again = await h.post("/api/v1/tryon", json=tryon_body(), headers=auth(key))
            assert again.status_code == 200, again.text
            balance, reserved, *ledger = await money(app, account)
            assert (balance, reserved) == tuple(ledger) and reserved == 0
            assert balance == kept[0] - again.json()["usage"]["credits"]
        assert len(_results(seaweedfs.keys(bucket))) == 2  # no result of a refused request
    finally:
        await proxy.close()


async def test_a_job_waits_out_a_store_outage_and_one_that_cannot_keep_its_result_is_free(
    s3_app: Callable[..., tuple[Litestar, str]],
    seaweedfs: SeaweedFS,
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Job A's result cannot be stored: it fails, released. Job B's inputs cannot be read: it
    is handed back untouched, and completes once the store is back."""
    handed_back = asyncio.Event()
    watcher = _Watch("handed back", handed_back)
    logging.getLogger("tryon.jobs").addHandler(watcher)
    target = urlsplit(seaweedfs.endpoint)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 80))
    await proxy.start()
    one_worker = "[jobs]\nworkers = 1\nsweep_interval_seconds = 0.2\n"
    app, bucket = s3_app(endpoint=f"http://127.0.0.1:{proxy.port}", extra=one_worker)
    scripted.script("scripted/alpha", Sleep(1.0))  # A holds the only worker a while
    try:
        async with live_server(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as h:
            key, account = await new_key(app)
            jobs = []
            for _ in range(2):
                accepted = await h.post(
                    "/api/v1/tryon",
                    json=tryon_body(mode="async", model="scripted/alpha"),
                    headers=auth(key),
                )
                assert accepted.status_code == 202, accepted.text
                jobs.append(accepted.json()["jobId"])
            await wait_for(h, key, jobs[0], "processing")  # type: ignore[arg-type]
            await proxy.cut()
            failed = await wait_for(h, key, jobs[0])  # type: ignore[arg-type]
            assert failed["status"] == "failed"
            assert failed["error"]["type"] == "service_unavailable", failed
            async with asyncio.timeout(20):
                await handed_back.wait()  # B met the outage, and waits
            waiting = await wait_for(h, key, jobs[1], "queued", "processing")  # type: ignore[arg-type]
            assert waiting["status"] in ("queued", "processing")

            await proxy.restore()
            done = await wait_for(h, key, jobs[1])  # type: ignore[arg-type]
            assert done["status"] == "completed", done
            balance, reserved, *ledger = await money(app, account)
            assert (balance, reserved) == tuple(ledger) and reserved == 0
            assert balance == 100 - done["usage"]["credits"]  # B only
            # A's inputs could not be deleted while the store was away: their rows are gone,
            # so the orphan sweep removes them once they are past their grace
            assert len(_results(seaweedfs.keys(bucket))) == 1  # B's result, nothing of A
            later = utcnow() + retention.orphan_grace(app.state.gateway) + timedelta(minutes=1)
            monkeypatch.setattr(retention, "utcnow", lambda: later)
            assert await retention.sweep_orphans(app.state.gateway) == 2
        assert len(seaweedfs.keys(bucket)) == 1
    finally:
        logging.getLogger("tryon.jobs").removeHandler(watcher)
        await proxy.close()


class _Watch(logging.Handler):
    """Sets ``event`` when a log line contains ``text``."""

    def __init__(self, text: str, event: asyncio.Event) -> None:
        super().__init__()
        self.text = text
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()
