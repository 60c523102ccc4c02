"""The configuration file: one TOML document, validated with msgspec at start-up.

``${VAR}`` in any string value is replaced from the environment; an unset variable is an error.
Every problem raises :class:`~tryon_core.errors.ConfigError` with a message naming the key.
Provider sections are validated in a second step (:func:`resolve_providers`) against the config
types the installed plugins registered.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from tryon_core.amounts import Credits
from tryon_core.egress import EgressPolicy
from tryon_core.errors import ConfigError
from tryon_core.provider import ProviderConfig, ProviderSpec
from tryon_core.registry import Registrar, Registry

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "MAX_LIMIT",
    "AccountLimits",
    "LimitsConfig",
    "LoggingConfig",
    "RedisConfig",
    "S3Config",
    "Settings",
    "StorageConfig",
    "TracingConfig",
    "load_settings",
    "parse_settings",
    "resolve_providers",
]

DEFAULT_CONFIG_PATH = Path("config/tryon.toml")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Positive = Annotated[int, msgspec.Meta(gt=0)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
WEEK = 7 * 24 * 3600
MAX_LIMIT = 1_000_000
"""The largest requests-per-minute or concurrent-generations limit (config or a key's own)."""
Limit = Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)]
MAX_WORKERS = 256
"""The most processes ``tryon serve --workers`` starts."""


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    public_url: str | None = None
    """Base of every URL the API returns; defaults to http://HOST:PORT."""
    max_body_bytes: Positive = 64 * 1024 * 1024
    header_timeout_seconds: Positive = 10
    """A connection that has not sent a request's complete headers this long after it opened
    (or after the first byte of its next request) is closed."""
    keep_alive_seconds: Positive = 5
    """An idle connection between two requests is closed after this many seconds."""
    max_connections: Positive = 512
    """Open connections (HTTP and WebSocket) at once; a connection past it gets 503 and closes."""
    max_connections_per_client: NonNegative = 64
    """Open connections from one client address; past it, 429 and closed. 0: no limit."""
    upstream_connections: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
    """Connections to upstream providers each process keeps at most (all providers together);
    a call past it waits for one. Idle ones are kept 5 s for the next burst."""
    workers: Annotated[int, msgspec.Meta(ge=1, le=MAX_WORKERS)] = 1
    """Processes serving the one port (``tryon serve --workers``); about one per CPU core.
    Connection limits count in each process."""
    http: Literal["auto", "h11", "httptools"] = "auto"
    """The HTTP/1.1 parser: ``httptools`` (faster; ``tryon-core[speed]``) or ``h11``; ``auto``
    takes httptools when installed."""
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    """The event loop: ``uvloop`` (faster; ``tryon-core[speed]``) or ``asyncio``; ``auto``
    takes uvloop when installed."""

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class DatabaseConfig(_Section):
    url: str = "sqlite+aiosqlite:///var/tryon.db"
    migrate_on_start: bool = True
    timeout: Seconds = 10.0
    """PostgreSQL: seconds to connect and for each statement; past it, the request is a 503."""
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    """PostgreSQL: connections each process keeps open and reuses."""


class S3Config(_Section):
    """``[storage.s3]``: an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, Ceph, R2, ...)."""

    bucket: Annotated[str, msgspec.Meta(min_length=3, max_length=63)]
    access_key_id: Annotated[str, msgspec.Meta(min_length=1)]
    secret_access_key: Annotated[str, msgspec.Meta(min_length=1)]
    endpoint_url: str | None = None
    """The store's address, e.g. "http://127.0.0.1:8333"; unset: AWS S3 in ``region``."""
    region: Annotated[str, msgspec.Meta(min_length=1)] = "us-east-1"
    prefix: str = ""
    """Put before every key (e.g. "tryon/"), so that one bucket can hold other things too."""
    presign: bool = False
    """Hand clients presigned GET URLs of the store instead of links to the gateway."""
    timeout: Seconds = 10.0
    """Seconds to connect and for each answer; past it, the store counts as down (503)."""

    def __post_init__(self) -> None:
        url = self.endpoint_url
        if url is not None and not re.fullmatch(r"https?://[^/?#\s]+/?", url):
            raise ValueError(f"endpoint_url must be http(s)://HOST[:PORT], not {url!r}")
        if self.prefix.startswith("/") or ".." in self.prefix.split("/"):
            raise ValueError(f"prefix may not start with / nor contain .., not {self.prefix!r}")


