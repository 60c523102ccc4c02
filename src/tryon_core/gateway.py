"""The gateway's runtime: everything one process shares, built once from the settings."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tryon_core.accounts import KeyUsage, Principal, bearer_token, hash_key
from tryon_core.asyncio_network import http_transport
from tryon_core.catalog import Catalog
from tryon_core.config import Settings, resolve_providers
from tryon_core.db import Database, create_database
from tryon_core.decode_budget import PixelBudget
from tryon_core.demo_sessions import TOKEN_PREFIX as DEMO_TOKEN_PREFIX
from tryon_core.egress import EgressPolicy, GuardedFetcher
from tryon_core.health import HealthTracker, SharedHealth
from tryon_core.ids import new_id
from tryon_core.imaging import ImageLimits
from tryon_core.jobs.dispatch import Dispatcher
from tryon_core.jobs.events import JobEvents, PgJobEvents, RedisJobEvents
from tryon_core.key_cache import KeyCache
from tryon_core.pg_link import PgLink
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.principals import authenticate
from tryon_core.rate_limits import RateLimits
from tryon_core.redis_link import RedisLink
from tryon_core.storage import UrlSigner, signing_secret
from tryon_core.stores import FileStore, StoreBackend, create_store
from tryon_core.tracing import Tracing, start_tracing
from tryon_core.upstream_client import UpstreamClient

__all__ = ["LISTENER_NAME", "Gateway", "build_catalog"]

LISTENER_NAME = "tryon-listen"
"""The ``application_name`` of each process's LISTEN/NOTIFY connection (PostgreSQL, no Redis)."""


def build_catalog(
    settings: Settings, *, extra_plugins: Iterable[object] = (), load_entry_points: bool = True
) -> Catalog:
    """Load plugins, validate their config sections, and keep the enabled models."""
    manager = make_plugin_manager(
        extra_plugins=extra_plugins,
        blocked=settings.plugins.blocked,
        load_entry_points=load_entry_points,
    )
    registry = collect_providers(manager)
    return Catalog(settings, registry, resolve_providers(settings, registry))


