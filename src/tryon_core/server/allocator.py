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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

__all__ = ["BIG_BUFFER", "return_big_buffers"]

BIG_BUFFER = 4 * 1024 * 1024
"""Blocks this big or bigger get a mapping of their own, given back when freed."""

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h

log = logging.getLogger("tryon.server")


def return_big_buffers(threshold: int = BIG_BUFFER) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; True if it was set."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, threshold) != 1:
        log.debug("mallopt(M_MMAP_THRESHOLD, %d) was refused", threshold)
        return False
    return True
