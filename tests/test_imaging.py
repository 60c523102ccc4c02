"""tryon_core.imaging: what reaches an adapter is a bounded, oriented, 8-bit JPEG/PNG/WebP."""

from __future__ import annotations

import base64
import binascii
import io
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests._images import (
    NOT_IMAGES,
    animated,
    exif_rotated_jpeg,
    forged_jpeg,
    forged_png,
    forged_webp,
    make,
)
from tryon_core.errors import (
    ClientError,
    InvalidImage,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from tryon_core.imaging import (
    ImageLimits,
    UndecodableImage,
    decode_data_url,
    describe_output,
    encode,
    load_image,
    sniff,
)

LIMITS = ImageLimits()
PARAM = "garment_images[1]"


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def expect(error: type[ClientError], kind: str, data: bytes, limits: ImageLimits = LIMITS) -> None:
    with pytest.raises(error) as caught:
        load_image(data, param=PARAM, limits=limits)
    assert type(caught.value) is error
    assert caught.value.type == kind
    assert caught.value.param == PARAM
    assert PARAM in caught.value.message


# -- sniffing and refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (make("RGB", fmt="JPEG"), "image/jpeg"),
        (make("RGBA", fmt="PNG"), "image/png"),
        (make("RGB", fmt="WEBP"), "image/webp"),
        (make("RGB", fmt="WEBP", lossless=True), "image/webp"),
        *((data, None) for data in NOT_IMAGES.values()),
        (b"\xff\xd8", None),
        (b"RIFF\x00\x00\x00\x00WEB", None),
    ],
)
def test_sniff_reads_magic_bytes_only(data: bytes, expected: str | None) -> None:
    assert sniff(data) == expected


@pytest.mark.parametrize("name", sorted(NOT_IMAGES))
def test_non_images_are_unsupported(name: str) -> None:
    expect(UnsupportedMediaType, "unsupported_image_format", NOT_IMAGES[name])


def test_unsupported_is_415() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        load_image(NOT_IMAGES["html"], param=PARAM, limits=LIMITS)
    assert caught.value.status == 415


def test_type_comes_from_bytes_not_a_name() -> None:
    # a PNG is a PNG even when everything around it says JPEG
    result = load_image(make("RGB", fmt="PNG"), param="image.jpg", limits=LIMITS)
    assert result.content_type == "image/png"


def test_too_many_bytes() -> None:
    data = make("RGB", (100, 100), "PNG")
    expect(PayloadTooLarge, "image_too_large", data, ImageLimits(max_bytes=len(data) - 1))
    assert load_image(data, param=PARAM, limits=ImageLimits(max_bytes=len(data))).data == data


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(forged_png(100_000, 100_000), id="png-100000x100000"),
        pytest.param(forged_png(8000, 8000), id="png-64M-pixels"),
        pytest.param(forged_webp(16384, 16384), id="webp-vp8x-canvas"),
        pytest.param(forged_jpeg(60000, 60000), id="jpeg-sof"),
        pytest.param(make("RGB", (9000, 64), "PNG"), id="side-over-max"),
    ],
)
def test_decompression_bombs_refused_from_the_header(data: bytes) -> None:
    expect(PayloadTooLarge, "image_too_large", data)


def test_bomb_check_happens_before_pillow_sees_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow was asked to open a bomb")

    monkeypatch.setattr(Image, "open", no_open)
    expect(PayloadTooLarge, "image_too_large", forged_png(100_000, 100_000))


def test_pixel_limit_is_width_times_height() -> None:
    data = make("RGB", (100, 100), "PNG")
    expect(PayloadTooLarge, "image_too_large", data, ImageLimits(max_pixels=9_999))
    assert load_image(data, param=PARAM, limits=ImageLimits(max_pixels=10_000)).width == 100


@pytest.mark.parametrize("size", [(60000, 60000), (8000, 8000), (9000, 100)])
def test_a_second_sof_that_pillow_would_believe_is_caught(size: tuple[int, int]) -> None:
    # our header parser reads the first SOF (64x64); Pillow keeps the last one. The smaller
    # forgeries stay under Pillow's own ceiling: only our check of Pillow's size stops them.
    data = bytearray(make("RGB", (64, 64), "JPEG"))
    sof = data.index(b"\xff\xc0")
    end = sof + 2 + struct.unpack(">H", data[sof + 2 : sof + 4])[0]
    forged = bytearray(data[sof:end])
    forged[5:9] = struct.pack(">HH", size[1], size[0])
    expect(PayloadTooLarge, "image_too_large", bytes(data[:end] + forged + data[end:]))


