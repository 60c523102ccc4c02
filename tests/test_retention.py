"""Retention of stored files: files that no row refers to are swept once past their grace.

An interrupted request (or a process that died) between storing a file and writing its row
leaves an orphan that retention by row never deletes. The sweep lists the store, compares it
with the ``files`` table in batches, and deletes what is old enough and unreferenced; it keeps
fresh orphans (their row may be on its way), files with a row however old, and anything in the
folder that the gateway did not write, and never goes through a symbolic link.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar

from tests.helpers import SAMPLES, auth, live_server, new_key
from tryon_core.pipeline import save_images
from tryon_core.retention import orphan_grace, sweep_orphans
from tryon_core.storage import LocalFileStore


class Image(msgspec.Struct, frozen=True):
    data: bytes
    content_type: str = "image/png"
    width: int = 64
    height: int = 64


def age(path: Path, by: timedelta) -> None:
    """Set the file's modification time ``by`` into the past."""
    when = time.time() - by.total_seconds()
    os.utime(path, (when, when), follow_symlinks=False)


def files_under(root: Path) -> set[str]:
    """Every file and link under ``root``, not following links."""
    found = set()
    for folder, folders, names in os.walk(root):
        found |= {(Path(folder) / n).relative_to(root).as_posix() for n in names}
        found |= {
            (Path(folder) / n).relative_to(root).as_posix()
            for n in folders
            if (Path(folder) / n).is_symlink()
        }
    return found


async def test_orphans_past_their_grace_are_swept_and_nothing_else(
    make_app: Callable[..., Litestar],
    database_url: str,
    tryon_body: Callable[..., Any],
    tmp_path: Path,
) -> None:
    app = make_app(database_url)
    gateway = app.state.gateway
    root = Path(gateway.settings.storage.path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file_Outside.png").write_bytes(b"not the store's")
    async with live_server(app) as base, httpx.AsyncClient(base_url=base) as http:
        key, _ = await new_key(app)
        made = await http.post("/api/v1/tryon", json=tryon_body(), headers=auth(key))
        assert made.status_code == 200, made.text
        link = urlsplit(made.json()["images"][0]["url"])
        (kept,) = files_under(root)  # the result, with its row

        grace = orphan_grace(gateway)
        old, fresh = grace + timedelta(minutes=10), grace - timedelta(minutes=10)
        image = Image((SAMPLES / "garment.png").read_bytes())
        saved = [
            await save_images(gateway, [image], folder=folder, failure="")
            for folder in ("2001/02/03", "2001/02/03", "inputs/2001/02/03", "2001/02/04")
        ]
        orphans = [key for ((_, key),) in saved]
        stale_temporary = "2001/02/05/.file_Crashed.png.0badcafe.tmp"
        not_ours = ["notes.txt", ".signing-secret", "2001/02/06/file_Row.png.bak"]
        for name in [stale_temporary, *not_ours]:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(b"x")
        links = ["linked", "2002/file_Link.png"]
        (root / "linked").symlink_to(outside, target_is_directory=True)
        (root / "2002").mkdir()
        (root / "2002" / "file_Link.png").symlink_to(outside / "file_Outside.png")
        for name in [kept, *orphans[:3], stale_temporary, *not_ours, *links]:
            age(root / name, old)
        age(outside / "file_Outside.png", old)  # swept, were the links followed
        age(root / orphans[3], fresh)

        assert await sweep_orphans(gateway, batch=2) == 4
        assert await sweep_orphans(gateway, batch=2) == 0

        assert files_under(root) == {kept, orphans[3], *not_ours, *links}
        assert not (root / "2001" / "02" / "03").exists()  # emptied date folders go
        assert not (root / "2001" / "02" / "05").exists()
        assert not (root / "inputs").exists()
        assert (outside / "file_Outside.png").read_bytes() == b"not the store's"
        download = await http.get(f"{link.path}?{link.query}")
        assert download.status_code == 200
        assert download.content == (root / kept).read_bytes()


def test_the_grace_is_never_shorter_than_a_job_can_run(
    make_app: Callable[..., Litestar],
) -> None:
    deadline = 5 * 24 * 3600.0
    app = make_app(extra=f"[jobs]\ndeadline_seconds = {deadline}")
    assert orphan_grace(app.state.gateway) >= timedelta(seconds=deadline, hours=1)
    assert orphan_grace(make_app().state.gateway) == timedelta(hours=24)


segments = st.sampled_from(["2024", "05", "inputs", "a", "b-c"])
keys = st.lists(
    st.builds(
        lambda folders, name: "/".join([*folders, name]),
        st.lists(segments, max_size=3),
        st.from_regex(r"file_[A-Za-z0-9_-]{1,6}\.png", fullmatch=True),
    ),
    unique=True,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(stored=keys, data=st.data())
async def test_the_store_lists_what_it_holds_and_leaves_no_empty_folder(
    stored: list[str], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = LocalFileStore(folder)
        for key in stored:
            await store.put(key, key.encode())
        listed = [found async for found in store.scan()]
        assert sorted(found.key for found in listed) == sorted(stored)
        gone = data.draw(st.lists(st.sampled_from(stored), unique=True) if stored else st.just([]))
        for key in gone:
            await store.delete(key)
        left = {found.key async for found in store.scan()}
        assert left == set(stored) - set(gone)
        for path, folders, names in os.walk(folder):
            assert folders or names or path == folder, f"{path} was left empty"
        for key in left:
            assert await store.get(key) == key.encode()


async def test_a_scan_cancelled_while_its_thread_walks_ends_as_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk runs in a thread: a cancellation meanwhile (the gateway shutting down) must
    end the scan as cancelled. Closing the walk while the thread still ran it raised
    ValueError instead, which the retention loop logged before sleeping on: shutdown hung."""
    import asyncio
    from contextlib import aclosing

    store = LocalFileStore(tmp_path)
    walk = LocalFileStore._walk

    def slow_walk(self: LocalFileStore) -> Any:
        for found in walk(self):
            time.sleep(0.3)
            yield found

    (tmp_path / "file_a.png").write_bytes(b"x")
    monkeypatch.setattr(LocalFileStore, "_walk", slow_walk)

    async def consume() -> None:
        async with aclosing(store.scan()) as found:
            async for _ in found:
                pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
