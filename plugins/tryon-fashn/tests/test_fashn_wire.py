"""What the adapter sends FASHN, field by field, and how it reads what comes back."""

from __future__ import annotations

import base64
import io
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from tryon_fashn.fake import TEST_API_KEY
from tryon_fashn.models import FashnOptions

from tryon_core.plugin import OutputImage

Fashn = Any  # the `fashn` fixture of conftest.py


def decoded(output: OutputImage) -> Image.Image:
    image = Image.open(io.BytesIO(output.data))
    image.load()
    return image


def image_of(url: str) -> tuple[str, bytes]:
    """The media type and bytes of a data URL."""
    head, _, text = url.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head
    return head[5:-7], base64.b64decode(text, validate=True)


@pytest.mark.parametrize(
    ("slug", "name"), [("fashn/tryon-v1.6", "tryon-v1.6"), ("fashn/tryon-v1.5", "tryon-v1.5")]
)
async def test_one_run_then_status_queries_with_the_bearer_key(
    fashn: Fashn, slug: str, name: str, tryon: Any
) -> None:
    images = await fashn.attempt(tryon(slug))
    assert len(images) == 1 and decoded(images[0]).size == (384, 512)
    run, *polls = fashn.sent
    assert (run.method, run.url.path) == ("POST", "/v1/run")
    assert run.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert run.headers["content-type"] == "application/json"
    assert not run.url.query  # no webhook_url: the adapter polls
    body = fashn.body()
    assert sorted(body) == ["inputs", "model_name"] and body["model_name"] == name
    assert fashn.recorded == [fashn.submitted()["id"]]
    assert [p.url.path for p in polls] == [f"/v1/status/{fashn.recorded[0]}"] * len(polls)
    assert all(p.headers["authorization"] == f"Bearer {TEST_API_KEY}" for p in polls)
    assert len(polls) == 3  # in_queue, processing, completed


async def test_the_inputs_are_exactly_the_request(fashn: Fashn, tryon: Any, photo: Any) -> None:
    person, garment = photo(), photo(300, 300, "image/png", garment=True)
    await fashn.attempt(tryon(person=person, garments=(garment,), category="bottoms", n=2, seed=7))
    inputs = fashn.body()["inputs"]
    assert image_of(inputs.pop("model_image")) == ("image/jpeg", person.data)
    assert image_of(inputs.pop("garment_image")) == ("image/png", garment.data)
    assert inputs == {
        "category": "bottoms",
        "num_samples": 2,
        "output_format": "png",
        "return_base64": True,
        "seed": 7,
    }


async def test_no_seed_is_sent_when_the_client_gave_none(fashn: Fashn, tryon: Any) -> None:
    await fashn.attempt(tryon())
    assert "seed" not in fashn.body()["inputs"]


@pytest.mark.parametrize(
    ("asked", "sent", "made"),
    [("png", "png", "PNG"), ("jpeg", "jpeg", "JPEG"), ("webp", "png", "PNG")],
)
async def test_output_format_is_what_fashn_makes(
    fashn: Fashn, asked: str, sent: str, made: str, tryon: Any
) -> None:
    images = await fashn.attempt(tryon(output_format=asked))
    assert fashn.body()["inputs"]["output_format"] == sent
    assert decoded(images[0]).format == made  # the core converts webp


async def test_a_photo_that_fits_goes_upstream_as_its_own_bytes(
    fashn: Fashn, tryon: Any, photo: Any
) -> None:
    person = photo()
    await fashn.attempt(tryon(person=person))
    text = base64.b64encode(person.data).decode()
    assert fashn.body()["inputs"]["model_image"] == f"data:image/jpeg;base64,{text}"


async def test_webp_goes_as_webp_and_a_large_photo_is_scaled_to_2000_px(
    fashn: Fashn, tryon: Any, photo: Any
) -> None:
    big = photo(1800, 2600)
    garment = photo(400, 400, "image/webp", garment=True)
    await fashn.attempt(tryon(person=big, garments=(garment,)))
    inputs = fashn.body()["inputs"]
    kind, data = image_of(inputs["model_image"])
    with Image.open(io.BytesIO(data)) as scaled:
        assert max(scaled.size) == 2000 and kind == f"image/{scaled.format.lower()}"
    assert image_of(inputs["garment_image"]) == ("image/webp", garment.data)


async def test_n_samples_come_back_distinct(fashn: Fashn, tryon: Any) -> None:
    images = await fashn.attempt(tryon(n=4))
    assert fashn.body()["inputs"]["num_samples"] == 4
    assert len({image.data for image in images}) == 4


async def test_links_are_downloaded_through_fetch_without_the_key(fashn: Fashn, tryon: Any) -> None:
    images = await fashn.attempt(tryon(n=2, output_format="jpeg"), return_base64=False)
    assert fashn.body()["inputs"]["return_base64"] is False
    assert len(fashn.fetched) == 2 and all("/_fake/files/" in link for link in fashn.fetched)
    assert not [r for r in fashn.sent if "/_fake/files/" in r.url.path]  # not the API client
    assert [decoded(image).format for image in images] == ["JPEG", "JPEG"]


async def test_base64_results_need_no_download(fashn: Fashn, tryon: Any) -> None:
    await fashn.attempt(tryon(n=2))
    assert fashn.fetched == []


OPTIONS = st.builds(
    FashnOptions,
    mode=st.sampled_from(["performance", "balanced", "quality", msgspec.UNSET]),
    garment_photo_type=st.sampled_from(["auto", "flat-lay", "model", msgspec.UNSET]),
    moderation_level=st.sampled_from(["conservative", "permissive", "none", msgspec.UNSET]),
    segmentation_free=st.sampled_from([True, False, msgspec.UNSET]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(options=OPTIONS)
async def test_options_set_are_sent_as_fashn_inputs_and_unset_ones_are_not(
    fashn: Fashn, options: FashnOptions, tryon: Any
) -> None:
    await fashn.attempt(tryon(options=options))
    inputs = fashn.body()["inputs"]
    for name in ("mode", "garment_photo_type", "moderation_level", "segmentation_free"):
        value: Any = getattr(options, name)
        if value is msgspec.UNSET:
            assert name not in inputs
        else:
            assert inputs[name] == value


async def test_no_options_send_no_option_fields(fashn: Fashn, tryon: Any) -> None:
    await fashn.attempt(tryon(options=FashnOptions()))
    assert set(fashn.body()["inputs"]) == {
        "model_image",
        "garment_image",
        "category",
        "num_samples",
        "output_format",
        "return_base64",
    }


def test_options_refuse_values_fashn_does_not_take() -> None:
    for bad in ({"mode": "fast"}, {"moderation_level": "off"}, {"segmentation_free": "yes"}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, FashnOptions)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"num_samples": 2}, FashnOptions)  # a common field, not an option


def test_options_publish_a_described_json_schema() -> None:
    schema = msgspec.json.schema(FashnOptions)
    fields = schema["$defs"]["FashnOptions"]["properties"]
    assert set(fields) == {"mode", "garment_photo_type", "moderation_level", "segmentation_free"}
    assert schema["$defs"]["FashnOptions"]["description"].startswith("FASHN's own try-on")
    assert all(field["description"] for field in fields.values())
    assert sorted(fields["mode"]["enum"]) == ["balanced", "performance", "quality"]
