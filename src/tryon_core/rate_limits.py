"""Requests per minute, per key and per account: the gateway's rate limits.

A request that starts a generation (a try-on, a chat completion, an async submission: the
routes whose ``opt`` says ``rate_limited``) is admitted by :meth:`RateLimits.admit` before its
body is read, so a refused one costs nothing. It counts against its caller (the key, or the demo
session) and against the caller's account:

- the caller: the key's own ``requests_per_minute``, else ``[limits] requests_per_minute``
  (a demo session takes the configured default);
- the account: ``[limits.account] requests_per_minute``, for every key, demo session and the
  console together.

Each limit is a moving window of 60 seconds (never more than N requests in any minute), kept
by the :pypi:`limits` library: in this process (``memory://``), or in Redis when ``[redis] url``
is set, so that every replica counts into the same windows. Redis unreachable: 503 with
Retry-After (a limit that cannot be counted is not silently lifted).

Over a limit: ``429 too_many_requests`` with ``Retry-After`` and ``X-RateLimit-Limit``,
``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (UTC epoch seconds when a request is next
admitted) and ``X-RateLimit-Scope`` (``key`` or ``account``); admitted requests carry the same
headers for the tightest of their limits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from tryon_core.accounts import Principal
from tryon_core.config import LimitsConfig
from tryon_core.errors import ServiceUnavailable, TooManyRequests
from tryon_core.redis_link import RedisLink

__all__ = ["RateLimits", "Window"]


@dataclass(frozen=True)
class Window:
    """One limit that applies to a request: who it counts (``scope``, ``owner``) and how many."""

    scope: str
    owner: str
    item: RateLimitItem

    @property
    def per_minute(self) -> int:
        return int(self.item.amount)


class RateLimits:
    """The requests-per-minute limits of one process (see the module's docstring)."""

    def __init__(self, config: LimitsConfig, storage: Storage) -> None:
        self._config = config
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)

    @classmethod
    def local(cls) -> RateLimits:
        """No limit configured, in memory (a gateway built without settings)."""
        return cls(LimitsConfig(), MemoryStorage())

    @classmethod
    def build(cls, config: LimitsConfig, redis: RedisLink | None) -> RateLimits:
        """In Redis when the deployment has one (sharing its connections), else in memory."""
        if redis is None:
            return cls(config, MemoryStorage())
        storage = RedisStorage(
            "async+redis://",  # only names the client library: the link's pool is used
            implementation="redispy",
            key_prefix=redis.key("ratelimit"),
            wrap_exceptions=True,
            connection_pool=redis.client.connection_pool,  # type: ignore[arg-type]
        )
        return cls(config, storage)

    def windows(self, principal: Principal) -> list[Window]:
        """The limits a request of ``principal`` counts against (none configured: empty)."""
        found = []
        caller = principal.key_id or principal.demo_session_id
        if caller is not None:
            per_minute = principal.requests_per_minute or self._config.requests_per_minute
            if per_minute:
                found.append(Window("key", caller, RateLimitItemPerMinute(per_minute)))
        per_account = self._config.account.requests_per_minute
        if per_account:
            found.append(
                Window("account", principal.account_id, RateLimitItemPerMinute(per_account))
            )
        return found

    async def admit(self, principal: Principal) -> dict[str, str]:
        """Count one request of ``principal``; its ``X-RateLimit-*`` headers, or 429.

        Every window is tested before any is counted, so a request refused by its account's
        limit does not use up its key's (two requests racing between the test and the count
        may still both be counted where only one is admitted: never more than the limit).
        """
        windows = self.windows(principal)
        if not windows:
            return {}
        try:
            for window in windows:
                if not await self._limiter.test(window.item, window.scope, window.owner):
                    raise await self._refusal(window)
            for window in windows:
                if not await self._limiter.hit(window.item, window.scope, window.owner):
                    raise await self._refusal(window)
            return await self._headers(windows)
        except StorageError as exc:
            raise ServiceUnavailable(
                "The rate limits cannot be counted right now (Redis is unreachable); retry "
                "shortly.",
                retry_after=2,
            ) from exc

    async def _refusal(self, window: Window) -> TooManyRequests:
        stats = await self._limiter.get_window_stats(window.item, window.scope, window.owner)
        wait = max(1.0, stats.reset_time - time.time())
        refusal = TooManyRequests(
            f"This {window.scope} may start {window.per_minute} generation request(s) per "
            f"minute; retry in {math.ceil(wait)} s.",
            retry_after=wait,
            metadata={
                "limit": "requests_per_minute",
                "scope": window.scope,
                "maximum": window.per_minute,
            },
        )
        refusal.headers = _headers(window, remaining=0, reset=stats.reset_time)
        return refusal

    async def _headers(self, windows: list[Window]) -> dict[str, str]:
        tightest: tuple[int, Window, float] | None = None
        for window in windows:
            stats = await self._limiter.get_window_stats(window.item, window.scope, window.owner)
            if tightest is None or stats.remaining < tightest[0]:
                tightest = (stats.remaining, window, stats.reset_time)
        assert tightest is not None
        remaining, window, reset = tightest
        return _headers(window, remaining=remaining, reset=reset)


def _headers(window: Window, *, remaining: int, reset: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(window.per_minute),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": str(math.ceil(reset)),
        "X-RateLimit-Scope": window.scope,
    }
