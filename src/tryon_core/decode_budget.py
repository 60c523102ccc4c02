"""A process-wide budget of pixels being decoded at once.

A decoded image takes three or four bytes a pixel, however small its file: five 40-megapixel
PNGs of a few kilobytes each are 600 MB once decoded. Each decode holds its image's pixels from
this budget until it has finished; concurrent requests beyond it wait their turn instead of
each holding its own copies, so the memory that image decoding can take is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["PixelBudget"]


class PixelBudget:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the decode budget must be positive")
        self.capacity = capacity
        self.in_use = 0
        self._waiters: list[asyncio.Future[None]] = []

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        """Hold ``pixels`` (at most the whole budget) while the block runs."""
        pixels = max(1, min(pixels, self.capacity))
        while self.in_use + pixels > self.capacity:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        self.in_use += pixels
        try:
            yield
        finally:
            self.in_use -= pixels
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
