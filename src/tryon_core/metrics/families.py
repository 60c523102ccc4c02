"""Every metric the gateway records, made once per process on first use.

Made lazily, not at import: in multiprocess mode prometheus_client must know
``PROMETHEUS_MULTIPROC_DIR`` before the first metric is constructed (:func:`use_directory`),
and ``tryon serve`` imports this module long before it reads its configuration.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from prometheus_client import Counter, Histogram, values

from tryon_core.errors import ConfigError

__all__ = ["ENV", "Families", "families", "multiprocess_dir", "use_directory"]

ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
"""Seconds: from a health check to a synchronous try-on that tried every fallback."""
UPSTREAM_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
"""Seconds: one upstream attempt, an instant refusal to a slow submit-poll task."""


class Families:
    def __init__(self) -> None:
        self.http_requests = Counter(
            "tryon_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
        )
        self.http_duration = Histogram(
            "tryon_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template.",
            ["route", "method"],
            buckets=REQUEST_BUCKETS,
        )
        self.generations = Counter(
            "tryon_generations",
            "Generations settled, by the model that served (none if none did) and outcome.",
            ["model", "outcome"],
        )
        self.attempts = Counter(
            "tryon_attempts",
            "Upstream attempts finished, by provider, model, outcome and error type.",
            ["provider", "model", "outcome", "error_type"],
        )
        self.upstream_duration = Histogram(
            "tryon_upstream_duration_seconds",
            "Time one upstream attempt took, by provider, model and outcome.",
            ["provider", "model", "outcome"],
            buckets=UPSTREAM_BUCKETS,
        )
        self.fallbacks = Counter(
            "tryon_fallbacks",
            "Fallbacks from a model that failed to the next candidate, by the failure's type.",
            ["from_model", "to_model", "reason"],
        )
        self.credits_charged = Counter(
            "tryon_credits_charged",
            "Credits captured from reservations, by the model that served.",
            ["model"],
        )
        self.credits_released = Counter(
            "tryon_credits_released",
            "Reserved credits given back (refunded), by the model that served (none if none did).",
            ["model"],
        )
        self.webhook_deliveries = Counter(
            "tryon_webhook_deliveries",
            "Webhook delivery tries, by outcome: delivered, retry (will be tried again), failed.",
            ["outcome"],
        )
        self.rate_limited = Counter(
            "tryon_rate_limited",
            "Requests refused by one of the gateway's own limits, by limit and scope.",
            ["limit", "scope"],
        )


@functools.cache
def families() -> Families:
    """The process's metrics, made on first use (after :func:`use_directory`, if any)."""
    return Families()


def multiprocess_dir() -> str | None:
    """The shared folder of multiprocess mode, if this process uses one."""
    return os.environ.get(ENV) or None


def use_directory(directory: str | None) -> None:
    """Record into ``directory`` (``[metrics] multiprocess_dir``), shared with the other
    processes of this host. Must come before the first metric is made; a process cannot
    change it later (ConfigError)."""
    if directory is None or multiprocess_dir() == directory:
        if multiprocess_dir() is not None:
            Path(multiprocess_dir() or "").mkdir(parents=True, exist_ok=True)
        return
    if families.cache_info().currsize:
        raise ConfigError(
            "metrics.multiprocess_dir: this process already records its metrics "
            f"{'in ' + repr(multiprocess_dir()) if multiprocess_dir() else 'in memory'}"
        )
    Path(directory).mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = directory
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # chosen at import
