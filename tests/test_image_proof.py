"""tryon_core.image_proof: an image that passes unchanged is proven whole for less than a full
decode, and never proven when Pillow's full decode would refuse it."""

from __future__ import annotations

import asyncio
import io
import struct
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from tests._images import animated, exif_rotated_jpeg, make, png_chunk
from tryon_core import imaging
from tryon_core.egress import EgressPolicy, GuardedFetcher
from tryon_core.errors import InvalidImage
from tryon_core.image_proof import STEP, proven_as_is
from tryon_core.imaging import ImageLimits, describe_output, load_image, sniff
from tryon_core.intake import ingest
from tryon_core.request import ImageSource

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def header_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def proven(data: bytes) -> bool:
    kind = sniff(data)
    assert kind is not None
    return proven_as_is(data, kind, header_size(data))


def pillow_decodes(data: bytes, size: tuple[int, int]) -> bool:
    """What the gateway did before: open and decode the whole image with Pillow."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:
        return False
    return image.size == size


def png(
    rows: list[bytes], width: int, *, colour: int = 2, depth: int = 8, chunks: int = 1
) -> bytes:
    """A PNG written by hand: ``rows`` (each a filter byte and the row) in ``chunks`` IDATs."""
    ihdr = struct.pack(">IIBBBBB", width, len(rows), depth, colour, 0, 0, 0)
    stream = zlib.compress(b"".join(rows))
    step = -(-len(stream) // chunks)
    idats = [png_chunk(b"IDAT", stream[i : i + step]) for i in range(0, len(stream), step)]
    return SIGNATURE + png_chunk(b"IHDR", ihdr) + b"".join(idats) + png_chunk(b"IEND", b"")


def plain_rows(width: int, height: int, channels: int = 3) -> list[bytes]:
    return [
        bytes([y % 5]) + bytes((x + y) % 251 for x in range(width * channels))
        for y in range(height)
    ]


def _with_crc_fixed(data: bytearray) -> bytes:
    """Recompute every chunk's CRC, so that damage inside a chunk reaches what is in it."""
    position = 8
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        end = position + 8 + length
        if end + 4 > len(data):
            break
        data[end : end + 4] = struct.pack(">I", zlib.crc32(data[position + 4 : end]))
        position = end + 4
    return bytes(data)


# -- what is proven, what is left to the full decode ------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(make("RGB", (120, 90), "PNG"), id="png-rgb"),
        pytest.param(make("RGBA", (120, 90), "PNG"), id="png-rgba"),
        pytest.param(make("RGB", (120, 90), "PNG", optimize=True), id="png-rgb-optimised"),
        pytest.param(png(plain_rows(70, 64), 70, chunks=7), id="png-in-seven-idats"),
        pytest.param(
            png([bytes([1]) + bytes(70 * 6) for _ in range(64)], 70, depth=16), id="png-16-bit"
        ),
        pytest.param(make("RGB", (120, 90), "JPEG"), id="jpeg"),
        pytest.param(make("RGB", (120, 90), "JPEG", progressive=True), id="jpeg-progressive"),
    ],
)
def test_an_image_that_passes_unchanged_is_proven(data: bytes) -> None:
    assert proven(data)
    result = load_image(data, param="x", limits=ImageLimits())
    assert result.data == data


def _interlaced() -> bytes:
    """A PNG whose header says Adam7 (Pillow writes none; the proof looks no further)."""
    data = png(plain_rows(64, 64), 64)
    return data[:8] + png_chunk(b"IHDR", data[16:28] + b"\x01") + data[33:]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_interlaced(), id="png-interlaced"),
        pytest.param(make("P", (120, 90), "PNG"), id="png-palette"),
        pytest.param(make("L", (120, 90), "PNG"), id="png-grey"),
        pytest.param(make("LA", (120, 90), "PNG"), id="png-grey-alpha"),
        pytest.param(make("RGB", (120, 90), "PNG", transparency=(0, 0, 0)), id="png-trns"),
        pytest.param(animated("PNG"), id="apng"),
        pytest.param(make("L", (120, 90), "JPEG"), id="jpeg-grey"),
        pytest.param(make("CMYK", (120, 90), "JPEG"), id="jpeg-cmyk"),
        pytest.param(exif_rotated_jpeg(), id="jpeg-exif-turned"),
        pytest.param(make("RGB", (120, 90), "WEBP"), id="webp"),
    ],
)
def test_an_image_that_needs_a_change_or_a_full_decode_is_not(data: bytes) -> None:
    assert not proven(data)


