"""Money under concurrency, through a real server, on SQLite and on PostgreSQL.

Hundreds of requests at once (sync and async jobs mixed) against a balance that covers only
some of them. With one model that always serves, exactly as many are accepted as the balance
covers, the rest get 402, and the balance ends where arithmetic says. With fallbacks and
upstream failures in the mix the count depends on timing, so the ledger is audited instead:
per request at most one reservation, one capture and one release, a capture only for the
model that served and only at its price times the images kept, and the account's balance
equal to the ledger's sum with nothing left reserved.
"""

from __future__ import annotations

import asyncio
import base64
import io
import random
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from PIL import Image
from sqlalchemy import func, select

from tests.helpers import auth, live_server, new_key, own_database
from tryon_core.accounts import get_account
from tryon_core.api import create_app
from tryon_core.billing import MAX_CREDITS
from tryon_core.cli import main
from tryon_core.config import parse_settings
from tryon_core.db.schema import files, generations, ledger
from tryon_core.errors import (
    BadResponse,
    ContentRefused,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Garbage, Sleep

PRICES = {"scripted/gamma": 5, "scripted/alpha": 3, "scripted/beta": 2}


def _data_url(fmt: str, size: tuple[int, int], colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    mime = "image/jpeg" if fmt == "JPEG" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


PERSON = _data_url("JPEG", (96, 128), (200, 170, 150))
GARMENT = _data_url("PNG", (80, 80), (20, 60, 200))


def _app(
    database_url: str, tmp_path: Path, scripted: ScriptedProvider, *, timeout: float
) -> Litestar:
    settings = parse_settings(
        f"""
[database]
url = "{database_url}"
[storage]
path = "{tmp_path}/files"
signing_secret = "test-secret"
[routing]
failure_threshold = 1000000
[jobs]
workers = 16
[providers.scripted]
enabled = true
timeout = {timeout}
"""
    )
    return create_app(settings, extra_plugins=[scripted], load_entry_points=False)


def _body(mode: str, models: list[str], n: int = 1) -> dict[str, Any]:
    return {
        "person_images": PERSON,
        "garment_images": [GARMENT],
        "category": "tops",
        "models": models,
        "n": n,
        "mode": mode,
    }


async def _fire(
    http: httpx.AsyncClient, key: str, bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    return list(
        await asyncio.gather(
            *(http.post("/api/v1/tryon", json=body, headers=auth(key)) for body in bodies)
        )
    )


async def _wait_jobs(http: httpx.AsyncClient, key: str, ids: list[str], within: float) -> None:
    end = time.monotonic() + within
    pending = set(ids)
    while pending:
        assert time.monotonic() < end, f"{len(pending)} jobs never ended"
        for job_id in list(pending):
            status = (await http.get(f"/api/v1/tryon/{job_id}", headers=auth(key))).json()
            if status["status"] in ("completed", "failed"):
                pending.discard(job_id)
        await asyncio.sleep(0.1)


async def _audit(app: Litestar, account_id: str, granted: int) -> dict[str, Any]:
    """Check every generation's ledger rows; returns what was found, for the caller."""
    async with own_database(app) as database, database.reading() as conn:
        rows = (
            await conn.execute(
                select(
                    ledger.c.generation_id, ledger.c.kind, ledger.c.amount, ledger.c.reserved_delta
                ).where(ledger.c.account_id == account_id)
            )
        ).all()
        gens = {
            g.id: g
            for g in (
                await conn.execute(
                    select(generations).where(generations.c.account_id == account_id)
                )
            ).all()
        }
        outputs: dict[str, int] = dict(
            (
                await conn.execute(
                    select(files.c.generation_id, func.count())
                    .where(files.c.account_id == account_id, files.c.kind == "output")
                    .group_by(files.c.generation_id)
                )
            ).all()
        )
        held = await get_account(conn, account_id)
    per: dict[str, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    grants = 0
    for row in rows:
        if row.kind == "grant":
            grants += row.amount
            continue
        per[row.generation_id][row.kind].append((row.amount, row.reserved_delta))
    assert grants == granted
    captured_total = 0
    problems: list[str] = []
    for gen_id, gen in gens.items():
        kinds = per.get(gen_id, {})
        for kind in ("reserve", "capture", "release"):
            if len(kinds.get(kind, [])) > 1:
                problems.append(f"{gen_id}: {len(kinds[kind])} {kind} rows")
        reserved = -sum(a for a, _ in kinds.get("reserve", []))
        captured = -sum(d for _, d in kinds.get("capture", []))
        released = sum(a for a, _ in kinds.get("release", []))
        if not gen.settled:
            problems.append(f"{gen_id}: never settled ({gen.status})")
        if reserved != captured + released:
            problems.append(f"{gen_id}: reserved {reserved} != {captured} + {released}")
        if gen.status == "completed":
            expected = PRICES[gen.model] * outputs.get(gen_id, 0)
            if captured != expected or gen.credits_charged != expected:
                problems.append(
                    f"{gen_id}: charged {captured} for {gen.model}, expected {expected}"
                )
        elif captured or outputs.get(gen_id):
            problems.append(f"{gen_id}: {gen.status} but charged {captured}")
        captured_total += captured
    orphans = set(per) - set(gens)
    assert not orphans, f"ledger rows for unknown generations: {orphans}"
    assert not problems, "\n".join(problems[:20])
    ledger_balance = sum(r.amount for r in rows)
    ledger_reserved = sum(r.reserved_delta for r in rows)
    assert (
        (held.balance, held.reserved)
        == (ledger_balance, ledger_reserved)
        == (
            granted - captured_total,
            0,
        )
    )
    return {"generations": gens, "captured": captured_total, "outputs": outputs}


async def _exact(
    database_url: str, tmp_path: Path, requests: int, *, covered: int, asynchronous: int
) -> None:
    """One model that always serves: exactly ``covered`` accepted, the rest 402."""
    scripted = ScriptedProvider()
    # each success captures its whole reservation, so the count cannot depend on timing
    scripted.script("scripted/alpha", *[Sleep(0.05)] * requests)
    app = _app(database_url, tmp_path, scripted, timeout=30)
    price = PRICES["scripted/alpha"]
    granted = covered * price + price - 1  # one credit short of one more
    bodies = [
        _body("async" if i % (requests // asynchronous) == 0 else "sync", ["scripted/alpha"])
        for i in range(requests)
    ]
    rng = random.Random(requests)
    rng.shuffle(bodies)
    limits = httpx.Limits(max_connections=requests + 10)
    async with (
        live_server(app) as url,
        httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http,
    ):
        key, account = await new_key(app, credits=granted)
        started = time.monotonic()
        answers = await _fire(http, key, bodies)
        statuses = [a.status_code for a in answers]
        assert set(statuses) <= {200, 202, 402}, {a.status_code: a.text for a in answers}
        accepted = [a for a in answers if a.status_code in (200, 202)]
        assert len(accepted) == covered, (statuses.count(200), statuses.count(202))
        assert statuses.count(402) == requests - covered
        refusal = next(a for a in answers if a.status_code == 402).json()["error"]
        assert refusal["type"] == "payment_required"
        jobs = [a.json()["jobId"] for a in answers if a.status_code == 202]
        await _wait_jobs(http, key, jobs, within=120)
        elapsed = time.monotonic() - started
        credits = (await http.get("/api/v1/credits", headers=auth(key))).json()
    assert (credits["balance"], credits["reserved"]) == (price - 1, 0)
    found = await _audit(app, account, granted)
    assert found["captured"] == covered * price
    assert len(found["generations"]) == covered  # a 402 writes nothing
    print(
        f"\n{requests} requests, {covered} covered: {statuses.count(200)} sync 200, "
        f"{statuses.count(202)} async 202, {statuses.count(402)} 402 in {elapsed:.1f} s"
    )


FAILURES: list[Callable[[], Any]] = [
    lambda: RateLimited("busy", retry_after=2),
    lambda: ProviderUnavailable("down"),
    lambda: Sleep(0.02, then=ProviderTimeout("late")),
    lambda: BadResponse("garbled"),
    lambda: TaskFailed("failed"),
    lambda: Garbage(),
    lambda: "empty",
]


async def _mixed(database_url: str, tmp_path: Path, requests: int) -> None:
    """Fallbacks, failures, refusals, sync and async: each charged at most once, correctly."""
    rng = random.Random(7 * requests)
    scripted = ScriptedProvider()
    for slug, failing in (("scripted/gamma", 0.6), ("scripted/alpha", 0.5), ("scripted/beta", 0.3)):
        steps: list[Any] = []
        for _ in range(requests * 2):
            roll = rng.random()
            if roll < failing:
                steps.append(rng.choice(FAILURES)())
            elif roll < failing + 0.03:
                steps.append(ContentRefused("no"))
            else:
                steps.append(Sleep(rng.uniform(0, 0.05)))
        scripted.script(slug, *steps)
    app = _app(database_url, tmp_path, scripted, timeout=10)
    orders = (
        ["scripted/gamma", "scripted/alpha", "scripted/beta"],
        ["scripted/alpha", "scripted/beta"],
        ["scripted/beta", "scripted/gamma"],
        ["scripted/gamma"],
    )
    bodies = [
        _body(rng.choice(("sync", "sync", "async")), list(rng.choice(orders)), n=rng.choice((1, 2)))
        for _ in range(requests)
    ]
    granted = requests * 4  # roughly 40% of the worst case
    limits = httpx.Limits(max_connections=requests + 10)
    async with (
        live_server(app) as url,
        httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http,
    ):
        key, account = await new_key(app, credits=granted)
        answers = await _fire(http, key, bodies)
        statuses = [a.status_code for a in answers]
        allowed = {200, 202, 402, 400, 429, 502, 504}
        assert set(statuses) <= allowed, [a.text for a in answers if a.status_code not in allowed][
            :3
        ]
        jobs = [a.json()["jobId"] for a in answers if a.status_code == 202]
        await _wait_jobs(http, key, jobs, within=120)
        job_bodies = {
            job_id: (await http.get(f"/api/v1/tryon/{job_id}", headers=auth(key))).json()
            for job_id in jobs
        }
    found = await _audit(app, account, granted)
    gens = found["generations"]
    assert len(gens) == len(answers) - statuses.count(402)
    for answer, body in zip(answers, bodies, strict=True):
        if answer.status_code != 200:
            continue
        result = answer.json()
        gen = gens[result["id"]]
        served = result["model"]
        assert served in body["models"] and gen.model == served
        assert (
            result["usage"]["credits"]
            == PRICES[served] * len(result["images"])
            == gen.credits_charged
        )
        attempts = result["attempts"]
        assert attempts[-1]["model"] == served and attempts[-1]["status"] == "succeeded"
        assert all(a["status"] == "failed" for a in attempts[:-1])
    for job_id, job in job_bodies.items():
        gen = gens[job_id]
        if job["status"] == "completed":
            assert job["usage"]["credits"] == gen.credits_charged
    assert statuses.count(200) > 0 and statuses.count(402) > 0
    print(
        f"\n{requests} mixed: "
        + ", ".join(f"{s}: {statuses.count(s)}" for s in sorted(set(statuses)))
        + f"; jobs completed {sum(j['status'] == 'completed' for j in job_bodies.values())}"
        f"/{len(job_bodies)}; captured {found['captured']} of {granted}"
    )


async def test_exactly_the_covered_requests_succeed(database_url: str, tmp_path: Path) -> None:
    await _exact(database_url, tmp_path, 40, covered=13, asynchronous=8)


async def test_mixed_failures_charge_each_request_at_most_once(
    database_url: str, tmp_path: Path
) -> None:
    await _mixed(database_url, tmp_path, 40)


@pytest.mark.slow
async def test_exactly_the_covered_requests_succeed_300(database_url: str, tmp_path: Path) -> None:
    await _exact(database_url, tmp_path, 300, covered=111, asynchronous=60)


@pytest.mark.slow
async def test_mixed_failures_charge_each_request_at_most_once_300(
    database_url: str, tmp_path: Path
) -> None:
    await _mixed(database_url, tmp_path, 300)


async def test_the_most_credits_there_can_be_still_pay_for_every_request(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15's overflow, replayed: ``keys create --credits 2**63 - 1`` then a grant of 1 had
    turned the SQLite balance into a float, after which generations cost nothing. Now every
    amount past MAX_CREDITS is a one-line refusal, and an account filled to the maximum pays
    for each request through a real server, its balance an integer equal to the ledger's sum."""
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[storage]\npath = "{tmp_path}/f"\n')

    async def tryon(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, [*argv, "--config", str(config)])
        out, err = capsys.readouterr()
        return code, out, err

    for credits in (2**63 - 1, 2**63, MAX_CREDITS + 1):
        code, _, err = await tryon("keys", "create", "--name", "probe", f"--credits={credits}")
        assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    code, out, _ = await tryon("keys", "create", "--name", "rich", f"--credits={MAX_CREDITS}")
    assert code == 0
    key = out.splitlines()[0]
    account = out.split("for account ")[1].split(",")[0]
    code, _, err = await tryon("credits", "grant", account, "1")
    assert code == 1 and "at most 1000000000000" in err

    app = _app(database_url, tmp_path, ScriptedProvider(), timeout=5)
    price = PRICES["scripted/alpha"]
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        answers = await _fire(http, key, [_body("sync", ["scripted/alpha"], n=2)] * 3)
        assert [a.json()["usage"]["credits"] for a in answers] == [2 * price] * 3
        credits = (await http.get("/api/v1/credits", headers=auth(key))).json()
    assert (credits["balance"], credits["reserved"]) == (MAX_CREDITS - 6 * price, 0)
    found = await _audit(app, account, MAX_CREDITS)
    assert found["captured"] == 6 * price
