"""The local store: files under one folder, written atomically."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncGenerator, Generator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import IO

from tryon_core.stores.protocol import StoredFile, check_key
from tryon_core.uninterrupted import uninterrupted

__all__ = ["LocalFileStore"]


_SCAN_CHUNK = 256
_CREATE_TRIES = 5


class LocalFileStore:
    """Files under one folder; writes are atomic (temporary file, fsync, rename).

    Deleting a file also removes the folders it leaves empty (``YYYY/MM/DD``), up to the root.
    Symbolic links inside the root are neither followed nor listed.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def direct_url(self, key: str, *, ttl_seconds: int) -> str | None:
        return None  # only the gateway serves a folder's files

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, self._path(key))

    async def scan(self) -> AsyncGenerator[StoredFile]:
        walk = self._walk()
        try:
            # the walk runs in a thread and cannot be stopped part-way: a cancellation lands
            # once the chunk is read, so that ``walk.close()`` never meets it still running
            while chunk := await uninterrupted(asyncio.to_thread(list, islice(walk, _SCAN_CHUNK))):
                for found in chunk:
                    yield found
        finally:
            walk.close()

    def _walk(self) -> Generator[StoredFile]:
        folders = [self.root]
        while folders:
            folder = folders.pop()
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        found = self._entry(entry, folders)
                        if found is not None:
                            yield found
            except OSError:  # removed meanwhile, or unreadable: nothing of ours to list there
                continue

    def _entry(self, entry: os.DirEntry[str], folders: list[Path]) -> StoredFile | None:
        """A regular file as a StoredFile; a real folder is queued; links and the rest skipped."""
        try:
            if entry.is_dir(follow_symlinks=False):
                folders.append(Path(entry.path))
                return None
            if not entry.is_file(follow_symlinks=False):
                return None
            modified = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            return None
        key = Path(entry.path).relative_to(self.root).as_posix()
        return StoredFile(key, datetime.fromtimestamp(modified, UTC))

    def _delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        for folder in path.parents:
            if folder == self.root or not folder.is_relative_to(self.root):
                break
            try:
                folder.rmdir()  # only if empty; never through a symbolic link
            except OSError:
                break

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            with _create(temporary) as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def _create(path: Path) -> IO[bytes]:
    """Open a new file for writing, making its folders first. A delete elsewhere may remove a
    folder it emptied between the two steps, so they are tried again."""
    tries = _CREATE_TRIES
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return open(path, "wb")
        except FileNotFoundError:
            tries -= 1
            if not tries:
                raise