def _exif_png(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return make("RGB", (120, 90), "PNG", exif=exif.tobytes())


def _xmp_png() -> bytes:
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    plain = make("RGB", (120, 90), "PNG")
    itxt = png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    return plain[:33] + itxt + plain[33:]


@pytest.mark.parametrize(
    "data", [_exif_png(6), _exif_png(1), _xmp_png()], ids=["exif-6", "exif-1", "xmp"]
)
def test_a_png_that_may_carry_an_orientation_is_left_to_pillow(data: bytes) -> None:
    assert not proven(data)
    turned = load_image(data, param="x", limits=ImageLimits())
    turns = data != _exif_png(1)
    assert (turned.width, turned.height) == ((90, 120) if turns else (120, 90))


def test_a_proven_png_never_meets_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make("RGB", (600, 400), "PNG")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow was asked to open a PNG that the proof covers")

    monkeypatch.setattr(Image, "open", refuse)
    result = load_image(data, param="x", limits=ImageLimits())
    assert (result.data, result.width, result.height) == (data, 600, 400)
    assert describe_output(data, limits=ImageLimits()) == ("image/png", 600, 400)


def test_a_proven_jpeg_is_decoded_at_an_eighth_of_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def recording(self: ImageFile.ImageFile) -> object:
        sizes.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording)
    data = make("RGB", (800, 600), "JPEG")
    result = load_image(data, param="x", limits=ImageLimits())
    assert (result.data, result.width, result.height) == (data, 800, 600)
    assert sizes == [(100, 75)]


def test_a_big_png_is_proven_without_holding_its_pixels() -> None:
    side = 1500  # 6.75 MB of RGB rows
    data = png([b"\x00" + bytes(side * 3)] * side, side)
    tracemalloc.start()
    try:
        assert proven(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * 1024 * 1024, peak


# -- damage: what the proof misses, Pillow's full decode still catches ------------------------


def _declaring(data: bytes, height: int) -> bytes:
    """``data`` with its IHDR saying ``height`` rows (and a CRC to match)."""
    ihdr = data[16:20] + struct.pack(">I", height) + data[24:29]
    return data[:8] + png_chunk(b"IHDR", ihdr) + data[33:]


def _filter_five() -> bytes:
    rows = plain_rows(64, 64)
    rows[40] = b"\x05" + rows[40][1:]
    return png(rows, 64)


def _adler_broken() -> bytes:
    data = bytearray(png(plain_rows(64, 64), 64))
    iend = data.index(b"IEND") - 4
    data[iend - 5] ^= 0xFF  # the last byte of the zlib stream's Adler-32
    return _with_crc_fixed(data)


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _header_crc_broken() -> bytes:
    data = bytearray(make("RGB", (64, 64), "PNG"))
    data[29] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "pillow_too"),
    [
        pytest.param(_filter_five(), True, id="png-filter-type-5"),
        pytest.param(_declaring(png(plain_rows(64, 63), 64), 64), False, id="png-a-row-missing"),
        pytest.param(_cut(make("RGB", (64, 64), "PNG", compress_level=0)), True, id="png-cut"),
        pytest.param(_header_crc_broken(), True, id="png-ihdr-crc"),
        pytest.param(_cut(make("RGB", (64, 64), "JPEG")), True, id="jpeg-cut"),
        pytest.param(_declaring(png(plain_rows(64, 65), 64), 64), False, id="png-a-row-more"),
        pytest.param(make("RGB", (64, 64), "PNG")[:-12], False, id="png-no-iend"),
        pytest.param(_adler_broken(), True, id="png-adler-32"),
    ],
)
def test_damage_is_never_proven(data: bytes, pillow_too: bool) -> None:
    """Damage Pillow refuses too is refused as before; damage Pillow lets pass (it stops reading
    once the picture is full) is left to it, so the answer does not change."""
    assert not proven_as_is(data, sniff(data) or "", (64, 64))
    assert pillow_decodes(data, (64, 64)) is not pillow_too


