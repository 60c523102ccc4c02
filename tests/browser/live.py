"""The gateway the browser talks to: ``tryon serve`` in its own process (as an operator runs
it), with the offline engine enabled, its own SQLite database and config file, and funded
accounts opened through the core's functions. Its own process keeps the server's work (the
offline engine is CPU-bound) and the test's browser driving from waiting on each other.

Kling's fake upstream is enabled too, first in ``auto`` before the offline engine. It is
served from the test's process, so a test can hold a task in Kling's own ``processing`` state
or make Kling fail (and ``auto`` fall back). With ``fal=True``, fal's fake queue and its models
(which declare per-model options) are enabled as well, outside ``auto``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from litestar import Litestar
from tryon_fal.fake import TEST_KEY as FAL_TEST_KEY
from tryon_fal.fake import create_app as fal_fake
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY, KlingFake
from tryon_kling.fake import create_app as kling_fake

from tests.served import SERVE, Gateway, configured
from tryon_core import accounts, billing
from tryon_core.db import create_database
from tryon_core.testing.fakes import FakeState
from tryon_core.testing.server import serve_app_in_thread

__all__ = ["Account", "LiveGateway", "live_gateway"]

T = TypeVar("T")

# Every test signs in from 127.0.0.1: the per-address sign-in limit must not end the suite.
CONFIG = """
[console]
sign_in_attempts = 10000
[routing]
auto = ["kling/kolors-v1-5", "local/overlay"]
[providers.local]
enabled = true
[providers.kling]
enabled = true
base_url = "{kling}"
access_key = "{access_key}"
secret_key = "{secret_key}"
poll_interval = 0.1
"""
FAL_CONFIG = """
[providers.fal]
enabled = true
base_url = "{fal}"
api_key = "{api_key}"
poll_interval = 0.1
"""


@dataclass(frozen=True)
class Account:
    """An account with credits, an ``inference`` key (try-ons) and a ``management`` key
    (what a person pastes into the console's sign-in form)."""

    id: str
    key: str
    management_key: str


class LiveGateway:
    """A started ``tryon serve``: its URL, config file and database."""

    def __init__(
        self, gateway: Gateway, database_url: str, kling: Litestar, fal: Litestar | None = None
    ) -> None:
        self.gateway, self.database_url = gateway, database_url
        self.url = gateway.url
        self.kling: KlingFake = kling.state.kling
        """Kling's fake: ``kling.processing_polls`` is how many status polls see
        ``processing`` before a task succeeds."""
        self.kling_faults: FakeState = kling.state.fake
        """``kling_faults.inject("content_refused")``: what Kling's fake does next."""
        self.fal: FakeState | None = None if fal is None else fal.state.fake
        """fal's fake (``fal=True``): ``fal.requests`` is what it received."""

    def open_account(
        self, credits: int = 100, *, name: str = "Browser test shop", operator: bool = False
    ) -> Account:
        """A new account holding ``credits``, with one key of each scope."""
        return run_async(_open_account(self.database_url, credits, name, operator))

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


async def _open_account(database_url: str, credits: int, name: str, operator: bool) -> Account:
    database = create_database(database_url)
    try:
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn, name=name)
            _, key = await accounts.create_key(conn, account_id=account_id, name="shop backend")
            _, management = await accounts.create_key(
                conn, account_id=account_id, name="console", scope="management"
            )
            if credits:
                await billing.grant(conn, account_id, credits)
            if operator:
                await accounts.set_operator(conn, account_id, True)
    finally:
        await database.dispose()
    return Account(id=account_id, key=key, management_key=management)


async def _migrate(database_url: str) -> None:
    database = create_database(database_url)
    try:
        await database.upgrade()
    finally:
        await database.dispose()


@contextmanager
def live_gateway(directory: Path, *, fal: bool = False) -> Iterator[LiveGateway]:
    """Migrate a fresh SQLite database in ``directory``, serve Kling's fake (and fal's), start
    ``tryon serve`` on them; stop them when the block ends."""
    database_url = f"sqlite+aiosqlite:///{directory}/tryon.db"
    run_async(_migrate(database_url))
    fake = kling_fake(processing_polls=1)
    queue = fal_fake() if fal else None
    with ExitStack() as stack:
        kling_url = stack.enter_context(serve_app_in_thread(fake))
        config = CONFIG.format(
            kling=kling_url, access_key=TEST_ACCESS_KEY, secret_key=TEST_SECRET_KEY
        )
        if queue is not None:
            fal_url = stack.enter_context(serve_app_in_thread(queue))
            config += FAL_CONFIG.format(fal=fal_url, api_key=FAL_TEST_KEY)
        gateway = configured(directory, database_url, config)
        try:
            gateway.start()
            yield LiveGateway(gateway, database_url, fake, queue)
        finally:
            gateway.stop()
