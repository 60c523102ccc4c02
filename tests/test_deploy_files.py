"""The deployment files users copy (deploy/, Dockerfile) say what the tests run.

No container can be built or run on this machine (no Docker daemon, no image registry), so
these check what can be checked without one: the compose topology is the cluster test's, its
gateway configuration is valid and complete for a shared deployment, and the image's install
steps produce a working ``tryon`` (run with uv itself, into a fresh environment).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT
from tryon_core.config import parse_settings

DEPLOY = ROOT / "deploy"


def _example_env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (DEPLOY / "example.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    return {name: value for name, value in pairs}


def test_the_compose_file_runs_the_tested_topology() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    apis = {
        name
        for name, service in services.items()
        if service.get("command") == ["serve", "--no-workers"]
    }
    assert apis == {"api1", "api2", "api3"}
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert {"lb", "postgres", "redis", "seaweedfs"} <= set(services)
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in services["lb"]["volumes"]
    backends = [
        line.split()[1]
        for line in (DEPLOY / "haproxy.cfg").read_text().splitlines()
        if line.strip().startswith("server ")
    ]
    assert backends == ["api1", "api2", "api3"]


def test_the_compose_configuration_is_a_complete_shared_deployment() -> None:
    settings = parse_settings(
        (DEPLOY / "tryon.toml").read_text(), source="deploy/tryon.toml", environ=_example_env()
    )
    assert settings.redis.url == "redis://redis:6379/0"
    assert settings.storage.backend == "s3" and settings.storage.s3 is not None
    assert settings.storage.signing_secret == _example_env()["TRYON_SIGNING_SECRET"]
    assert settings.database.url.startswith("postgresql+asyncpg://tryon:")


def test_the_dockerfile_builds_in_stages_and_runs_unprivileged() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert sum(line.startswith("FROM ") for line in lines) == 2
    assert "USER tryon" in lines
    assert 'ENTRYPOINT ["tryon"]' in lines
    assert any(line.startswith("ENV") and "UV_FROZEN=1" in line for line in lines)
    syncs = [line for line in lines if line.startswith("uv sync")]
    assert syncs and all(" ".join(EXTRAS) in line for line in syncs)  # the fast paths, too


EXTRAS = ("--extra", "otel", "--extra", "speed")
"""The extras the Dockerfile installs."""


@pytest.mark.slow
def test_the_images_install_steps_make_a_working_gateway(tmp_path: Path) -> None:
    """The Dockerfile's ``uv sync --no-dev --group providers --extra otel --extra speed
    --no-editable``, into a fresh environment: ``tryon`` runs and lists the providers' models,
    tracing can be turned on, uvloop and httptools are there, and no test tools are
    installed."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("needs uv on PATH")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_FROZEN": "1"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [uv, "sync", "-q", "--no-dev", "--group", "providers", *EXTRAS, "--no-editable"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=900,
    )
    assert not (venv / "bin" / "pytest").exists()
    config = tmp_path / "tryon.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/t.db"\n'
        f'[storage]\npath = "{tmp_path}/files"\n[providers.local]\nenabled = true\n'
    )
    listed = subprocess.run(
        [str(venv / "bin" / "tryon"), "models", "--json", "--config", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "local/" in listed.stdout
    subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import opentelemetry.sdk.trace, uvloop, httptools"],
        check=True,
        timeout=120,
    )
