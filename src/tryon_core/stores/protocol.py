"""What every file store is: the :class:`FileStore` calls, and the errors they raise.

    get of a missing key           FileNotFoundError
    the store cannot be reached    StoreUnavailable (an OSError): the caller answers 503
    any other OSError              the store failed (a full disk): the caller answers 503

:class:`StoreBackend` is the store as the gateway holds it: the same calls, plus its start,
its end, and the direct links it may hand out.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import NamedTuple, Protocol

__all__ = ["FileStore", "StoreBackend", "StoreUnavailable", "StoredFile", "check_key"]


class StoredFile(NamedTuple):
    key: str
    modified: datetime
    """When the file was last written (UTC)."""


class StoreUnavailable(OSError):
    """The store did not answer, or answered with a failure of its own: retry later."""


class FileStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    def scan(self) -> AsyncGenerator[StoredFile]:
        """Every file in the store, in no particular order, produced as it is found."""
        ...


class StoreBackend(FileStore, Protocol):
    async def open(self) -> None:
        """Connect and check the configuration; raise ConfigError naming the bad key."""
        ...

    async def close(self) -> None: ...

    def direct_url(self, key: str, *, ttl_seconds: int) -> str | None:
        """A URL that downloads ``key`` from the store itself for ``ttl_seconds``, or None:
        clients download through the gateway."""
        ...


def check_key(key: str) -> str:
    """``key`` if it is a safe relative path (no leading "/", no ".." part), else ValueError."""
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise ValueError(f"unsafe storage key {key!r}")
    return key
