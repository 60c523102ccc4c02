"""``GET /metrics``: known traffic in, the Prometheus client's own parser out, counters exact.

The process's metrics live as long as the process (as they do in a server), so each test
reads what its own traffic added: a scrape before, a scrape after, the difference.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests.helpers import auth, new_key, own_database
from tryon_core.db.schema import ledger
from tryon_core.errors import ContentRefused, ProviderUnavailable

Client = AsyncTestClient[Litestar]
Sample = tuple[str, frozenset[tuple[str, str]]]
ENABLED = "[metrics]\nenabled = true"


def parse(text: str) -> Counter[Sample]:
    """Every sample of a scrape, by name and labels."""
    found: Counter[Sample] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] += sample.value
    return found


async def scrape(client: Client, **headers: str) -> Counter[Sample]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def added(before: Counter[Sample], after: Counter[Sample], name: str) -> dict[Any, float]:
    """What the traffic between two scrapes added to ``name``, by its labels (as a dict)."""
    grown: dict[Any, float] = {}
    for (sample, labels), value in after.items():
        if sample == name and value != before[(sample, labels)]:
            grown[tuple(sorted(labels))] = value - before[(sample, labels)]
    return grown


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


async def ledger_sum(client: Client, account_id: str, kind: str) -> int:
    async with own_database(client) as database, database.reading() as conn:
        total = await conn.scalar(
            select(func.coalesce(func.sum(ledger.c.reserved_delta), 0)).where(
                ledger.c.account_id == account_id, ledger.c.kind == kind
            )
        )
    return -int(total)


async def test_counters_match_the_traffic_exactly(
    make_app: Callable[..., Litestar], database_url: str, scripted: Any, tryon_body: Any
) -> None:
    async with AsyncTestClient(app=make_app(database_url, ENABLED)) as client:
        key, account_id = await new_key(client, credits=100)
        before = await scrape(client)

        served = await client.post(
            "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
        )
        assert served.status_code == 200, served.text
        scripted.script("scripted/gamma", ProviderUnavailable("down", provider_code="503"))
        fell_back = await client.post(
            "/api/v1/tryon",
            json=tryon_body(models=["scripted/gamma", "scripted/alpha"]),
            headers=auth(key),
        )
        assert fell_back.status_code == 200, fell_back.text
        scripted.script("scripted/alpha", ContentRefused("refused", provider_code="1301"))
        refused = await client.post(
            "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
        )
        assert refused.status_code == 400, refused.text
        anonymous = await client.post("/api/v1/tryon", json=tryon_body(model="scripted/alpha"))
        assert anonymous.status_code == 401
        missing = await client.get("/api/v1/tryon/gen_nosuchjob", headers=auth(key))
        assert missing.status_code == 404

        after = await scrape(client)

    assert added(before, after, "tryon_http_requests_total") == {
        labels(route="/api/v1/tryon", method="POST", status="200"): 2,
        labels(route="/api/v1/tryon", method="POST", status="400"): 1,
        labels(route="/api/v1/tryon", method="POST", status="401"): 1,
        labels(route="/api/v1/tryon/{job_id}", method="GET", status="404"): 1,
        labels(route="/metrics", method="GET", status="200"): 1,  # the first scrape
    }
    assert added(before, after, "tryon_http_request_duration_seconds_count") == {
        labels(route="/api/v1/tryon", method="POST"): 4,
        labels(route="/api/v1/tryon/{job_id}", method="GET"): 1,
        labels(route="/metrics", method="GET"): 1,
    }
    assert added(before, after, "tryon_generations_total") == {
        labels(model="scripted/alpha", outcome="succeeded"): 2,
        labels(model="none", outcome="failed"): 1,
    }
    alpha = {"provider": "scripted", "model": "scripted/alpha"}
    gamma = {"provider": "scripted", "model": "scripted/gamma"}
    assert added(before, after, "tryon_attempts_total") == {
        labels(**alpha, outcome="succeeded", error_type="none"): 2,
        labels(**alpha, outcome="failed", error_type=ContentRefused.type): 1,
        labels(**gamma, outcome="failed", error_type=ProviderUnavailable.type): 1,
    }
    assert added(before, after, "tryon_upstream_duration_seconds_count") == {
        labels(**alpha, outcome="succeeded"): 2,
        labels(**alpha, outcome="failed"): 1,
        labels(**gamma, outcome="failed"): 1,
    }
    assert added(before, after, "tryon_fallbacks_total") == {
        labels(
            from_model="scripted/gamma", to_model="scripted/alpha", reason="provider_unavailable"
        ): 1
    }
    charged = added(before, after, "tryon_credits_charged_total")
    released = added(before, after, "tryon_credits_released_total")
    # alpha costs 3 and served twice; the fallback held gamma's 5 and gave 2 back; the refusal
    # held alpha's 3 and gave them all back
    assert charged == {labels(model="scripted/alpha"): 6}
    assert released == {labels(model="scripted/alpha"): 2, labels(model="none"): 3}
    async with AsyncTestClient(app=make_app(database_url)) as ledger_client:
        assert sum(charged.values()) == await ledger_sum(ledger_client, account_id, "capture")
        assert sum(released.values()) == await ledger_sum(ledger_client, account_id, "release")
    for gauge in ("tryon_jobs_queued", "tryon_jobs_running", "tryon_webhook_deliveries_pending"):
        assert (gauge, frozenset()) in after, f"the scrape lacks {gauge}"
        assert after[(gauge, frozenset())] == 0


async def test_metrics_are_a_404_unless_enabled(make_app: Callable[..., Litestar]) -> None:
    async with AsyncTestClient(app=make_app()) as client:
        response = await client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


async def test_a_bearer_token_guards_the_metrics(make_app: Callable[..., Litestar]) -> None:
    app = make_app(extra=f'{ENABLED}\nbearer_token = "s3cret-scrape-token"')
    async with AsyncTestClient(app=app) as client:
        for headers in ({}, auth("wrong-token"), {"Authorization": "Basic s3cret-scrape-token"}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["type"] == "authentication"
            assert refused.headers["www-authenticate"].startswith("Bearer")
        metrics = await scrape(client, **auth("s3cret-scrape-token"))
    assert metrics[("tryon_build_info", frozenset({("version", _version())}))] == 1


def _version() -> str:
    from tryon_core import __version__

    return __version__


@pytest.mark.parametrize(
    ("limits", "scope"),
    [("[limits]", "key"), ("[limits.account]", "account")],
)
async def test_rate_limit_refusals_are_counted_by_limit_and_scope(
    make_app: Callable[..., Litestar], tryon_body: Any, limits: str, scope: str
) -> None:
    """One request a minute: of three, two are refused, and counted, by limit and scope."""
    extra = f"{ENABLED}\n{limits}\nrequests_per_minute = 1\n"
    async with AsyncTestClient(app=make_app(extra=extra)) as client:
        key, _ = await new_key(client, credits=10)
        before = await scrape(client)
        statuses = []
        for _ in range(3):
            response = await client.post(
                "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
            )
            statuses.append(response.status_code)
        assert statuses == [200, 429, 429]
        after = await scrape(client)
    refused = added(before, after, "tryon_rate_limited_total")
    assert refused == {labels(limit="requests_per_minute", scope=scope): 2}
    assert added(before, after, "tryon_generations_total") == {
        labels(model="scripted/alpha", outcome="succeeded"): 1
    }
