"""One process's link to the deployment's Redis (``[redis] url``): what the shared job events,
model health and rate limits are built on.

- :func:`check_redis`: connect and authenticate once, or ConfigError naming ``redis.url``
  (the start-up check of ``tryon serve`` and of :meth:`tryon_core.gateway.Gateway.start`).
- :class:`RedisLink`: a command client; :meth:`~RedisLink.send`, fire-and-forget commands
  through a bounded queue (never blocks or fails the caller; while Redis is down they are
  dropped and the loss is remembered); and one pub/sub connection that feeds each registered
  :class:`Channel`. After that connection is (re)established, every channel is told to
  ``resync`` (messages may have been missed while it was away).

Redis being down while serving is logged once (and once more when it is back); nothing here
raises into a request, except :meth:`RedisLink.command`, whose callers turn an outage into a
503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from tryon_core.config import RedisConfig
from tryon_core.errors import ConfigError, ServiceUnavailable

if TYPE_CHECKING:  # redis itself is imported where it is used: a gateway without it never loads it
    import redis.asyncio as aioredis

__all__ = ["Channel", "RedisLink", "check_redis", "redis_client", "shown_url"]

log = logging.getLogger("tryon.redis")
T = TypeVar("T")

QUEUE_LIMIT = 1000
"""Fire-and-forget commands waiting at most; beyond it new ones are dropped (Redis is down)."""
RETRY_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
"""Waits between attempts to re-establish the pub/sub connection (the last one repeats)."""


class Channel(Protocol):
    """A pub/sub channel's user: the messages published on ``name`` reach ``receive``."""

    name: str

    def receive(self, data: bytes) -> None: ...

    async def resync(self, link: RedisLink) -> None:
        """The subscription is (again) in place: catch up on what may have been missed."""


