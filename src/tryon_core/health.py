"""Per-model health: a model that keeps failing is cooled down for a while.

- :class:`HealthTracker`: this process's view (the embedded default).
- :class:`SharedHealth`: with ``[redis] url``, failures are counted in Redis (atomically, one
  script) and a cool-down is a key there with an expiry, so a model cooling down on one replica
  cools down on all. Each change is announced on ``PREFIX:model-health`` and every process
  updates its own view from it; the state is loaded at start and after a lost subscription.
  Routing reads only the local view (no round trip per decision). With Redis down the local
  view goes on by itself (a warning is logged once) and no request fails because of health.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tryon_core.redis_link import RedisLink

__all__ = ["HealthTracker", "SharedHealth"]


class HealthTracker:
    """After ``threshold`` consecutive upstream failures a model cools down for ``cooldown`` s."""

    def __init__(
        self, *, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def is_cooling(self, slug: str) -> bool:
        return self._until.get(slug, 0.0) > self._clock()

    def cooling_until(self, slug: str) -> float | None:
        until = self._until.get(slug)
        return until if until and until > self._clock() else None

    def cooldown_left(self, slug: str) -> float:
        """Seconds until the model is tried again; 0 when it is not cooling down."""
        return max(0.0, self._until.get(slug, 0.0) - self._clock())

    def failures(self, slug: str) -> int:
        """Upstream failures in a row since the model last succeeded."""
        return self._failures.get(slug, 0)

    def success(self, slug: str) -> None:
        self._failures.pop(slug, None)
        self._until.pop(slug, None)

    def failure(self, slug: str) -> None:
        count = self._failures.get(slug, 0) + 1
        self._failures[slug] = count
        if count >= self.threshold:
            self._until[slug] = self._clock() + self.cooldown

    def _set(self, slug: str, failures: int, cooling_ms: int) -> None:
        """Take the shared state of one model: its failures and the cool-down left."""
        if failures <= 0:
            self._failures.pop(slug, None)
        else:
            self._failures[slug] = failures
        if cooling_ms <= 0:
            self._until.pop(slug, None)
        else:
            self._until[slug] = self._clock() + cooling_ms / 1000


# KEYS: failures hash, cool-down key, channel. ARGV: slug, threshold, cool-down ms.
# Counts one failure; at the threshold (re)starts the cool-down; announces the new state.
_FAILURE = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if n >= tonumber(ARGV[2]) then redis.call('SET', KEYS[2], '1', 'PX', ARGV[3]) end
local left = redis.call('PTTL', KEYS[2])
if left < 0 then left = 0 end
redis.call('PUBLISH', KEYS[3], ARGV[1] .. ' ' .. n .. ' ' .. left)
return n
"""
# KEYS: failures hash, cool-down key, channel. ARGV: slug.
_SUCCESS = """
local had = redis.call('HDEL', KEYS[1], ARGV[1]) + redis.call('DEL', KEYS[2])
if had > 0 then redis.call('PUBLISH', KEYS[3], ARGV[1] .. ' 0 0') end
return had
"""


class SharedHealth(HealthTracker):
    """The same view on every process of a deployment, kept in Redis (see the module)."""

    def __init__(
        self,
        link: RedisLink,
        *,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(threshold=threshold, cooldown=cooldown, clock=clock)
        self._link = link
        self.name = link.key("model-health")
        self._hash = link.key("model-health", "failures")
        self._failure = link.client.register_script(_FAILURE)
        self._success = link.client.register_script(_SUCCESS)
        link.listen(self)

    def _cooling_key(self, slug: str) -> str:
        return self._link.key("model-health", "cooling", slug)

    def success(self, slug: str) -> None:
        known = slug in self._failures or slug in self._until
        super().success(slug)
        if known:  # the shared state can only hold what some process announced to all
            keys = [self._hash, self._cooling_key(slug), self.name]
            self._link.send(lambda _: self._success(keys=keys, args=[slug]))

    def failure(self, slug: str) -> None:
        super().failure(slug)
        keys = [self._hash, self._cooling_key(slug), self.name]
        args: list[str | int] = [slug, self.threshold, max(1, int(self.cooldown * 1000))]
        self._link.send(lambda _: self._failure(keys=keys, args=args))

    def receive(self, data: bytes) -> None:
        slug, failures, cooling_ms = data.decode().rsplit(" ", 2)
        self._set(slug, int(failures), int(cooling_ms))

    async def resync(self, link: RedisLink) -> None:
        """Load every model's shared state (at start, and after a lost subscription)."""
        counts: dict[Any, Any] = await link.client.hgetall(self._hash)
        slugs = [s.decode() for s in counts]
        async with link.client.pipeline(transaction=False) as pipe:
            for slug in slugs:
                pipe.pttl(self._cooling_key(slug))
            left = await pipe.execute()
        self._failures.clear()
        self._until.clear()
        for slug, ms in zip(slugs, left, strict=True):
            self._set(slug, int(counts[slug.encode()]), int(ms))
