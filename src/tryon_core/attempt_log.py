"""One log line and one span per attempt (a call to one model), from where attempts run
(:func:`tryon_core.fallback.run_candidates`).

The span is the current one while the attempt runs, so the upstream HTTP calls made for it are
its children. The line carries the generation id, the position, model, provider, outcome,
upstream task id, error type and duration; a failed attempt's line is also readable on its own
(the error's message and the upstream's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tryon_core import tracing

if TYPE_CHECKING:
    from tryon_core.catalog import Entry
    from tryon_core.fallback import Attempt

__all__ = ["AttemptTrace", "attempt_finished", "attempt_started"]

log = logging.getLogger("tryon.attempts")


@dataclass
class AttemptTrace:
    position: int
    generation_id: str | None
    span: Any = None
    token: Any = None


def attempt_started(entry: Entry, position: int, generation_id: str | None) -> AttemptTrace:
    """Open the attempt's span (when tracing) and make it the current one."""
    trace = AttemptTrace(position=position, generation_id=generation_id)
    tracer = tracing.active_tracer()
    if tracer is not None:
        from opentelemetry import context
        from opentelemetry import trace as otel_trace

        trace.span = tracer.start_span(
            f"attempt {entry.slug}",
            attributes={
                "tryon.model": entry.slug,
                "tryon.provider": entry.provider.name,
                "tryon.attempt.position": position,
                **({"tryon.generation_id": generation_id} if generation_id else {}),
            },
        )
        trace.token = context.attach(otel_trace.set_span_in_context(trace.span))
    return trace


def attempt_finished(
    trace: AttemptTrace, attempt: Attempt, upstream_message: str | None = None
) -> None:
    """End the attempt's span and write its line."""
    error = attempt.error or {}
    fields: dict[str, Any] = {
        "event": "attempt",
        "generation_id": trace.generation_id,
        "position": trace.position,
        "model": attempt.model,
        "provider": attempt.provider,
        "status": attempt.status,
        "task_id": attempt.task_id,
        "error_type": error.get("type"),
        "duration_ms": attempt.duration_ms,
    }
    if trace.span is not None:
        _end_span(trace, attempt, error)
    text = (
        f"attempt {trace.position} {attempt.model} ({attempt.provider}) {attempt.status} "
        f"in {attempt.duration_ms} ms"
    )
    if attempt.task_id:
        text += f", upstream task {attempt.task_id}"
    if error:
        text += (
            f": {error.get('type')} ({error.get('message')}; upstream code "
            f"{error.get('code')}: {upstream_message})"
        )
    fields = {name: value for name, value in fields.items() if value is not None}
    log.info("%s", text, extra={"fields": fields})


def _end_span(trace: AttemptTrace, attempt: Attempt, error: dict[str, str | None]) -> None:
    from opentelemetry import context
    from opentelemetry.trace import Status, StatusCode

    span = trace.span
    span.set_attribute("tryon.attempt.outcome", attempt.status)
    if attempt.task_id:
        span.set_attribute("tryon.upstream_task_id", attempt.task_id)
    if error.get("type"):
        span.set_attribute("error.type", str(error["type"]))
        span.set_status(Status(StatusCode.ERROR, str(error["type"])))
    span.end()
    context.detach(trace.token)
