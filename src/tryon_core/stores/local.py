"""The local store: files under one folder, written atomically."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncGenerator, Generator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

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
        # On the file descriptor itself: each system call lets go of the GIL and takes it
        # back, and a worker thread waits for it while the event loop runs; Python's buffered
        # file would add three calls (fstat, isatty, lseek) and a first mkdir one more.
        temporary = f"{path.parent}{os.sep}.{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            handle = _create(temporary, path.parent)
            try:
                written = 0
                while written < len(data):
                    written += os.write(handle, memoryview(data)[written:])
                os.fsync(handle)
            finally:
                os.close(handle)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


_NEW_FILE = (
    os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


def _create(path: str, folder: Path) -> int:
    """Open a new file for writing, making its folders only when they are missing. A delete
    elsewhere may remove a folder it emptied between the two steps, so they are tried again."""
    tries = _CREATE_TRIES
    while True:
        try:
            return os.open(path, _NEW_FILE, 0o666)  # as open(path, "wb"): the umask applies
        except FileNotFoundError:
            tries -= 1
            if not tries:
                raise
            folder.mkdir(parents=True, exist_ok=True)
