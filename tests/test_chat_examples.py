"""The chat examples of docs/chat.md, run for real against a server on 127.0.0.1.

* ``docs/examples/chat_client.py``: the official ``openai`` Python package;
* ``docs/examples/chat_client.mjs``: the official ``openai`` package for Node.js, installed from
  npm with ``tests/node/package.json`` into a temporary folder. It runs when ``node`` and ``npm``
  are on PATH and is skipped otherwise, except under ``CI=true``, where it must run;
* ``docs/examples/chat.sh``: curl.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, SAMPLES, live_server, new_key

EXAMPLES = ROOT / "docs" / "examples"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def gateway(make_app: Callable[..., Any]) -> Callable[[], Any]:
    @asynccontextmanager
    async def start() -> AsyncIterator[dict[str, str]]:
        app = make_app()
        async with live_server(app) as url:
            key, _ = await new_key(app, credits=100)
            yield {**os.environ, "TRYON_URL": url, "TRYON_KEY": key}

    return start


async def run(*args: str | Path, env: dict[str, str], cwd: Path, limit: float = 60) -> str:
    process = await asyncio.create_subprocess_exec(
        *map(str, args),
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), limit)
    assert process.returncode == 0, f"{args[:2]} failed:\n{out.decode()}\n{err.decode()}"
    return out.decode()


def samples(to: Path) -> tuple[Path, Path]:
    person, garment = to / "person.jpg", to / "garment.png"
    shutil.copy(SAMPLES / "person.jpg", person)
    shutil.copy(SAMPLES / "garment.png", garment)
    return person, garment


async def test_python_example(gateway: Any, tmp_path: Path) -> None:
    person, garment = samples(tmp_path)
    async with gateway() as env:
        out = await run(
            sys.executable,
            EXAMPLES / "chat_client.py",
            person,
            garment,
            "out.png",
            env=env,
            cwd=tmp_path,
        )
    plain, streamed, usage, error = out.splitlines()
    assert re.fullmatch(r"plain: scripted/\w+ Here is the try-on\. [23]", plain), out
    assert re.fullmatch(r"streamed: scripted/\w+ 1", streamed), out
    assert usage == "usage: " + plain.rsplit(" ", 1)[1]
    assert error == "error: 404 model_not_found model"
    assert (tmp_path / "out.png").read_bytes()[:8] == PNG


async def test_curl_example(gateway: Any, tmp_path: Path) -> None:
    if not (shutil.which("curl") and shutil.which("sh")):
        pytest.skip("the curl example needs sh and curl")
    person, garment = samples(tmp_path)
    async with gateway() as env:
        out = await run("sh", EXAMPLES / "chat.sh", person, garment, env=env, cwd=tmp_path)
    completion = json.loads((tmp_path / "completion.json").read_text())
    assert completion["object"] == "chat.completion"
    url = completion["choices"][0]["message"]["images"][0]["image_url"]["url"]
    assert url.startswith("http://testserver.local/api/v1/files/file_")
    events = [event for event in out.split("\n\n") if event]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1] if e.startswith("data:")]
    assert [c["object"] for c in chunks] == ["chat.completion.chunk"] * 3


def node_tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but node and npm are not on PATH: the Node.js SDK test must run")
    pytest.skip("the Node.js SDK example needs node and npm on PATH")


async def test_node_example(gateway: Any, tmp_path: Path) -> None:
    node, npm = node_tools()
    person, garment = samples(tmp_path)
    shutil.copy(ROOT / "tests" / "node" / "package.json", tmp_path / "package.json")
    shutil.copy(EXAMPLES / "chat_client.mjs", tmp_path / "chat_client.mjs")
    await run(
        npm,
        "install",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        env=dict(os.environ),
        cwd=tmp_path,
        limit=300,
    )
    async with gateway() as env:
        out = await run(node, "chat_client.mjs", person, garment, "out.png", env=env, cwd=tmp_path)
    plain, streamed, usage = out.splitlines()
    assert re.fullmatch(r"plain: scripted/\w+ [23]", plain), out
    assert re.fullmatch(r"streamed: scripted/\w+ 1", streamed), out
    assert usage == "usage: " + plain.rsplit(" ", 1)[1]
    assert (tmp_path / "out.png").read_bytes()[:8] == PNG


def test_chat_md_json_links_and_timings() -> None:
    from tryon_core.api.routes import chat

    text = (ROOT / "docs" / "chat.md").read_text()
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        json.loads(block)
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        assert (ROOT / "docs" / target).exists(), f"docs/chat.md links to missing {target}"
    assert f"every {chat.KEEPALIVE_SECONDS:g} seconds" in text
    assert f"within the first {'second' if chat.HOLD_SECONDS == 1 else ''}" in text
    assert chat.KEEPALIVE.decode().strip() in text
