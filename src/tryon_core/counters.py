"""Shared counters with fixed windows: what rate limits count with.

``await counters.hit(key, window_seconds=60)`` adds ``amount`` to the counter ``key`` and
returns its new total within the current window. A window starts at the first hit after the
previous one ended and lasts ``window_seconds``; then the count starts again from zero.

- :class:`LocalCounters`: this process only (the embedded default).
- :class:`RedisCounters`: with ``[redis] url``, one count for every process of the deployment
  (``PREFIX:counter:KEY``, added to and given its expiry in one script). Redis down: the hit
  raises ServiceUnavailable (a 503 with Retry-After) rather than count wrongly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from tryon_core.redis_link import RedisLink

__all__ = ["Counters", "LocalCounters", "RedisCounters"]


class Counters(Protocol):
    async def hit(self, key: str, *, window_seconds: float, amount: int = 1) -> int:
        """Add ``amount`` to ``key`` in its current window; the window's total so far."""
        ...


class LocalCounters:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        """key -> (the window's end, its count)"""

    async def hit(self, key: str, *, window_seconds: float, amount: int = 1) -> int:
        now = self._clock()
        if len(self._windows) > 10_000:  # forget ended windows now and then
            self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
        ends, count = self._windows.get(key, (0.0, 0))
        if ends <= now:
            ends, count = now + window_seconds, 0
        count += amount
        self._windows[key] = (ends, count)
        return count


# KEYS: the counter. ARGV: amount, window in ms. The expiry is set by the hit that opens the
# window (a key without one, left by anything, gets one too).
_HIT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
"""


class RedisCounters:
    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._hit = link.client.register_script(_HIT)

    async def hit(self, key: str, *, window_seconds: float, amount: int = 1) -> int:
        keys = [self._link.key("counter", key)]
        args = [amount, max(1, int(window_seconds * 1000))]
        count = await self._link.command(lambda _: self._hit(keys=keys, args=args))
        return int(count)
