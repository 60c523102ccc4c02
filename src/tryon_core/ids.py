"""Identifiers and clocks used across the core."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

__all__ = ["as_utc", "new_id", "utcnow"]


def new_id(prefix: str) -> str:
    """``prefix_`` + 24 URL-safe random characters (144 bits)."""
    return f"{prefix}_{secrets.token_urlsafe(18)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