@dataclass
class Gateway:
    settings: Settings
    catalog: Catalog
    database: Database
    store: FileStore
    """Where files are put and read (tests may wrap it)."""
    backend: StoreBackend
    """The configured store itself: opened at start, closed at the end, and asked for direct
    download links (presigned URLs of an S3 store)."""
    signer: UrlSigner
    fetcher: GuardedFetcher
    http: httpx.AsyncClient
    health: HealthTracker
    limits: ImageLimits
    output_limits: ImageLimits
    decode_budget: PixelBudget
    """Pixels being decoded at once, all requests together (``[images] decode_budget_pixels``)."""
    events: JobEvents = field(default_factory=JobEvents)
    rate_limits: RateLimits = field(default_factory=RateLimits.local)
    """Requests per minute per key and account: this process's, or shared through Redis."""
    redis: RedisLink | None = None
    """The link to ``[redis] url`` that events, health and rate limits share (None: unset)."""
    notify: PgLink | None = None
    """Without Redis on PostgreSQL: the LISTEN/NOTIFY connection that job events (and job
    pickup by ``tryon worker``) go through (None: Redis is set, or the database is SQLite)."""
    jobs: Dispatcher | None = None
    """Hands async jobs to workers; set while the app runs (None: the sweeper of a process
    that runs jobs picks them up)."""
    instance_id: str = field(default_factory=lambda: new_id("gw"))
    """Names this process in job leases."""
    stranded: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Sync generations that failed while the database was away, so their credits could not
    be released then: id -> error record. The sweeper releases them once it answers again."""
    key_usage: KeyUsage = field(default_factory=KeyUsage)
    """Last-used times of keys, written by a background task (authentication only reads)."""
    key_cache: KeyCache = field(default_factory=lambda: KeyCache(0))
    """API keys that authenticated lately (``[keys] cache_seconds``; :meth:`create` sets it)."""
    tracing: Tracing | None = None
    """OpenTelemetry (``[tracing]``), None when off."""
    _result_fetchers: dict[str, GuardedFetcher] = field(default_factory=dict)
    _webhook_sender: GuardedFetcher | None = None

    @classmethod
    def create(cls, settings: Settings, catalog: Catalog) -> Gateway:
        fetch = settings.fetch
        images = settings.images
        store = create_store(settings.storage)
        health = HealthTracker(
            threshold=settings.routing.failure_threshold, cooldown=settings.routing.cooldown_seconds
        )
        database = create_database(
            settings.database.url,
            timeout=settings.database.timeout,
            pool_size=settings.database.pool_size,
            own_checkpoints=True,
        )
        events: JobEvents = JobEvents()
        link = notify = None
        if settings.redis.url is not None:  # shared by every process of the deployment
            link = RedisLink(settings.redis)
            health = SharedHealth(link, threshold=health.threshold, cooldown=health.cooldown)
            events = RedisJobEvents(link)
        elif not database.is_sqlite:  # every process on this database hears of every job
            connect = functools.partial(database.connect_plain, application_name=LISTENER_NAME)
            notify = PgLink(connect, timeout=settings.database.timeout)
            events = PgJobEvents(notify)
        gateway = cls(
            settings=settings,
            catalog=catalog,
            database=database,
            store=store,
            backend=store,
            signer=UrlSigner(
                signing_secret(settings),
                ttl_seconds=settings.storage.url_ttl_seconds,
            ),
            fetcher=GuardedFetcher(
                EgressPolicy(
                    allow_hosts=frozenset(h.lower() for h in fetch.allow_hosts),
                    max_bytes=min(fetch.max_bytes, images.max_bytes),
                    timeout=fetch.timeout,
                    max_redirects=fetch.max_redirects,
                )
            ),
            http=UpstreamClient(
                transport=http_transport(
                    # idle connections are kept (5 s) for the next burst: no new TLS handshakes
                    limits=httpx.Limits(
                        max_connections=settings.server.upstream_connections,
                        max_keepalive_connections=settings.server.upstream_connections,
                    ),
                    trust_env=False,
                ),
                # each attempt is bounded by its provider's `timeout`; only connecting is not
                timeout=httpx.Timeout(None, connect=10.0),
                follow_redirects=False,
                trust_env=False,
            ),
            health=health,
            events=events,
            rate_limits=RateLimits.build(settings.limits, link),
            key_cache=KeyCache(settings.keys.cache_seconds),
            redis=link,
            notify=notify,
            limits=ImageLimits(
                max_bytes=images.max_bytes,
                max_pixels=images.max_pixels,
                min_side=images.min_side,
                max_side=images.max_side,
            ),
            decode_budget=PixelBudget(images.decode_budget_pixels),
            output_limits=ImageLimits(
                max_bytes=fetch.max_result_bytes,
                max_pixels=images.max_pixels,
                min_side=1,
                max_side=images.max_side,
            ),
            tracing=start_tracing(settings.tracing),
        )
        if gateway.tracing is not None:
            gateway.tracing.instrument(http=gateway.http, database=database)
        return gateway

    async def start(self) -> None:
        """Open the file store and Redis (ConfigError if either cannot be used), migrate, then
        listen for PostgreSQL notifications (without Redis)."""
        await self.backend.open()
        try:
            if self.redis is not None:
                await self.redis.start()
            if self.settings.database.migrate_on_start:
                await self.database.upgrade()
            if self.notify is not None:
                await self.notify.start()
        except BaseException:
            if self.redis is not None:
                await self.redis.close()
            await self.backend.close()
            raise

    async def close(self) -> None:
        await self.http.aclose()
        await self.fetcher.aclose()
        for fetcher in self._result_fetchers.values():
            await fetcher.aclose()
        if self._webhook_sender is not None:
            await self._webhook_sender.aclose()
        if self.notify is not None:
            await self.notify.close()
        await self.database.dispose()
        if self.redis is not None:
            await self.redis.close()
        await self.backend.close()
        if self.tracing is not None:
            self.tracing.close()

    async def authenticate(
        self, authorization: str | None, *, origin: str | None = None
    ) -> Principal:
        """The caller of an ``Authorization`` header (an API key, or a demo session's token
        from the ``origin`` it allows), or 401. Reads only: never waits for the database's
        writer. An API key that authenticated within ``[keys] cache_seconds`` is not read
        again (:mod:`tryon_core.key_cache`)."""
        token = bearer_token(authorization)
        digest = None if token.startswith(DEMO_TOKEN_PREFIX) else hash_key(token)
        if digest is not None and (known := self.key_cache.get(digest)) is not None:
            assert known.key_id is not None and known.seen is not None  # an API key's
            self.key_usage.note(known.key_id, known.seen.last_used_at)
            return known
        mark = self.key_cache.mark()
        principal = await self.database.read(
            lambda conn: authenticate(conn, authorization, origin=origin, usage=self.key_usage)
        )
        if digest is not None:
            self.key_cache.keep(digest, principal, read_since=mark)
        return principal

    def result_fetcher(self, provider: str, base_url: str | None) -> GuardedFetcher:
        """The fetcher for one provider's result URLs: its own origin is allowed."""
        fetcher = self._result_fetchers.get(provider)
        if fetcher is None:
            fetch = self.settings.fetch
            allowed = {h.lower() for h in fetch.allow_hosts}
            if base_url:
                origin = httpx.URL(base_url)
                port = origin.port or (443 if origin.scheme == "https" else 80)
                host = f"[{origin.host}]" if ":" in origin.host else origin.host
                allowed.add(f"{host}:{port}".lower())
            fetcher = GuardedFetcher(
                EgressPolicy(
                    allow_hosts=frozenset(allowed),
                    max_bytes=fetch.max_result_bytes,
                    timeout=max(fetch.timeout, 60.0),
                    max_redirects=fetch.max_redirects,
                )
            )
            self._result_fetchers[provider] = fetcher
        return fetcher

    @property
    def webhook_sender(self) -> GuardedFetcher:
        """The client that POSTs webhooks: ``[fetch] allow_hosts``, ``[webhooks] timeout``."""
        if self._webhook_sender is None:
            self._webhook_sender = GuardedFetcher(
                EgressPolicy(
                    allow_hosts=frozenset(h.lower() for h in self.settings.fetch.allow_hosts),
                    timeout=self.settings.webhooks.timeout,
                    max_redirects=0,
                )
            )
        return self._webhook_sender

    def file_url(self, file_id: str, *, key: str | None = None) -> str:
        """The link a client downloads file ``file_id`` (kept under ``key``) with, valid for
        ``[storage] url_ttl_seconds``: the store's own (presigned) URL where it makes one,
        else a link to the gateway signed with ``[storage] signing_secret``."""
        ttl = self.signer.ttl_seconds
        direct = None if key is None else self.backend.direct_url(key, ttl_seconds=ttl)
        if direct is not None:
            return direct
        expires, signature = self.signer.sign(file_id)
        base = self.settings.server.base_url
        return f"{base}/api/v1/files/{file_id}?expires={expires}&sig={signature}"
