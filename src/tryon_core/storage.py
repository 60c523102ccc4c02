"""The file store (a local folder by default) and signed, expiring file URLs.

The store is a small interface so that an S3-compatible store can replace the folder later.
Its :meth:`~FileStore.scan` lists what it holds, one file at a time, so that retention can
find files that no row refers to without holding every key in memory.
A signed URL is ``/api/v1/files/{id}?expires=UNIX&sig=HMAC-SHA256(secret, "id:expires")``;
anyone holding it may read that one file until it expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import AsyncGenerator, Generator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import IO, NamedTuple, Protocol

from tryon_core.uninterrupted import uninterrupted

__all__ = ["FileStore", "LocalFileStore", "StoredFile", "UrlSigner", "load_or_create_secret"]


class StoredFile(NamedTuple):
    key: str
    modified: datetime
    """When the file was last written (UTC)."""


class FileStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    def scan(self) -> AsyncGenerator[StoredFile]:
        """Every file in the store, in no particular order, produced as it is found."""
        ...


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

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"unsafe storage key {key!r}")
        return self.root / key

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


class UrlSigner:
    def __init__(self, secret: bytes, *, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def _signature(self, file_id: str, expires: int) -> str:
        message = f"{file_id}:{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(
        self, file_id: str, *, now: float | None = None, ttl_seconds: float | None = None
    ) -> tuple[int, str]:
        ttl = self.ttl_seconds if ttl_seconds is None else ttl_seconds
        expires = int((now if now is not None else time.time()) + ttl)
        return expires, self._signature(file_id, expires)

    def verify(
        self, file_id: str, expires: int, signature: str, *, now: float | None = None
    ) -> bool:
        if expires < (now if now is not None else time.time()):
            return False
        if not signature.isascii():  # compare_digest refuses non-ASCII str (TypeError, a 500)
            return False
        return hmac.compare_digest(self._signature(file_id, expires), signature)


def load_or_create_secret(configured: str | None, folder: Path) -> bytes:
    """The configured secret, else one generated once and kept (mode 0600) in the store folder."""
    if configured:
        return configured.encode()
    path = folder / ".signing-secret"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race; use its secret
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as handle:
            handle.write(value)
        return value