@pytest.mark.parametrize(("lowered", "error"), [(5_000, "warning"), (1_000, "error")])
def test_pillow_guards_never_escape(
    monkeypatch: pytest.MonkeyPatch, lowered: int, error: str
) -> None:
    # 100x100 = 10000 pixels: over Pillow's ceiling (warning), or over twice it (error)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", lowered)
    expect(PayloadTooLarge, "image_too_large", make("RGB", (100, 100), "PNG"))


@pytest.mark.parametrize("size", [(63, 200), (200, 63), (10, 10)])
def test_too_small(size: tuple[int, int]) -> None:
    expect(InvalidImage, "image_too_small", make("RGB", size, "PNG"))


def test_min_side_boundary() -> None:
    assert load_image(make("RGB", (64, 64), "PNG"), param=PARAM, limits=LIMITS).width == 64


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_is_invalid(fmt: str) -> None:
    data = make("RGB", (256, 256), fmt)
    expect(InvalidImage, "invalid_image", data[: len(data) // 2])


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, id="png-no-ihdr"),
        pytest.param(forged_png(100, 100), id="png-idat-too-short"),
        pytest.param(b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 20, id="jpeg-no-sof"),
        pytest.param(b"RIFF\x10\x00\x00\x00WEBPVP8 \x00\x00\x00\x00", id="webp-no-frame"),
        pytest.param(b"\x89PNG\r\n\x1a\n", id="png-signature-only"),
        pytest.param(forged_png(0, 100), id="png-zero-width"),
    ],
)
def test_corrupt_is_invalid(data: bytes) -> None:
    expect(InvalidImage, "invalid_image", data)


# -- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("RGB", "JPEG"), ("RGBA", "PNG"), ("RGB", "PNG"), ("RGB", "WEBP"), ("RGBA", "WEBP")],
)
def test_nothing_to_change_keeps_the_original_bytes(mode: str, fmt: str) -> None:
    data = make(mode, (120, 90), fmt)
    result = load_image(data, param=PARAM, limits=LIMITS)
    assert result.data == data
    assert (result.width, result.height) == (120, 90)
    assert result.content_type == sniff(data)


@pytest.mark.parametrize(
    ("mode", "fmt", "kwargs", "out_mode", "out_type"),
    [
        ("CMYK", "JPEG", {}, "RGB", "image/jpeg"),
        ("L", "JPEG", {}, "RGB", "image/jpeg"),
        ("I;16", "PNG", {}, "RGB", "image/png"),
        ("P", "PNG", {}, "RGB", "image/png"),
        ("P", "PNG", {"transparency": 0}, "RGBA", "image/png"),
        ("RGB", "PNG", {"transparency": (0, 0, 0)}, "RGBA", "image/png"),
        ("LA", "PNG", {}, "RGBA", "image/png"),
        ("L", "PNG", {}, "RGB", "image/png"),
        ("1", "PNG", {}, "RGB", "image/png"),
    ],
)
def test_modes_become_8bit_rgb_or_rgba(
    mode: str, fmt: str, kwargs: dict[str, object], out_mode: str, out_type: str
) -> None:
    data = make(mode, (100, 70), fmt, **kwargs)
    assert opened(data).mode not in ("RGB", "RGBA") or "transparency" in kwargs
    result = load_image(data, param=PARAM, limits=LIMITS)
    assert result.data != data
    assert result.content_type == out_type == sniff(result.data)
    image = opened(result.data)
    assert image.mode == out_mode
    assert image.size == (result.width, result.height) == (100, 70)


def test_16bit_grey_is_scaled_not_clipped() -> None:
    data = make("I;16", (80, 80), "PNG", color=40000)  # 40000 / 257 = 155.6
    image = opened(load_image(data, param=PARAM, limits=LIMITS).data)
    assert image.getpixel((5, 5)) in ((155, 155, 155), (156, 156, 156))


