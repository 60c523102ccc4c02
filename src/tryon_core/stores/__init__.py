"""File stores: where result images and job inputs are kept, chosen by ``[storage] backend``.

- :mod:`~tryon_core.stores.protocol`: the calls every store answers, and its errors.
- :mod:`~tryon_core.stores.local`: a folder on this machine (the default).
- :mod:`~tryon_core.stores.s3`: a bucket of an S3-compatible service (imported only when used).

Nothing above :func:`create_store` knows which one is in use.
"""

from __future__ import annotations

from tryon_core.config import StorageConfig
from tryon_core.errors import ConfigError, ServiceUnavailable
from tryon_core.stores.local import LocalFileStore
from tryon_core.stores.protocol import (
    FileStore,
    StoreBackend,
    StoredFile,
    StoreUnavailable,
    check_key,
)

__all__ = [
    "FileStore",
    "LocalFileStore",
    "StoreBackend",
    "StoreUnavailable",
    "StoredFile",
    "check_key",
    "check_store",
    "create_store",
    "store_unavailable",
]

RETRY_AFTER = 5
"""Seconds a client is asked to wait (``Retry-After``) while the store fails."""


def store_unavailable(
    message: str = "The file store is unavailable; try again shortly.",
) -> ServiceUnavailable:
    """The 503 to answer when the file store fails (any OSError from it)."""
    return ServiceUnavailable(message, retry_after=RETRY_AFTER)


def create_store(storage: StorageConfig) -> StoreBackend:
    """The store ``[storage]`` names, not yet opened (no I/O beyond making a local folder)."""
    if storage.backend == "s3":
        if storage.s3 is None:
            raise ConfigError('storage: backend = "s3" needs a [storage.s3] table')
        from tryon_core.stores.s3 import S3FileStore

        return S3FileStore(storage.s3)
    return LocalFileStore(storage.path)


async def check_store(storage: StorageConfig) -> None:
    """Open the configured store and close it again: ConfigError (naming the key) if it cannot
    be used. ``tryon serve`` runs this first, so that a bad store stops it with one line."""
    store = create_store(storage)
    await store.open()
    await store.close()
