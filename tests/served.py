"""``tryon serve`` (or ``tryon worker``) in a subprocess, as an operator runs it: its own
process, config file and log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import ROOT
from tests.server_logs import remember, session_log
from tryon_core import accounts, billing
from tryon_core.db import create_database

SERVE = "from tryon_core.cli import main; raise SystemExit(main())"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes] | None, *, within: float = 10.0) -> None:
    """SIGTERM a process the test started (if it still runs); SIGKILL after ``within`` s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Gateway:
    """``tryon serve`` in a subprocess, started and killed by the test. ``options`` are added
    to the command line (``--no-workers``)."""

    command = "serve"

    def __init__(self, config: Path, port: int, log: Path, *options: str) -> None:
        self.config, self.port = config, port
        self.log = session_log(log)  # scanned for secrets at the session's end
        self.options = options
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch, then wait until :meth:`ready` (a minute at most)."""
        self.launch()
        assert self.process is not None
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"tryon {self.command} exited: {self.tail()}"
            if self.ready():
                return
            assert time.monotonic() < deadline, f"tryon {self.command} did not start: {self.tail()}"
            time.sleep(0.1)

    def launch(self) -> None:
        """Start the process and return at once."""
        bin_dir = Path(sys.executable).parent
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.pop("TRYON_CONFIG", None)
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    SERVE,
                    self.command,
                    "--config",
                    str(self.config),
                    *self.options,
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process)

    def terminate(self, *, within: float) -> int:
        """SIGTERM; the exit code, which must come within ``within`` seconds."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"tryon {self.command} did not stop within {within} s: {self.tail()}"
            ) from None

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, offset: int) -> str:
        """What the server logged after the log had ``offset`` bytes (see :meth:`log_size`)."""
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")


class Worker(Gateway):
    """``tryon worker`` in a subprocess: ready once it says it runs jobs."""

    command = "worker"

    def __init__(self, config: Path, log: Path) -> None:
        super().__init__(config, 0, log)

    def ready(self) -> bool:
        return "running up to" in self.tail()


def wait_until(check: Any, what: str, timeout: float = 60.0) -> Any:
    """Call ``check`` until it returns something true; that value."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


async def balances(database_url: str, account_id: str) -> tuple[int, int, int, int]:
    """(balance, reserved) as the account says and as its ledger sums them."""
    database = create_database(database_url)
    try:
        async with database.reading() as conn:
            account = await accounts.get_account(conn, account_id)
            totals = await billing.ledger_totals(conn, account_id)
    finally:
        await database.dispose()
    return account.balance, account.reserved, totals.balance, totals.reserved


async def new_account(database_url: str, credits: int) -> tuple[str, str]:
    """A migrated database with one account holding ``credits``; returns (key, account_id)."""
    database = create_database(database_url)
    try:
        await database.upgrade()
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn, name="served")
            _, key = await accounts.create_key(conn, account_id=account_id, name="served")
            await billing.grant(conn, account_id, credits)
    finally:
        await database.dispose()
    return remember(key), account_id


def configured(
    directory: Path,
    database_url: str,
    extra: str = "",
    *,
    server: str = "",
    files: Path | None = None,
    storage: str = "",
    name: str = "tryon",
    options: tuple[str, ...] = (),
) -> Gateway:
    """A ``tryon serve`` (not started) on a free port: its config ``DIRECTORY/NAME.toml`` has
    these ``[server]`` keys, the database, the file store in ``files`` (``DIRECTORY/files``;
    processes of one deployment share one) with these other ``[storage]`` keys, and the
    sections in ``extra``."""
    port = free_port()
    config = directory / f"{name}.toml"
    config.write_text(
        f"""
[server]
port = {port}
{server}
[database]
url = "{database_url}"
[storage]
path = "{files or directory / "files"}"
{storage}
{extra}
"""
    )
    return Gateway(config, port, directory / f"{name}.log", *options)
