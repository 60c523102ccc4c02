"""The periods after which a key's credit limit starts over: ``none``, ``daily``, ``weekly``
(weeks begin Monday 00:00) and ``monthly``, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["EPOCH", "LIMIT_RESETS", "next_period_start", "period_start"]

LIMIT_RESETS: Final = ("none", "daily", "weekly", "monthly")
"""When a key's credit limit starts over (UTC)."""
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""Where the one period of a limit that never resets begins."""


def period_start(reset: str, at: datetime) -> datetime:
    """The start of the ``reset`` period that holds ``at`` (a naive ``at`` is taken as UTC)."""
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if reset == "none":
        return EPOCH
    if reset == "daily":
        return midnight
    if reset == "weekly":
        return midnight - timedelta(days=midnight.weekday())
    if reset == "monthly":
        return midnight.replace(day=1)
    raise ValueError(f"unknown limit reset {reset!r}")


def next_period_start(reset: str, at: datetime) -> datetime | None:
    """When the ``reset`` period holding ``at`` ends (None: it never does)."""
    start = period_start(reset, at)
    if reset == "none":
        return None
    if reset == "daily":
        return start + timedelta(days=1)
    if reset == "weekly":
        return start + timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)
