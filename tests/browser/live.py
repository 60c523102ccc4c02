"""The gateway the browser talks to: ``tryon serve`` in its own process (as an operator runs
it), with the offline engine enabled, its own SQLite database and config file, and funded
accounts opened through the core's functions. Its own process keeps the server's work (the
offline engine is CPU-bound) and the test's browser driving from waiting on each other."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.served import SERVE, Gateway, configured
from tryon_core import accounts, billing
from tryon_core.db import create_database

__all__ = ["Account", "LiveGateway", "start_gateway"]

T = TypeVar("T")

CONFIG = """
[providers.local]
enabled = true
"""


@dataclass(frozen=True)
class Account:
    id: str
    key: str


class LiveGateway:
    """A started ``tryon serve``: its URL, config file and database."""

    def __init__(self, gateway: Gateway, database_url: str) -> None:
        self.gateway, self.database_url = gateway, database_url
        self.url = gateway.url

    def open_account(self, credits: int = 100) -> Account:
        """A new account holding ``credits``, with one key."""
        return run_async(_open_account(self.database_url, credits))

    def api(self) -> httpx.Client:
        """An HTTP client on the gateway, for what a test checks outside the browser."""
        return httpx.Client(base_url=self.url, timeout=60)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``tryon ARGS --config CONFIG``, run as an operator runs it on the server."""
        return subprocess.run(
            [sys.executable, "-c", SERVE, *args, "--config", str(self.gateway.config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from a browser test. Playwright's sync API keeps an event loop
    running on the test's thread, so the coroutine gets a thread (and loop) of its own."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, work).result()


async def _open_account(database_url: str, credits: int) -> Account:
    database = create_database(database_url)
    try:
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn, name="browser")
            _, key = await accounts.create_key(conn, account_id=account_id, name="browser")
            if credits:
                await billing.grant(conn, account_id, credits)
    finally:
        await database.dispose()
    return Account(id=account_id, key=key)


async def _migrate(database_url: str) -> None:
    database = create_database(database_url)
    try:
        await database.upgrade()
    finally:
        await database.dispose()


def start_gateway(directory: Path) -> LiveGateway:
    """Migrate a fresh SQLite database in ``directory`` and start ``tryon serve`` on it."""
    database_url = f"sqlite+aiosqlite:///{directory}/tryon.db"
    run_async(_migrate(database_url))
    gateway = configured(directory, database_url, CONFIG)
    gateway.start()
    return LiveGateway(gateway, database_url)
