"""What the adapter puts on the wire for each fal app, checked on the fake's side and on the
bytes the client sent: paths, auth header, fields and their JSON types, data URIs."""

from __future__ import annotations

import asyncio
import io
import json
import re
from typing import Any

import httpx
import msgspec
import pytest
from PIL import Image
from tryon_fal import ENDPOINTS, FalAdapter, instruction
from tryon_fal.endpoints import CLOTH_TYPES, GARMENT_TYPES
from tryon_fal.fake import create_app
from tryon_fal.options import DiffusionOptions, FashnOptions, KontextOptions

from tryon_core.plugin import ProviderRequest
from tryon_core.testing import Fault, mount_fakes, serve_app

DATA_URI = re.compile(r"^data:image/(jpeg|png);base64,[A-Za-z0-9+/]+={0,2}$")

#: slug -> (endpoint id, owner/app, the non-image fields sent for a plain request, seed 7)
WIRE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "fal/flux-kontext-pro": (
        "fal-ai/flux-pro/kontext/multi",
        "fal-ai/flux-pro",
        {"num_images": 1, "output_format": "png", "safety_tolerance": "2", "seed": 7},
    ),
    "fal/flux-kontext-max": (
        "fal-ai/flux-pro/kontext/max/multi",
        "fal-ai/flux-pro",
        {"num_images": 1, "output_format": "png", "safety_tolerance": "2", "seed": 7},
    ),
    "fal/fashn-tryon-v1.6": (
        "fal-ai/fashn/tryon/v1.6",
        "fal-ai/fashn",
        {
            "category": "tops",
            "garment_photo_type": "auto",
            "mode": "balanced",
            "num_samples": 1,
            "output_format": "png",
            "seed": 7,
        },
    ),
    "fal/kling-kolors-v1-5": ("fal-ai/kling/v1-5/kolors-virtual-try-on", "fal-ai/kling", {}),
    "fal/cat-vton": ("fal-ai/cat-vton", "fal-ai/cat-vton", {"cloth_type": "upper", "seed": 7}),
    "fal/leffa": (
        "fal-ai/leffa/virtual-tryon",
        "fal-ai/leffa",
        {"garment_type": "upper_body", "output_format": "png", "seed": 7},
    ),
}
IMAGE_FIELDS = {
    "fal/flux-kontext-pro": ["image_urls.0", "image_urls.1"],
    "fal/flux-kontext-max": ["image_urls.0", "image_urls.1"],
    "fal/fashn-tryon-v1.6": ["model_image", "garment_image"],
    "fal/kling-kolors-v1-5": ["human_image_url", "garment_image_url"],
    "fal/cat-vton": ["human_image_url", "garment_image_url"],
    "fal/leffa": ["human_image_url", "garment_image_url"],
}


