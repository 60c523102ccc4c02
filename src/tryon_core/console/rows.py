"""Generations as the console's tables show them: one flat row each."""

from __future__ import annotations

from datetime import datetime

import msgspec

from tryon_core.jobs.view import JobBody

__all__ = ["GenerationRow", "generation_row"]


class GenerationRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    created_at: str
    status: str
    mode: str
    model: str | None
    credits: int
    duration_ms: int | None
    """From submission to the end; None while it runs."""
    thumbnail: str | None
    """The first result image's signed URL."""
    error: str | None
    attempts: int


def generation_row(job: JobBody) -> GenerationRow:
    duration = None
    if job.completed_at is not None:
        took = _parse(job.completed_at) - _parse(job.created_at)
        duration = max(0, int(took.total_seconds() * 1000))
    return GenerationRow(
        id=job.id,
        created_at=job.created_at,
        status=job.status,
        mode=job.mode,
        model=job.model,
        credits=job.usage.credits,
        duration_ms=duration,
        thumbnail=job.images[0].url if job.images else None,
        error=job.error.message if job.error else None,
        attempts=len(job.attempts),
    )


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))