def shown_url(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def redis_client(config: RedisConfig, *, retries: int = 1) -> aioredis.Redis:
    """A client of ``[redis] url`` bounded by ``[redis] timeout``; ``retries=0`` surfaces every
    dropped connection instead of reconnecting silently (pub/sub must notice)."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    assert config.url is not None
    return aioredis.Redis.from_url(
        config.url,
        socket_timeout=config.timeout,
        socket_connect_timeout=config.timeout,
        retry=Retry(NoBackoff(), retries),
        health_check_interval=0,
    )


async def check_redis(config: RedisConfig) -> None:
    """Connect, authenticate and PING once: ConfigError (one line, naming ``redis.url``, never
    the password) when that fails."""
    if config.url is None:
        return
    from redis.exceptions import AuthenticationError, RedisError, ResponseError

    client = redis_client(config, retries=0)
    try:
        await client.ping()
    except AuthenticationError:
        raise ConfigError(
            f"redis.url: Redis at {shown_url(config.url)} refused these credentials"
        ) from None
    except ResponseError as exc:  # NOAUTH, WRONGPASS, a database index out of range ...
        raise ConfigError(f"redis.url: Redis at {shown_url(config.url)} refused: {exc}") from None
    except (RedisError, OSError) as exc:
        raise ConfigError(
            f"redis.url: cannot reach Redis at {shown_url(config.url)} ({_reason(exc)})"
        ) from None
    finally:
        await client.aclose()


def _reason(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0][:200] if lines else type(exc).__name__


class _Outage:
    """Says once that Redis is down, and once that it is back."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            log.warning("Redis is unreachable (%s): %s; carrying on", self.what, _reason(exc))

    def succeeded(self) -> None:
        if self.down:
            self.down = False
            log.warning("Redis is reachable again (%s)", self.what)


class RedisLink:
    """The command client, the fire-and-forget sender and the pub/sub listener of one process.

    Register channels with :meth:`listen` before :meth:`start`.
    """

    def __init__(self, config: RedisConfig) -> None:
        self.config = config
        self.prefix = config.prefix
        self.client = redis_client(config)
        self._channels: dict[str, Channel] = {}
        self._queue: asyncio.Queue[Callable[[aioredis.Redis], Awaitable[Any]]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: asyncio.Event | None = None
        self._sending = _Outage("sending")
        self._listening = _Outage("listening")
        self.dropped = 0
        """Fire-and-forget commands lost (failed, or refused by a full queue) since start."""

    def key(self, *parts: str) -> str:
        """A key or channel name of this deployment: ``PREFIX:part:part``."""
        return ":".join((self.prefix, *parts))

    def listen(self, channel: Channel) -> None:
        self._channels[channel.name] = channel

    async def start(self) -> None:
        """Check Redis (ConfigError if it cannot be used), then subscribe and wait until every
        channel has loaded the shared state."""
        await check_redis(self.config)
        self._queue = asyncio.Queue(QUEUE_LIMIT)
        self._ready = asyncio.Event()
        self._tasks = [asyncio.create_task(self._send_forever())]
        if self._channels:
            self._tasks.append(asyncio.create_task(self._listen_forever()))
            try:
                async with asyncio.timeout(self.config.timeout * 2):
                    await self._ready.wait()
            except TimeoutError:
                await self.close()
                raise ConfigError(
                    f"redis.url: Redis at {shown_url(self.config.url or '')} answered but did "
                    "not confirm a subscription in time"
                ) from None

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.client.aclose()

    async def command(self, call: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """Run ``call`` with the client now; Redis down is a 503 (ServiceUnavailable)."""
        from redis.exceptions import RedisError

        try:
            return await call(self.client)
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(
                "Shared state (Redis) is unavailable; try again shortly.", retry_after=5
            ) from exc

    def send(self, call: Callable[[aioredis.Redis], Awaitable[Any]]) -> None:
        """Run ``call`` soon, in the background: never blocks, never raises. Dropped (and
        counted) when the queue is full or before :meth:`start`."""
        if self._queue is None:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(call)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _send_forever(self) -> None:
        from redis.exceptions import RedisError

        assert self._queue is not None
        while True:
            call = await self._queue.get()
            try:
                await call(self.client)
            except (RedisError, OSError) as exc:
                self.dropped += 1
                self._sending.failed(exc)
            except Exception:  # a bug in one command must not stop the others
                self.dropped += 1
                log.exception("a Redis command failed")
            else:
                self._sending.succeeded()

    async def _listen_forever(self) -> None:
        """Keep one subscription to every channel; after each (re)subscription let every
        channel resync. A connection that fails or stops answering is replaced."""
        from redis.exceptions import RedisError

        assert self._ready is not None
        failures = 0
        while True:
            client = redis_client(self.config, retries=0)
            try:
                await self._listen_once(client)
            except (RedisError, OSError, TimeoutError) as exc:
                self._listening.failed(exc)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1

    async def _listen_once(self, client: aioredis.Redis) -> None:
        assert self._ready is not None
        loop = asyncio.get_running_loop()
        idle = max(self.config.timeout, 1.0)
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(*self._channels)
            confirmed: set[bytes] = set()
            heard = loop.time()
            pinged = False
            while True:
                message = await pubsub.get_message(timeout=min(1.0, idle))
                now = loop.time()
                if message is None:
                    if now - heard > idle * 2:
                        raise TimeoutError("the subscription stopped answering")
                    if now - heard > idle and not pinged:
                        await pubsub.ping()
                        pinged = True
                    continue
                heard, pinged = now, False
                kind = message["type"]
                if kind == "subscribe":
                    confirmed.add(message["channel"])
                    if len(confirmed) == len(self._channels):
                        for channel in self._channels.values():
                            await channel.resync(self)
                        self._listening.succeeded()
                        self._ready.set()
                elif kind == "message":
                    receiver = self._channels.get(message["channel"].decode())
                    if receiver is not None:
                        _deliver(receiver, message["data"])


def _deliver(channel: Channel, data: bytes) -> None:
    try:
        channel.receive(data)
    except Exception:  # a malformed message must not end the subscription
        log.exception("could not handle a message on %s", channel.name)
