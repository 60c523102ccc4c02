"""The S3 store: objects in one bucket of an S3-compatible service, through aiobotocore.

One client is made when the gateway starts (:meth:`S3FileStore.open`, which also checks that
the bucket answers to the credentials) and closed when it stops; every call goes through it.
Failures become the file-store errors: a missing key is ``FileNotFoundError``, anything else
(no answer, a timeout, an error status) is :class:`~tryon_core.stores.StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import AsyncGenerator, Iterator
from datetime import UTC
from typing import TYPE_CHECKING, Any

import aiobotocore.session
import aiohttp
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tryon_core.config import S3Config
from tryon_core.errors import ConfigError
from tryon_core.stores.protocol import StoredFile, StoreUnavailable, check_key

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

__all__ = ["S3FileStore"]

_PAGE = 1000
"""Keys listed per ListObjectsV2 request (S3's own maximum)."""
_MISSING = frozenset({"NoSuchKey", "NotFound", "404"})
_FAILURES = (ClientError, BotoCoreError, aiohttp.ClientError, OSError)


class S3FileStore:
    """Keys are stored as ``[storage.s3] prefix`` + key; ``scan`` lists only that prefix."""

    def __init__(self, config: S3Config) -> None:
        self.config = config
        prefix = config.prefix
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        self._exit = contextlib.AsyncExitStack()
        self._client: S3Client | None = None
        self._presigner: Any = None

    async def open(self) -> None:
        session = aiobotocore.session.get_session()
        self._client = await self._exit.enter_async_context(
            session.create_client("s3", **self._client_options())
        )
        try:
            await self._client.head_bucket(Bucket=self.config.bucket)
        except _FAILURES as exc:
            await self.close()
            raise ConfigError(self._refusal(exc)) from None
        if self.config.presign:  # signing a URL is local work: a plain botocore client does it
            self._presigner = botocore.session.get_session().create_client(
                "s3", **self._client_options()
            )

    async def close(self) -> None:
        self._client = None
        if self._presigner is not None:
            self._presigner.close()
            self._presigner = None
        await self._exit.aclose()

    def direct_url(self, key: str, *, ttl_seconds: int) -> str | None:
        if self._presigner is None:
            return None
        url: str = self._presigner.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.config.bucket, "Key": self._key(key)},
            ExpiresIn=ttl_seconds,
        )
        return url

    async def put(self, key: str, data: bytes) -> None:
        kind = mimetypes.guess_type(key)[0] or "application/octet-stream"
        with _failures():
            await self._s3.put_object(
                Bucket=self.config.bucket, Key=self._key(key), Body=data, ContentType=kind
            )

    async def get(self, key: str) -> bytes:
        with _failures(missing=key):
            answer = await self._s3.get_object(Bucket=self.config.bucket, Key=self._key(key))
            async with answer["Body"] as body:
                data: bytes = await body.read()
        return data

    async def delete(self, key: str) -> None:
        with _failures():  # S3 answers a missing key's delete with success too
            await self._s3.delete_object(Bucket=self.config.bucket, Key=self._key(key))

    async def scan(self) -> AsyncGenerator[StoredFile]:
        """One ListObjectsV2 page at a time, each file produced as its page arrives."""
        request: dict[str, Any] = {
            "Bucket": self.config.bucket,
            "Prefix": self.prefix,
            "MaxKeys": _PAGE,
        }
        while True:
            with _failures():
                page = await self._s3.list_objects_v2(**request)
            for item in page.get("Contents", []):
                key = item["Key"].removeprefix(self.prefix)
                if key and not key.endswith("/"):  # "folder" markers some tools leave
                    yield StoredFile(key, item["LastModified"].astimezone(UTC))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            request["ContinuationToken"] = token

    @property
    def _s3(self) -> S3Client:
        if self._client is None:
            raise StoreUnavailable("the S3 store is not open (the gateway has not started)")
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _client_options(self) -> dict[str, Any]:
        config = self.config
        return {
            "region_name": config.region,
            "endpoint_url": config.endpoint_url,
            "aws_access_key_id": config.access_key_id,
            "aws_secret_access_key": config.secret_access_key,
            "config": Config(
                signature_version="s3v4",
                # an S3-compatible server rarely has a DNS name per bucket; AWS does
                s3={"addressing_style": "path" if config.endpoint_url else "auto"},
                connect_timeout=config.timeout,
                read_timeout=config.timeout,
                retries={"mode": "standard", "max_attempts": 2},
                # the newer checksum headers are not understood by every S3-compatible server
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=50,
            ),
        }

    def _refusal(self, exc: Exception) -> str:
        """The start-up check's failure as one line naming the key to fix."""
        where = self.config.endpoint_url or f"AWS S3 ({self.config.region})"
        bucket = self.config.bucket
        if not isinstance(exc, ClientError):
            return f"storage.s3.endpoint_url: cannot reach {where}: {exc}"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            return f"storage.s3.bucket: {where} has no bucket named {bucket!r}"
        if status in (401, 403):
            return (
                f"storage.s3.access_key_id: {where} refused these credentials for bucket "
                f"{bucket!r} (HTTP {status}); check access_key_id and secret_access_key"
            )
        if status == 301:
            return f"storage.s3.region: bucket {bucket!r} is in another region than {where}"
        return f"storage.s3: {where} answered HTTP {status} to a check of bucket {bucket!r}"


@contextlib.contextmanager
def _failures(*, missing: str | None = None) -> Iterator[None]:
    """Turn the client's errors into the file store's: FileNotFoundError for ``missing``
    when the store says it has no such key, else StoreUnavailable."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if missing is not None and code in _MISSING:
            raise FileNotFoundError(missing) from None
        raise StoreUnavailable(f"the S3 store failed: {exc}") from exc
    except _FAILURES as exc:
        raise StoreUnavailable(f"the S3 store is unreachable: {exc}") from exc
