"""Hostile upstreams, for every provider plugin, through the gateway's HTTP API.

``test_providers_e2e.py`` shows each fault a fake can inject falling back to the offline
engine. This file adds what a fake cannot play by itself, and the other half of each case:

- every fault as the *answer* (the model alone, no fallback): the documented status and
  ``type``, ``Retry-After`` when the upstream gave a wait, 500/502/503 alike, nothing charged;
- transport faults on a real socket: connection refused (a closed port), a connect timeout
  (a listener whose backlog is full, so the SYN is never answered) and a read timeout (a
  listener that accepts and never answers), each alone and with a fallback;
- a task that never finishes (Kling, fal, FASHN) under a short provider ``timeout``.

In every case only the model that served is charged, and a request that fails holds nothing.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from tests.helpers import (
    A_MODEL_OF,
    Fakes,
    all_fakes,
    auth,
    fakes_settings,
    live_server,
    new_key,
    sample_tryon_body,
)
from tryon_core.api import create_app
from tryon_core.errors import (
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from tryon_core.testing.contract import STANDARD_FAULTS
from tryon_core.testing.fakes import Fault

MODELS = {name: A_MODEL_OF[name] for name in ("kling", "gemini", "openai", "fal", "fashn")}
SUBMIT_POLL = ("kling", "fal", "fashn")
OVERRIDES: dict[tuple[str, str], type[ProviderError]] = {("gemini", "quota"): RateLimited}
"""Where a provider's fault becomes another error than STANDARD_FAULTS says (docs/providers.md)."""
TIMEOUT = 1.5
FALLBACK = "local/overlay"


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with all_fakes() as served:
        missing = set(MODELS) - set(served.apps)
        assert not missing, f"provider plugins without a fake: {missing}"
        yield served


def gateway(
    fakes: Fakes, tmp_path: Path, *, timeout: float = TIMEOUT, base_url: str | None = None
) -> Litestar:
    """The gateway of config/tryon.fakes.toml; ``base_url`` replaces every provider's origin."""
    settings = fakes_settings(fakes, tmp_path)
    settings.routing.failure_threshold = 1000  # every fault below is deliberate
    settings.routing.fallbacks = {}
    for name in MODELS:
        settings.providers[name]["timeout"] = timeout
        if base_url is not None:
            path = "/v1" if name == "openai" else ""
            settings.providers[name]["base_url"] = base_url + path
    return create_app(settings)


def body(*models: str) -> dict[str, Any]:
    return sample_tryon_body(models=list(models))


class Outcome:
    def __init__(self, response: httpx.Response, spent: int, reserved: int, seconds: float):
        self.response = response
        self.status = response.status_code
        self.json: dict[str, Any] = response.json()
        self.spent = spent
        self.reserved = reserved
        self.seconds = seconds

    @property
    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = self.json.get("error") or {}
        return error


async def tryon(http: httpx.AsyncClient, key: str, *models: str) -> Outcome:
    """One request, on an account of its own so that concurrent cases do not mix credits."""
    before = (await http.get("/api/v1/credits", headers=auth(key))).json()
    started = time.monotonic()
    response = await http.post("/api/v1/tryon", json=body(*models), headers=auth(key))
    seconds = time.monotonic() - started
    after = (await http.get("/api/v1/credits", headers=auth(key))).json()
    return Outcome(response, before["balance"] - after["balance"], after["reserved"], seconds)


def check_answer(
    label: str, outcome: Outcome, error: type[ProviderError], retry_after: float | None = None
) -> list[str]:
    """The fault is the answer: its status and type, nothing charged, nothing held."""
    problems = []
    if outcome.status != error.status or outcome.error.get("type") != error.type:
        problems.append(f"{label}: {outcome.status} {outcome.response.text[:300]}")
    if outcome.spent or outcome.reserved:
        problems.append(f"{label}: spent {outcome.spent}, still reserved {outcome.reserved}")
    attempts = outcome.error.get("metadata", {}).get("attempts", [])
    if len(attempts) != 1 or attempts[0].get("status") != "failed":
        problems.append(f"{label}: attempts {attempts}")
    if error is RateLimited or retry_after is not None:
        wanted = str(max(1, math.ceil(retry_after or 1)))
        if outcome.response.headers.get("retry-after") != wanted:
            got = outcome.response.headers.get("retry-after")
            problems.append(f"{label}: Retry-After {got!r}, expected {wanted}")
    return problems


def check_fallback(
    label: str, outcome: Outcome, error: type[ProviderError], local_price: int
) -> list[str]:
    """The fault falls back: the offline engine serves and alone is charged."""
    if (
        outcome.status == 200
        and outcome.json["model"] == FALLBACK
        and [a["status"] for a in outcome.json["attempts"]] == ["failed", "succeeded"]
        and outcome.json["attempts"][0]["error"]["type"] == error.type
        and outcome.json["usage"]["credits"] == outcome.spent == local_price
        and outcome.reserved == 0
    ):
        return []
    return [f"{label}: {outcome.status} spent {outcome.spent} {outcome.response.text[:300]}"]


async def keys(app: Litestar, count: int) -> list[str]:
    return [(await new_key(app, credits=1000))[0] for _ in range(count)]


# -- every fault as the answer --------------------------------------------------------------


