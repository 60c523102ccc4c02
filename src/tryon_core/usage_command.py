"""``tryon usage``: spend per account, key and model over a period, as tables or JSON."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec

from tryon_core.db import Database
from tryon_core.errors import InvalidRequest
from tryon_core.ids import utcnow
from tryon_core.usage_report import GROUPINGS, Grouping, SpendRow, spend

__all__ = ["period", "usage_command"]

_COUNTS = ("generations", "succeeded", "failed", "credits")


async def usage_command(database: Database, args: argparse.Namespace) -> tuple[str, Any]:
    since, until = period(args.since, args.until, now=utcnow())
    groupings: tuple[Grouping, ...] = (args.by,) if args.by else GROUPINGS
    found: dict[Grouping, list[SpendRow]] = {}
    async with database.reading() as conn:
        for by in groupings:
            found[by] = await spend(conn, by, since=since, until=until, account_id=args.account)
    data: dict[str, Any] = {
        "since": _iso(since),
        "until": _iso(until),
        "account_id": args.account,
        **{f"by_{by}": [_json(by, row) for row in rows] for by, rows in found.items()},
    }
    lines = [f"usage from {_iso(since)} to {_iso(until)} (UTC)"]
    for by, rows in found.items():
        lines += ["", f"by {by}", *_table(by, rows)]
    return "\n".join(lines), data


def period(since: str | None, until: str | None, *, now: datetime) -> tuple[datetime, datetime]:
    """``[since, until)`` in UTC from the options: a date is a whole UTC day (``--until`` takes
    that day in); a time without an offset is UTC. Default: this calendar month."""
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    start = _instant(since, "--since", end_of_day=False) if since else month
    if until:
        end = _instant(until, "--until", end_of_day=True)
    else:
        end = (month + timedelta(days=32)).replace(day=1)
    if start >= end:
        raise InvalidRequest(f"--since ({_iso(start)}) must come before --until ({_iso(end)}).")
    return start, end


def _instant(text: str, option: str, *, end_of_day: bool) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=int(end_of_day)), time(), tzinfo=UTC)
        value = datetime.fromisoformat(text)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"{option} takes a date (2026-03-01) or an ISO time (2026-03-01T12:00:00Z), in UTC."
        ) from None


def _json(by: Grouping, row: SpendRow) -> dict[str, Any]:
    named = {"account": ("account_id",), "key": ("account_id", "key_id", "key_name")}
    fields = named.get(by, ("model",))
    data = msgspec.to_builtins(row)
    return {name: data[name] for name in (*fields, *_COUNTS)}


def _table(by: Grouping, rows: list[SpendRow]) -> list[str]:
    if not rows:
        return ["  nothing in this period"]
    heads = {"account": ["ACCOUNT"], "key": ["ACCOUNT", "KEY"], "model": ["MODEL"]}[by]
    body = [[*_names(by, row), *(str(getattr(row, c)) for c in _COUNTS)] for row in rows]
    header = [*heads, *(c.upper() for c in _COUNTS)]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    named = len(heads)

    def line(cells: list[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:named], widths, strict=False)]
        right = [c.rjust(w) for c, w in zip(cells[named:], widths[named:], strict=True)]
        return "  ".join(left + right).rstrip()

    return [line(header), *(line(r) for r in body)]


def _names(by: Grouping, row: SpendRow) -> list[str]:
    if by == "account":
        return [row.account_id or "-"]
    if by == "key":
        key = f"{row.key_id} ({row.key_name})" if row.key_name else row.key_id or "- (no key)"
        return [row.account_id or "-", key]
    return [row.model or "-"]


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
