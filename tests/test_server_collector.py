"""tryon_core.server.collector: a serving process freezes what its start-up made, once the
app's lifespan start-up has completed, and collects its youngest objects less often; cycles
made later are still found and freed.

Each check runs in a child process: the collector's settings are the whole process's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.served import Gateway, configured

CHILD = """
import asyncio, gc, json, weakref
from tryon_core.server.collector import YOUNG_THRESHOLD, collect_for_serving

class Node:
    def __init__(self):
        self.me = self  # a cycle: only the collector frees it

seen = {}
made_before = Node()

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        seen["frozen_before_complete"] = gc.get_freeze_count()
        await send({"type": "lifespan.startup.complete"})
        return
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
app.state = "the app's own attribute"

before = gc.get_threshold()
wrapped = collect_for_serving(app)

async def main():
    seen["threshold"] = gc.get_threshold()
    messages = []
    async def receive():
        return {"type": "lifespan.startup"}
    async def send(message):
        messages.append(message["type"])
    await wrapped({"type": "lifespan"}, receive, send)
    seen["messages"] = messages
    seen["frozen"] = gc.get_freeze_count()
    everything = gc.get_objects()
    seen["before_is_frozen"] = not any(o is made_before for o in everything)
    later = Node()
    seen["later_is_frozen"] = not any(o is later for o in everything + gc.get_objects())
    freed = []
    weakref.finalize(later, freed.append, True)
    del later
    gc.collect()
    seen["later_cycle_freed"] = freed == [True]
    http = []
    async def send_http(message):
        http.append(message["type"])
    await wrapped({"type": "http"}, receive, send_http)
    seen["http"] = http
    seen["state"] = wrapped.state
    seen["young"] = YOUNG_THRESHOLD

asyncio.run(main())
seen["before"] = before
print(json.dumps(seen))
"""


def _child() -> dict[str, Any]:
    argv = [sys.executable, "-c", CHILD]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=dict(os.environ))
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_start_up_heap_is_frozen_when_start_up_completes() -> None:
    seen = _child()
    assert seen["frozen_before_complete"] == 0  # not before the app's own start-up has run
    assert seen["messages"] == ["lifespan.startup.complete"]  # passed on, after freezing
    assert seen["frozen"] > 10_000  # the modules, classes and functions imported so far
    assert seen["before_is_frozen"] is True
    assert seen["later_is_frozen"] is False


def test_young_objects_are_collected_less_often_and_cycles_still_freed() -> None:
    seen = _child()
    young, *older = seen["threshold"]
    assert young == seen["young"] > seen["before"][0]
    assert older == seen["before"][1:]  # the older generations' thresholds are Python's
    assert seen["later_cycle_freed"] is True


def test_requests_and_attributes_pass_through() -> None:
    seen = _child()
    assert seen["http"] == ["http.response.start", "http.response.body"]
    assert seen["state"] == "the app's own attribute"


def test_tryon_serve_freezes_before_its_first_request(tmp_path: Path) -> None:
    gateway: Gateway = configured(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/tryon.db")
    gateway.start()
    try:
        assert httpx.get(f"{gateway.url}/healthz", timeout=10).status_code == 200
        log = gateway.tail()
    finally:
        gateway.stop()
    frozen = [line for line in log.splitlines() if "start-up heap frozen" in line]
    assert len(frozen) == 1, log
    count = int(frozen[0].split("frozen: ")[1].split()[0])
    assert count > 50_000  # the app, its routes, the catalog: far more than the bare modules
    assert log.index("start-up heap frozen") < log.index("Application startup complete")
