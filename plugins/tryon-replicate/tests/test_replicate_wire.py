"""What the adapter puts on the wire, read from the bytes it sent and from the fake's side:
paths, the token, the body's keys, each input field (photos as data URLs, the mapped
category, prompt, seed and n, fixed inputs, options), ``Prefer: wait``, and the calls made."""

from __future__ import annotations

import base64
import io
import json
import random
import re
from typing import Any

import httpx
import msgspec
import pytest
from PIL import Image
from tryon_replicate import ReplicateAdapter, configured_models
from tryon_replicate.examples import IDM_VTON
from tryon_replicate.fake import TEST_TOKEN

from tryon_core.plugin import InputImage, ProviderRequest
from tryon_core.testing import Fault

ContextFactory = Any
Fake = Any

DATA_URL = re.compile(r"^data:(image/(?:jpeg|png|webp));base64,([A-Za-z0-9+/]+={0,2})$")


def options_of(slug: str, context: Any, **values: Any) -> Any:
    """The model's options Struct, as the gateway would decode a client's ``options``."""
    model = next(m for m in configured_models(context.config) if m.slug == slug)
    assert model.options is not None
    return msgspec.convert(values, model.options)


def creates(sent: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in sent if r.method == "POST" and r.url.path.endswith("/predictions")]


def body_of(request: httpx.Request) -> dict[str, Any]:
    assert request.headers["content-type"] == "application/json"
    body: dict[str, Any] = json.loads(request.content)
    return body


def decoded(url: str) -> tuple[str, bytes]:
    match = DATA_URL.match(url)
    assert match, url[:80]
    return match.group(1), base64.b64decode(match.group(2))


async def run(
    context: ContextFactory,
    person: InputImage,
    garment: InputImage,
    slug: str = "replicate/idm-vton",
    **fields: Any,
) -> tuple[list[bytes], Any]:
    ctx, recorder = context(**fields.pop("config", {}))
    options = fields.pop("options", None)
    request = ProviderRequest(
        model=slug,
        person=person,
        garments=(garment,),
        options=None if options is None else options_of(slug, ctx, **options),
        **fields,
    )
    images = await ReplicateAdapter(ctx.config).run(request, ctx)
    return [image.data for image in images], recorder


@pytest.mark.parametrize(
    ("category", "sent_category"),
    [("tops", "upper_body"), ("bottoms", "lower_body"), ("one-pieces", "dresses"), ("auto", None)],
)
async def test_a_version_prediction_sends_the_mapped_input(
    category: str,
    sent_category: str | None,
    context: ContextFactory,
    fake: Fake,
    sent: list[httpx.Request],
    person: InputImage,
    garment: InputImage,
) -> None:
    images, recorder = await run(
        context, person, garment, category=category, prompt="a linen shirt", seed=7
    )
    assert len(images) == 1 and images[0].startswith(b"\x89PNG")

    [create] = creates(sent)
    assert create.url == httpx.URL(f"{fake.url}/v1/predictions")
    assert create.headers["authorization"] == f"Bearer {TEST_TOKEN}"
    assert "prefer" not in create.headers
    body = body_of(create)
    assert sorted(body) == ["input", "version"]
    assert body["version"] == IDM_VTON["version"]
    model_input = body["input"]
    expected = {"garment_des", "garm_img", "human_img", "seed", "steps", "crop"}
    assert set(model_input) == expected | ({"category"} if sent_category else set())
    assert model_input.get("category") == sent_category
    assert (model_input["garment_des"], model_input["seed"]) == ("a linen shirt", 7)
    assert (model_input["steps"], model_input["crop"]) == (30, False)  # the entry's fixed inputs
    assert decoded(model_input["human_img"]) == ("image/jpeg", person.data)
    assert decoded(model_input["garm_img"]) == ("image/png", garment.data)

    # the fake saw it the same way, and the id was recorded after the create call alone
    [seen] = fake.calls("create")
    assert seen.summary["unknown_inputs"] == [] and seen.summary["errors"] == []
    assert recorder.tasks == [seen.summary["prediction_id"]]
    assert recorder.calls_before_record == [1]
    assert all(r.method == "GET" for r in sent[1:-1])  # polls, then the result's download
    assert recorder.states[0] == "starting" and recorder.states[-1] == "succeeded"


