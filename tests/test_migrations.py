"""The migrations build exactly the schema the code declares, on each backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert, text, update
from sqlalchemy.exc import IntegrityError

import tryon_core.db
from tests.helpers import ROOT
from tests.test_docs_examples import block_after
from tryon_core import accounts, billing
from tryon_core.billing import MAX_CREDITS
from tryon_core.db import Database, create_database, metadata
from tryon_core.db.schema import accounts as accounts_table
from tryon_core.db.schema import api_keys, ledger
from tryon_core.errors import ConfigError
from tryon_core.ids import utcnow

MIGRATIONS = Path(tryon_core.db.__file__).parent / "migrations"


async def test_migrations_match_the_declared_schema(database_url: str) -> None:
    database = create_database(database_url)
    try:
        await database.upgrade()
        await database.upgrade()  # idempotent
        async with database.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert diff == []
    finally:
        await database.dispose()


async def test_the_database_itself_refuses_credits_past_the_maximum(database_url: str) -> None:
    """Belt and braces: CHECK constraints keep what an account holds, and each ledger row,
    within MAX_CREDITS even for a statement that bypasses tryon_core.billing."""
    database = create_database(database_url)
    try:
        await database.upgrade()
        async with database.transaction() as conn:
            account_id = await accounts.create_account(conn)
        within = [{"balance": MAX_CREDITS}, {"balance": MAX_CREDITS - 1, "reserved": 1}]
        past = [
            {"balance": MAX_CREDITS + 1},
            {"balance": MAX_CREDITS, "reserved": 1},
            {"reserved": MAX_CREDITS + 1},
            {"balance": 2**63 - 1},
            {"balance": -1},
        ]
        if database.is_sqlite:  # SQLite would keep a float in a BIGINT column; not any more
            past += [{"balance": 1.5}, {"reserved": 2.5}]
        for values in within:
            async with database.transaction() as conn:
                await conn.execute(
                    update(accounts_table)
                    .where(accounts_table.c.id == account_id)
                    .values({"balance": 0, "reserved": 0, **values})
                )
        for values in past:
            with pytest.raises(IntegrityError):
                async with database.transaction() as conn:
                    await conn.execute(
                        update(accounts_table)
                        .where(accounts_table.c.id == account_id)
                        .values({"balance": 0, "reserved": 0, **values})
                    )
        for amount, reserved_delta in [(MAX_CREDITS + 1, 0), (0, -MAX_CREDITS - 1)]:
            with pytest.raises(IntegrityError):
                async with database.transaction() as conn:
                    await conn.execute(
                        insert(ledger).values(
                            account_id=account_id,
                            kind="grant",
                            amount=amount,
                            reserved_delta=reserved_delta,
                            note="",
                            created_at=utcnow(),
                        )
                    )
    finally:
        await database.dispose()


async def _at_revision(database_url: str, revision: str, *statements: str) -> Database:
    """A database migrated only up to ``revision``, with rows written as an older gateway did."""
    database = create_database(database_url)

    def upgrade(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        for statement in statements:
            connection.execute(text(statement))

    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(upgrade)
    except BaseException:
        await database.dispose()
        raise
    return database


OLD_ACCOUNT = (
    "INSERT INTO accounts (id, name, balance, reserved, created_at) "
    "VALUES ('{id}', '', {balance}, {reserved}, CURRENT_TIMESTAMP)"
)
OLD_GRANT = (
    "INSERT INTO ledger (account_id, kind, amount, reserved_delta, note, created_at) "
    "VALUES ('{id}', 'grant', {amount}, 0, '', CURRENT_TIMESTAMP)"
)


async def test_accounts_within_the_maximum_come_through_the_upgrade_unchanged(
    database_url: str,
) -> None:
    database = await _at_revision(
        database_url,
        "0003",
        OLD_ACCOUNT.format(id="acct_old", balance=MAX_CREDITS - 8, reserved=8),
        OLD_GRANT.format(id="acct_old", amount=MAX_CREDITS),
    )
    try:
        await database.upgrade()
        async with database.transaction() as conn:
            assert await billing.grant(conn, "acct_old", -5) == MAX_CREDITS - 13
            account = await accounts.get_account(conn, "acct_old")
        assert (account.balance, account.reserved) == (MAX_CREDITS - 13, 8)
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("balance", "amount"),
    [(2**63 - 1, 2**63 - 1), (MAX_CREDITS, MAX_CREDITS + 1), ("9.223372036854776e18", 1)],
)
async def test_credits_past_the_maximum_stop_the_upgrade_naming_the_account(
    database_url: str, balance: object, amount: int
) -> None:
    """What the overflow left behind (a balance of 2**63 - 1, a float on SQLite, a grant past
    the maximum) is not silently clipped: the upgrade stops and says which account to repair."""
    if isinstance(balance, str) and not database_url.startswith("sqlite"):
        pytest.skip("only SQLite stores a float in a BIGINT column")
    database = await _at_revision(
        database_url,
        "0003",
        OLD_ACCOUNT.format(id="acct_ok", balance=10, reserved=0),
        OLD_ACCOUNT.format(id="acct_overflowed", balance=balance, reserved=0),
        OLD_GRANT.format(id="acct_overflowed", amount=amount),
    )
    try:
        with pytest.raises(ConfigError, match=r"0004: 1 account\(s\) .* \(acct_overflowed\)"):
            await database.upgrade()

        # the repair docs/billing.md gives lets the upgrade through, with a consistent ledger
        repair = block_after((ROOT / "docs" / "billing.md").read_text(), "repair-before-0004")
        async with database.engine.begin() as conn:
            for statement in repair.strip().rstrip(";").split(";\n"):
                await conn.execute(text(statement.replace("acct_…", "acct_overflowed")))
        await database.upgrade()
        async with database.reading() as conn:
            account = await accounts.get_account(conn, "acct_overflowed")
            totals = await billing.ledger_totals(conn, "acct_overflowed")
        assert (account.balance, account.reserved) == tuple(totals) == (5000, 0)
    finally:
        await database.dispose()


OLD_KEY = (
    "INSERT INTO api_keys (id, account_id, name, prefix, hash, created_at) "
    "VALUES ('{id}', '{account}', 'old', 'tryon_old', '{hash}', CURRENT_TIMESTAMP)"
)


async def test_keys_made_before_scopes_become_inference_keys(database_url: str) -> None:
    """After 0005 an old key works as it did (try-ons, jobs, credits), as an inference key;
    managing keys then takes a management key."""
    secret = "tryon_" + "o" * 43
    database = await _at_revision(
        database_url,
        "0004",
        OLD_ACCOUNT.format(id="acct_old", balance=7, reserved=0),
        OLD_GRANT.format(id="acct_old", amount=7),
        OLD_KEY.format(id="key_old", account="acct_old", hash=accounts.hash_key(secret)),
    )
    try:
        await database.upgrade()
        async with database.reading() as conn:
            (info,) = await accounts.list_keys(conn, account_id="acct_old")
            principal = await accounts.authenticate(conn, f"Bearer {secret}")
            operator = await accounts.is_operator(conn, "acct_old")
        assert (info.id, info.scope) == ("key_old", "inference")
        assert principal.scopes == frozenset({"inference"}) and principal.kind == "key"
        assert operator is False
        async with database.transaction() as conn:
            made, _ = await accounts.create_key(
                conn, account_id="acct_old", name="admin", scope="management"
            )
            await accounts.set_operator(conn, "acct_old", True)
        async with database.reading() as conn:
            scopes = {k.id: k.scope for k in await accounts.list_keys(conn, account_id="acct_old")}
            assert await accounts.is_operator(conn, "acct_old") is True
        assert scopes == {"key_old": "inference", made.id: "management"}
    finally:
        await database.dispose()


async def test_keys_and_accounts_made_before_limits_have_none(database_url: str) -> None:
    """After 0007 an old key has no credit limit nor limits of its own, nothing used and no
    generation active; the database refuses a limit past the maximum or an unknown reset."""
    secret = "tryon_" + "p" * 43
    database = await _at_revision(
        database_url,
        "0006",
        OLD_ACCOUNT.format(id="acct_old", balance=7, reserved=0),
        OLD_GRANT.format(id="acct_old", amount=7),
        OLD_KEY.format(id="key_old", account="acct_old", hash=accounts.hash_key(secret)),
    )
    try:
        await database.upgrade()
        async with database.reading() as conn:
            principal = await accounts.authenticate(conn, f"Bearer {secret}")
            key = (await conn.execute(text("SELECT * FROM api_keys"))).one()._mapping
            account = (await conn.execute(text("SELECT * FROM accounts"))).one()._mapping
        assert principal.requests_per_minute is None
        assert principal.concurrent_generations is None
        assert key["credit_limit"] is None and key["limit_reset"] == "none"
        assert (key["limit_used"], key["active_generations"]) == (0, 0)
        assert account["active_generations"] == 0
        for values in [
            {"credit_limit": MAX_CREDITS + 1},
            {"credit_limit": -1},
            {"limit_reset": "yearly"},
            {"limit_used": -1},
            {"active_generations": -1},
        ]:
            with pytest.raises(IntegrityError):
                async with database.transaction() as conn:
                    await conn.execute(
                        update(api_keys).where(api_keys.c.id == "key_old").values(values)
                    )
        with pytest.raises(IntegrityError):
            async with database.transaction() as conn:
                await conn.execute(
                    update(accounts_table)
                    .where(accounts_table.c.id == "acct_old")
                    .values(active_generations=-1)
                )
        if database.is_sqlite:
            with pytest.raises(IntegrityError):
                async with database.transaction() as conn:
                    await conn.execute(
                        update(api_keys).where(api_keys.c.id == "key_old").values(credit_limit=2.5)
                    )
        async with database.transaction() as conn:
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == "key_old")
                .values(credit_limit=MAX_CREDITS, limit_reset="monthly")
            )
    finally:
        await database.dispose()
