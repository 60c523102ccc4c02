"""Steps that must not be cut in half by a cancellation (a client hanging up, a deadline).

A commit, a rollback, returning a connection to its pool: each of these, abandoned part-way,
leaves state behind that nobody owns (a SQLite write lock held by a connection nobody will
close, a row committed that its caller believes failed). :func:`uninterrupted` runs such a
step to its end and delivers a cancellation that arrived meanwhile at the caller's next
``await`` instead: the step happened, and the caller still stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["uninterrupted"]

T = TypeVar("T")


async def uninterrupted(step: Awaitable[T]) -> T:
    """Await ``step`` to its end even if the current task is cancelled meanwhile.

    A cancellation that arrives while waiting is held back and requested again once the step
    has ended (its result or error is still returned or raised): it takes effect at the next
    ``await``, so ``asyncio.timeout`` and task cancellation keep working.
    """
    task = asyncio.ensure_future(step)
    current = asyncio.current_task()
    deferred = 0
    try:
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.done() and task.cancelled():
                    raise  # the step itself was cancelled, not us
                if current is None:
                    raise
                deferred += 1
                current.uncancel()
    finally:
        if current is not None:
            for _ in range(deferred):
                current.cancel()
