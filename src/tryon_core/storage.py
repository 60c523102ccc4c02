"""Signed, expiring file URLs; the file stores themselves are in :mod:`tryon_core.stores`
(re-exported here).

A signed URL is ``/api/v1/files/{id}?expires=UNIX&sig=HMAC-SHA256(secret, "id:expires")``;
anyone holding it may read that one file until it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from tryon_core.config import Settings
from tryon_core.errors import ConfigError
from tryon_core.stores import FileStore, LocalFileStore, StoredFile

__all__ = [
    "MIN_SHARED_SECRET",
    "FileStore",
    "LocalFileStore",
    "StoredFile",
    "UrlSigner",
    "load_or_create_secret",
    "signing_secret",
]

MIN_SHARED_SECRET = 32
"""Characters a shared deployment's ``[storage] signing_secret`` has at least."""


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


def signing_secret(settings: Settings) -> bytes:
    """The secret that signs file links and job (WebSocket) tokens.

    A shared deployment (``[redis] url`` set, or ``[storage] backend = "s3"``) runs several
    processes that must all sign alike, so it must configure the secret (ConfigError, one line,
    otherwise); one process may keep a generated one in the store folder.
    """
    storage = settings.storage
    if settings.redis.url is None and storage.backend != "s3":
        return load_or_create_secret(storage.signing_secret, Path(storage.path))
    why = 'with [redis] url set or [storage] backend = "s3"'
    if not storage.signing_secret:
        raise ConfigError(
            f"storage.signing_secret is required {why}: every replica must sign file links "
            "and WebSocket tokens with the same secret"
        )
    if len(storage.signing_secret) < MIN_SHARED_SECRET:
        raise ConfigError(
            f"storage.signing_secret must be at least {MIN_SHARED_SECRET} characters {why} "
            "(e.g. the output of `openssl rand -base64 32`)"
        )
    return storage.signing_secret.encode()
