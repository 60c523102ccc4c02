"""INSERT ... ON CONFLICT for whichever backend a connection is on (SQLite or PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["insert_on_conflict"]


def insert_on_conflict(conn: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` that takes ``on_conflict_do_nothing``/``_do_update``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
