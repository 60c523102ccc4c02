"""A key's limits as the console's forms give them and as its keys table shows them.

The form has four fields named as the API names them (:data:`tryon_core.key_limits.LIMIT_FIELDS`):
``limit`` (credits per period), ``limit_reset`` (``none``, ``daily``, ``weekly``, ``monthly``,
UTC), ``requests_per_minute`` and ``concurrent_generations``. A blank number clears it: no
credit limit, the ``[limits]`` default for the other two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tryon_core.accounts import KeyInfo
from tryon_core.amounts import MAX_CREDITS
from tryon_core.config import MAX_LIMIT
from tryon_core.errors import InvalidRequest
from tryon_core.key_limits import LIMIT_FIELDS, standing
from tryon_core.limit_periods import LIMIT_RESETS

__all__ = [
    "LIMIT_LABELS",
    "NO_LIMITS",
    "blank_form",
    "form_of",
    "limit_changes",
    "limit_summary",
    "limits_of",
    "rate_summary",
]

LIMIT_LABELS = {
    "limit": "Credit limit",
    "limit_reset": "Limit resets",
    "requests_per_minute": "Requests per minute",
    "concurrent_generations": "Generations at once",
}
"""What the console calls each field (its labels and messages)."""
_RANGES = {
    "limit": (0, MAX_CREDITS, "credits", "no limit"),
    "requests_per_minute": (1, MAX_LIMIT, "requests", "the default"),
    "concurrent_generations": (1, MAX_LIMIT, "generations", "the default"),
}
_MAX_DIGITS = 16
NO_LIMITS: dict[str, Any] = {
    "limit": None,
    "limit_reset": "none",
    "requests_per_minute": None,
    "concurrent_generations": None,
}
"""The limits of a key that has none of its own."""


def limits_of(info: KeyInfo) -> dict[str, Any]:
    """The key's limits as :func:`tryon_core.key_limits.set_limits` names them."""
    return {
        "limit": info.credit_limit,
        "limit_reset": info.limit_reset,
        "requests_per_minute": info.requests_per_minute,
        "concurrent_generations": info.concurrent_generations,
    }


def blank_form() -> dict[str, str]:
    """The fields of a new key: no limits of its own."""
    return {field: "none" if field == "limit_reset" else "" for field in LIMIT_FIELDS}


def form_of(info: KeyInfo) -> dict[str, str]:
    """The fields holding the key's limits now (to change them)."""

    def text(value: int | None) -> str:
        return "" if value is None else str(value)

    return {
        "limit": text(info.credit_limit),
        "limit_reset": info.limit_reset,
        "requests_per_minute": text(info.requests_per_minute),
        "concurrent_generations": text(info.concurrent_generations),
    }


def limit_changes(fields: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """(the form as sent, to show again; every limit as
    :func:`tryon_core.key_limits.set_limits` takes it). A bad value is a 400 naming its field
    as the form labels it (``param`` is the API's name)."""
    form = {field: fields.get(field, "").strip() for field in LIMIT_FIELDS}
    form["limit_reset"] = form["limit_reset"] or "none"
    changes: dict[str, Any] = {}
    for field in LIMIT_FIELDS:
        if field == "limit_reset":
            if form[field] not in LIMIT_RESETS:
                raise InvalidRequest(
                    f"{LIMIT_LABELS[field]}: choose one of {', '.join(LIMIT_RESETS)}.", param=field
                )
            changes[field] = form[field]
        else:
            changes[field] = _number(field, form[field])
    return form, changes


def _number(field: str, text: str) -> int | None:
    if not text:
        return None
    lowest, highest, unit, blank = _RANGES[field]
    if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS:
        value = int(text)
        if lowest <= value <= highest:
            return value
    raise InvalidRequest(
        f"{LIMIT_LABELS[field]}: a whole number of {unit} from {lowest} to {highest:,}, "
        f"or blank for {blank}.",
        param=field,
    )


def limit_summary(info: KeyInfo, *, at: datetime | None = None) -> str:
    """The key's credit limit now: "120 of 500 left · monthly", or "no limit"."""
    limit = standing(info, at=at)
    if limit.limit is None:
        return "no limit"
    period = "never resets" if limit.reset == "none" else limit.reset
    return f"{_figure(limit.remaining or 0)} of {_figure(limit.limit)} left · {period}"


def rate_summary(info: KeyInfo) -> str:
    """The key's own rate limits: "4 at once · 60/min", or "defaults" (``[limits]``)."""
    parts = []
    if info.concurrent_generations is not None:
        parts.append(f"{_figure(info.concurrent_generations)} at once")
    if info.requests_per_minute is not None:
        parts.append(f"{_figure(info.requests_per_minute)}/min")
    return " · ".join(parts) if parts else "defaults"


def _figure(value: int) -> str:
    """As the console writes credits: a narrow no-break space between thousands."""
    return f"{value:,}".replace(",", "\u202f")
