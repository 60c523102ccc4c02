"""The servers of the peer benchmarks: the fake upstream, LiteLLM's proxy and this gateway.

Each runs as its own process on 127.0.0.1, its output in a log file under the run's folder,
and is stopped by its own pid when the ``Servers`` stack closes. LiteLLM's proxy is installed
once into ``var/bench/litellm-venv`` (``uv venv`` + ``uv pip install``) and reused; it always
runs with ``LITELLM_LOCAL_MODEL_COST_MAP=True`` and no ``DATABASE_URL`` (it never fetches its
cost map, it keeps no database). This gateway runs from a deployment's environment too
(:func:`ensure_deployment`, ``var/bench/tryon-venv``), not from the development one.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCH_VAR = ROOT / "var" / "bench"
LITELLM_VENV = BENCH_VAR / "litellm-venv"
TRYON_VENV = BENCH_VAR / "tryon-venv"
LITELLM_KEY = "sk-bench-master"
UPSTREAM_OPENAI_KEY = "sk-fake-upstream"
UPSTREAM_GEMINI_KEY = "fake-gemini-key"


def ensure_litellm(spec: str = "litellm[proxy]") -> Path:
    """The ``litellm`` command of the scratch environment, installed on first use."""
    command = LITELLM_VENV / "bin" / "litellm"
    if not command.exists():
        print(f"installing {spec} into {LITELLM_VENV} (once)", flush=True)
        subprocess.run(["uv", "venv", "-q", str(LITELLM_VENV)], check=True)
        python = str(LITELLM_VENV / "bin" / "python")
        subprocess.run(["uv", "pip", "install", "-q", "--python", python, spec], check=True)
    return command


@functools.cache
def ensure_deployment() -> Path:
    """The ``tryon`` command of a deployment's environment, synced from the lock file into
    ``var/bench/tryon-venv`` (once per run; fast after the first): the core, the provider
    plugins and the ``otel`` and ``speed`` extras, as the Docker image installs them, and no
    development tools. The project is installed editable, so it runs this checkout's code.

    The development environment holds more than a deployment does (pydantic, which the test
    SDKs bring and for which Litestar then loads a plugin of its own; idle RSS 110 MB there
    against 101 MB here, measured): LiteLLM's proxy, too, runs from an environment of its own."""
    environment = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(TRYON_VENV)}
    sync = ["uv", "sync", "--frozen", "--no-dev", "--group", "providers"]
    subprocess.run(
        [*sync, "--extra", "otel", "--extra", "speed", "-q"], cwd=ROOT, env=environment, check=True
    )
    return TRYON_VENV / "bin" / "tryon"


def litellm_version() -> str:
    python = LITELLM_VENV / "bin" / "python"
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def litellm_config(upstream: str) -> str:
    """LiteLLM's proxy config (YAML): both image models routed to the fake, auth on, no DB."""
    return f"""model_list:
  - model_name: gpt-image-1
    litellm_params:
      model: openai/gpt-image-1
      api_base: {upstream}/v1
      api_key: {UPSTREAM_OPENAI_KEY}
  - model_name: gemini-2.5-flash-image
    litellm_params:
      model: gemini/gemini-2.5-flash-image
      api_base: {upstream}/v1beta
      api_key: {UPSTREAM_GEMINI_KEY}
litellm_settings:
  drop_params: true
  request_timeout: 60
general_settings:
  master_key: {LITELLM_KEY}
"""


def tryon_config(folder: Path, upstream: str, database_url: str, port: int) -> str:
    """This gateway's config: the local engine off, openai and gemini pointed at the fake."""
    return f"""[server]
host = "127.0.0.1"
port = {port}
max_connections_per_client = 0  # all the load comes from this one address

[database]
url = "{database_url}"

[storage]
path = "{folder}/files"

[providers.local]
enabled = false

[providers.openai]
enabled = true
base_url = "{upstream}/v1"
api_key = "{UPSTREAM_OPENAI_KEY}"
timeout = 60.0

[providers.gemini]
enabled = true
base_url = "{upstream}"
api_key = "{UPSTREAM_GEMINI_KEY}"
timeout = 60.0
"""


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Servers:
    """Starts servers and stops every one of them (by pid) when the ``with`` block ends."""

    folder: Path
    started: list[Server] = field(default_factory=list)

    def __enter__(self) -> Servers:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in reversed(self.started):
            server.process.terminate()
        for server in reversed(self.started):
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()

    def start(
        self, name: str, argv: list[str], url: str, health: str, env: dict[str, str] | None = None
    ) -> Server:
        environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**environment, **(env or {})},
            cwd=self.folder,
        )
        server = Server(name, url, process)
        self.started.append(server)
        _wait_healthy(server, url + health)
        return server

    def upstream(self, port: int, *, delay: float = 0.0) -> Server:
        argv = [sys.executable, str(ROOT / "benchmarks" / "peer_upstream.py"), "--port", str(port)]
        argv += ["--delay", str(delay)] if delay else []
        return self.start("upstream", argv, f"http://127.0.0.1:{port}", "/health")

    def litellm(self, port: int, upstream: str, spec: str = "litellm[proxy]") -> Server:
        command = ensure_litellm(spec)
        config = self.folder / "litellm.yaml"
        config.write_text(litellm_config(upstream))
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        argv = [str(command), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        return self.start("litellm", argv, f"http://127.0.0.1:{port}", "/health/liveliness", env)

    def tryon(
        self,
        port: int,
        upstream: str,
        database_url: str,
        credits: int,
        *,
        name: str = "tryon",
        env: dict[str, str] | None = None,
    ) -> tuple[Server, str]:
        """This gateway, its database migrated, and a fresh inference key holding ``credits``.
        ``name`` names its config and log (two gateways in one run need two); ``env`` is added
        to the environment of its commands and its server."""
        config = self.folder / f"{name}.toml"
        config.write_text(tryon_config(self.folder, upstream, database_url, port))
        tryon = [str(ensure_deployment()), "--config", str(config)]
        environment = {**os.environ, **(env or {})}
        subprocess.run([*tryon, "db", "upgrade"], check=True, capture_output=True, env=environment)
        created = subprocess.run(
            [*tryon, "keys", "create", "--name", "bench", "--credits", str(credits), "--json"],
            check=True,
            capture_output=True,
            text=True,
            env=environment,
        )
        key = json.loads(created.stdout)["key"]
        url = f"http://127.0.0.1:{port}"
        server = self.start(name, [*tryon, "serve"], url, "/healthz", env)
        return server, key


def _wait_healthy(server: Server, url: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited ({server.process.returncode}): see its log")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise SystemExit(f"{server.name} did not answer {url} in {seconds:.0f} s")


def add_database_options(parser: argparse.ArgumentParser, *, made: str) -> None:
    """``--database sqlite|postgres`` and ``--postgres-url`` (default: the tests' server, from
    ``TRYON_TEST_POSTGRES_URL``); ``made`` says which databases the benchmark makes there."""
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TRYON_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1/test"
        ),
        help=f"a PostgreSQL server (the benchmark makes {made} on it)",
    )


@contextlib.contextmanager
def postgres_database(server_url: str, name: str) -> Iterator[str]:
    """A fresh database ``name`` on the PostgreSQL server of ``server_url`` (dropped first if it
    exists), yielding its SQLAlchemy URL; the benchmark never writes into the tests' database."""
    import asyncio

    import asyncpg

    plain = server_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(plain)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield server_url.rsplit("/", 1)[0] + f"/{name}"