def test_cmyk_colours_survive() -> None:
    data = make("CMYK", (80, 80), "JPEG", color=(0, 255, 255, 0))  # red
    r, g, b = pixel(opened(load_image(data, param=PARAM, limits=LIMITS).data), (40, 40))
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied() -> None:
    data = exif_rotated_jpeg((120, 80), orientation=6)  # stored landscape, shown portrait
    result = load_image(data, param=PARAM, limits=LIMITS)
    assert (result.width, result.height) == (80, 120)
    assert result.content_type == "image/jpeg"
    image = opened(result.data)
    assert image.size == (80, 120)
    assert image.getexif().get(0x0112, 1) == 1  # nobody may turn it twice
    # orientation 6 turns the picture 90 degrees clockwise: top-left goes top-right
    r, g, b = pixel(image, (75, 5))
    assert r > 200 and g < 80 and b < 80
    assert image.getpixel((5, 5)) != image.getpixel((75, 5))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animation_keeps_the_first_frame(fmt: str) -> None:
    data = animated(fmt)
    assert getattr(opened(data), "n_frames", 1) == 2
    result = load_image(data, param=PARAM, limits=LIMITS)
    image = Image.open(io.BytesIO(result.data))
    assert getattr(image, "n_frames", 1) == 1
    assert result.content_type == "image/png"
    red, _, blue = pixel(image.convert("RGB"), (40, 40))
    assert red > 200 and blue < 60


# -- properties -------------------------------------------------------------------------------

MODES = ["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "1"]
FORMATS = {
    "JPEG": {"RGB", "L", "CMYK", "1"},
    "PNG": {"RGB", "RGBA", "L", "LA", "P", "I;16", "1"},
    "WEBP": {"RGB", "RGBA"},
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(MODES),
    fmt=st.sampled_from(sorted(FORMATS)),
    width=st.integers(64, 300),
    height=st.integers(64, 300),
)
def test_any_valid_image_loads_as_8bit_rgb_with_its_size(
    mode: str, fmt: str, width: int, height: int
) -> None:
    if mode not in FORMATS[fmt]:
        mode = "RGB"
    result = load_image(make(mode, (width, height), fmt), param=PARAM, limits=LIMITS)
    image = opened(result.data)
    assert image.mode in ("RGB", "RGBA")
    assert image.size == (result.width, result.height) == (width, height)
    assert sniff(result.data) == result.content_type


SEEDS = [make("RGB", (80, 80), "JPEG"), make("RGBA", (80, 80), "PNG"), animated("WEBP")]


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_only_raise_our_errors(data: bytes) -> None:
    for prefix in (b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP"):
        try:
            load_image(prefix + data, param=PARAM, limits=LIMITS)
        except ClientError as exc:
            assert exc.param == PARAM


@settings(max_examples=150, deadline=None)
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.none() | st.integers(0, 10**6),
)
def test_damaged_images_only_raise_our_errors(
    seed: bytes, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        del data[cut % len(data) :]
    try:
        result = load_image(bytes(data), param=PARAM, limits=LIMITS)
    except ClientError as exc:
        assert exc.param == PARAM
    else:
        assert opened(result.data).mode in ("RGB", "RGBA")


# -- outputs and encoding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (make("RGB", (300, 200), "JPEG"), ("image/jpeg", 300, 200)),
        (make("RGBA", (30, 20), "PNG"), ("image/png", 30, 20)),  # min_side is for inputs
        (animated("WEBP", (90, 90)), ("image/webp", 90, 90)),
        (exif_rotated_jpeg((120, 80)), ("image/jpeg", 80, 120)),
    ],
)
def test_describe_output(data: bytes, expected: tuple[str, int, int]) -> None:
    assert describe_output(data, limits=LIMITS) == expected


@pytest.mark.parametrize(
    "data",
    [
        *NOT_IMAGES.values(),
        make("RGB", (200, 200), "PNG")[:300],
        forged_png(100_000, 100_000),
        forged_webp(16384, 16384),
    ],
)
def test_describe_output_refuses_what_does_not_decode(data: bytes) -> None:
    with pytest.raises(UndecodableImage):
        describe_output(data, limits=LIMITS)
    assert issubclass(UndecodableImage, ValueError)


def test_describe_output_bounds_bytes() -> None:
    data = make("RGB", (100, 100), "PNG")
    with pytest.raises(UndecodableImage):
        describe_output(data, limits=ImageLimits(max_bytes=len(data) - 1))


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "CMYK", "I;16", "LA"])
def test_encode(output_format: str, mode: str) -> None:
    source = Image.new(mode, (70, 50))
    data = encode(source, output_format)  # type: ignore[arg-type]
    assert sniff(data) == f"image/{output_format}"
    image = opened(data)
    assert image.size == (70, 50)
    assert image.mode in (("RGB",) if output_format == "jpeg" else ("RGB", "RGBA"))


