"""The app one serving process runs, set up for a long life: the same in ``tryon serve``'s
one process and in each child of ``tryon serve --workers N``."""

from __future__ import annotations

from typing import Any

from tryon_core.config import Settings
from tryon_core.server.allocator import return_big_buffers, trim_when_idle, watch_requests
from tryon_core.server.collector import collect_for_serving

__all__ = ["serving_app"]


def serving_app(settings: Settings, *, workers: bool) -> Any:
    """``create_app(settings)`` and what a server process adds around it: big buffers handed
    back to the system, the heap trimmed once no request is in flight
    (:mod:`~tryon_core.server.allocator`), and the objects start-up made frozen out of the
    collector's way once the app has started (:mod:`~tryon_core.server.collector`). Logging
    is the caller's: a supervisor sets it up before its children exist, each child again."""
    from tryon_core.api import create_app

    return_big_buffers()  # a spawned child does not inherit its parent's setting
    trim_when_idle()
    return collect_for_serving(watch_requests(create_app(settings, workers=workers)))