def sent_bodies(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Capture the JSON of every POST the adapter sends through ``http``."""
    bodies: list[dict[str, Any]] = []

    async def capture(request: httpx.Request) -> None:
        if request.method == "POST":
            bodies.append(json.loads(request.content))

    http.event_hooks["request"].append(capture)
    return bodies


def test_every_model_is_described() -> None:
    assert set(WIRE) == set(ENDPOINTS)
    for slug, (endpoint_id, app, _) in WIRE.items():
        assert (ENDPOINTS[slug].endpoint_id, ENDPOINTS[slug].app) == (endpoint_id, app)


@pytest.mark.parametrize("slug", sorted(WIRE))
async def test_each_app_gets_its_own_input_through_the_queue(
    slug: str, fake: Any, context: Any, http: httpx.AsyncClient, person: Any, garment: Any
) -> None:
    endpoint_id, app, fields = WIRE[slug]
    bodies = sent_bodies(http)
    ctx, recorder = context()
    request = ProviderRequest(
        model=slug, person=person, garments=(garment,), category="tops", seed=7
    )
    images = await FalAdapter(ctx.config).run(request, ctx)

    assert len(images) == 1
    Image.open(io.BytesIO(images[0].data)).load()
    submit, *polls, result = fake.state.requests
    request_id = submit.summary["request_id"]
    assert (submit.method, submit.path) == ("POST", f"/{endpoint_id}")
    assert submit.headers["authorization"] == "Key test-key"
    assert submit.headers["content-type"] == "application/json"
    assert submit.summary["errors"] == [] and submit.summary["unknown_fields"] == []
    fields_seen = {k: v for k, v in submit.summary["fields"].items() if k != "prompt"}
    assert fields_seen == fields
    status_path = f"/{app}/requests/{request_id}/status"
    assert polls
    assert all((p.method, p.path, p.summary["logs"]) == ("GET", status_path, "0") for p in polls)
    assert all(p.headers["authorization"] == "Key test-key" for p in polls)
    assert (result.method, result.path) == ("GET", f"/{app}/requests/{request_id}")
    # the request id is recorded once, after the submit and before the first status poll
    assert recorder.tasks == [request_id] and recorder.calls_before_record == [1]
    # person first, then the garment, each a data URI in the standard base64 alphabet
    seen = submit.summary["images"]
    assert [i["field"] for i in seen] == IMAGE_FIELDS[slug]
    assert [i["size"] for i in seen] == [[768, 1024], [600, 640]]
    assert all(i["scheme"] == "data" for i in seen)
    (body,) = bodies
    uris = body.get("image_urls") or [v for k, v in body.items() if k in IMAGE_FIELDS[slug]]
    assert all(DATA_URI.match(uri) for uri in uris)
    assert isinstance(body.get("safety_tolerance", ""), str)


async def test_kontext_sends_the_instruction_and_every_garment_in_order(
    fake: Any, context: Any, http: httpx.AsyncClient, person: Any, garment: Any, webp_garment: Any
) -> None:
    bodies = sent_bodies(http)
    ctx, _ = context(safety_tolerance="5")
    request = ProviderRequest(
        model="fal/flux-kontext-max",
        person=person,
        garments=(garment, webp_garment),
        category="tops",
        prompt="tucked in",
        n=3,
        output_format="jpeg",
    )
    images = await FalAdapter(ctx.config).run(request, ctx)

    assert len(images) == 3
    assert len({i.data for i in images}) == 3  # three distinct images, not one three times
    (body,) = bodies
    assert body["prompt"] == instruction("tops", 2, "tucked in")
    assert body["safety_tolerance"] == "5"
    assert (body["num_images"], body["output_format"]) == (3, "jpeg")
    assert "seed" not in body
    sizes = [i["size"] for i in fake.state.requests[0].summary["images"]]
    assert sizes == [[768, 1024], [600, 640], [600, 640]]
    # the WebP garment went out re-encoded as a type fal takes
    formats = [i["format"] for i in fake.state.requests[0].summary["images"]]
    assert formats[0] == "JPEG" and formats[2] in ("JPEG", "PNG")
    assert all(DATA_URI.match(uri) for uri in body["image_urls"])


@pytest.mark.parametrize(
    ("category", "cloth_type", "garment_type"),
    [
        ("auto", "overall", "upper_body"),
        ("tops", "upper", "upper_body"),
        ("bottoms", "lower", "lower_body"),
        ("one-pieces", "overall", "dresses"),
    ],
)
async def test_categories_become_each_apps_own_vocabulary(
    category: Any,
    cloth_type: str,
    garment_type: str,
    fake: Any,
    context: Any,
    person: Any,
    garment: Any,
) -> None:
    for slug in ("fal/cat-vton", "fal/leffa", "fal/fashn-tryon-v1.6"):
        ctx, _ = context()
        request = ProviderRequest(model=slug, person=person, garments=(garment,), category=category)
        await FalAdapter(ctx.config).run(request, ctx)
    cat_vton, leffa, fashn = (r.summary["fields"] for r in fake.calls("submit"))
    assert (CLOTH_TYPES[category], GARMENT_TYPES[category]) == (cloth_type, garment_type)
    assert cat_vton["cloth_type"] == cloth_type
    assert leffa["garment_type"] == garment_type
    assert fashn["category"] == category


async def test_options_come_from_the_request_and_the_config(
    fake: Any, context: Any, person: Any, garment: Any
) -> None:
    ctx, _ = context(fashn_mode="quality")
    request = ProviderRequest(
        model="fal/fashn-tryon-v1.6",
        person=person,
        garments=(garment,),
        n=4,
        seed=4294967295,
        output_format="webp",
    )
    images = await FalAdapter(ctx.config).run(request, ctx)
    fields = fake.calls("submit")[0].summary["fields"]
    assert (fields["mode"], fields["num_samples"], fields["seed"]) == ("quality", 4, 4294967295)
    assert fields["output_format"] == "png"  # WebP is asked losslessly; the core converts
    assert len(images) == 4

    ctx, _ = context()
    kling = ProviderRequest(
        model="fal/kling-kolors-v1-5", person=person, garments=(garment,), seed=3
    )
    await FalAdapter(ctx.config).run(kling, ctx)
    assert fake.calls("submit")[1].summary["fields"] == {}  # Kolors takes no seed


@pytest.mark.parametrize(
    ("model", "options", "sent"),
    [
        (
            "fal/flux-kontext-pro",
            KontextOptions(guidance_scale=6.5, aspect_ratio="3:4", safety_tolerance="5"),
            {"guidance_scale": 6.5, "aspect_ratio": "3:4", "safety_tolerance": "5"},
        ),
        ("fal/flux-kontext-max", KontextOptions(enhance_prompt=True), {"enhance_prompt": True}),
        (
            "fal/fashn-tryon-v1.6",
            FashnOptions(
                mode="performance", garment_photo_type="flat-lay", segmentation_free=False
            ),
            {"mode": "performance", "garment_photo_type": "flat-lay", "segmentation_free": False},
        ),
        (
            "fal/fashn-tryon-v1.6",
            FashnOptions(moderation_level="conservative"),
            {"mode": "quality", "garment_photo_type": "auto", "moderation_level": "conservative"},
        ),
        ("fal/cat-vton", DiffusionOptions(num_inference_steps=12), {"num_inference_steps": 12}),
        ("fal/leffa", DiffusionOptions(guidance_scale=3.0), {"guidance_scale": 3.0}),
    ],
)
async def test_per_request_options_reach_the_app_over_the_config(
    fake: Any,
    context: Any,
    person: Any,
    garment: Any,
    model: str,
    options: Any,
    sent: dict[str, Any],
) -> None:
    ctx, _ = context(fashn_mode="quality")
    request = ProviderRequest(model=model, person=person, garments=(garment,), options=options)
    await FalAdapter(ctx.config).run(request, ctx)
    fields = fake.calls("submit")[0].summary["fields"]
    assert {name: fields.get(name) for name in sent} == sent
    # an option left UNSET is not sent, unless this plugin has a default of its own for it
    own_defaults = {"mode", "garment_photo_type", "safety_tolerance"}
    left = {name for name in msgspec.structs.asdict(options) if name not in sent}
    assert not (left - own_defaults) & set(fields)


async def test_resuming_polls_the_recorded_request_without_submitting_again(
    fake: Any, context: Any, person: Any, garment: Any
) -> None:
    fake.state.inject(Fault(kind="slow_task", seconds=0.4))
    ctx, recorder = context()
    request = ProviderRequest(model="fal/flux-kontext-max", person=person, garments=(garment,))
    with pytest.raises(TimeoutError):  # the gateway stops here (a restart, a timeout…)
        async with asyncio.timeout(0.2):
            await FalAdapter(ctx.config).run(request, ctx)
    (request_id,) = recorder.tasks

    resumed_ctx, resumed = context(task_id=request_id)
    images = await FalAdapter(resumed_ctx.config).run(request, resumed_ctx)

    assert len(images) == 1
    assert len(fake.calls("submit")) == 1
    assert resumed.tasks == []  # nothing new to record
    # gotcha 4: the max/multi endpoint is followed under fal-ai/flux-pro only
    later = fake.state.requests[-2:]
    assert [r.path for r in later] == [
        f"/fal-ai/flux-pro/requests/{request_id}/status",
        f"/fal-ai/flux-pro/requests/{request_id}",
    ]


async def test_base_url_may_carry_a_path_prefix(
    http: httpx.AsyncClient, context: Any, person: Any, garment: Any
) -> None:
    app = create_app(queue_seconds=0, run_seconds=0)
    async with serve_app(mount_fakes({"upstream": app})) as url:
        ctx, _ = context(base_url=f"{url}/upstream/")
        request = ProviderRequest(model="fal/leffa", person=person, garments=(garment,))
        images = await FalAdapter(ctx.config).run(request, ctx)
    assert len(images) == 1
    paths = [r.path for r in app.state.fake.requests]
    assert paths[0] == "/upstream/fal-ai/leffa/virtual-tryon"
    assert all(p.startswith("/upstream/fal-ai/leffa/") for p in paths)


async def test_the_key_never_leaves_base_url(
    http: httpx.AsyncClient, context: Any, person: Any, garment: Any
) -> None:
    # This fal names another origin in its status and result URLs; following them would send
    # the key there (and here fail: nothing listens on 127.0.0.2:9).
    app = create_app(public_url="http://127.0.0.2:9")
    async with serve_app(app) as url:
        ctx, _ = context(base_url=url)
        request = ProviderRequest(model="fal/cat-vton", person=person, garments=(garment,))
        images = await FalAdapter(ctx.config).run(request, ctx)
    assert len(images) == 1
    assert app.state.fake.requests[-1].path.startswith("/fal-ai/cat-vton/requests/")
