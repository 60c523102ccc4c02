"""The whole gateway in a test: an app on a scratch SQLite database, a funded key, a client.

For a plugin's end-to-end tests through the HTTP API, without the core's internals::

    from tryon_core.testing import gateway

    async def test_through_the_gateway(tmp_path):
        config = '[providers.example]\\nenabled = true\\napi_key = "k"\\nbase_url = "..."\\n'
        async with gateway(config, plugins=[tryon_example.plugin], tmp_path=tmp_path) as gw:
            response = await gw.client.post("/api/v1/tryon", json=..., headers=gw.headers)
            assert await gw.credits() == (100 - 4, 0)

The app runs on the test client's event loop: serve a fake upstream with
:func:`tryon_core.testing.serve_app_in_thread`, which gives it a thread and a loop of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from litestar.testing import AsyncTestClient

__all__ = ["RunningGateway", "gateway"]


@dataclass
class RunningGateway:
    """A running gateway as a test sees it."""

    client: AsyncTestClient  # type: ignore[type-arg]
    key: str
    """A key of a fresh account holding the credits asked for."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def credits(self) -> tuple[int, int]:
        """The account's (balance, reserved) as ``GET /api/v1/credits`` tells them."""
        answer = (await self.client.get("/api/v1/credits", headers=self.headers)).json()
        return answer["balance"], answer["reserved"]


@asynccontextmanager
async def gateway(
    config: str,
    *,
    plugins: Iterable[object],
    tmp_path: Path,
    credits: int = 100,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[RunningGateway]:
    """Start the gateway with ``config`` (TOML: the ``[providers]``, ``[models]``,
    ``[routing]`` sections a test needs; database and storage go to ``tmp_path``) and only
    ``plugins`` (no installed entry points), and yield it with a funded key."""
    from tryon_core import accounts, billing
    from tryon_core.api import create_app
    from tryon_core.config import parse_settings
    from tryon_core.db import create_database

    database_url = f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite"
    settings = parse_settings(
        f'[database]\nurl = "{database_url}"\n[storage]\npath = "{tmp_path}/files"\n{config}',
        environ=environ,
    )
    app = create_app(settings, extra_plugins=list(plugins), load_entry_points=False)
    async with AsyncTestClient(app=app) as client:
        database = create_database(database_url)
        try:
            async with database.transaction() as conn:
                account_id = await accounts.create_account(conn, name="test")
                _, key = await accounts.create_key(conn, account_id=account_id, name="test")
                await billing.grant(conn, account_id, credits)
        finally:
            await database.dispose()
        yield RunningGateway(client=client, key=key)