def test_encode_applies_orientation_so_sizes_agree() -> None:
    data = exif_rotated_jpeg((120, 80))
    _, width, height = describe_output(data, limits=LIMITS)
    with Image.open(io.BytesIO(data)) as image:
        assert opened(encode(image, "png")).size == (width, height) == (80, 120)


def test_encode_flattens_alpha_onto_white_for_jpeg() -> None:
    data = encode(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), "jpeg")
    assert min(pixel(opened(data), (5, 5))) > 245


def test_encode_refuses_unknown_formats() -> None:
    with pytest.raises(ValueError):
        encode(Image.new("RGB", (10, 10)), "gif")  # type: ignore[arg-type]


# -- data URLs --------------------------------------------------------------------------------

PNG = make("RGB", (80, 80), "PNG")
B64 = base64.b64encode(PNG).decode()


@pytest.mark.parametrize(
    "url",
    [
        f"data:image/png;base64,{B64}",
        f"data:;base64,{B64}",
        f"DATA:IMAGE/PNG;BASE64,{B64}",
        f"data:image/jpeg;name=x.jpg;base64,{B64}",  # the declared type is not trusted
        f"data:application/octet-stream;base64,{B64}",
        f"data:image/png;base64,{B64.rstrip('=')}",  # padding dropped
        "data:image/png;base64," + "\n".join(B64[i : i + 76] for i in range(0, len(B64), 76)),
    ],
)
def test_data_url_decodes(url: str) -> None:
    assert decode_data_url(url, param=PARAM, max_bytes=len(PNG)) == PNG


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "data:image/png",
        "data:image/png," + "%89PNG",
        f"data:image/png;charset=utf-8,{B64}",
        "data:image/png;base64,not*base64!",
        "data:image/png;base64,é" + B64,
        "data:image/png;base64,",
        "data:image/png;base64,A",
    ],
)
def test_bad_data_urls_are_invalid_requests(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_data_url(url, param=PARAM, max_bytes=10**6)
    assert caught.value.type == "invalid_data_url"
    assert caught.value.param == PARAM
    assert PARAM in caught.value.message


@pytest.mark.parametrize("media_type", ["text/html", "application/pdf", "text/plain"])
def test_data_url_must_not_declare_a_non_image(media_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        decode_data_url(f"data:{media_type};base64,{B64}", param=PARAM, max_bytes=10**6)
    assert caught.value.type == "unsupported_image_format"
    assert caught.value.param == PARAM


def test_data_url_size_is_bounded_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decode(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded before the size check")

    monkeypatch.setattr(base64, "b64decode", no_decode)
    monkeypatch.setattr(binascii, "a2b_base64", no_decode)
    url = "data:image/png;base64," + "A" * (4 * 1000)  # 3000 bytes once decoded
    with pytest.raises(PayloadTooLarge) as caught:
        decode_data_url(url, param=PARAM, max_bytes=2000)
    assert caught.value.type == "image_too_large"
    assert caught.value.param == PARAM


def test_data_url_exact_size_limit() -> None:
    url = f"data:image/png;base64,{B64}"
    assert decode_data_url(url, param=PARAM, max_bytes=len(PNG)) == PNG
    with pytest.raises(PayloadTooLarge):
        decode_data_url(url, param=PARAM, max_bytes=len(PNG) - 1)


@pytest.mark.parametrize("line_breaks", [False, True])
def test_data_url_decoding_copies_the_text_at_most_once(line_breaks: bool) -> None:
    """A big data URL costs its decoded bytes and one copy of its text, not five copies (two
    ~5 MB data URLs per chat request used to leave the heap of a busy server at ~1 GB)."""
    data = bytes(range(256)) * (3 * 4096)  # 3 MiB
    text = base64.b64encode(data).decode()
    if line_breaks:
        text = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    url = "data:image/png;base64," + text
    tracemalloc.start()
    try:
        decoded = decode_data_url(url, param=PARAM, max_bytes=len(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded == data
    copies = 2 if line_breaks else 1  # the text after the comma, then without its breaks
    assert peak < len(data) + copies * len(url) + 64 * 1024


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        ImageLimits(min_side=100, max_side=50)
    with pytest.raises(ValueError):
        ImageLimits(max_pixels=10**9)
