"""Helpers the tests import: keys, auth headers, sample images."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tryon_core import accounts, billing
from tryon_core.config import Settings, parse_settings
from tryon_core.db import Database, create_database
from tryon_core.gateway import Gateway, build_catalog
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.testing.fakes import load_fake, mount_fakes
from tryon_core.testing.server import serve_app, serve_app_in_thread

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


async def new_key(
    client: AsyncTestClient[Litestar] | Litestar,
    credits: int = 100,
    *,
    scope: str = "inference",
    account: str | None = None,
) -> tuple[str, str]:
    """Create an account with ``credits`` and a key of ``scope`` for it (with ``account``, a
    key for that account instead); returns (key, account_id)."""
    async with own_database(client) as database, database.transaction() as conn:
        account_id = account or await accounts.create_account(conn, name="test")
        _, secret = await accounts.create_key(conn, account_id=account_id, name="test", scope=scope)
        if credits:
            await billing.grant(conn, account_id, credits)
    return secret, account_id


@asynccontextmanager
async def own_database(client: AsyncTestClient[Litestar] | Litestar) -> AsyncIterator[Database]:
    """The app's database through a pool of the test's own event loop.

    The test client serves the app on another event loop; asyncpg connections belong to one.
    """
    app = client if isinstance(client, Litestar) else client.app
    database = create_database(app.state.gateway.settings.database.url)
    try:
        yield database
    finally:
        await database.dispose()


@asynccontextmanager
async def started_gateway(settings: Settings, *plugins: object) -> AsyncIterator[Gateway]:
    """A started gateway with ``plugins`` and none of its background tasks (no server, no
    retention, no sweeper): the test runs what it needs itself."""
    gateway = Gateway.create(
        settings, build_catalog(settings, extra_plugins=list(plugins), load_entry_points=False)
    )
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.close()


def account_row(
    account_id: str, *, balance: int, operator: bool, created: datetime
) -> dict[str, object]:
    """Every column of an ``accounts`` row, for tests that insert one themselves."""
    return {
        "id": account_id,
        "name": "",
        "balance": balance,
        "reserved": 0,
        "created_at": created,
        "operator": operator,
        "active_generations": 0,
    }


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def key_id(client: AsyncTestClient[Litestar], key: str) -> str:
    """The id of the key ``key``, as ``GET /api/v1/key`` gives it to the key itself."""
    response = await client.get("/api/v1/key", headers=auth(key))
    assert response.status_code == 200, response.text
    found: str = response.json()["data"]["id"]
    return found


def data_url(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


live_server = serve_app


FAKES_CONFIG = ROOT / "config" / "tryon.fakes.toml"
"""The gateway's config against every provider's fake (``tryon fakes serve``, port 9100)."""
A_MODEL_OF = {
    "kling": "kling/kolors-v1-5",
    "gemini": "google/gemini-2.5-flash-image",
    "openai": "openai/gpt-image-1-mini",
    "fal": "fal/flux-kontext-pro",
    "fashn": "fashn/tryon-v1.6",
    "replicate": "replicate/idm-vton",
    "openrouter": "openrouter/gemini-2.5-flash-image",
}
"""One model of each provider that has a fake, in ``FAKES_CONFIG``."""


def fakes_settings(fakes: Fakes, folder: Path) -> Settings:
    """``FAKES_CONFIG`` against ``fakes``, its database and files in ``folder``."""
    settings = parse_settings(FAKES_CONFIG.read_text().replace("http://127.0.0.1:9100", fakes.url))
    settings.database.url = f"sqlite+aiosqlite:///{folder}/db.sqlite"
    settings.storage.path = str(folder / "files")
    return settings


def sample_tryon_body(**fields: Any) -> dict[str, Any]:
    """A try-on of the sample person in the sample garment (tops), with ``fields`` added."""
    return {
        "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
        "category": "tops",
        **fields,
    }


class Fakes:
    """Every installed plugin's fake upstream, mounted on one port under ``/NAME``."""

    def __init__(self, url: str, apps: dict[str, Any]) -> None:
        self.url = url
        self.apps = apps

    def state(self, provider: str) -> Any:
        return self.apps[provider].state.fake


@contextmanager
def all_fakes() -> Iterator[Fakes]:
    """Serve every installed plugin's fake in a thread (what ``tryon fakes serve`` does)."""
    registry = collect_providers(make_plugin_manager())
    apps = {n: load_fake(s.fake) for n, s in registry.providers.items() if s.fake}
    with serve_app_in_thread(mount_fakes(apps)) as url:
        yield Fakes(url, apps)


async def run_at_once(script: str, *args: str, processes: int, lead_seconds: float) -> None:
    """Run ``python -c script *args AT`` in ``processes`` processes, which wait for the moment
    ``AT`` (their last argument, ``lead_seconds`` from now: all have started by then) to act
    together; each must exit 0 (its output tail is the failure's message)."""
    at = str(time.time() + lead_seconds)
    started = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            *args,
            at,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(processes)
    ]
    outputs = await asyncio.gather(*(process.communicate() for process in started))
    for process, (output, _) in zip(started, outputs, strict=True):
        assert process.returncode == 0, output.decode()[-3000:]


def openssl_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``images.test`` and its key (skips without openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=images.test", "-keyout", str(key),
         "-out", str(cert), "-addext", "subjectAltName=DNS:images.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def eventually(check: Callable[[], Any], *, within: float = 20.0) -> None:
    """Wait until ``check()`` (sync or async) is true; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


async def cut_backend(database: Database, pid: int) -> None:
    """End the server side of PostgreSQL connection ``pid`` from a connection outside the
    pool, and wait until the server no longer lists it."""
    plain = await database.connect_plain(application_name="tryon-test-cut")

    async def gone() -> bool:
        listed = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
        return not await plain.fetchval(listed, pid)

    try:
        assert await plain.fetchval("SELECT pg_terminate_backend($1)", pid)
        await eventually(gone)
    finally:
        await plain.close()
