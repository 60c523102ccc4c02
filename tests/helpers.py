"""Helpers the tests import: keys, auth headers, sample images."""

from __future__ import annotations

import base64
from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tryon_core import accounts, billing

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


async def new_key(client: AsyncTestClient[Litestar], credits: int = 100) -> tuple[str, str]:
    """Create an account with ``credits`` and a key for it; returns (key, account_id)."""
    gateway = client.app.state.gateway
    async with gateway.database.transaction() as conn:
        account_id = await accounts.create_account(conn, name="test")
        _, secret = await accounts.create_key(conn, account_id=account_id, name="test")
        if credits:
            await billing.grant(conn, account_id, credits)
    return secret, account_id


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def data_url(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()