PNG_SEEDS = [
    make("RGB", (80, 70), "PNG"),
    make("RGBA", (70, 80), "PNG"),
    png(plain_rows(66, 64), 66, chunks=5),
]
JPEG_SEEDS = [make("RGB", (80, 70), "JPEG"), make("RGB", (80, 70), "JPEG", progressive=True)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(PNG_SEEDS + JPEG_SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    cut=st.none() | st.integers(0, 10**6),
    fix_crcs=st.booleans(),
)
def test_what_is_proven_pillow_decodes_in_full(
    seed: bytes, edits: list[tuple[int, int]], cut: int | None, fix_crcs: bool
) -> None:
    size = header_size(seed)
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        del data[cut % len(data) :]
    damaged = _with_crc_fixed(data) if fix_crcs and seed[:4] == SIGNATURE[:4] else bytes(data)
    if sniff(damaged) is None:
        return
    if proven_as_is(damaged, sniff(damaged) or "", size):
        assert pillow_decodes(damaged, size)


@settings(max_examples=150, deadline=None)
@given(
    filters=st.lists(st.integers(0, 6), min_size=66, max_size=66),
    rows=st.integers(62, 66),
    colour=st.sampled_from([2, 6]),
)
def test_a_png_stream_is_proven_exactly_when_it_is_whole(
    filters: list[int], rows: int, colour: int
) -> None:
    channels = 3 if colour == 2 else 4
    body = [bytes([f]) + bytes((i * 7) % 256 for i in range(64 * channels)) for f in filters]
    data = _declaring(png(body[:rows], 64, colour=colour), 64)
    whole = rows == 64 and max(filters[:64]) <= 4
    assert proven_as_is(data, "image/png", (64, 64)) is whole
    if whole:
        assert pillow_decodes(data, (64, 64))


def _inflates_whole(stream: bytes, size: int, stride: int) -> bool:
    """What the standard library's zlib (the one Pillow decodes with) says of a PNG's image
    data: ``size`` bytes exactly, the stream ended and checked, every row's filter type known."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(stream, size + 1)
    except zlib.error:
        return False
    return (
        inflater.eof and not inflater.unused_data and len(raw) == size and max(raw[::stride]) <= 4
    )


@settings(max_examples=400, deadline=None)
@given(
    level=st.integers(0, 9),
    window=st.integers(9, 15),
    strategy=st.sampled_from(
        [zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE, zlib.Z_FIXED]
    ),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
    cut=st.none() | st.integers(1, 10**6),
    chunks=st.integers(1, 4),
    height=st.sampled_from([64, 800]),
    trailing=st.sampled_from([b"", b"\x00", bytes(40_000)]),
)
def test_a_png_stream_is_proven_exactly_when_the_standard_zlib_inflates_it_whole(
    level: int,
    window: int,
    strategy: int,
    edits: list[tuple[int, int]],
    cut: int | None,
    chunks: int,
    height: int,
    trailing: bytes,
) -> None:
    """The proof inflates with zlib-ng, not the standard library's zlib: whatever the stream's
    window, level, strategy, damage, cut or bytes after its end, both say the same of it. The
    taller image's stream (150 KB of pixels) is longer than what the proof hands zlib at a
    time, and inflates to more than one ``STEP``."""
    rows = b"".join(plain_rows(64, height))
    compressor = zlib.compressobj(level, zlib.DEFLATED, window, 9, strategy)
    stream = bytearray(compressor.compress(rows) + compressor.flush())
    for position, value in edits:
        stream[position % len(stream)] = value
    if cut is not None:
        del stream[cut % len(stream) or 1 :]
    stream += trailing
    step = -(-len(stream) // chunks)
    idats = [png_chunk(b"IDAT", stream[i : i + step]) for i in range(0, len(stream), step)]
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, height, 8, 2, 0, 0, 0))
    data = SIGNATURE + ihdr + b"".join(idats) + png_chunk(b"IEND", b"")
    whole = _inflates_whole(bytes(stream), len(rows), 1 + 64 * 3)
    assert proven_as_is(data, "image/png", (64, height)) is whole


@pytest.mark.parametrize("last", [1 << bit for bit in range(18)])
@pytest.mark.parametrize("after", [b"", b"\x00", bytes(40_000)])
def test_bytes_after_the_stream_are_refused_wherever_it_ends_in_its_chunk(
    last: int, after: bytes
) -> None:
    """The proof hands zlib an IDAT chunk's bytes a slice at a time: the stream's end falls at
    every power-of-two place in the last chunk (a slice's end among them); whatever follows it
    there is damage, nothing is whole."""
    rows = b"".join(plain_rows(64, 1400))
    stream = zlib.compress(rows, 0)
    assert len(stream) > last
    cut = len(stream) - last
    idats = png_chunk(b"IDAT", stream[:cut]) + png_chunk(b"IDAT", stream[cut:] + after)
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 1400, 8, 2, 0, 0, 0))
    data = SIGNATURE + ihdr + idats + png_chunk(b"IEND", b"")
    assert proven_as_is(data, "image/png", (64, 1400)) is (after == b"")
    if not after:
        assert pillow_decodes(data, (64, 1400))


# -- on the event loop ------------------------------------------------------------------------


async def _ingest_counting_turns(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int]:
    """Ingest ``data`` with worker threads forbidden; also how often other tasks ran meanwhile."""

    def no_thread(*args: object, **kwargs: object) -> None:
        raise AssertionError("a PNG to pass on as it is went to a worker thread")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    turns = 0

    async def other_requests() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    others = asyncio.ensure_future(other_requests())
    try:
        image = await ingest(
            ImageSource(param="person_images[0]", data=data),
            fetcher=GuardedFetcher(EgressPolicy()),
            limits=ImageLimits(),
        )
    finally:
        others.cancel()
    return image, turns


async def test_a_big_png_is_proven_on_the_event_loop_a_step_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    side = 700  # 1.47 MB of RGB rows: eleven steps
    data = png(plain_rows(side, side), side)
    image, turns = await _ingest_counting_turns(data, monkeypatch)
    assert (image.data, image.width, image.height) == (data, side, side)
    assert turns >= (side * (1 + 3 * side)) // STEP - 1


async def test_a_damaged_big_png_on_the_event_loop_is_refused_by_the_full_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proof said no on the loop: the worker thread decodes in full, without proving the
    same PNG a second time."""
    side = 700
    rows = plain_rows(side, side)
    rows[650] = b"\x09" + rows[650][1:]
    proven_again: list[str] = []

    def spy(data: bytes, content_type: str, size: tuple[int, int]) -> bool:
        proven_again.append(content_type)
        return proven_as_is(data, content_type, size)

    monkeypatch.setattr(imaging, "proven_as_is", spy)
    with pytest.raises(InvalidImage) as refused:
        await ingest(
            ImageSource(param="person_images[0]", data=png(rows, side)),
            fetcher=GuardedFetcher(EgressPolicy()),
            limits=ImageLimits(),
        )
    assert (refused.value.type, refused.value.param) == ("invalid_image", "person_images[0]")
    assert proven_again == []


async def test_a_png_of_many_tiny_chunks_hands_the_loop_back_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hostile file can hold next to no pixels in thousands of chunks: walking them pauses as
    well, so no upload holds the event loop for long."""
    plain = png(plain_rows(64, 64), 64)
    filler = png_chunk(b"tEXt", b"Comment\x00") * 20_000
    data = plain[:33] + filler + plain[33:]
    image, turns = await _ingest_counting_turns(data, monkeypatch)
    assert image.data == data
    assert turns >= 20_000 // 256 - 1
