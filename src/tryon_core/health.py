"""Per-model health: a model that keeps failing is cooled down for a while."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["HealthTracker"]


class HealthTracker:
    """After ``threshold`` consecutive upstream failures a model cools down for ``cooldown`` s."""

    def __init__(
        self, *, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def is_cooling(self, slug: str) -> bool:
        return self._until.get(slug, 0.0) > self._clock()

    def cooling_until(self, slug: str) -> float | None:
        until = self._until.get(slug)
        return until if until and until > self._clock() else None

    def cooldown_left(self, slug: str) -> float:
        """Seconds until the model is tried again; 0 when it is not cooling down."""
        return max(0.0, self._until.get(slug, 0.0) - self._clock())

    def failures(self, slug: str) -> int:
        """Upstream failures in a row since the model last succeeded."""
        return self._failures.get(slug, 0)

    def success(self, slug: str) -> None:
        self._failures.pop(slug, None)
        self._until.pop(slug, None)

    def failure(self, slug: str) -> None:
        count = self._failures.get(slug, 0) + 1
        self._failures[slug] = count
        if count >= self.threshold:
            self._until[slug] = self._clock() + self.cooldown
