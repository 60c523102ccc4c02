"""Give big buffers back to the system when they are freed (glibc's malloc, Linux).

A try-on request holds a few buffers of megabytes: its body, data URLs, decoded images, the
upstream's body. glibc serves an allocation past its *mmap threshold* from a mapping of its
own, unmapped when freed; but the threshold starts at 128 KiB and rises, up to 32 MiB, to the
size of every such block freed. After the first big request, blocks of ~5-15 MB come from the
heaps of the threads' arenas instead, where they fragment and stay: a server fed two 5 MB data
URLs per request grew from ~150 MB to ~0.8-1.1 GB and never shrank, with nothing leaked.

Setting the threshold fixes it (glibc no longer moves it): blocks of ``BIG_BUFFER`` and more
are mapped and unmapped, everything smaller is served from the heap as before. A threshold
the operator has set (the ``MALLOC_MMAP_THRESHOLD_`` environment variable) is left alone, and
so is any other allocator (musl, macOS, Windows): then nothing happens.

Fixing the mmap threshold fixes glibc's *trim threshold* too, at 128 KiB: a heap whose top
held more free than that gave it back at once, and the next request faulted it in again page
by page. A buffer of a few megabytes freed as soon as it has served (an upstream body once
sent) then cost ~500 page faults each time, ~2 ms of CPU a request here. So a heap keeps up to
``KEEP_FREE`` at its top for the requests that follow (unless ``MALLOC_TRIM_THRESHOLD_`` is
set); the trimming thread below gives it back when the process falls idle.

Smaller blocks freed in the middle of a heap stay resident too: glibc gives back only the top
of a heap, and each thread that allocates (the executor's, aiosqlite's) may have an arena of
its own. After a burst of big requests a process held ~40 MB more than it needed for good.
:func:`trim_when_idle` starts a thread that looks whether the process grew by ``TRIM_ABOVE``
since it last settled while glibc holds as much free, and then has glibc release those pages
(``malloc_trim(0)``, a few milliseconds). It looks when the process falls idle: the app,
wrapped by :func:`watch_requests`, counts the HTTP requests in flight, and the last one to end
wakes the thread, which looks ``QUIET`` seconds later if nothing new started (at most once per
``TRIM_GAP`` seconds); and every ``TRIM_EVERY`` seconds whatever the load. The resident size
comes back down a moment after a burst ends, and a busy process is not made to wait on
glibc's arena locks by a trim in the middle of its work. Fewer arenas (``M_ARENA_MAX``, as
``MALLOC_ARENA_MAX=2``) were measured too: no smaller after the soak, sometimes larger; the
operator's ``MALLOC_ARENA_MAX`` is glibc's own to apply.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import sys
import threading
import time
from typing import Any

__all__ = [
    "BIG_BUFFER",
    "KEEP_FREE",
    "QUIET",
    "TRIM_ABOVE",
    "TRIM_EVERY",
    "TRIM_GAP",
    "in_flight",
    "return_big_buffers",
    "trim_when_idle",
    "watch_requests",
]

BIG_BUFFER = 4 * 1024 * 1024
"""Blocks this big or bigger get a mapping of their own, given back when freed."""

KEEP_FREE = 32 * 1024 * 1024
"""Free bytes a heap keeps at its top for the next requests (glibc's own: 128 KiB)."""

TRIM_EVERY = 10.0
"""Seconds between two looks at the memory glibc holds free."""

TRIM_ABOVE = 16 * 1024 * 1024
"""Free bytes held in the heaps past which they are given back."""
QUIET = 0.1
"""Seconds without a request, after the last one ended, before the thread looks."""
TRIM_GAP = 1.0
"""The fewest seconds between two looks prompted by the process falling idle."""

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3

log = logging.getLogger("tryon.server")


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33+): byte counts summed over every arena."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",  # free bytes held in the heaps
            "keepcost",
        )
    ]


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018  (glibc's, not musl's: musl has no mallopt)
    except (OSError, AttributeError):
        return None
    return libc


def return_big_buffers(threshold: int = BIG_BUFFER, keep_free: int = KEEP_FREE) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes, and its trim threshold at
    ``keep_free``; True if the mmap threshold was set."""
    libc = _glibc()
    if libc is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, threshold) != 1:
        log.debug("mallopt(M_MMAP_THRESHOLD, %d) was refused", threshold)
        return False
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ and mallopt(_M_TRIM_THRESHOLD, keep_free) != 1:
        log.debug("mallopt(M_TRIM_THRESHOLD, %d) was refused", keep_free)
    return True


_trimmer: threading.Thread | None = None
_requests = 0
_went_idle = threading.Event()


def in_flight() -> int:
    """HTTP requests the app is handling now (counted by :func:`watch_requests`)."""
    return _requests


def watch_requests(app: Any) -> Any:
    """``app`` (ASGI), counting its HTTP requests in flight; the last to end wakes the
    trimming thread. The wrapper passes attribute reads on to ``app`` (``.state``...)."""
    return _Watched(app)


class _Watched:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        global _requests
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _requests += 1
        try:
            await self.app(scope, receive, send)
        finally:
            _requests -= 1
            if not _requests:
                _went_idle.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


def trim_when_idle(every: float = TRIM_EVERY, above: int = TRIM_ABOVE) -> bool:
    """Start this process's trimming thread (once); True if it runs (glibc 2.33+ only)."""
    global _trimmer
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2") or not hasattr(libc, "malloc_trim"):
        return False
    if _trimmer is None or not _trimmer.is_alive():
        libc.mallinfo2.argtypes, libc.mallinfo2.restype = (), _MallInfo2
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
        _trimmer = threading.Thread(
            target=_trim_forever, args=(libc, every, above), name="tryon-trim", daemon=True
        )
        _trimmer.start()
    return True


def _trim_forever(libc: ctypes.CDLL, every: float, above: int) -> None:
    """Trim when the process grew by ``above`` since it last settled and glibc holds that
    much free (freed pages count as free after a trim too, hence the resident size): looked
    at when it falls idle, and every ``every`` seconds."""
    settled = _resident()
    while True:
        if _went_idle.wait(every):
            _went_idle.clear()
            time.sleep(QUIET)
            if _requests:  # busy again: the next idle moment looks
                continue
        resident = _resident()
        if resident > settled + above and libc.mallinfo2().fordblks > above:
            libc.malloc_trim(0)
            settled = _resident()
        else:
            settled = min(settled, resident)
        time.sleep(max(0.0, TRIM_GAP - QUIET))


def _resident() -> int:
    """This process's resident size, bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
