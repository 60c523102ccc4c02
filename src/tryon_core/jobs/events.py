"""Status changes of jobs, fanned out to the subscribers in this process (WebSockets).

This is the in-process implementation of the fan-out seam; a deployment with several gateway
processes puts a shared broker behind the same two methods. Subscribers never depend on it
alone: they read the job from the database on connect and again whenever they wake up.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["JobEvents"]


class JobEvents:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Event]] = defaultdict(set)

    def publish(self, job_id: str) -> None:
        """Wake every subscriber of ``job_id``: something about the job changed."""
        for event in self._subscribers.get(job_id, ()):
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