async def test_without_prompt_or_seed_those_inputs_are_left_to_the_model(
    context: ContextFactory, sent: list[httpx.Request], person: InputImage, garment: InputImage
) -> None:
    await run(context, person, garment, category="tops")
    model_input = body_of(creates(sent)[0])["input"]
    assert "garment_des" not in model_input and "seed" not in model_input


async def test_a_model_by_name_sends_n_options_and_no_version(
    context: ContextFactory,
    fake: Fake,
    sent: list[httpx.Request],
    person: InputImage,
    garment: InputImage,
) -> None:
    images, _ = await run(
        context,
        person,
        garment,
        slug="tryon-test/outfit",
        n=3,
        category="auto",
        options={"quality": "best"},
    )
    assert len(images) == 3 and len(set(images)) == 3
    [create] = creates(sent)
    assert create.url == httpx.URL(f"{fake.url}/v1/models/tryon-test/outfit/predictions")
    body = body_of(create)
    assert list(body) == ["input"]
    assert body["input"]["num_outputs"] == 3
    assert body["input"]["garment_type"] == "full"  # the entry maps auto too
    assert body["input"]["quality"] == "best"
    assert "guidance" not in body["input"]  # an option the client left out is not sent


async def test_an_option_overrides_the_fixed_input_of_its_name(
    context: ContextFactory, sent: list[httpx.Request], person: InputImage, garment: InputImage
) -> None:
    await run(context, person, garment, options={"steps": 12})
    assert body_of(creates(sent)[0])["input"]["steps"] == 12
    assert body_of(creates(sent)[0])["input"]["crop"] is False


async def test_a_deployment_is_run_at_its_own_path(
    context: ContextFactory,
    fake: Fake,
    sent: list[httpx.Request],
    person: InputImage,
    garment: InputImage,
) -> None:
    entry = {**IDM_VTON, "deployment": "acme/idm-vton-prod", "model": None, "version": None}
    images, _ = await run(
        context, person, garment, slug="acme/idm-vton", config={"models": {"acme/idm-vton": entry}}
    )
    assert len(images) == 1
    [create] = creates(sent)
    assert create.url == httpx.URL(f"{fake.url}/v1/deployments/acme/idm-vton-prod/predictions")
    assert list(body_of(create)) == ["input"]


async def test_a_photo_over_max_image_bytes_is_shrunk_to_fit(
    context: ContextFactory, sent: list[httpx.Request], garment: InputImage
) -> None:
    noise = Image.frombytes("RGB", (600, 800), random.Random(5).randbytes(600 * 800 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    big = InputImage(data=buffer.getvalue(), content_type="image/png", width=600, height=800)
    assert len(big.data) > 1_000_000
    await run(context, big, garment, config={"max_image_bytes": 100_000})
    _, data = decoded(body_of(creates(sent)[0])["input"]["human_img"])
    assert len(data) <= 100_000
    with Image.open(io.BytesIO(data)) as shrunk:
        assert shrunk.format in ("JPEG", "PNG") and shrunk.width <= 600


async def test_sync_mode_answers_in_one_call_with_data_urls(
    context: ContextFactory,
    fake: Fake,
    sent: list[httpx.Request],
    person: InputImage,
    garment: InputImage,
) -> None:
    images, recorder = await run(context, person, garment, config={"wait": 5})
    assert len(images) == 1 and images[0].startswith(b"\x89PNG")
    assert [r.method for r in sent] == ["POST"]  # no poll, no download: the output was inline
    assert sent[0].headers["prefer"] == "wait=5"
    assert len(recorder.tasks) == 1
    assert fake.calls("get") == []


async def test_sync_mode_falls_back_to_polling_when_the_wait_runs_out(
    context: ContextFactory,
    fake: Fake,
    sent: list[httpx.Request],
    person: InputImage,
    garment: InputImage,
) -> None:
    fake.state.inject(Fault(kind="slow_task", seconds=1.6))  # longer than wait=1
    images, recorder = await run(context, person, garment, config={"wait": 1})
    assert len(images) == 1
    assert sent[0].headers["prefer"] == "wait=1"
    assert len(fake.calls("create")) == 1 and fake.calls("get")
    assert recorder.states[0] == "starting"
