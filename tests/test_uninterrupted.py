"""tryon_core.uninterrupted: a step runs to its end whatever cancels its caller; ``eager``
runs it at once in the caller's task up to its first wait, and makes a task only then."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tryon_core.uninterrupted import uninterrupted

_seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")


async def test_an_eager_step_that_never_waits_makes_no_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_task(*args: object, **kwargs: object) -> None:
        raise AssertionError("a task was made for a step that never waits")

    async def step() -> str:
        return f"done in {asyncio.current_task() is caller}"

    caller = asyncio.current_task()
    monkeypatch.setattr(asyncio, "ensure_future", no_task)
    assert await uninterrupted(step(), eager=True) == "done in True"


async def test_an_eager_step_raises_its_own_error_at_once() -> None:
    async def step() -> None:
        raise LookupError("the step's own")

    with pytest.raises(LookupError, match="the step's own"):
        await uninterrupted(step(), eager=True)


@pytest.mark.parametrize("eager", [False, True])
async def test_a_step_that_waits_ends_whole_and_the_cancellation_comes_after(eager: bool) -> None:
    """Cancelled while its step waits, the caller still gets the step's result, and the
    cancellation at its next await; the step ran in the caller's context either way."""
    release = asyncio.get_running_loop().create_future()
    ended: list[str] = []
    got: list[str] = []

    async def step() -> str:
        before = _seen.get()
        await asyncio.sleep(0)
        value = await release
        ended.append(before + value)
        return value

    async def caller() -> None:
        _seen.set("context ")
        got.append(await uninterrupted(step(), eager=eager))
        await asyncio.sleep(0)  # the held-back cancellation lands here
        got.append("never")

    task = asyncio.ensure_future(caller())
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    for _ in range(3):
        await asyncio.sleep(0)
        task.cancel()  # again and again: still one step, ended once
    release.set_result("released")
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended == ["context released"]
    assert got == ["released"]


# Each program is a list of moves the step makes: "yield" (a turn of the loop), "wait" (a
# future answered at the next turn), "slow" (one answered three turns later), "fail" (a future
# that fails; the step catches it), "raise" (the step ends with an error), "return".
_moves = st.lists(st.sampled_from(["yield", "wait", "slow", "fail", "raise", "return"]), max_size=8)


_answering: set[asyncio.Task[None]] = set()  # held, or a pending task may be collected


async def _answer_later(future: asyncio.Future[int], value: int) -> None:
    for _ in range(3):
        await asyncio.sleep(0)
    future.set_result(value)
    _answering.discard(asyncio.current_task())  # type: ignore[arg-type]


async def _run(moves: list[str], trace: list[str]) -> str:
    loop = asyncio.get_running_loop()
    for number, move in enumerate(moves):
        trace.append(f"{move} {number} in {_seen.get()}")
        if move == "yield":
            await asyncio.sleep(0)
        elif move in ("wait", "slow"):
            future = loop.create_future()
            if move == "wait":
                loop.call_soon(future.set_result, number)
            else:
                _answering.add(asyncio.ensure_future(_answer_later(future, number)))
            trace.append(f"got {await future}")
        elif move == "fail":
            future = loop.create_future()
            loop.call_soon(future.set_exception, KeyError(number))
            try:
                await future
            except KeyError as error:
                trace.append(f"caught {error}")
        elif move == "raise":
            raise ValueError(number)
        else:
            return f"returned {number}"
    return "ran out"


async def _outcome(moves: list[str], mode: str) -> tuple[str, list[str]]:
    trace: list[str] = []
    _seen.set(mode)
    step = _run(moves, trace)
    try:
        if mode == "plain":
            result = await step
        else:
            result = await uninterrupted(step, eager=mode == "eager")
    except ValueError as error:
        result = f"raised {error}"
    return result, [line.replace(mode, "CONTEXT") for line in trace]


@settings(max_examples=200, deadline=None)
@given(moves=_moves)
def test_an_eager_step_does_what_an_awaited_one_does(moves: list[str]) -> None:
    """Whatever it waits on, fails on or returns: the same result, error and course as the
    same step simply awaited, or run in a task from the start."""

    async def compare() -> list[Any]:
        return [await _outcome(moves, mode) for mode in ("plain", "task", "eager")]

    plain, task, eager = asyncio.run(compare())
    assert eager == plain == task


@pytest.mark.parametrize("turns", [0, 3])
@pytest.mark.parametrize("waits_on", ["a future", "turns of the loop"])
async def test_an_eager_step_cancelled_itself_sees_it_where_it_waits(
    turns: int, waits_on: str
) -> None:
    """Only the step's own task being cancelled (at shutdown) reaches the step: it gets the
    cancellation at the await it waits in, and the caller sees the step cancelled; before that
    task's first turn (0) or while it waits (3), on a future never answered or in
    ``sleep(0)`` after ``sleep(0)``."""
    seen: list[str] = []

    async def step() -> None:
        try:
            await asyncio.sleep(0)
            if waits_on == "a future":
                await asyncio.get_running_loop().create_future()  # never answered
            while True:
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            seen.append("cancelled where it waited")
            raise

    before = asyncio.all_tasks()
    caller = asyncio.ensure_future(uninterrupted(step(), eager=True))
    await asyncio.sleep(0)
    (own,) = asyncio.all_tasks() - before - {caller}
    for _ in range(turns):
        await asyncio.sleep(0)
    own.cancel()
    done, _ = await asyncio.wait({caller}, timeout=5)
    assert done, "the step never saw its cancellation"
    with pytest.raises(asyncio.CancelledError):
        caller.result()
    assert seen == ["cancelled where it waited"]
