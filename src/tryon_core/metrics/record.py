"""What the rest of the gateway calls, one line at each place something happens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tryon_core.metrics.families import families

if TYPE_CHECKING:
    from tryon_core.errors import TooManyRequests
    from tryon_core.fallback import Attempt

__all__ = [
    "attempt_finished",
    "credits_settled",
    "fell_back",
    "generation_settled",
    "http_request",
    "rate_limited",
    "webhook_try",
]

NONE = "none"
"""The label value where there is nothing to name (no model served, no error)."""
LIMITS = frozenset({"requests_per_minute", "concurrent_generations"})
SCOPES = frozenset({"key", "account"})


def http_request(route: str, method: str, status: int, seconds: float) -> None:
    metrics = families()
    metrics.http_requests.labels(route, method, str(status)).inc()
    metrics.http_duration.labels(route, method).observe(seconds)


def attempt_finished(attempt: Attempt, seconds: float) -> None:
    """An upstream attempt ended: succeeded, failed (with its error type) or cancelled."""
    metrics = families()
    error_type = (attempt.error or {}).get("type") or NONE
    metrics.attempts.labels(attempt.provider, attempt.model, attempt.status, error_type).inc()
    metrics.upstream_duration.labels(attempt.provider, attempt.model, attempt.status).observe(
        seconds
    )


def fell_back(from_model: str, to_model: str, reason: str) -> None:
    families().fallbacks.labels(from_model, to_model, reason).inc()


def generation_settled(model: str | None, error: dict[str, Any] | None = None) -> None:
    """A generation was settled: succeeded (``model`` served it), else failed or cancelled."""
    if error is None:
        outcome = "succeeded"
    else:
        outcome = "cancelled" if error.get("type") == "cancelled" else "failed"
    families().generations.labels(model or NONE, outcome).inc()


def credits_settled(model: str | None, charged: int, released: int) -> None:
    metrics = families()
    if charged:
        metrics.credits_charged.labels(model or NONE).inc(charged)
    if released:
        metrics.credits_released.labels(model or NONE).inc(released)


def webhook_try(outcome: str) -> None:
    """``delivered``, ``retry`` (it will be tried again) or ``failed`` (given up)."""
    families().webhook_deliveries.labels(outcome).inc()


def rate_limited(error: TooManyRequests) -> None:
    """A request refused by one of the gateway's own limits (``metadata.limit``, ``.scope``)."""
    metadata = error.metadata or {}
    limit, scope = metadata.get("limit"), metadata.get("scope")
    families().rate_limited.labels(
        limit if limit in LIMITS else "other", scope if scope in SCOPES else "other"
    ).inc()
