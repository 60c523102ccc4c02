"""The enabled models as people read them: what each accepts, its price, its health now."""

from __future__ import annotations

import math

import msgspec

from tryon_core.gateway import Gateway

__all__ = ["ModelRow", "model_rows"]


class ModelRow(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    name: str
    provider: str
    credits: int
    categories: list[str]
    max_garments: int
    max_outputs: int
    input_formats: list[str]
    execution: str
    """``sync`` (answers in one call) or ``submit-poll`` (a task polled until done)."""
    cooling_seconds: int
    """Seconds left cooling down after failures in a row; 0: fine."""
    failures: int
    in_auto: bool

    @property
    def healthy(self) -> bool:
        return self.cooling_seconds == 0


def model_rows(gateway: Gateway) -> list[ModelRow]:
    catalog, health = gateway.catalog, gateway.health
    rows = []
    for entry in sorted(catalog.entries.values(), key=lambda e: e.slug):
        caps = entry.model.capabilities
        rows.append(
            ModelRow(
                slug=entry.slug,
                name=entry.model.name,
                provider=entry.provider.name,
                credits=entry.credits,
                categories=[c for c in caps.categories if c != "auto"] or ["auto"],
                max_garments=caps.max_garments,
                max_outputs=caps.max_outputs,
                input_formats=[f.removeprefix("image/") for f in caps.input_formats],
                execution=caps.execution,
                cooling_seconds=math.ceil(health.cooldown_left(entry.slug)),
                failures=health.failures(entry.slug),
                in_auto=entry.slug in catalog.auto,
            )
        )
    return rows
