"""The file-store contract, run against every store: the local folder and a real S3 server.

Whatever ``[storage] backend`` says, results, job inputs and retention see the same calls
behave the same way: put/get/delete/scan, FileNotFoundError for a missing key, overwrite,
large files, and a scan that streams page by page.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.seaweed import SeaweedFS
from tryon_core.config import parse_settings
from tryon_core.stores import StoreBackend, create_store
from tryon_core.stores import local as local_store
from tryon_core.stores import s3 as s3_store


def _settings(text: str) -> object:
    return parse_settings(text).storage


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreBackend]:
    if request.param == "local":
        config = parse_settings(f'[storage]\npath = "{tmp_path}/files"\n').storage
    else:
        seaweedfs: SeaweedFS = request.getfixturevalue("seaweedfs")
        toml = '[storage]\nbackend = "s3"\n' + seaweedfs.storage_toml(seaweedfs.new_bucket())
        config = parse_settings(toml).storage
    backend = create_store(config)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


async def _scanned(store: StoreBackend) -> dict[str, datetime]:
    return {found.key: found.modified async for found in store.scan()}


async def test_put_get_delete_and_missing_keys(store: StoreBackend) -> None:
    key = "2024/01/02/file_Abc.png"
    await store.put(key, b"first")
    assert await store.get(key) == b"first"
    await store.put(key, b"second, longer")  # overwrite replaces, whole
    assert await store.get(key) == b"second, longer"
    await store.delete(key)
    with pytest.raises(FileNotFoundError):
        await store.get(key)
    with pytest.raises(FileNotFoundError):
        await store.get("2024/01/02/file_Never.png")
    await store.delete(key)  # deleting what is gone is no error
    await store.delete("never/there.png")
    assert await _scanned(store) == {}


async def test_scan_lists_every_file_with_its_time_across_pages(
    store: StoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_store, "_SCAN_CHUNK", 2)
    monkeypatch.setattr(s3_store, "_PAGE", 2)  # five files: three ListObjectsV2 pages
    before = datetime.now(UTC) - timedelta(minutes=1)
    keys = {f"2024/0{i % 2 + 1}/file_{i}.png" for i in range(4)} | {"inputs/file_x.jpg"}
    for key in keys:
        await store.put(key, key.encode())
    found = await _scanned(store)
    assert set(found) == keys
    after = datetime.now(UTC) + timedelta(minutes=1)
    assert all(before < when < after and when.tzinfo is not None for when in found.values())
    await store.delete("inputs/file_x.jpg")
    assert set(await _scanned(store)) == keys - {"inputs/file_x.jpg"}


async def test_a_large_file_round_trips(store: StoreBackend) -> None:
    data = secrets.token_bytes(24 * 1024 * 1024)
    await store.put("big/file_Big.png", data)
    assert await store.get("big/file_Big.png") == data


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../up.png", "a/../../b.png"])
async def test_unsafe_keys_are_refused(store: StoreBackend, key: str) -> None:
    with pytest.raises(ValueError, match="unsafe storage key"):
        await store.put(key, b"x")
    with pytest.raises(ValueError, match="unsafe storage key"):
        await store.get(key)


async def test_the_local_store_makes_no_direct_links(tmp_path: Path) -> None:
    backend = create_store(parse_settings(f'[storage]\npath = "{tmp_path}"\n').storage)
    assert backend.direct_url("a/file_x.png", ttl_seconds=60) is None


async def test_an_s3_prefix_keeps_the_store_to_its_part_of_the_bucket(
    seaweedfs: SeaweedFS,
) -> None:
    bucket = seaweedfs.new_bucket()
    client = seaweedfs.client()
    try:
        client.put_object(Bucket=bucket, Key="other/file_Theirs.png", Body=b"not ours")
    finally:
        client.close()
    toml = '[storage]\nbackend = "s3"\n' + seaweedfs.storage_toml(bucket, prefix="tryon")
    backend = create_store(parse_settings(toml).storage)
    await backend.open()
    try:
        await backend.put("2024/file_Ours.png", b"ours")
        assert set(await _scanned(backend)) == {"2024/file_Ours.png"}
        assert seaweedfs.keys(bucket) == {"other/file_Theirs.png", "tryon/2024/file_Ours.png"}
        assert backend.direct_url("2024/file_Ours.png", ttl_seconds=60) is None  # presign off
    finally:
        await backend.close()


async def test_an_s3_presigned_link_downloads_from_the_store_and_expires(
    seaweedfs: SeaweedFS,
) -> None:
    toml = '[storage]\nbackend = "s3"\n' + seaweedfs.storage_toml(
        seaweedfs.new_bucket(), presign=True
    )
    backend = create_store(parse_settings(toml).storage)
    await backend.open()
    try:
        await backend.put("2024/file_Linked.png", b"\x89PNG pixels")
        link = backend.direct_url("2024/file_Linked.png", ttl_seconds=120)
        assert link is not None and link.startswith(seaweedfs.endpoint)
        assert "X-Amz-Expires=120" in link and "X-Amz-Signature=" in link
        async with httpx.AsyncClient() as http:
            answer = await http.get(link)
            assert answer.status_code == 200
            assert answer.content == b"\x89PNG pixels"
            assert answer.headers["content-type"] == "image/png"
            tampered = await http.get(link.replace("file_Linked", "file_Other"))
            assert tampered.status_code == 403
    finally:
        await backend.close()


async def test_a_local_write_that_fails_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails part-way (here at its fsync: a full or failing disk) raises, and
    neither the file nor its temporary remains."""
    backend = create_store(_settings(f'[storage]\npath = "{tmp_path}"\n'))
    await backend.put("2026/01/02/kept.png", b"kept")

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local_store.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        await backend.put("2026/01/02/lost.png", b"x" * 100_000)
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "2026/01/02").iterdir()) == ["kept.png"]
    with pytest.raises(FileNotFoundError):
        await backend.get("2026/01/02/lost.png")
    assert await backend.get("2026/01/02/kept.png") == b"kept"


async def test_local_files_get_the_permissions_the_umask_allows(tmp_path: Path) -> None:
    """As ``open(path, "wb")`` would make them: readable by whoever the operator's umask lets
    read (the gateway may serve files through another process, a reverse proxy)."""
    import os

    backend = create_store(_settings(f'[storage]\npath = "{tmp_path}"\n'))
    umask = os.umask(0o027)
    try:
        await backend.put("a/b/c.png", b"data")
    finally:
        os.umask(umask)
    assert (tmp_path / "a/b/c.png").stat().st_mode & 0o777 == 0o640


async def test_a_local_folder_removed_by_a_delete_is_made_again(tmp_path: Path) -> None:
    """Deleting a folder's last file removes the folder; the next write into it makes it
    again (the open fails first, and the folder is made only then)."""
    backend = create_store(_settings(f'[storage]\npath = "{tmp_path}"\n'))
    await backend.put("2026/03/04/one.png", b"1")
    await backend.delete("2026/03/04/one.png")
    assert not (tmp_path / "2026").exists()
    await backend.put("2026/03/04/two.png", b"2")
    assert await backend.get("2026/03/04/two.png") == b"2"
