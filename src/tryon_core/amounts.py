"""Amounts of credits: whole numbers, never above one maximum, so no sum of them can overflow.

:data:`MAX_CREDITS` bounds every amount that enters the gateway: a model's price per image (the
plugin's default and a ``[models]`` override), a grant either way, a reservation, and what an
account holds (``balance + reserved``). The database says the same with CHECK constraints
(migration 0004), so neither backend ever stores more. docs/billing.md ("The maximum") gives the
arithmetic: 10**12 leaves every sum the gateway computes millions of times below 2**63.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

__all__ = ["MAX_CREDITS", "Credits", "is_credits"]

MAX_CREDITS: Final = 10**12
"""The most credits in any one amount, and the most one account can hold."""

Credits = Annotated[int, msgspec.Meta(ge=0, le=MAX_CREDITS)]
"""A price or a balance, as msgspec checks it when decoding (a config file, say)."""


def is_credits(value: object) -> bool:
    """A whole number of credits (an ``int``; not a ``bool``, not a float) from 0 to the maximum."""
    return type(value) is int and 0 <= value <= MAX_CREDITS
