"""Helpers adapters share (:mod:`tryon_core.upstream`): where a request body is built, and a
body let go once sent."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
import threading
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, Request, post

from tryon_core.provider import ImageType, InputImage
from tryon_core.testing.server import serve_app
from tryon_core.upstream import (
    INLINE_BYTES,
    SendOnce,
    build_for_upstream,
    fit_image,
    fit_image_base64,
    image_fits,
)

PNG = ("image/png",)


def _image(size: int, content_type: ImageType = "image/png") -> InputImage:
    return InputImage(data=b"\0" * size, content_type=content_type, width=64, height=64)


@pytest.mark.parametrize(
    ("images", "on_the_loop"),
    [
        ([_image(1000), _image(1000)], True),
        ([_image(INLINE_BYTES), _image(4 * INLINE_BYTES)], True),  # big: base64 holds the GIL
        ([_image(1000), _image(1000, "image/webp")], False),  # Pillow would re-encode the WebP
    ],
)
async def test_bodies_without_pillow_work_are_built_on_the_loop(
    images: list[InputImage], on_the_loop: bool
) -> None:
    loop_thread = threading.get_ident()
    built_in = await build_for_upstream(threading.get_ident, images, formats=PNG)
    assert (built_in == loop_thread) is on_the_loop


def test_image_fits_is_what_fit_image_keeps() -> None:
    png, webp = _image(100), _image(100, "image/webp")
    assert image_fits(png) and fit_image(png) == (png.data, "image/png")
    assert not image_fits(png, max_bytes=99)
    assert not image_fits(png, max_side=63)
    assert not image_fits(webp)
    assert image_fits(webp, formats=("image/webp",), max_bytes=100, max_side=64)


def test_fit_image_base64_is_the_fitted_bytes_in_standard_base64() -> None:
    import base64

    from tests._images import make

    data = make(size=(64, 48))
    image = InputImage(data=data, content_type="image/png", width=64, height=48)
    assert fit_image_base64(image, formats=PNG) == (base64.b64encode(data).decode(), "image/png")
    text, content_type = fit_image_base64(image, formats=("image/jpeg",))  # re-encoded
    assert content_type == "image/jpeg"
    assert base64.b64decode(text)[:2] == b"\xff\xd8"


# -- SendOnce: a request body let go once sent -------------------------------------------------


@post("/echo", status_code=200)
async def _echo(request: Request[Any, Any, Any]) -> dict[str, Any]:
    body = await request.body()
    return {
        "content_length": request.headers.get("content-length"),
        "chunked": "transfer-encoding" in request.headers,
        "sha256": hashlib.sha256(body).hexdigest(),
    }


async def test_a_body_sent_once_is_the_same_on_the_wire_and_then_let_go() -> None:
    data = random.Random(7).randbytes(1_000_000)
    holders = sys.getrefcount(data)
    async with serve_app(Litestar([_echo])) as url, httpx.AsyncClient() as http:
        body = SendOnce(data)
        assert sys.getrefcount(data) == holders + 1  # the body holds it until sent
        response = await http.post(f"{url}/echo", content=body, headers=body.headers)
        assert sys.getrefcount(data) == holders  # neither the request nor the response has it
        plain = await http.post(f"{url}/echo", content=data)
        kept = sys.getrefcount(data) - holders  # httpx keeps bytes with the request
        with pytest.raises(RuntimeError, match="sent already"):
            await http.post(f"{url}/echo", content=body, headers=body.headers)
    assert response.status_code == 200
    assert response.json() == plain.json()  # the same bytes, framed by Content-Length alike
    assert response.json() == {
        "content_length": "1000000",
        "chunked": False,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert kept >= 1


# -- SendOnce.multipart: a form in few pieces --------------------------------------------------

_names = st.text(min_size=1, max_size=20)
_files = st.lists(
    st.tuples(
        _names,
        st.tuples(_names, st.binary(max_size=300), st.sampled_from(["image/png", "image/jpeg"])),
    ),
    min_size=1,  # without a file httpx sends no multipart body at all
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(fields=st.dictionaries(_names, st.text(max_size=60), max_size=6), files=_files)
def test_a_multipart_body_is_what_httpx_sends_for_the_same_form(
    fields: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]]
) -> None:
    """Byte for byte, with names and file names of any characters (quotes, backslashes, line
    breaks, non-ASCII): the upstream sees the form it saw when httpx built it."""
    body = SendOnce.multipart(fields, files, boundary="b0undary")
    content_type = "multipart/form-data; boundary=b0undary"
    form = httpx.Request(
        "POST", "http://upstream/", data=fields, files=files, headers={"Content-Type": content_type}
    )
    assert b"".join(_pieces_sent(body)) == form.read()
    assert body.headers == {
        "Content-Length": form.headers["Content-Length"],
        "Content-Type": content_type,
    }


def _pieces_sent(body: SendOnce) -> list[bytes]:
    async def drain() -> list[bytes]:
        return [piece async for piece in body]

    return asyncio.run(drain())


@settings(max_examples=50, deadline=None)
@given(
    fields=st.dictionaries(_names, st.text(max_size=60), max_size=3),
    sizes=st.lists(st.sampled_from([0, 10, 65_535, 65_536, 300_000]), min_size=1, max_size=4),
)
def test_a_large_file_goes_to_the_socket_as_it_is_and_small_pieces_are_joined(
    fields: dict[str, str], sizes: list[int]
) -> None:
    """Not one copy of an image made to build the form: a file of 64 KiB or more is one of
    the pieces written, the very object given; whatever lies between two of them is one piece;
    the whole is still what httpx sends."""
    files = [
        (f"image[{i}]", (f"{i}.png", os.urandom(size), "image/png")) for i, size in enumerate(sizes)
    ]
    body = SendOnce.multipart(fields, files, boundary="b0undary")
    pieces = _pieces_sent(body)
    large = [data for _, (_, data, _) in files if len(data) >= 65_536]
    assert [piece for piece in pieces if any(piece is data for data in large)] == large
    assert len(pieces) == 2 * len(large) + 1  # one joined piece before, between and after them
    content_type = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    form = httpx.Request("POST", "http://up/", data=fields, files=files, headers=content_type)
    assert b"".join(pieces) == form.read()
    assert int(body.headers["Content-Length"]) == len(b"".join(pieces))


@post("/form", status_code=200)
async def _form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    form = await request.form()
    upload = form["image[]"]
    return {
        "prompt": form["prompt"],
        "filename": upload.filename,
        "content_type": upload.content_type,
        "sha256": hashlib.sha256(await upload.read()).hexdigest(),
    }


async def test_a_multipart_body_is_read_as_a_form_and_gets_a_fresh_boundary() -> None:
    image = random.Random(3).randbytes(200_000)
    files = [("image[]", ("person.png", image, "image/png"))]
    first = SendOnce.multipart({"prompt": 'a "red" coat\r\n--'}, files)
    second = SendOnce.multipart({"prompt": "x"}, files)
    assert first.headers["Content-Type"] != second.headers["Content-Type"]
    async with serve_app(Litestar([_form])) as url, httpx.AsyncClient() as http:
        response = await http.post(f"{url}/form", content=first, headers=first.headers)
    assert response.json() == {
        "prompt": 'a "red" coat\r\n--',
        "filename": "person.png",
        "content_type": "image/png",
        "sha256": hashlib.sha256(image).hexdigest(),
    }
