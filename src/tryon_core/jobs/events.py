"""Status changes of jobs, fanned out to their subscribers (WebSockets, a running job's watch).

The seam is two methods: ``publish(job_id)`` (never blocks, never raises) and
``subscribe(job_id)``, an :class:`asyncio.Event` set on each change. Subscribers read the job
from the database on connect and again whenever they wake up, so a wake-up carries no data and
a spurious one costs a read, never a wrong answer.

- :class:`JobEvents`: in this process only (the embedded default).
- :class:`RedisJobEvents`: also through Redis pub/sub (``[redis] url``), so that a change made in
  any process wakes the subscribers in every process.
- :class:`PgJobEvents`: the same through PostgreSQL LISTEN/NOTIFY, where the database is
  PostgreSQL and there is no ``[redis] url``.
- :func:`wake_periodically`: the fallback where no broker exists (processes of split roles on
  one SQLite file): every subscriber re-reads every ``[jobs] sweep_interval_seconds``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tryon_core.ids import new_id
from tryon_core.pg_link import PgLink
from tryon_core.redis_link import RedisLink

__all__ = ["CHANNEL", "JobEvents", "PgJobEvents", "RedisJobEvents", "wake_periodically"]

CHANNEL = "tryon_job_events"
"""The PostgreSQL channel of job events (channels are the database's own: no prefix needed)."""

EVERY_JOB = "*"
"""Published in place of a job id: wake every subscriber (some message was lost)."""


class JobEvents:
    """Subscribers of this process, woken by changes published in this process."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Event]] = defaultdict(set)

    def publish(self, job_id: str) -> None:
        """Wake every subscriber of ``job_id``: something about the job changed."""
        self._wake(job_id)

    def _wake(self, job_id: str) -> None:
        for event in self._subscribers.get(job_id, ()):
            event.set()

    def wake_all(self) -> None:
        """Wake every subscriber of every job (each re-reads its job)."""
        for subscribers in self._subscribers.values():
            for event in subscribers:
                event.set()

    @asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set on each change of the job; the subscriber clears it after reading."""
        event = asyncio.Event()
        self._subscribers[job_id].add(event)
        try:
            yield event
        finally:
            subscribers = self._subscribers.get(job_id)
            if subscribers is not None:
                subscribers.discard(event)
                if not subscribers:
                    del self._subscribers[job_id]


class RedisJobEvents(JobEvents):
    """Job events through one Redis pub/sub channel, ``PREFIX:job-events``, shared by every
    process of the deployment; a message is ``ORIGIN JOB_ID``.

    Local subscribers are woken at once; the message goes to Redis in the background (bounded:
    while Redis is down messages are dropped, see :meth:`RedisLink.send`). Another process wakes
    its subscribers of that job when the message arrives. Nothing is missed for good: after
    its subscription is re-established, a process wakes all its subscribers once (they re-read
    the job), and after a message of its own was lost it publishes ``EVERY_JOB`` once Redis
    takes messages again, which wakes every subscriber everywhere.

    Why redis-py's pub/sub and not Litestar's ``RedisChannelsPubSubBackend``: that backend
    subscribes without waiting for Redis to confirm (a change published in between would be
    missed) and hides both its connection's loss and redis-py's silent reconnect and
    re-subscription, so its users cannot know when to re-read. The process also needs just one
    channel, subscribed once at start; the backend's per-channel machinery adds nothing here.
    """

    def __init__(self, link: RedisLink) -> None:
        super().__init__()
        self._link = link
        self.name = link.key("job-events")
        self._origin = new_id("ev")
        self._lost = 0
        link.listen(self)

    def publish(self, job_id: str) -> None:
        self._wake(job_id)
        self._link.send(self._publish_to(job_id))

    def _publish_to(self, job_id: str) -> Any:
        async def publish(client: Any) -> None:
            if self._lost < self._link.dropped:  # something was lost: wake everyone
                self._lost = self._link.dropped
                await client.publish(self.name, f"{self._origin} {EVERY_JOB}")
            await client.publish(self.name, f"{self._origin} {job_id}")

        return publish

    def receive(self, data: bytes) -> None:
        origin, _, job_id = data.decode().partition(" ")
        if job_id == EVERY_JOB:
            self.wake_all()
        elif origin != self._origin:
            self._wake(job_id)

    async def resync(self, link: RedisLink) -> None:
        self.wake_all()


class PgJobEvents(JobEvents):
    """Job events through PostgreSQL NOTIFY on :data:`CHANNEL`, one LISTEN connection per
    process (:class:`~tryon_core.pg_link.PgLink`); a notification's payload is the job id.

    Local subscribers are woken at once; the notification is sent in the background (bounded,
    never blocking the caller). Other processes wake their subscribers of that job when it
    arrives. Nothing is missed for good: after its connection listens again a process wakes all
    its subscribers once (they re-read), and after notifications of its own were lost it sends
    ``EVERY_JOB``, which wakes every subscriber in every other process.
    """

    def __init__(self, link: PgLink) -> None:
        super().__init__()
        self._link = link
        self._lost = 0
        link.listen(CHANNEL, self.receive, self.resync)

    def publish(self, job_id: str) -> None:
        self._wake(job_id)
        self._tell_if_lost()
        self._link.send(CHANNEL, job_id)

    def _tell_if_lost(self) -> None:
        if self._lost < self._link.dropped:
            self._lost = self._link.dropped
            self._link.send(CHANNEL, EVERY_JOB)

    def receive(self, payload: str) -> None:
        if payload == EVERY_JOB:
            self.wake_all()
        else:
            self._wake(payload)

    def resync(self) -> None:
        self.wake_all()
        self._tell_if_lost()


async def wake_periodically(events: JobEvents, every: float) -> None:
    """Wake every subscriber every ``every`` seconds, forever: where changes made in other
    processes cannot be heard of (no broker), subscribers re-read on this timer instead."""
    while True:
        await asyncio.sleep(every)
        events.wake_all()
