"""Against a real uvicorn server on 127.0.0.1: what only a real connection shows."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.helpers import auth, live_server, new_key, own_database
from tryon_core.db.schema import generations
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep


async def test_a_client_that_leaves_is_not_charged(
    make_app: Any, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    scripted.script("scripted/alpha", Sleep(3.0))
    app = make_app()
    async with live_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        key, _ = await new_key(app, credits=10)
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                "/api/v1/tryon",
                json=tryon_body(model="scripted/alpha"),
                headers=auth(key),
                timeout=httpx.Timeout(5.0, read=0.5),
            )
        for _ in range(100):
            credits = (await http.get("/api/v1/credits", headers=auth(key))).json()
            if credits["reserved"] == 0:
                break
            await asyncio.sleep(0.05)
        assert (credits["balance"], credits["reserved"]) == (10, 0)
        async with own_database(app) as database, database.reading() as conn:
            row = (await conn.execute(select(generations.c.status, generations.c.error))).one()
        assert row.status == "failed" and row.error["type"] == "cancelled"