class StorageConfig(_Section):
    backend: Literal["local", "s3"] = "local"
    """Where files are kept: "local" (the folder ``path``) or "s3" (``[storage.s3]``)."""
    s3: S3Config | None = None
    path: str = "var/files"
    """The folder of the local store; either backend keeps the generated signing secret here."""
    retention_hours: Positive = 24 * 7
    orphan_grace_hours: Positive = 24
    """A file no row refers to is deleted once this old (never before a request could be
    done with it: see :func:`tryon_core.retention.orphan_grace`)."""
    url_ttl_seconds: Positive = 3600
    signing_secret: str | None = None
    """Keys signed file URLs. Unset: generated once and kept in PATH/.signing-secret."""

    def __post_init__(self) -> None:
        if self.backend == "s3" and self.s3 is None:
            raise ValueError('backend = "s3" needs a [storage.s3] table')
        if self.backend == "s3" and self.s3 and self.s3.presign and self.url_ttl_seconds > WEEK:
            raise ValueError("url_ttl_seconds: a presigned URL lasts at most 604800 s (7 days)")


class FetchConfig(_Section):
    allow_hosts: list[str] = msgspec.field(default_factory=list)
    """Exact "host:port" pairs (IPv6 as "[::1]:8080") exempt from the private-address block."""
    max_bytes: Positive = 10 * 1024 * 1024
    timeout: Seconds = 20.0
    max_redirects: NonNegative = 3
    max_result_bytes: Positive = 32 * 1024 * 1024
    """Largest result image a provider may hand back as a URL to download."""

    def __post_init__(self) -> None:
        EgressPolicy(allow_hosts=frozenset(self.allow_hosts))  # raises on a malformed entry


class ImagesConfig(_Section):
    max_bytes: Positive = 10 * 1024 * 1024
    max_pixels: Annotated[int, msgspec.Meta(gt=0, le=89_478_485)] = 40_000_000
    min_side: Positive = 64
    max_side: Positive = 8192
    max_garments: Positive = 4
    decode_budget_pixels: Positive = 80_000_000
    """Pixels being decoded at once in this process, all requests together (memory bound)."""

    def __post_init__(self) -> None:
        if self.min_side > self.max_side:
            raise ValueError("min_side is larger than max_side")
        if self.decode_budget_pixels < self.max_pixels:
            raise ValueError("decode_budget_pixels is smaller than max_pixels")


class RoutingConfig(_Section):
    auto: list[str] = msgspec.field(default_factory=list)
    """Ordered slugs that model "auto" may use; empty: every enabled model, cheapest first."""
    fallbacks: dict[str, list[str]] = msgspec.field(default_factory=dict)
    cooldown_seconds: Seconds = 30.0
    failure_threshold: Positive = 3


class ModelOverride(_Section):
    credits: Credits | None = None
    """Price per output image, 0 to tryon_core.billing.MAX_CREDITS."""
    enabled: bool = True

    def price(self, default: int) -> int:
        """The price per image: this section's, else the plugin's ``default``."""
        return default if self.credits is None else self.credits


NO_OVERRIDE = ModelOverride()
"""A model without a ``[models."SLUG"]`` section."""


class JobsConfig(_Section):
    workers: Positive = 4
    """Async jobs this process runs at once; more wait in the queue."""
    deadline_seconds: Seconds = 3600.0
    """A job not finished this long after it was submitted fails and is released."""
    lease_seconds: Seconds = 30.0
    """A running job's claim; renewed while it runs. After a crash, others take it over."""
    sweep_interval_seconds: Seconds = 5.0
    """How often the gateway looks for queued, orphaned and overdue jobs."""
    shutdown_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    """On SIGTERM, running jobs get this long to finish; the rest are handed back at once (a
    submit-poll model's task is resumed by the next worker, never submitted twice)."""


class RedisConfig(_Section):
    url: str | None = None
    """``redis://[:PASSWORD@]HOST[:PORT][/DB]`` (or ``rediss://``, ``unix://``): what the
    processes of one deployment share: the job queue, job events, model health and cool-downs,
    and rate-limit windows. Unset: all of it stays in this process (the embedded default)."""
    prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "tryon"
    """Names this deployment's keys and channels, so several can share one Redis."""
    timeout: Seconds = 5.0
    """Connecting and each command; beyond it Redis counts as down (503 where it is needed)."""

    def __post_init__(self) -> None:
        url = self.url
        if url is not None and not re.match(r"(rediss?|unix)://\S+$", url):
            raise ValueError(f"url must be redis://, rediss:// or unix://, not {url!r}")