def _variants(provider: str, supported: tuple[str, ...]) -> list[tuple[Fault, type[ProviderError]]]:
    cases: list[tuple[Fault, type[ProviderError]]] = []
    for kind in supported:
        expected = OVERRIDES.get((provider, kind)) or STANDARD_FAULTS[kind].error
        if expected is None:
            continue
        if kind == "rate_limit":
            cases += [(Fault(kind="rate_limit", retry_after=3.0), expected)]
            cases += [(Fault(kind="rate_limit"), expected)]
        elif kind == "server_error":
            cases += [(Fault(kind="server_error", status=s), expected) for s in (500, 502, 503)]
        else:
            cases.append((Fault(kind=kind), expected))  # type: ignore[arg-type]
    return cases


async def test_each_fault_as_the_answer_has_its_status_and_costs_nothing(
    fakes: Fakes, tmp_path: Path
) -> None:
    app = gateway(fakes, tmp_path)
    problems: list[str] = []
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        (key,) = await keys(app, 1)
        for provider, slug in MODELS.items():
            state = fakes.state(provider)
            for fault, error in _variants(provider, state.supported):
                state.faults.clear()
                state.inject(fault)
                outcome = await tryon(http, key, slug)
                label = f"{provider}/{fault.kind}/{fault.status}/{fault.retry_after}"
                problems += check_answer(label, outcome, error, fault.retry_after)
            state.faults.clear()
    assert not problems, "\n".join(problems)


# -- transport faults on real sockets -------------------------------------------------------


@contextmanager
def closed_port() -> Iterator[str]:
    """An address where nothing listens: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


@contextmanager
def full_backlog() -> Iterator[str]:
    """A listener that never accepts, its backlog already full: a SYN is never answered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    filler = socket.create_connection(address, timeout=1)
    try:
        with socket.socket() as probe:  # the technique works on this kernel, or the test is void
            probe.settimeout(0.3)
            try:
                probe.connect(address)
            except TimeoutError:
                pass
            else:
                pytest.fail("a full backlog did not hold a connection back on this machine")
        yield f"http://127.0.0.1:{address[1]}"
    finally:
        filler.close()
        listener.close()


@contextmanager
def silent_server() -> Iterator[str]:
    """A listener that accepts every connection and never answers (nor reads)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for connection in held:
            connection.close()
        listener.close()


TRANSPORT = {
    "connection refused": (closed_port, ProviderUnavailable),
    "connect timeout": (full_backlog, ProviderTimeout),
    "read timeout": (silent_server, ProviderTimeout),
}


@pytest.mark.parametrize("fault", list(TRANSPORT))
async def test_transport_faults_fall_back_or_answer(
    fakes: Fakes, tmp_path: Path, fault: str
) -> None:
    make, error = TRANSPORT[fault]
    problems: list[str] = []
    with make() as dead:
        app = gateway(fakes, tmp_path, base_url=dead)
        local = app.state.gateway.catalog.entries[FALLBACK].credits
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            accounts = await keys(app, 2 * len(MODELS))
            alone = [
                tryon(http, k, slug)
                for k, slug in zip(accounts[: len(MODELS)], MODELS.values(), strict=True)
            ]
            behind = [
                tryon(http, k, slug, FALLBACK)
                for k, slug in zip(accounts[len(MODELS) :], MODELS.values(), strict=True)
            ]
            outcomes = await asyncio.gather(*alone, *behind)
    for provider, outcome in zip(MODELS, outcomes[: len(MODELS)], strict=True):
        problems += check_answer(f"{provider} alone", outcome, error)
        if outcome.seconds > TIMEOUT + 2:
            problems.append(f"{provider} alone: answered after {outcome.seconds:.1f} s")
    for provider, outcome in zip(MODELS, outcomes[len(MODELS) :], strict=True):
        problems += check_fallback(f"{provider} then {FALLBACK}", outcome, error, local)
    assert not problems, f"{fault}:\n" + "\n".join(problems)


# -- a task that never finishes -------------------------------------------------------------


async def test_a_task_that_never_finishes_times_out_and_falls_back(
    fakes: Fakes, tmp_path: Path
) -> None:
    app = gateway(fakes, tmp_path)
    local = app.state.gateway.catalog.entries[FALLBACK].credits
    problems: list[str] = []
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        (key,) = await keys(app, 1)
        for provider in SUBMIT_POLL:
            state = fakes.state(provider)
            for models in ((MODELS[provider],), (MODELS[provider], FALLBACK)):
                state.faults.clear()
                state.inject(Fault(kind="slow_task", seconds=3600))
                outcome = await tryon(http, key, *models)
                label = f"{provider} never finishes, {' then '.join(models)}"
                if len(models) == 1:
                    problems += check_answer(label, outcome, ProviderTimeout)
                else:
                    problems += check_fallback(label, outcome, ProviderTimeout, local)
                submitted = [r for r in state.requests if r.method == "POST"]
                polls = [r for r in state.requests if r.method == "GET"]
                if not submitted or not polls:
                    problems.append(f"{label}: the task was not submitted and polled")
                if outcome.seconds > TIMEOUT + 2:
                    problems.append(f"{label}: answered after {outcome.seconds:.1f} s")
                state.requests.clear()
            state.faults.clear()
    assert not problems, "\n".join(problems)
