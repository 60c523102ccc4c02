"""Sign-in attempts, bounded per client address: ``attempts`` in any ``window`` seconds.

Every attempt counts, good or bad (a key pasted, a link used). Kept in this process's memory:
enough to make guessing keys hopeless (a key has 256 random bits; this bounds the guessing
of a link or of a session, too), and forgotten on restart. The number of addresses followed
is bounded; past it, the longest-quiet address is forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["SignInThrottle"]

_MAX_ADDRESSES = 10_000
_FLOAT_SLACK = 1e-9
"""Seconds of float rounding ignored when the wait is rounded up to whole seconds."""


class SignInThrottle:
    def __init__(
        self,
        *,
        attempts: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = _MAX_ADDRESSES,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._max_addresses = max_addresses
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def attempt(self, address: str) -> float | None:
        """Count one attempt from ``address``: None if it may go ahead, else the seconds
        until it may try again (the refused attempt is not counted)."""
        now = self._clock()
        times = self._seen.pop(address, None) or deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.attempts:
            self._seen[address] = times
            # whole seconds, rounded up; a hair of float error (an attempt admitted at this
            # very instant: t + window - t may come out as window + 1e-14) is not a second
            return max(1.0, math.ceil(times[0] + self.window - now - _FLOAT_SLACK))
        times.append(now)
        self._seen[address] = times  # most recently active last
        while len(self._seen) > self._max_addresses:
            self._seen.popitem(last=False)
        return None
