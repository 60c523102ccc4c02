"""The gateway keeps no upstream's cookies: one account's calls never carry what another's got.

Every fake sets a cookie on each answer, as the real services do behind Cloudflare; httpx's
client would keep it and send it with every later call to that upstream, whoever made it.
Two accounts each run a try-on on every provider (the submit-poll ones poll too): no request
any fake received carries a cookie.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from tests.helpers import (
    A_MODEL_OF,
    Fakes,
    all_fakes,
    auth,
    fakes_settings,
    new_key,
    sample_tryon_body,
)
from tryon_core.api import create_app
from tryon_core.testing.fakes import FAKE_COOKIE


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with all_fakes() as served:
        yield served


async def test_no_upstream_cookie_is_kept_or_sent(fakes: Fakes, tmp_path: Path) -> None:
    settings = fakes_settings(fakes, tmp_path)
    settings.routing.fallbacks = {}
    app = create_app(settings)
    assert set(A_MODEL_OF) == set(fakes.apps), "a model for each provider that has a fake"
    for name in fakes.apps:
        fakes.state(name).reset()
    async with AsyncTestClient(app) as http:
        for _account in range(2):
            key, _ = await new_key(app, credits=100_000)
            for model in A_MODEL_OF.values():
                answer = await http.post(
                    "/api/v1/tryon", json=sample_tryon_body(model=model), headers=auth(key)
                )
                assert answer.status_code == 200, (model, answer.text)
    received = {name: fakes.state(name).requests for name in fakes.apps}
    assert all(len(requests) >= 2 for requests in received.values()), received.keys()
    sent = {
        name: [r.headers["cookie"] for r in requests if "cookie" in r.headers]
        for name, requests in received.items()
    }
    assert sent == {name: [] for name in received}, f"{FAKE_COOKIE} sent back upstream"
