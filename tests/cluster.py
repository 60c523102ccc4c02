"""A real cluster on this machine: HAProxy in front of ``tryon serve --no-workers`` replicas,
``tryon worker`` processes, PostgreSQL, Redis and an S3 server (SeaweedFS).

Redis and S3 are reached through :class:`~tests.tcp_proxy.TcpProxy` forwarders, so a test can
take either away and bring it back without touching the machine's services. Everything else is
a real process, started here and killed by the test as an operator's machine would lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

from tests.helpers import ROOT
from tests.seaweed import free_ports

__all__ = ["LoadBalancer", "TryonProcess", "haproxy_binary"]

DEPLOYED_CONFIG = ROOT / "deploy" / "haproxy.cfg"
TRYON = "from tryon_core.cli import main; raise SystemExit(main())"


def haproxy_binary() -> str | None:
    """Debian's ``haproxy`` (``.ci/run`` installs it), if this machine has it."""
    return shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(path).exists()),
        None,
    )


def _env() -> dict[str, str]:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("TRYON_CONFIG", None)
    return env


class TryonProcess:
    """One ``tryon`` command in its own process: an API replica or a worker."""

    def __init__(self, name: str, args: list[str], log: Path, *, port: int | None = None) -> None:
        self.name, self.args, self.log, self.port = name, args, log, port
        self.url = f"http://127.0.0.1:{port}" if port else ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", TRYON, *self.args],
                cwd=ROOT,
                env=_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def ready(self, within: float = 90.0) -> None:
        """Until the replica answers ``/readyz`` (a worker: until it logs that it runs)."""
        end = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert self.alive, f"{self.name} exited: {self.tail()}"
                if self.port is None:
                    if "worker" in self.tail(4000).lower() and "running" in self.tail(4000):
                        return
                else:
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get(f"{self.url}/readyz")).status_code == 200:
                            return
                assert time.monotonic() < end, f"{self.name} did not start: {self.tail()}"
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: the machine is gone, nothing is handed back."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, size: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""


class LoadBalancer:
    """HAProxy as ``deploy/haproxy.cfg`` configures it: round robin over the replicas,
    health-checking ``/readyz`` twice a second; a request whose replica refuses the connection
    goes to another one, one cut after it reached a replica is left to the client (which
    retries with its ``Idempotency-Key``)."""

    def __init__(self, binary: str, folder: Path, backends: Iterable[int]) -> None:
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.binary, self.folder, self.backends = binary, folder, list(backends)
        self.log = folder / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        """``deploy/haproxy.cfg`` (what the compose file runs), bound to this test's port and
        pointed at its replicas."""
        lines = []
        for line in DEPLOYED_CONFIG.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith("bind "):
                line = f"    bind 127.0.0.1:{self.port}"
            elif stripped.startswith("server "):
                continue
            lines.append(line)
        lines += [
            f"    server api{i} 127.0.0.1:{port} check" for i, port in enumerate(self.backends)
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        path = self.folder / "haproxy.cfg"
        path.write_text(self.config())
        check = subprocess.run(
            [self.binary, "-c", "-f", str(path)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [self.binary, "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT
            )

    async def ready(self) -> None:
        """Until HAProxy answers (through a replica that is up)."""
        assert self.process is not None
        end = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert self.process.poll() is None, self.log.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                assert time.monotonic() < end, "HAProxy did not start: " + self.log.read_text()
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
