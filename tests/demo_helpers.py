"""Helpers for scope and demo-session tests: make sessions, end them, send from an origin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from tests.helpers import auth, own_database
from tryon_core.db.schema import demo_sessions
from tryon_core.ids import utcnow

ORIGIN = "http://shop.localhost:8001"
"""The origin the demo sessions of these tests allow."""
OTHER_ORIGIN = "http://elsewhere.localhost:8002"


async def new_session(
    client: AsyncTestClient[Litestar] | httpx.AsyncClient,
    manager: str,
    *,
    origins: list[str] | None = None,
    max_credits: int = 100,
    **fields: Any,
) -> dict[str, Any]:
    """A demo session made with the management key ``manager``: the 201 answer."""
    response = await client.post(
        "/api/v1/demo-sessions",
        json={"allowed_origins": origins or [ORIGIN], "max_credits": max_credits, **fields},
        headers=auth(manager),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def expire(client: AsyncTestClient[Litestar] | Litestar, session_id: str) -> None:
    """Move the session's end into the past (no waiting)."""
    async with own_database(client) as database, database.transaction() as conn:
        await conn.execute(
            update(demo_sessions)
            .where(demo_sessions.c.id == session_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def demo(token: str, origin: str | None = ORIGIN) -> dict[str, str]:
    """Headers a browser page on ``origin`` sends with a demo token (None: no Origin)."""
    return auth(token) | ({"Origin": origin} if origin is not None else {})
