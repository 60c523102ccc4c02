"""Refuse before working (issue 15, finding 7): a key that cannot pay gets its 402 before any
image is fetched or decoded, and image decoding, all requests together, stays within a pixel
budget."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image

from tests.helpers import auth, new_key
from tryon_core import intake
from tryon_core.config import ConfigError, parse_settings
from tryon_core.decode_budget import PixelBudget


def _big_png(side: int) -> str:
    """A few kilobytes that decode to ``side`` x ``side`` pixels."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), 128).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The params of every image the gateway reads (each is inspected, then proven whole or
    decoded)."""
    seen: list[str] = []
    real = intake.inspect

    def spy(data: bytes, *, param: str, **kwargs: Any) -> Any:
        seen.append(param)
        return real(data, param=param, **kwargs)

    monkeypatch.setattr(intake, "inspect", spy)
    return seen


async def test_a_key_that_cannot_pay_is_refused_before_any_image_is_read(
    client: AsyncTestClient[Litestar], decodes: list[str]
) -> None:
    key, _ = await new_key(client, credits=0)
    big = _big_png(6000)  # 36 megapixels
    body = {
        "model": "scripted/gamma",
        "person_images": big,
        "garment_images": [big, big, "http://127.0.0.1:1/never-fetched.png"],
    }
    for mode in ("sync", "async"):
        answer = await client.post("/api/v1/tryon", json=body | {"mode": mode}, headers=auth(key))
        assert answer.status_code == 402, answer.text
        assert answer.json()["error"]["metadata"] == {"required": 5, "balance": 0}
    assert decodes == []


async def test_the_early_check_uses_the_cheapest_candidate(
    client: AsyncTestClient[Litestar], decodes: list[str], tryon_body: Callable[..., Any]
) -> None:
    """2 credits cover scripted/beta (2) though not alpha (3): "auto" is not refused early."""
    key, _ = await new_key(client, credits=2)
    answer = await client.post(
        "/api/v1/tryon",
        json=tryon_body(models=["scripted/alpha", "scripted/beta"]),
        headers=auth(key),
    )
    assert answer.status_code == 402  # the reservation holds the dearest candidate's price
    assert decodes == ["person_images[0]", "garment_images[0]"]


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 100),
    holds=st.lists(st.tuples(st.integers(1, 150), st.integers(0, 3)), min_size=1, max_size=25),
)
def test_concurrent_decodes_never_exceed_the_budget(
    capacity: int, holds: list[tuple[int, int]]
) -> None:
    async def run() -> None:
        budget = PixelBudget(capacity)
        peak = 0

        async def decode(pixels: int, turns: int) -> None:
            nonlocal peak
            async with budget.hold(pixels):
                peak = max(peak, budget.in_use)
                for _ in range(turns):
                    await asyncio.sleep(0)

        await asyncio.wait_for(asyncio.gather(*(decode(p, t) for p, t in holds)), timeout=10)
        assert peak <= capacity
        assert budget.in_use == 0

    asyncio.run(run())


async def test_a_cancelled_wait_leaves_the_budget_whole() -> None:
    budget = PixelBudget(10)
    async with budget.hold(10):
        waiter = asyncio.ensure_future(budget.hold(5).__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert budget.in_use == 0
    async with budget.hold(10):
        assert budget.in_use == 10


def test_the_budget_must_hold_the_largest_image() -> None:
    with pytest.raises(ConfigError, match="decode_budget_pixels"):
        parse_settings("[images]\nmax_pixels = 1000000\ndecode_budget_pixels = 999999\n")