class WebhooksConfig(_Section):
    timeout: Seconds = 10.0
    """Each delivery must be answered (2xx) within this many seconds."""
    backoff_seconds: list[Annotated[float, msgspec.Meta(gt=0)]] = msgspec.field(
        default_factory=lambda: [10.0, 30.0, 120.0, 600.0, 1800.0, 3600.0]
    )
    """Waits before each retry; one try plus one per entry, then the delivery is given up."""
    poll_interval_seconds: Seconds = 2.0
    """How often the gateway looks for deliveries that are due."""


class DemoSessionsConfig(_Section):
    max_ttl_seconds: Positive = 3600
    """The longest a demo session lives; a longer ``ttl_seconds`` is cut to this."""


class ConsoleConfig(_Section):
    enabled: bool = True
    """Serve the web console at ``/`` (sign-in, keys, models, playground, generations ...)."""
    session_hours: Positive = 12
    """A console session ends this many hours after sign-in (or at sign-out)."""
    link_minutes: Positive = 15
    """A one-time sign-in link (``tryon console link``) is valid this many minutes."""
    sign_in_attempts: Positive = 10
    """Sign-in attempts (key or link) one client address may make per window; then 429."""
    sign_in_window_seconds: Positive = 300


class AccountLimits(_Section):
    """``[limits.account]``: what each account may do, all its keys and the console together."""

    requests_per_minute: Limit | None = None
    """Requests that start a generation (try-ons, chat completions, async submissions) per
    minute; unset: no limit."""
    concurrent_generations: Limit | None = None
    """Generations reserved and not yet settled at once (queued jobs count); unset: no limit."""


class LimitsConfig(_Section):
    """``[limits]``: the defaults for EACH key (a key's own override wins), and
    ``[limits.account]`` for each account."""

    requests_per_minute: Limit | None = None
    """Requests that start a generation (try-ons, chat completions, async submissions) per
    minute, per key; unset: no limit."""
    concurrent_generations: Limit | None = None
    """Generations reserved and not yet settled at once, per key; unset: no limit."""
    account: AccountLimits = msgspec.field(default_factory=AccountLimits)


class KeysConfig(_Section):
    """``[keys]``: how API keys are looked up."""

    cache_seconds: Annotated[float, msgspec.Meta(ge=0, le=60)] = 2.0
    """An API key that authenticated within this many seconds is taken as it was read then,
    without a read (in each process; one revoked or changed through this process is dropped
    at once). 0: every request reads its key. See :mod:`tryon_core.key_cache`."""


class MetricsConfig(_Section):
    enabled: bool = False
    """Serve ``GET /metrics`` (Prometheus text format); off: it is a 404 like any unknown route."""
    bearer_token: str | None = None
    """When set, ``/metrics`` answers only ``Authorization: Bearer <token>`` (401 otherwise)."""
    multiprocess_dir: str | None = None
    """A folder the processes of one host share (``PROMETHEUS_MULTIPROC_DIR``), so that a
    scrape of any of them reports the sum of all. Unset: each process reports its own."""


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    """Lines at this level and above are written (ours and the server's; others' from warning)."""
    format: Literal["text", "json"] = "text"
    """``text``: readable lines; ``json``: one JSON object per line (see docs/operations.md)."""


class TracingConfig(_Section):
    otlp_endpoint: str | None = None
    """Where spans are sent by OTLP/HTTP, e.g. "http://127.0.0.1:4318/v1/traces". Unset (and
    no ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT``): no tracing. Needs ``tryon-core[otel]``."""
    service_name: Annotated[str, msgspec.Meta(min_length=1)] = "tryon-core"
    sample_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    """The share of traces kept (a client's sampled ``traceparent`` is followed)."""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    """Sent with every export (e.g. a collector's authorization)."""

    def __post_init__(self) -> None:
        url = self.otlp_endpoint
        if url is not None and not re.match(r"https?://[^/?#\s]+(/\S*)?$", url):
            raise ValueError(f"otlp_endpoint must be an http(s):// URL, not {url!r}")


class PluginsConfig(_Section):
    blocked: list[str] = msgspec.field(default_factory=list)
    """Plugin (entry point) names never to load."""


