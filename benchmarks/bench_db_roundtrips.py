"""Database round trips per synchronous request: statements by kind, transactions and new
connections, on each route (native JSON, native multipart, chat completions).

Counts, not timings: they are the same on a busy machine. Runs the gateway in-process on
127.0.0.1 in front of the instant scripted model, with every statement the app's engine runs
counted by SQLAlchemy events (:mod:`tryon_core.testing.statements`).

    uv run python benchmarks/bench_db_roundtrips.py [--requests 50] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tryon_core import accounts, billing
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.server import serve_app
from tryon_core.testing.statements import count_statements

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
COLUMNS = ("select", "insert", "update", "delete", "begin", "commit", "rollback", "connect")


def _data_url(name: str, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode((SAMPLES / name).read_bytes()).decode()


def _routes() -> dict[str, dict[str, Any]]:
    person, garment = _data_url("person.jpg", "image/jpeg"), _data_url("garment.png", "image/png")
    chat_content = [
        {"type": "text", "text": "Put this shirt on this person"},
        {"type": "image_url", "image_url": {"url": person}},
        {"type": "image_url", "image_url": {"url": garment}},
    ]
    files = [
        ("person_images", ("me.jpg", (SAMPLES / "person.jpg").read_bytes(), "image/jpeg")),
        ("garment_images", ("shirt.png", (SAMPLES / "garment.png").read_bytes(), "image/png")),
    ]
    return {
        "tryon json": {
            "url": "/api/v1/tryon",
            "json": {"model": "scripted/beta", "person_images": person, "garment_images": garment},
        },
        "tryon multipart": {
            "url": "/api/v1/tryon",
            "files": files,
            "data": {"model": "scripted/beta"},
        },
        "chat completions": {
            "url": "/api/v1/chat/completions",
            "json": {
                "model": "scripted/beta",
                "messages": [{"role": "user", "content": chat_content}],
            },
        },
    }


async def main(requests: int, database: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="tryon-bench-"))
    url = database or f"sqlite+aiosqlite:///{folder}/bench.db"
    settings = parse_settings(
        f'[database]\nurl = "{url}"\n[storage]\npath = "{folder}/files"\n'
        "[providers.scripted]\nenabled = true\n"
    )
    app = create_app(settings, extra_plugins=[ScriptedProvider()], load_entry_points=False)
    async with serve_app(app) as base:
        engine = app.state.gateway.database
        async with engine.transaction() as conn:
            account = await accounts.create_account(conn)
            _, key = await accounts.create_key(conn, account_id=account, name="bench")
            await billing.grant(conn, account, 100 * requests)
        print(f"database round trips per sync request, {url.split(':', 1)[0]}, {requests} each")
        print(f"  {'route':<18}" + "".join(f"{c:>9}" for c in COLUMNS))
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as http:
            for name, call in _routes().items():
                await _post(http, call)  # warm up: first-use statements and connections
                with count_statements(engine.engine) as counts:
                    for _ in range(requests):
                        await _post(http, call)
                per = counts.per(requests)
                print(f"  {name:<18}" + "".join(f"{per.get(c, 0):>9.2f}" for c in COLUMNS))


async def _post(http: httpx.AsyncClient, call: dict[str, Any]) -> None:
    options = {name: value for name, value in call.items() if name != "url"}
    response = await http.post(call["url"], **options)
    response.raise_for_status()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.database))
