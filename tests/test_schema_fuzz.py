"""Schemathesis against the gateway's own OpenAPI document (``nox -s slow``).

The gateway runs under uvicorn on a free loopback port, with the scripted provider (instant
models, so valid requests really run), once on SQLite and once on PostgreSQL. Schemathesis's
own command line reads ``/schema/openapi.json`` from it and, for every operation in it (the
WebSocket is not in OpenAPI), sends valid and invalid requests with a funded key: examples,
boundary values, random fuzzing, then stateful sequences along the links it infers (create a
job, read it, cancel it). Every answer must be no 5xx, a documented status, the documented
content type, and a body that matches its schema.

Each key scope gets its own run, with a key of that scope, over the operations that need it
(read from the app's route table): inference operations with an inference key, management
operations with a management key. ``DELETE /api/v1/keys/{key_id}`` runs apart, with a
management key of its own and ``POST /api/v1/keys`` (whose answer links to it):
schemathesis reuses ids the API returned, so beside ``GET /api/v1/key`` it revokes the key
it was given, and the rest would see only 401s.

Generation is deterministic (no example database, no randomness between runs) and bounded by
``MAX_EXAMPLES`` per operation, so a failure reproduces and the run stays short. On failure the
test shows schemathesis's report, with a ``curl`` line for each failing request.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar

from tests.helpers import auth, new_key
from tryon_core.api.app import ROUTES
from tryon_core.api.openapi import EXAMPLE_IMAGE
from tryon_core.testing.server import serve_app_in_thread

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 100
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]
REVOKE = "DELETE /api/v1/keys/{key_id}"
CREATE = "POST /api/v1/keys"


def _management_operations() -> list[str]:
    """``METHOD /path`` of every operation that needs a management key."""
    found = []
    for handler in ROUTES:
        if handler.opt.get("scope") != "management":
            continue
        for path in handler.paths:
            for method in sorted(getattr(handler, "http_methods", ())):
                found.append(f"{method} {path.replace(':str}', '}')}")
    return sorted(found)


MANAGEMENT = _management_operations()
# Read from the working directory. A run fails on these warnings too: all answers 401/403
# (the key did not work), or a schema schemathesis cannot use as written.
CONFIG = """\
[warnings]
fail-on = ["missing_auth", "missing_deserializer", "unsupported_regex", "unresolvable_reference"]
"""


class Gateway:
    def __init__(self, app: Litestar, base_url: str) -> None:
        self.app = app
        self.base_url = base_url

    def key(self, scope: str = "inference") -> tuple[str, str]:
        """An inference key of a funded account, and a key of ``scope`` for it."""
        runner, account = asyncio.run(new_key(self.app, credits=1_000_000))
        if scope == "inference":
            return runner, runner
        manager, _ = asyncio.run(new_key(self.app, 0, scope=scope, account=account))
        return runner, manager

    def file_id(self, key: str) -> str:
        """The id of a result image of ``key``'s account (made by one real request)."""
        body = {"person_images": EXAMPLE_IMAGE, "garment_images": EXAMPLE_IMAGE}
        response = httpx.post(f"{self.base_url}/api/v1/tryon", json=body, headers=auth(key))
        assert response.status_code == 200, response.text
        return urlsplit(response.json()["images"][0]["url"]).path.rsplit("/", 1)[1]


@pytest.fixture
def gateway(make_app: Callable[..., Litestar], database_url: str) -> Iterator[Gateway]:
    app = make_app(database_url)
    with serve_app_in_thread(app) as base_url:
        yield Gateway(app, base_url)


def schemathesis(gateway: Gateway, cwd: Path, *options: str, scope: str = "inference") -> None:
    """Run schemathesis's command line with a fresh key of ``scope``; fail with its report.

    ``{file_id}`` is one of that account's result images, so downloads answer 200 too.
    """
    runner, key = gateway.key(scope)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{gateway.base_url}/schema/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--header",
        f"Authorization: Bearer {key}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",  # which also means no example database
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        *options,
    ]
    cwd.mkdir(exist_ok=True)
    config = f'{CONFIG}\n[parameters]\nfile_id = "{gateway.file_id(runner)}"\n'
    (cwd / "schemathesis.toml").write_text(config)
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=900, check=False
    )
    print(result.stdout)  # shown with `pytest -s`: phases, operations, counts
    if result.returncode != 0:
        pytest.fail(result.stdout[-30000:] + result.stderr[-5000:], pytrace=False)


def test_every_operation_answers_as_documented(gateway: Gateway, tmp_path: Path) -> None:
    excluded = [option for name in MANAGEMENT for option in ("--exclude-name", name)]
    schemathesis(gateway, tmp_path / "all", *excluded)


def test_every_management_operation_answers_as_documented(gateway: Gateway, tmp_path: Path) -> None:
    included = [
        option for name in MANAGEMENT if name != REVOKE for option in ("--include-name", name)
    ]
    schemathesis(gateway, tmp_path / "management", *included, scope="management")


def test_revoking_keys_answers_as_documented(gateway: Gateway, tmp_path: Path) -> None:
    schemathesis(
        gateway,
        tmp_path / "revoke",
        "--include-name",
        REVOKE,
        "--include-name",
        CREATE,
        scope="management",
    )
