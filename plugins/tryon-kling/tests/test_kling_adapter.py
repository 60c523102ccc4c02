"""The adapter against the fake: exact wire details, images, the task protocol, resuming."""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

import httpx
import pytest
import tryon_kling.adapter as adapter_module
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from tryon_kling.adapter import result_urls
from tryon_kling.fake import TEST_ACCESS_KEY

from tryon_core.plugin import BadResponse, InputRejected, ProviderUnavailable, TaskFailed
from tryon_core.testing import Fault, mount_fakes, serve_app

PATH = "/v1/images/kolors-virtual-try-on"
RED, BLUE = (220, 30, 30), (30, 30, 220)


def claims(request: httpx.Request) -> dict[str, Any]:
    scheme, _, token = request.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def posted(kling: Any) -> dict[str, Any]:
    (create,) = [r for r in kling.sent if r.method == "POST"]
    body: dict[str, Any] = json.loads(create.content)
    return body


def decode(value: str) -> Image.Image:
    assert not value.startswith("data:")
    image = Image.open(io.BytesIO(base64.b64decode(value, validate=True)))
    image.load()
    return image


@pytest.mark.parametrize(
    ("model", "upstream"),
    [
        ("kling/kolors-v1-5", "kolors-virtual-try-on-v1-5"),
        ("kling/kolors-v1", "kolors-virtual-try-on-v1"),
    ],
)
async def test_one_task_is_created_polled_and_its_image_downloaded(
    kling: Any, tryon_request: Any, model: str, upstream: str
) -> None:
    req = tryon_request(model)
    produced = await kling.attempt(req)
    assert len(produced) == 1 and produced[0].content_type == "image/png"
    assert (produced[0].width, produced[0].height) == (req.person.width, req.person.height)

    create, *polls = kling.sent
    assert create.method == "POST" and create.url == kling.url + PATH
    assert create.headers["content-type"] == "application/json"
    body = json.loads(create.content)
    assert set(body) == {"model_name", "human_image", "cloth_image"}
    assert body["model_name"] == upstream
    task_id = kling.tasks[0][0]
    assert [(r.method, str(r.url)) for r in polls] == [("GET", f"{kling.url}{PATH}/{task_id}")] * 2
    for sent in kling.sent:
        said = claims(sent)
        assert set(said) == {"iss", "exp", "nbf"} and said["iss"] == TEST_ACCESS_KEY
        assert said["exp"] - said["nbf"] == 1805 and abs(said["nbf"] + 5 - time.time()) < 5
    assert len({r.headers["authorization"] for r in kling.sent}) == 1  # one cached token


async def test_images_go_as_bare_base64_and_jpeg_or_png_pass_unchanged(
    kling: Any, tryon_request: Any, photo: Any
) -> None:
    req = tryon_request(person=photo(400, 600, "JPEG"), garments=(photo(300, 300, "PNG"),))
    await kling.attempt(req)
    body = posted(kling)
    assert base64.b64decode(body["human_image"], validate=True) == req.person.data
    assert base64.b64decode(body["cloth_image"], validate=True) == req.garments[0].data
    assert "\n" not in body["human_image"] and not body["cloth_image"].startswith("data:")


async def test_webp_is_re_encoded_for_kling(kling: Any, tryon_request: Any, photo: Any) -> None:
    req = tryon_request(
        person=photo(420, 640, "WEBP"), garments=(photo(330, 310, "WEBP", (*RED, 128)),)
    )
    await kling.attempt(req)
    body = posted(kling)
    person, cloth = decode(body["human_image"]), decode(body["cloth_image"])
    assert (person.format, person.size) == ("JPEG", (420, 640))
    assert (cloth.format, cloth.size) == ("PNG", (330, 310))  # transparency kept as PNG


