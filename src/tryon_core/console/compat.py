"""Key scopes and operator accounts as the console uses them (helper A's interface).

Until that branch is merged, keys have no scope and no account is an operator: this module
answers as if every key were a management key. It goes away once ``tryon_core.accounts`` has
``console_principal``, ``is_operator``, ``KeyInfo.scope`` and ``create_key(scope=)``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core import accounts
from tryon_core.accounts import KeyInfo, Principal

__all__ = ["console_principal", "create_key", "is_operator", "key_scope", "principal_scopes"]

BOTH = frozenset({"inference", "management"})


def console_principal(account_id: str) -> Principal:
    make = getattr(accounts, "console_principal", None)
    if make is not None:
        principal: Principal = make(account_id)
        return principal
    build: Any = Principal
    made: Principal = build(key_id=None, account_id=account_id)
    return made


def principal_scopes(principal: Principal) -> frozenset[str]:
    scopes: frozenset[str] = getattr(principal, "scopes", BOTH)
    return scopes


def key_scope(info: KeyInfo) -> str:
    scope: str = getattr(info, "scope", "inference")
    return scope


async def create_key(
    conn: AsyncConnection, *, account_id: str, name: str, scope: str
) -> tuple[KeyInfo, str]:
    make: Any = accounts.create_key
    if hasattr(KeyInfo, "scope"):
        created: tuple[KeyInfo, str] = await make(
            conn, account_id=account_id, name=name, scope=scope
        )
        return created
    return await accounts.create_key(conn, account_id=account_id, name=name)


async def is_operator(conn: AsyncConnection, account_id: str) -> bool:
    check = getattr(accounts, "is_operator", None)
    if check is None:
        return False
    found: bool = await check(conn, account_id)
    return found
