"""A real cluster on this machine: HAProxy in front of ``tryon serve --no-workers`` replicas,
``tryon worker`` processes, PostgreSQL, Redis and an S3 server (SeaweedFS).

Redis and S3 are reached through :class:`~tests.tcp_proxy.TcpProxy` forwarders, so a test can
take either away and bring it back without touching the machine's services. Everything else is
a real process, started here and killed by the test as an operator's machine would lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

from tests.helpers import ROOT
from tests.seaweed import free_ports
from tests.served import Gateway, stop_process

__all__ = ["LoadBalancer", "haproxy_binary", "started"]

DEPLOYED_CONFIG = ROOT / "deploy" / "haproxy.cfg"


def haproxy_binary() -> str | None:
    """Debian's ``haproxy`` (``.ci/run`` installs it), if this machine has it."""
    return shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(path).exists()),
        None,
    )


async def started(process: Gateway, within: float = 90.0) -> None:
    """Until ``process`` (launched) is ready, without blocking the test's event loop: the
    Redis and S3 proxies the process connects through run in that loop."""
    end = time.monotonic() + within
    while not await asyncio.to_thread(process.ready):
        assert process.alive, f"tryon {process.command} exited: {process.tail()}"
        assert time.monotonic() < end, f"tryon {process.command} did not start: {process.tail()}"
        await asyncio.sleep(0.1)


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
        stop_process(self.process)