class Settings(_Section):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    database: DatabaseConfig = msgspec.field(default_factory=DatabaseConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    fetch: FetchConfig = msgspec.field(default_factory=FetchConfig)
    images: ImagesConfig = msgspec.field(default_factory=ImagesConfig)
    routing: RoutingConfig = msgspec.field(default_factory=RoutingConfig)
    jobs: JobsConfig = msgspec.field(default_factory=JobsConfig)
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    webhooks: WebhooksConfig = msgspec.field(default_factory=WebhooksConfig)
    demo_sessions: DemoSessionsConfig = msgspec.field(default_factory=DemoSessionsConfig)
    console: ConsoleConfig = msgspec.field(default_factory=ConsoleConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    keys: KeysConfig = msgspec.field(default_factory=KeysConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    plugins: PluginsConfig = msgspec.field(default_factory=PluginsConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    tracing: TracingConfig = msgspec.field(default_factory=TracingConfig)
    providers: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    models: dict[str, ModelOverride] = msgspec.field(default_factory=dict)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read PATH, else $TRYON_CONFIG, else config/tryon.toml."""
    chosen = Path(path or os.environ.get("TRYON_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {chosen}: {exc.strerror}") from None
    return parse_settings(text, source=str(chosen))


def parse_settings(
    text: str, *, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Settings:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    expanded = _expand(raw, os.environ if environ is None else environ, source, "")
    _check_models(expanded.get("models"), source)
    try:
        return msgspec.convert(expanded, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_readable(exc)}") from None


def _check_models(models: Any, source: str) -> None:
    """Check each ``[models."SLUG"]`` on its own, so an error names the slug (msgspec says
    ``models[...]``)."""
    if not isinstance(models, dict):
        return
    for slug, section in models.items():
        try:
            msgspec.convert(section, ModelOverride)
        except msgspec.ValidationError as exc:
            where = f'models."{slug}"'
            raise ConfigError(f"{source}: {_readable(exc, within=where)}") from None


def resolve_providers(settings: Settings, registry: Registry) -> dict[str, ProviderConfig]:
    """Validate every ``[providers.NAME]`` section against its plugin's config type.

    Returns the config of every registered provider (defaults where no section is given).
    Also checks that ``[models]``, ``[routing]`` name only registered slugs.
    """
    configs: dict[str, ProviderConfig] = {}
    for name in settings.providers:
        if name not in registry.providers:
            known = ", ".join(sorted(registry.providers)) or "none"
            raise ConfigError(f"providers.{name}: no installed plugin provides it (known: {known})")
    for name, spec in registry.providers.items():
        section = settings.providers.get(name, {})
        try:
            config = msgspec.convert(section, spec.config_type)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"providers.{name}: {_readable(exc)}") from None
        if config.enabled:
            for secret in spec.config_type.secrets:
                if not getattr(config, secret, None):
                    raise ConfigError(
                        f"providers.{name}.{secret} is required when the provider is enabled"
                    )
        configs[name] = config
        if spec.models_from_config is not None:
            _add_configured_models(registry, spec, config, name)
    for slug in settings.models:
        if slug not in registry.models:
            raise ConfigError(f'models."{slug}": no installed plugin serves this model')
    named = [("routing.auto", s) for s in settings.routing.auto]
    for key, targets in settings.routing.fallbacks.items():
        named += [(f'routing.fallbacks."{key}"', s) for s in [key, *targets]]
    for where, slug in named:
        if slug not in registry.models:
            raise ConfigError(f"{where}: unknown model {slug!r}")
    return configs


def _add_configured_models(
    registry: Registry, spec: ProviderSpec, config: ProviderConfig, name: str
) -> None:
    """The models a provider derives from its ``[providers.NAME]`` section, checked like any."""
    assert spec.models_from_config is not None
    try:
        Registrar(registry).add_models(spec, tuple(spec.models_from_config(config)))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"providers.{name}: {exc}") from None


def _expand(value: Any, environ: Mapping[str, str], source: str, where: str) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise ConfigError(f"{source}: {where or 'value'} uses ${{{name}}}, which is unset")
            return environ[name]

        return _VAR.sub(substitute, value)
    if isinstance(value, dict):
        return {
            k: _expand(v, environ, source, f"{where}.{k}" if where else k) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, environ, source, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _readable(exc: msgspec.ValidationError, *, within: str = "") -> str:
    """msgspec says '... - at `$.server.port`'; name the key the way the TOML file does."""
    message = str(exc)
    match = re.search(r" - at `\$\.?(.*)`$", message)
    if match:
        message = message[: match.start()]
    key = ".".join(part for part in (within, match.group(1) if match else "") if part)
    return f"{key}: {message}" if key else message
