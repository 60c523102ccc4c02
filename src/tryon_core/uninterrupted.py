"""Steps that must not be cut in half by a cancellation (a client hanging up, a deadline).

A commit, a rollback, returning a connection to its pool: each of these, abandoned part-way,
leaves state behind that nobody owns (a SQLite write lock held by a connection nobody will
close, a row committed that its caller believes failed). :func:`uninterrupted` runs such a
step to its end and delivers a cancellation that arrived meanwhile at the caller's next
``await`` instead: the step happened, and the caller still stops.
"""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["uninterrupted"]

T = TypeVar("T")


async def uninterrupted(step: Awaitable[T], *, eager: bool = False) -> T:
    """Await ``step`` to its end even if the current task is cancelled meanwhile.

    A cancellation that arrives while waiting is held back and requested again once the step
    has ended (its result or error is still returned or raised): it takes effect at the next
    ``await``, so ``asyncio.timeout`` and task cancellation keep working.

    The step runs in a task of its own, which costs a task and a turn of the event loop or two.
    ``eager`` (a coroutine): run it at once in the current task up to its first wait, and make
    a task only if it waits; a step that never waits (SQLite's BEGIN, COMMIT and a connection
    back to its pool, done on the event loop's thread) costs nothing more than a call, and no
    cancellation can land in it. Only for a step that enters nothing bound to the current task
    (``asyncio.timeout``, an anyio cancel scope or lock) before its first wait: what it entered
    would stay bound to the caller, not to the task that finishes the step.
    """
    if eager and isinstance(step, Coroutine):
        try:
            waiting = step.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        resumed = _resumed(step, waiting)
        resumed.send(None)  # to its priming stop
        step = resumed
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


@types.coroutine
def _resumed(coroutine: Coroutine[Any, Any, T], waiting: Any) -> Generator[Any, Any, T]:
    """Go on with ``coroutine``, started elsewhere and now waiting on ``waiting`` (what its
    first ``send`` gave): what it waits on is handed to the task running this, as ``await``
    hands it on, and whatever that task sends or throws is passed down to it.

    Primed (advanced to its first ``yield``) before a task takes it: a task cancelled before
    its first step throws the cancellation into its coroutine, and a generator not yet started
    would end there without passing it down, leaving ``coroutine`` half-way for good."""
    move: Callable[[], Any] | None = None  # what to do to the coroutine; None: hand on `waiting`
    try:
        yield  # the priming stop
    except GeneratorExit:
        coroutine.close()
        raise
    except BaseException as error:
        move = functools.partial(coroutine.throw, error)
    while True:
        if move is not None:
            try:
                waiting = move()
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
        try:
            sent = yield waiting
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as error:
            move = functools.partial(coroutine.throw, error)
        else:
            move = functools.partial(coroutine.send, sent)
