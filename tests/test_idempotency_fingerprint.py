"""fingerprint(): equal canonical requests have equal fingerprints; any change changes it."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from tryon_core.idempotency import fingerprint
from tryon_core.request import ImageSource, TryOnRequest

urls = st.sampled_from(
    ["https://example.com/a.jpg", "https://example.com/b.jpg", "data:image/png;base64,AAAA"]
)
images = st.one_of(
    st.builds(lambda url: ImageSource(param="p", url=url), urls),
    st.builds(lambda data: ImageSource(param="p", data=data), st.binary(min_size=1, max_size=64)),
)
requests = st.builds(
    TryOnRequest,
    person=images,
    garments=st.lists(images, min_size=1, max_size=3).map(tuple),
    model=st.sampled_from(["auto", "scripted/alpha", "scripted/gamma"]),
    models=st.lists(st.sampled_from(["scripted/alpha", "scripted/beta"]), max_size=2).map(tuple),
    category=st.sampled_from(["auto", "tops", "bottoms"]),
    prompt=st.none() | st.text(max_size=20),
    n=st.integers(min_value=1, max_value=4),
    seed=st.none() | st.integers(min_value=0, max_value=2**32 - 1),
    output_format=st.sampled_from(["png", "jpeg", "webp"]),
    mode=st.sampled_from(["sync", "async"]),
    options=st.dictionaries(
        st.sampled_from(["mode", "steps"]), st.sampled_from(["fast", 3, True]), max_size=2
    ),
)


def _copy(request: TryOnRequest) -> TryOnRequest:
    """The same request rebuilt from scratch, its images named by other fields."""

    def image(source: ImageSource) -> ImageSource:
        data = bytes(source.data) if source.data is not None else None
        return ImageSource(param="elsewhere", url=source.url, data=data)

    return msgspec.structs.replace(
        request,
        person=image(request.person),
        garments=tuple(image(g) for g in request.garments),
    )


def _canonical(request: TryOnRequest) -> Any:
    """The test's own oracle of "the same request": images by content, no param."""

    def image(source: ImageSource) -> tuple[str, str]:
        if source.data is not None:
            return ("data", hashlib.sha256(source.data).hexdigest())
        return ("url", source.url or "")

    return (
        *(getattr(request, f) for f in TryOnRequest.__struct_fields__ if f not in _IMAGES),
        image(request.person),
        tuple(image(g) for g in request.garments),
    )


_IMAGES = {"person", "garments"}


@given(requests)
def test_equal_requests_have_equal_fingerprints(request: TryOnRequest) -> None:
    value = fingerprint("native", request, webhook_url=None)
    assert value == fingerprint("native", _copy(request), webhook_url=None)
    assert len(value) == 64 and int(value, 16) >= 0


@given(requests, requests)
def test_fingerprints_are_equal_exactly_when_requests_are(a: TryOnRequest, b: TryOnRequest) -> None:
    same = _canonical(a) == _canonical(b)
    assert (fingerprint("native", a) == fingerprint("native", b)) is same


@given(requests, st.data())
def test_any_change_of_one_field_changes_the_fingerprint(
    request: TryOnRequest, data: st.DataObject
) -> None:
    field = data.draw(st.sampled_from(TryOnRequest.__struct_fields__))
    changed = data.draw(requests.map(lambda other: getattr(other, field)))
    other = msgspec.structs.replace(request, **{field: changed})
    if _canonical(other) != _canonical(request):
        assert fingerprint("chat", other) != fingerprint("chat", request)


@given(requests)
def test_the_route_and_the_extras_count(request: TryOnRequest) -> None:
    base = fingerprint("chat", request, image_delivery="data_url")
    assert fingerprint("native", request, image_delivery="data_url") != base
    assert fingerprint("chat", request, image_delivery="url") != base
    assert fingerprint("chat", request) != base
    assert fingerprint("chat", request, image_delivery="data_url", wants_text=True) != base


def test_a_request_without_options_keeps_the_fingerprint_it_had_before_options() -> None:
    """Keys stored before requests had options still match their retries."""
    request = TryOnRequest(
        person=ImageSource(param="p", url="https://example.com/a.jpg"),
        garments=(ImageSource(param="g", data=b"garment"),),
        model="scripted/alpha",
        n=2,
        seed=7,
    )
    # computed by the fingerprint() of the release before options (commit de32339)
    before = "f5de4ede5b37318d64d304778c6c58e80b61f09b0aab2dbc8c8d7b368f02cc0a"
    assert fingerprint("native", request, webhook_url=None) == before
    with_options = msgspec.structs.replace(request, options={"mode": "fast"})
    assert fingerprint("native", with_options, webhook_url=None) != before


def test_an_upload_counts_by_its_content_not_by_how_it_came() -> None:
    upload = TryOnRequest(
        person=ImageSource(param="person_images[0]", data=b"person"),
        garments=(ImageSource(param="garment_images[0]", data=b"garment"),),
    )
    same = TryOnRequest(
        person=ImageSource(param="person_images[1]", data=b"per" + b"son"),
        garments=(ImageSource(param="garment_images[0]", data=b"garment"),),
    )
    other = msgspec.structs.replace(
        upload, garments=(ImageSource(param="garment_images[0]", data=b"garment2"),)
    )
    as_url = msgspec.structs.replace(
        upload, person=ImageSource(param="person_images[0]", url="person")
    )
    assert fingerprint("native", upload) == fingerprint("native", same)
    assert fingerprint("native", upload) != fingerprint("native", other)
    assert fingerprint("native", upload) != fingerprint("native", as_url)


def test_a_long_url_is_hashed_not_copied() -> None:
    long_url = "data:image/png;base64," + "A" * 100_000
    a = TryOnRequest(
        person=ImageSource(param="p", url=long_url),
        garments=(ImageSource(param="g", url=long_url + "B"),),
    )
    b = msgspec.structs.replace(a, garments=(ImageSource(param="g", url=long_url + "C"),))
    assert fingerprint("native", a) != fingerprint("native", b)
