"""tryon_core.server.allocator: glibc's mmap threshold is fixed, unless the operator set one;
heap pages freed after a burst go back to the system."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from tryon_core.server.allocator import return_big_buffers

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def test_an_operators_threshold_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert return_big_buffers() is False


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_glibc_takes_the_threshold() -> None:
    # in a child: the setting is process-wide, and lasts
    code = "from tryon_core.server.allocator import return_big_buffers as r; print(r())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    argv = [sys.executable, "-c", code]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "True"


TRIMMED = """
import os
import time
from tryon_core.server.allocator import return_big_buffers, trim_when_idle
return_big_buffers()
running = trim_when_idle(every=0.05, above=8 << 20) if TRIM else False
def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
blocks = [bytearray(500_000) for _ in range(400)]  # ~200 MB of heap blocks (under 4 MiB each)
high = resident()
del blocks[:-1:2]  # every other one freed: holes in the middle of the heap
deadline = time.monotonic() + 20
while resident() > high - 60 and time.monotonic() < deadline and running:
    time.sleep(0.05)
print(running, high - resident())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
@pytest.mark.parametrize("trim", [True, False])
def test_freed_heap_pages_go_back_with_the_trimmer(trim: bool) -> None:
    """~100 MB freed in holes stays resident without it; with it, it goes back."""
    argv = [sys.executable, "-c", f"TRIM = {trim}\n" + TRIMMED]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=dict(os.environ))
    running, given_back = out.stdout.split()
    assert running == str(trim)
    if trim:
        assert int(given_back) >= 60
    else:
        assert int(given_back) < 30


IDLE = """
import asyncio, os, time
from tryon_core.server.allocator import (
    in_flight, return_big_buffers, trim_when_idle, watch_requests
)
return_big_buffers()
assert trim_when_idle(every=3600, above=8 << 20)  # no periodic look within this test
def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
seen, kept = [], []
async def burst(scope, receive, send):
    blocks = [bytearray(500_000) for _ in range(400)]  # ~200 MB of heap blocks
    seen.append(in_flight())
    del blocks[:-1:2]  # holes in the middle of the heap
    kept.append(blocks)  # the other half outlives the request (a cache, say)
    seen.append(resident())
app = watch_requests(burst)
asyncio.run(app({"type": "http"}, None, None))
ended = time.monotonic()
while resident() > seen[1] - 60 and time.monotonic() < ended + 10:
    time.sleep(0.02)
print(seen[0], in_flight(), round(time.monotonic() - ended, 2), seen[1] - resident())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_memory_goes_back_when_the_last_request_ends() -> None:
    """With no periodic look, the end of the last request in flight is what prompts the
    trim: ~100 MB freed in holes goes back within about a second."""
    argv = [sys.executable, "-c", IDLE]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=dict(os.environ))
    during, after, seconds, given_back = out.stdout.split()
    assert (during, after) == ("1", "0")
    assert int(given_back) >= 60, out.stdout
    assert float(seconds) < 10


REFAULTS = """
import resource
from tryon_core.server.allocator import return_big_buffers
assert return_big_buffers()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = bytearray(2_000_000)  # a first request's buffer: faulted in once
del block
before = faults()
for _ in range(50):  # the same buffer for each request that follows, freed once it has served
    block = bytearray(2_000_000)
    del block
print(faults() - before)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
@pytest.mark.parametrize("operators", [None, "131072"])
def test_a_freed_buffer_is_reused_without_page_faults(operators: str | None) -> None:
    """A 2 MB buffer freed and taken again 50 times: the heap keeps the pages, so they are not
    faulted in again (~490 faults each time with glibc's 128 KiB trim threshold, which an
    operator's ``MALLOC_TRIM_THRESHOLD_`` still chooses)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if operators is not None:
        env["MALLOC_TRIM_THRESHOLD_"] = operators
    argv = [sys.executable, "-c", REFAULTS]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    faults = int(out.stdout)
    if operators is None:
        assert faults < 50 * 50, faults
    else:
        assert faults > 50 * 400, faults