async def test_a_top_and_a_bottom_go_as_one_picture_top_above_bottom(
    kling: Any, tryon_request: Any, photo: Any
) -> None:
    top, bottom = photo(400, 300, "PNG", RED), photo(300, 500, "JPEG", BLUE)
    await kling.attempt(tryon_request(garments=(top, bottom), category="auto"))
    cloth = decode(posted(kling)["cloth_image"]).convert("RGB")
    width, height = cloth.size
    assert min(width, height) >= 300
    assert cloth.getpixel((2, 2)) == (255, 255, 255)  # a white margin
    assert _near(cloth.getpixel((width // 2, height // 4)), RED)
    assert _near(cloth.getpixel((width // 2, height * 3 // 4)), BLUE)
    # Both garments are scaled to one width: 400 px, the bottom from 300x500 to 400x667.
    assert width >= 400 and height >= 300 + 667


async def test_with_category_bottoms_the_first_garment_is_the_bottom(
    kling: Any, tryon_request: Any, photo: Any
) -> None:
    first, second = photo(300, 300, "PNG", BLUE), photo(300, 300, "PNG", RED)
    await kling.attempt(tryon_request(garments=(first, second), category="bottoms"))
    cloth = decode(posted(kling)["cloth_image"]).convert("RGB")
    width, height = cloth.size
    assert _near(cloth.getpixel((width // 2, height // 4)), RED)
    assert _near(cloth.getpixel((width // 2, height * 3 // 4)), BLUE)


async def test_transparent_garment_areas_become_white_in_the_pair(
    kling: Any, tryon_request: Any, photo: Any
) -> None:
    clear = photo(300, 300, "PNG", (*RED, 0))
    await kling.attempt(tryon_request(garments=(clear, photo(300, 300, "PNG", BLUE))))
    cloth = decode(posted(kling)["cloth_image"]).convert("RGB")
    assert _near(cloth.getpixel((cloth.width // 2, cloth.height // 4)), (255, 255, 255))


@pytest.mark.parametrize(
    ("model", "garments", "category", "param"),
    [
        ("kling/kolors-v1-5", 2, "one-pieces", "category"),
        ("kling/kolors-v1", 2, "auto", "garments"),
        ("kling/kolors-v1-5", 3, "auto", "garments"),
    ],
)
async def test_impossible_garment_sets_are_refused_before_any_call(
    kling: Any,
    tryon_request: Any,
    photo: Any,
    model: str,
    garments: int,
    category: str,
    param: str,
) -> None:
    req = tryon_request(model, garments=(photo(300, 300),) * garments, category=category)
    error = await kling.failure(req)
    assert isinstance(error, InputRejected) and error.param == param
    assert kling.sent == [] and kling.state.requests == []


async def test_the_task_id_is_recorded_before_the_first_status_query(
    kling: Any, tryon_request: Any
) -> None:
    await kling.attempt(tryon_request())
    ((task_id, calls_seen),) = kling.tasks
    assert calls_seen == 1  # only the create call
    assert task_id in kling.state.tasks


async def test_a_recorded_task_is_resumed_without_submitting_again(
    kling: Any, tryon_request: Any
) -> None:
    req = tryon_request()
    first = await kling.attempt(req)
    task_id = kling.tasks[0][0]
    kling.sent.clear()
    resumed = await kling.attempt(req, task_id=task_id)
    assert [r.method for r in kling.sent] == ["GET"]
    assert str(kling.sent[0].url).endswith(f"{PATH}/{task_id}")
    assert len(kling.tasks) == 1  # nothing new to record
    assert resumed[0].data == first[0].data


async def test_resuming_a_task_kling_does_not_know_fails_the_task(
    kling: Any, tryon_request: Any
) -> None:
    error = await kling.failure(tryon_request(), task_id="gone")
    assert isinstance(error, TaskFailed) and error.provider_code == "1203"
    assert [r.method for r in kling.sent] == ["GET"]


async def test_brief_trouble_while_polling_is_waited_out(kling: Any, tryon_request: Any) -> None:
    def trouble() -> None:
        kling.state.inject(Fault(kind="rate_limit"), Fault(kind="server_error", status=503))

    produced = await kling.attempt(tryon_request(), on_task=trouble)
    assert len(produced) == 1
    assert [r.method for r in kling.sent] == ["POST", "GET", "GET", "GET", "GET"]


async def test_a_status_query_that_hangs_is_abandoned_and_retried(
    kling: Any, tryon_request: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter_module, "QUERY_TIMEOUT", httpx.Timeout(0.3))
    produced = await kling.attempt(
        tryon_request(), on_task=lambda: kling.state.inject(Fault(kind="hang"))
    )
    assert len(produced) == 1
    assert [r.method for r in kling.sent] == ["POST", "GET", "GET", "GET"]


async def test_lasting_trouble_while_polling_fails_the_attempt(
    kling: Any, tryon_request: Any
) -> None:
    def trouble() -> None:
        kling.state.inject(*[Fault(kind="server_error", status=500)] * 4)

    error = await kling.failure(tryon_request(), on_task=trouble)
    assert isinstance(error, ProviderUnavailable) and error.provider_code == "5000"
    assert len(kling.sent) == 5


async def test_base_url_with_a_path_prefix_and_trailing_slash(
    tryon_request: Any, kling: Any
) -> None:
    from tryon_kling.fake import create_app

    app = create_app()
    async with serve_app(mount_fakes({"kling": app})) as root:
        kling.url = root + "/kling/"
        kling.state = app.state.fake
        produced = await kling.attempt(tryon_request())
    assert len(produced) == 1
    assert str(kling.sent[0].url) == f"{root}/kling{PATH}"
    assert app.state.fake.requests[0].method == "POST"  # the mounted fake served it


@given(
    order=st.permutations(range(4)),
    as_text=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_result_urls_follow_index_given_as_int_or_string(
    order: list[int], as_text: list[bool]
) -> None:
    images = [
        {"index": str(i) if text else i, "url": f"https://cdn.example/{i}.png"}
        for i, text in zip(order, as_text, strict=True)
    ]
    assert result_urls(images, "kling/x") == [f"https://cdn.example/{i}.png" for i in range(4)]


@pytest.mark.parametrize(
    "images",
    [[{"index": 0}], [{"index": 0, "url": ""}], [{"index": "first", "url": "https://x/1"}], [7]],
)
def test_result_images_without_a_usable_url_or_index_are_bad_responses(
    images: list[Any],
) -> None:
    with pytest.raises(BadResponse):
        result_urls(images, "kling/x")


def _near(pixel: Any, colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))
