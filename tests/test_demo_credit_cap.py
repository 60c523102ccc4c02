"""A demo session's cap holds under concurrency, on SQLite and PostgreSQL.

Many requests at once on one session: exactly as many are accepted as the cap covers, the
rest get ``402 demo_credit_limit``, the account's ledger still equals its balance, and the
session never counts more than ``max_credits`` (checked at every reservation too, by the
database's own CHECK constraint).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tests.demo_helpers import demo, new_session
from tests.helpers import auth, live_server, new_key
from tests.jobs_helpers import money
from tryon_core import accounts, billing, demo_sessions
from tryon_core.db import create_database
from tryon_core.db.schema import demo_sessions as demo_table
from tryon_core.errors import PaymentRequired
from tryon_core.ids import new_id, utcnow
from tryon_core.pipeline import open_generation, record_failure
from tryon_core.request import ImageSource, TryOnRequest
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

PRICE = 3  # scripted/alpha, one image
REQUESTS = 12


async def test_concurrent_requests_never_pass_the_cap(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    scripted.script("scripted/alpha", *[Sleep(0.3)] * REQUESTS)  # so that the requests overlap
    app = make_app(database_url)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        _, account = await new_key(app, credits=100)
        manager, _ = await new_key(app, 0, scope="management", account=account)
        created = await new_session(http, manager, max_credits=10)
        body = tryon_body(model="scripted/alpha")
        answers = await asyncio.gather(
            *(
                http.post("/api/v1/tryon", json=body, headers=demo(created["token"]))
                for _ in range(REQUESTS)
            )
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * 3 + [402] * (REQUESTS - 3), [a.text for a in answers]
        refused = {a.json()["error"]["type"] for a in answers if a.status_code == 402}
        assert refused == {"demo_credit_limit"}
        assert await money(app, account) == (91, 0, 91, 0)  # ledger = balance
        (session,) = (await http.get("/api/v1/demo-sessions", headers=auth(manager))).json()["data"]
        assert (session["spent"], session["reserved"]) == (9, 0)


async def _account_with_session(database_url: str, balance: int, cap: int) -> tuple[str, str]:
    database = create_database(database_url)
    try:
        await database.upgrade()
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn)
            await billing.grant(conn, account_id, balance)
            owner = accounts.console_principal(account_id)
            session, _ = await demo_sessions.create(
                conn, owner, allowed_origins=["https://a.example"], max_credits=cap, ttl_seconds=60
            )
    finally:
        await database.dispose()
    return account_id, session.id


def _principal(account_id: str, session_id: str) -> accounts.Principal:
    return accounts.Principal(
        kind="demo",
        key_id=None,
        account_id=account_id,
        scopes=frozenset(),
        demo_session_id=session_id,
    )


REQUEST = TryOnRequest(
    person=ImageSource(param="person_images[0]", url="https://a.example/p.png"),
    garments=(ImageSource(param="garment_images[0]", url="https://a.example/g.png"),),
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cap=st.integers(min_value=0, max_value=30),
    amounts=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=16),
    failing=st.sets(st.integers(min_value=0, max_value=15)),
)
async def test_reservations_at_once_take_exactly_what_the_cap_covers(
    database_url: str, cap: int, amounts: list[int], failing: set[int]
) -> None:
    """Open generations concurrently (each its own transaction), then settle them: some
    captured, some released. Whatever the interleaving, the reserved total never passes the
    cap, every refusal is one the cap explains, and after settling the session's ``spent`` is
    exactly what was captured and its ``reserved`` zero."""
    account_id, session_id = await _account_with_session(database_url, 10_000, cap)
    principal = _principal(account_id, session_id)
    database = create_database(database_url)
    try:

        async def reserve(amount: int) -> str | None:
            generation_id = new_id("gen")
            try:
                async with database.transaction() as conn:
                    await open_generation(
                        conn,
                        principal,
                        REQUEST,
                        generation_id=generation_id,
                        reserved=amount,
                        route="native",
                        created=utcnow(),
                    )
            except PaymentRequired as exc:
                assert exc.type == "demo_credit_limit"
                return None
            return generation_id

        opened = await asyncio.gather(*(reserve(a) for a in amounts))
        held = sum(a for a, g in zip(amounts, opened, strict=True) if g is not None)
        assert held <= cap
        # no refusal the cap did not force: nothing is released before all have answered, so
        # what was held when one was refused is at most ``held``, and it did not fit beside it
        for amount, generation_id in zip(amounts, opened, strict=True):
            if generation_id is None:
                assert amount + held > cap
        captured = 0
        for index, (amount, generation_id) in enumerate(zip(amounts, opened, strict=True)):
            if generation_id is None:
                continue
            async with database.transaction() as conn:
                if index in failing:
                    await record_failure(conn, generation_id, {"type": "test"})
                else:
                    await billing.settle(conn, generation_id, amount)
                    captured += amount
        async with database.reading() as conn:
            row = (
                await conn.execute(select(demo_table).where(demo_table.c.id == session_id))
            ).one()
            totals = await billing.ledger_totals(conn, account_id)
            account = await accounts.get_account(conn, account_id)
        assert (row.spent, row.reserved) == (captured, 0)
        assert (account.balance, account.reserved) == tuple(totals) == (10_000 - captured, 0)
    finally:
        await database.dispose()


async def test_the_database_refuses_a_session_past_its_cap(database_url: str) -> None:
    """Belt and braces: a statement that bypasses billing cannot push a session past it."""
    _, session_id = await _account_with_session(database_url, 10, 5)
    database = create_database(database_url)
    try:
        for values in ({"spent": 6}, {"reserved": 3, "spent": 3}, {"reserved": -1}):
            with pytest.raises(IntegrityError):
                async with database.transaction() as conn:
                    await conn.execute(
                        update(demo_table).where(demo_table.c.id == session_id).values(**values)
                    )
    finally:
        await database.dispose()
