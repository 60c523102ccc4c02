"""Prometheus metrics: what the gateway records, and ``GET /metrics`` that reports it.

- :mod:`~tryon_core.metrics.families`: every metric (made on first use) and multiprocess mode.
- :mod:`~tryon_core.metrics.record`: the one-line hooks the rest of the gateway calls.
- :mod:`~tryon_core.metrics.http`: HTTP requests by route template, through a middleware.
- :mod:`~tryon_core.metrics.scrape`: the ``/metrics`` route, its token, the database gauges
  (imported by the app alone: it needs the gateway, which records through this package).

docs/operations.md ("Metrics") lists every metric and label.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tryon_core.metrics.families import families, multiprocess_dir, use_directory
from tryon_core.metrics.http import count_requests
from tryon_core.metrics.record import (
    attempt_finished,
    credits_settled,
    fell_back,
    generation_settled,
    http_request,
    rate_limited,
    webhook_try,
)

if TYPE_CHECKING:
    from tryon_core.config import Settings

__all__ = [
    "attempt_finished",
    "configure",
    "count_requests",
    "credits_settled",
    "families",
    "fell_back",
    "generation_settled",
    "http_request",
    "process_exit",
    "rate_limited",
    "webhook_try",
]


def configure(settings: Settings) -> None:
    """At a process's start, before anything is recorded: multiprocess mode if configured."""
    use_directory(settings.metrics.multiprocess_dir)


def process_exit() -> None:
    """This process stops: in multiprocess mode, its live gauges leave the sums (its counters
    stay, so totals never go backwards)."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
