"""Turns by name (tryon_core.db.turns): how many hold one name at once, in what order, and
that nothing is kept once everyone is done, cancelled waiters included."""

from __future__ import annotations

import asyncio

import pytest

from tryon_core.db.turns import Turns


async def _hold(turns: Turns, name: str, log: list[str], tag: str, release: asyncio.Event) -> None:
    async with turns.turn(name):
        log.append(f"in {tag}")
        await release.wait()
        log.append(f"out {tag}")


async def test_at_most_width_hold_one_name_and_the_rest_wait_in_order() -> None:
    turns = Turns(width=2)
    log: list[str] = []
    releases = {tag: asyncio.Event() for tag in "abcde"}
    tasks = {}
    for tag in "abcde":
        tasks[tag] = asyncio.create_task(_hold(turns, "acct", log, tag, releases[tag]))
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert log == ["in a", "in b"]
    releases["b"].set()
    await asyncio.sleep(0.01)
    assert log == ["in a", "in b", "out b", "in c"]  # the first waiter, not any waiter
    for tag in "acde":
        releases[tag].set()
    await asyncio.gather(*tasks.values())
    assert [entry for entry in log if entry.startswith("in")] == [f"in {t}" for t in "abcde"]
    assert len(turns) == 0


async def test_other_names_do_not_wait() -> None:
    turns = Turns(width=1)
    release = asyncio.Event()
    log: list[str] = []
    holder = asyncio.create_task(_hold(turns, "one", log, "one", release))
    await asyncio.sleep(0.01)
    async with asyncio.timeout(1):
        async with turns.turn("two"):
            log.append("two")
    assert log == ["in one", "two"]
    release.set()
    await holder
    assert len(turns) == 0


async def test_a_cancelled_waiter_leaves_nothing_behind_and_loses_no_place() -> None:
    turns = Turns(width=1)
    release = asyncio.Event()
    log: list[str] = []
    holder = asyncio.create_task(_hold(turns, "acct", log, "a", release))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(_hold(turns, "acct", log, "b", asyncio.Event()))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    assert len(turns) == 0
    async with asyncio.timeout(1), turns.turn("acct"):  # the place came back
        pass
    assert log == ["in a", "out a"]


def test_a_turn_is_at_least_one_wide() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Turns(width=0)
