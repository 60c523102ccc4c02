"""A shared deployment refuses to start, in one line naming the key, without what it needs:
a reachable Redis that takes its credentials, and a signing secret every replica shares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.served import SERVE, free_port
from tryon_core.config import parse_settings
from tryon_core.errors import ConfigError
from tryon_core.gateway import Gateway, build_catalog

SECRET = 'signing_secret = "a-secret-that-every-replica-shares"'
S3 = """backend = "s3"
[storage.s3]
endpoint_url = "http://127.0.0.1:1"
bucket = "tryon"
access_key_id = "id"
secret_access_key = "key"
"""


def _config(tmp_path: Path, *, storage: str = "", extra: str = "") -> str:
    return f"""{extra}
[database]
url = "sqlite+aiosqlite:///{tmp_path}/tryon.db"
[storage]
path = "{tmp_path}/files"
{storage}
"""


def _refusal(tmp_path: Path, **parts: str) -> str:
    """``tryon serve`` with this config, as an operator runs it: its one line of refusal."""
    config = tmp_path / "tryon.toml"
    config.write_text(_config(tmp_path, **parts))
    done = subprocess.run(
        [sys.executable, "-c", SERVE, "serve", "--config", str(config), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("tryon: configuration error: "), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_an_unreachable_redis_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    err = _refusal(tmp_path, storage=SECRET, extra=f'[redis]\nurl = "{url}"')
    assert "redis.url: cannot reach Redis at redis://:***@127.0.0.1:" in err
    assert "hunter2" not in err


def test_credentials_redis_refuses_are_one_line_without_the_password(tmp_path: Path) -> None:
    from tests.conftest import redis_test_url

    server = redis_test_url().split("://", 1)[1]
    url = f"redis://nobody:hunter2@{server}"
    err = _refusal(tmp_path, storage=SECRET, extra=f'[redis]\nurl = "{url}"')
    assert "redis.url: Redis at redis://nobody:***@" in err and "refused" in err
    assert "hunter2" not in err


@pytest.mark.parametrize("shared", ["redis", "s3"])
def test_a_shared_deployment_needs_a_long_enough_signing_secret(
    tmp_path: Path, shared: str
) -> None:
    redis = f'[redis]\nurl = "redis://127.0.0.1:{free_port()}/0"' if shared == "redis" else ""
    s3 = S3 if shared == "s3" else ""
    err = _refusal(tmp_path, storage=s3, extra=redis)
    assert "storage.signing_secret is required" in err
    assert "every replica must sign file links and WebSocket tokens" in err
    err = _refusal(tmp_path, storage=f'signing_secret = "short"\n{s3}', extra=redis)
    assert "storage.signing_secret must be at least 32 characters" in err


async def test_a_process_without_http_is_refused_by_the_gateway_start(tmp_path: Path) -> None:
    """``tryon worker`` starts a Gateway and no server: its start checks Redis too."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings = parse_settings(_config(tmp_path, storage=SECRET, extra=f'[redis]\nurl = "{url}"'))
    gateway = Gateway.create(settings, build_catalog(settings, load_entry_points=False))
    with pytest.raises(ConfigError, match=r"^redis\.url: cannot reach Redis"):
        await gateway.start()
    await gateway.close()
