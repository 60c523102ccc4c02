"""Money: atomic reservations under concurrency, exactly-once settlement, ledger = balance.

Runs on SQLite and on PostgreSQL (see conftest.database_url).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import insert, select

from tests.helpers import auth, new_key, own_database
from tryon_core import accounts, billing
from tryon_core.billing import MAX_CREDITS
from tryon_core.db import create_database
from tryon_core.db.schema import accounts as accounts_table
from tryon_core.db.schema import generations
from tryon_core.errors import InvalidRequest, PaymentRequired, ProviderUnavailable
from tryon_core.ids import new_id, utcnow
from tryon_core.testing import ScriptedProvider


async def assert_ledger_matches(
    client: AsyncTestClient[Litestar], account_id: str
) -> tuple[int, int]:
    async with own_database(client) as database, database.reading() as conn:
        account = await accounts.get_account(conn, account_id)
        totals = await billing.ledger_totals(conn, account_id)
    assert (account.balance, account.reserved) == (totals.balance, totals.reserved)
    assert account.balance >= 0 and account.reserved >= 0
    return account.balance, account.reserved


async def test_parallel_requests_never_overspend(
    database_url: str, make_app: Callable[..., Litestar], tryon_body: Any
) -> None:
    async with AsyncTestClient(app=make_app(database_url)) as client:
        key, account_id = await new_key(client, credits=3 * 7)
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
                )
                for _ in range(20)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 7 + [402] * 13
        assert await assert_ledger_matches(client, account_id) == (0, 0)


async def test_parallel_requests_with_fallbacks_charge_only_the_served_model(
    database_url: str,
    make_app: Callable[..., Litestar],
    scripted: ScriptedProvider,
    tryon_body: Any,
) -> None:
    # gamma (5 credits) fails every other call; alpha (3) serves those. Each request reserves 5.
    scripted.script("scripted/gamma", *[ProviderUnavailable("down"), "ok"] * 10)
    async with AsyncTestClient(app=make_app(database_url)) as client:
        key, account_id = await new_key(client, credits=1000)
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/tryon",
                    json=tryon_body(models=["scripted/gamma", "scripted/alpha"]),
                    headers=auth(key),
                )
                for _ in range(12)
            )
        )
        assert all(r.status_code == 200 for r in responses)
        charged = sum(r.json()["usage"]["credits"] for r in responses)
        served = [r.json()["model"] for r in responses]
        assert charged == 5 * served.count("scripted/gamma") + 3 * served.count("scripted/alpha")
        assert served.count("scripted/alpha") >= 1
        assert await assert_ledger_matches(client, account_id) == (1000 - charged, 0)


async def test_settlement_happens_exactly_once_under_races(database_url: str) -> None:
    database = create_database(database_url)
    await database.upgrade()
    try:
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn)
            await billing.grant(conn, account_id, 50)
        generation_id = await _open_generation(database, account_id, 20)

        async def settle(charge: int) -> bool:
            async with database.transaction() as conn:
                return await billing.settle(conn, generation_id, charge)

        results = await asyncio.gather(*(settle(c) for c in (0, 5, 10, 20, 0, 5)))
        assert results.count(True) == 1
        async with database.reading() as conn:
            account = await accounts.get_account(conn, account_id)
            totals = await billing.ledger_totals(conn, account_id)
        assert account.reserved == 0
        assert (account.balance, account.reserved) == tuple(totals)
        winner = (0, 5, 10, 20, 0, 5)[results.index(True)]
        assert account.balance == 50 - winner
    finally:
        await database.dispose()


@pytest.mark.parametrize("credits", [1.5, 10.0, True, "5", None])
async def test_a_grant_is_a_whole_number(database_url: str, credits: Any) -> None:
    database = create_database(database_url)
    await database.upgrade()
    try:
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn)
            await billing.grant(conn, account_id, 5)
        with pytest.raises(InvalidRequest, match="whole number"):
            async with database.transaction() as conn:
                await billing.grant(conn, account_id, credits)
        async with database.reading() as conn:
            account = await accounts.get_account(conn, account_id)
        assert (account.balance, account.reserved) == (5, 0)
    finally:
        await database.dispose()


async def test_a_price_at_the_maximum_is_charged_exactly_and_never_overflows(
    database_url: str, make_app: Callable[..., Litestar], tryon_body: Any
) -> None:
    """The dearest price there can be, the most an account can hold: one image spends it all;
    two images would need twice the maximum, a 402 before any statement could overflow."""
    extra = f'[models."scripted/alpha"]\ncredits = {MAX_CREDITS}\n'
    async with AsyncTestClient(app=make_app(database_url, extra)) as client:
        key, account_id = await new_key(client, credits=MAX_CREDITS)
        body = tryon_body(model="scripted/alpha")
        refused = await client.post("/api/v1/tryon", json={**body, "n": 4}, headers=auth(key))
        assert refused.status_code == 402
        assert refused.json()["error"]["metadata"] == {
            "required": 4 * MAX_CREDITS,
            "balance": MAX_CREDITS,
        }
        served = await client.post("/api/v1/tryon", json=body, headers=auth(key))
        assert served.status_code == 200 and served.json()["usage"]["credits"] == MAX_CREDITS
        assert await assert_ledger_matches(client, account_id) == (0, 0)


async def _open_generation(database: Any, account_id: str, credits: int) -> str:
    generation_id = new_id("gen")
    now = utcnow()
    async with database.transaction() as conn:
        await conn.execute(
            insert(generations).values(
                id=generation_id,
                account_id=account_id,
                status="processing",
                route="test",
                request={},
                credits_reserved=0,
                credits_charged=0,
                settled=False,
                created_at=now,
                updated_at=now,
            )
        )
        await billing.reserve(conn, account_id, credits, generation_id)
    return generation_id


# Amounts in and out of range: small ones, ones near the maximum and near 2**63, and any at all.
AMOUNTS = st.one_of(
    st.integers(min_value=-500, max_value=500),
    st.integers(min_value=MAX_CREDITS - 600, max_value=MAX_CREDITS + 2),
    st.integers(min_value=-MAX_CREDITS - 2, max_value=-MAX_CREDITS + 600),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64]),
    st.integers(),
)


class LedgerMachine(RuleBasedStateMachine):
    """Random grants, reservations, captures and releases, with amounts in and out of range,
    keep balance = ledger, never < 0, integers, the account within the maximum."""

    database_url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.database = create_database(self.database_url)
        self.run(self.database.upgrade())
        self.account_id = self.run(self._create())
        self.balance = 0
        self.open: dict[str, int] = {}
        self.settled: list[str] = []

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _create(self) -> str:
        async with self.database.transaction() as conn:
            return await accounts.create_account(conn)

    @rule(credits=AMOUNTS)
    def grant(self, credits: int) -> None:
        """Accepted iff a whole, non-zero amount within the maximum that keeps the balance at
        0 or more and the account's holdings within the maximum; else refused, nothing moved."""

        async def go() -> int:
            async with self.database.transaction() as conn:
                return await billing.grant(conn, self.account_id, credits)

        held = sum(self.open.values())
        acceptable = (
            credits != 0
            and abs(credits) <= MAX_CREDITS
            and self.balance + credits >= 0
            and self.balance + held + credits <= MAX_CREDITS
        )
        try:
            balance = self.run(go())
        except InvalidRequest:
            assert not acceptable
            return
        assert acceptable and balance == self.balance + credits
        self.balance += credits

    @rule(credits=AMOUNTS.filter(lambda c: c > 0))
    def reserve(self, credits: int) -> None:
        try:
            generation_id = self.run(_open_generation(self.database, self.account_id, credits))
        except PaymentRequired:
            assert credits > self.balance
            return
        assert credits <= self.balance
        self.balance -= credits
        self.open[generation_id] = credits

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        generation_id = data.draw(st.sampled_from(list(self.open)))
        held = self.open.pop(generation_id)
        charge = data.draw(st.integers(min_value=0, max_value=held))

        async def go() -> bool:
            async with self.database.transaction() as conn:
                return await billing.settle(conn, generation_id, charge)

        assert self.run(go()) is True
        self.balance += held - charge
        self.settled.append(generation_id)

    @precondition(lambda self: bool(self.settled))
    @rule(data=st.data())
    def settle_again_changes_nothing(self, data: st.DataObject) -> None:
        generation_id = data.draw(st.sampled_from(self.settled))

        async def go() -> bool:
            async with self.database.transaction() as conn:
                return await billing.settle(conn, generation_id, 0)

        assert self.run(go()) is False

    @invariant()
    def balance_equals_ledger(self) -> None:
        async def go() -> tuple[int, int, int, int]:
            async with self.database.reading() as conn:
                row = (
                    await conn.execute(
                        select(accounts_table.c.balance, accounts_table.c.reserved).where(
                            accounts_table.c.id == self.account_id
                        )
                    )
                ).one()
                totals = await billing.ledger_totals(conn, self.account_id)
            return row.balance, row.reserved, totals.balance, totals.reserved

        balance, reserved, ledger_balance, ledger_reserved = self.run(go())
        assert type(balance) is int and type(reserved) is int  # never a float on SQLite
        assert balance == ledger_balance == self.balance >= 0
        assert reserved == ledger_reserved == sum(self.open.values()) >= 0
        assert balance + reserved <= MAX_CREDITS

    def teardown(self) -> None:
        self.run(self.database.dispose())
        self.loop.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_ledger_state_machine(backend: str, tmp_path: Any, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        LedgerMachine.database_url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    else:
        LedgerMachine.database_url = request.getfixturevalue("postgres_database_url")
    LedgerMachine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    LedgerMachine.TestCase().runTest()
