"""Python's cyclic garbage collector, set for a process that serves for a long time.

Reference counting frees almost everything a request makes; the collector is there for the
rest (cycles), and it runs on a count: every ``threshold0`` container objects made and not yet
freed, a collection of the youngest generation; every ten of those, the middle one; then,
when enough has piled up, a full collection, which walks every container object the process
holds. Measured at 32 requests in flight (the peer benchmark's small multipart payload,
~2 000 requests, Python's defaults):

- ~150 000 of those objects were made while starting (modules, the app and its routes, the
  catalog, compiled statements) and live as long as the process. Each full collection walked
  them all: 4 of them, ~60 ms each, the event loop standing still for every request in
  flight. :func:`settle` freezes them once start-up is over (``gc.freeze()``: the collector
  no longer looks at them; reference counting still frees them): a full collection then walks
  only what came later.
- Python collects its youngest generation every 700 objects; a request makes several
  hundred, so with 32 in flight most young objects still belonged to a running request and
  were moved on to the older generations, whose collections cost more: ~600 young and ~50
  middle collections, 0.17 ms of CPU a request in all. Every :data:`YOUNG_THRESHOLD`
  objects instead: ~50 and ~4, 0.07 ms a request, and no full collection but the one before
  freezing.

Cycles are still found and freed, only a little later: at most ``YOUNG_THRESHOLD`` more
container objects wait for it (a few MB). Tests and embedders that build apps with
:func:`tryon_core.api.create_app` are left alone: only the server's processes (``tryon
serve``, its ``--workers`` children, ``tryon worker``) call this module.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

__all__ = ["YOUNG_THRESHOLD", "collect_for_serving", "settle", "young_every"]

YOUNG_THRESHOLD = 10_000
"""Container objects made (and not freed) between two collections of the youngest generation
(Python's own: 700)."""

log = logging.getLogger("tryon.server")


def collect_for_serving(app: Any) -> Any:
    """Set the young generation's threshold now and return ``app`` (ASGI), wrapped so that the
    start-up heap is frozen (:func:`settle`) once its lifespan start-up has completed, just
    before the server takes its first request. Attribute reads pass on to ``app``."""
    young_every()
    return _SettledAfterStartup(app)


def young_every(threshold: int = YOUNG_THRESHOLD) -> None:
    """Collect the youngest generation every ``threshold`` objects; the older generations'
    thresholds stay as they are."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(threshold, middle, old)


def settle() -> int:
    """Collect what start-up left unreachable, then freeze everything still alive (it will
    live as long as the process); the number of objects now frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    young = gc.get_threshold()[0]
    log.info("start-up heap frozen: %d objects; young ones collected every %d", frozen, young)
    return frozen


class _SettledAfterStartup:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_settled(message: Any) -> None:
            if message.get("type") == "lifespan.startup.complete":
                settle()
            await send(message)

        await self.app(scope, receive, send_settled)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)
