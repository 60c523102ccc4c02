"""The ``local`` provider through tryon-core's contract: registration, config, ``run``."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from importlib.metadata import entry_points

import httpx
import msgspec
import pytest
import tryon_local.plugin
from PIL import Image
from tryon_local import CREDITS_PER_IMAGE, LocalAdapter, LocalConfig

from tryon_core.plugin import InputImage, InputRejected, ProviderContext, ProviderRequest
from tryon_core.plugins import collect_providers, make_plugin_manager

FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def _input(image: Image.Image, kind: str = "png") -> InputImage:
    buffer = io.BytesIO()
    image.save(buffer, format=FORMATS[kind])
    return InputImage(
        data=buffer.getvalue(),
        content_type=f"image/{kind}",  # type: ignore[arg-type]
        width=image.width,
        height=image.height,
    )


@pytest.fixture(scope="module")
def adapter() -> LocalAdapter:
    return LocalAdapter(LocalConfig(enabled=True))


@pytest.fixture
async def context() -> AsyncIterator[ProviderContext]:
    async def record_task(task_id: str) -> None:
        raise AssertionError(f"a sync local run recorded an upstream task: {task_id}")

    async with httpx.AsyncClient() as http:
        yield ProviderContext(http=http, config=LocalConfig(), timeout=30, record_task=record_task)


@pytest.fixture(scope="module")
def request_(person, garment) -> ProviderRequest:
    return ProviderRequest(
        model="local/overlay", person=_input(person, "jpeg"), garments=(_input(garment),)
    )


def test_registers_through_the_hook() -> None:
    manager = make_plugin_manager(extra_plugins=[tryon_local.plugin], load_entry_points=False)
    registry = collect_providers(manager)
    spec, model = registry.models["local/overlay"]
    assert spec.name == "local" and spec.config_type is LocalConfig
    assert model.credits == CREDITS_PER_IMAGE == 1
    caps = model.capabilities
    assert caps.execution == "sync" and caps.supports_seed and not caps.uses_prompt
    assert caps.max_garments == 2 and caps.max_outputs == 4
    assert set(caps.categories) == {"auto", "tops", "bottoms", "one-pieces"}


def test_entry_point_is_declared() -> None:
    (point,) = [p for p in entry_points(group="tryon") if p.name == "local"]
    assert point.value == "tryon_local.plugin"


def test_config_keys() -> None:
    config = msgspec.convert({"enabled": True, "pose": False}, LocalConfig)
    assert config.enabled and not config.pose
    assert LocalConfig().pose
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"enabled": True, "posture": 1}, LocalConfig)
    assert LocalAdapter(config).engine.tier == "base"


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
async def test_run_returns_images_in_the_asked_format(
    adapter, context, request_, person, output_format
) -> None:
    request = msgspec.structs.replace(request_, output_format=output_format)
    (output,) = await adapter.run(request, context)
    image = Image.open(io.BytesIO(output.data))
    assert image.format == FORMATS[output_format]
    assert image.size == person.size


async def test_run_returns_n_distinct_images_deterministically(adapter, context, request_) -> None:
    request = msgspec.structs.replace(request_, n=3, seed=11)
    outputs = await adapter.run(request, context)
    assert len(outputs) == 3 and len({o.data for o in outputs}) == 3
    again = await adapter.run(request, context)
    assert [o.data for o in again] == [o.data for o in outputs]


async def test_run_does_not_block_the_event_loop(adapter, context, request_) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await adapter.run(request_, context)
    ticker.cancel()
    assert ticks >= 3


async def test_no_person_is_rejected(adapter, context, request_) -> None:
    blank = _input(Image.new("RGB", (512, 640), (230, 230, 228)))
    with pytest.raises(InputRejected) as caught:
        await adapter.run(msgspec.structs.replace(request_, person=blank), context)
    assert caught.value.param == "person" and caught.value.status == 422
    assert not caught.value.fallback


async def test_unusable_garment_is_rejected(adapter, context, request_) -> None:
    stripes = Image.new("RGB", (300, 300))
    stripes.putdata([((x * 37) % 256, (x * 91) % 256, (x * 13) % 256) for x in range(300 * 300)])
    with pytest.raises(InputRejected, match="background") as caught:
        await adapter.run(msgspec.structs.replace(request_, garments=(_input(stripes),)), context)
    assert caught.value.param == "garments"


async def test_undecodable_bytes_are_rejected(adapter, context, request_) -> None:
    broken = InputImage(data=b"\x89PNG not really", content_type="image/png", width=9, height=9)
    with pytest.raises(InputRejected, match="decoded"):
        await adapter.run(msgspec.structs.replace(request_, person=broken), context)


async def test_too_many_outputs_are_rejected(adapter, context, request_) -> None:
    with pytest.raises(InputRejected, match="n must be"):
        await adapter.run(msgspec.structs.replace(request_, n=5), context)
