"""Garment separation, measured against synthetic product photos whose true mask is known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from local_shapes import DRESS, JUMPSUIT, SHORTS, SKIRT, TROUSERS, TSHIRT, iou, product_photo
from PIL import Image
from tryon_local import GarmentUnusable, cut_out, guess_category


def _full_alpha(photo: Image.Image) -> np.ndarray:
    garment = cut_out(photo)
    full = np.zeros((photo.height, photo.width), np.float32)
    x, y = garment.origin
    full[y : y + garment.height, x : x + garment.width] = garment.alpha
    return full


@pytest.mark.parametrize(
    ("colour", "stripes"),
    [
        ((40, 70, 160), (250, 250, 250)),  # navy with white stripes: white meets the background
        ((200, 40, 40), None),
        ((236, 226, 200), None),  # cream on off-white: low contrast
        ((20, 20, 20), None),
    ],
)
def test_separates_garment_from_off_white_background(colour, stripes) -> None:
    photo, truth = product_photo(TSHIRT, colour=colour, stripes=stripes, trim=4)
    assert iou(_full_alpha(photo), truth) > 0.97


@pytest.mark.parametrize(
    ("colour", "stripes"),
    [((200, 40, 40), None), ((200, 40, 40), (128, 128, 128)), ((150, 150, 150), None)],
)
def test_soft_drop_shadow_is_background(colour, stripes) -> None:
    # grey stripes and an all-grey garment are shadow-coloured: they must survive
    photo, truth = product_photo(TSHIRT, colour=colour, stripes=stripes, trim=4, shadow=0.25)
    full = _full_alpha(photo)
    assert iou(full, truth) > 0.96
    garment = cut_out(photo)
    opaque = garment.rgb[garment.alpha > 0.5]
    grey_bg = (np.abs(opaque - opaque.mean(axis=1, keepdims=True)).max(axis=1) < 4) & (
        opaque.mean(axis=1) > 170
    )
    assert grey_bg.sum() < 0.002 * len(opaque)  # no shadow carried onto the person


def test_white_stripes_touching_the_outline_are_the_hard_case() -> None:
    # No hem: white stripes end on the outline, a few levels off the background's white.
    photo, truth = product_photo(TSHIRT, stripes=(250, 250, 250))
    assert iou(_full_alpha(photo), truth) > 0.9


def test_separates_a_large_photo_too() -> None:
    photo, truth = product_photo(TROUSERS, size=(1200, 1600), stripes=(245, 245, 245), trim=6)
    assert iou(_full_alpha(photo), truth) > 0.97


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    colour=st.tuples(*[st.integers(0, 200)] * 3),
    background=st.tuples(*[st.integers(228, 255)] * 3),
    scale=st.floats(0.35, 0.9),
    size=st.tuples(st.integers(160, 700), st.integers(160, 700)),
)
def test_any_colour_on_near_white_separates(colour, background, scale, size) -> None:
    box = ((1 - scale) / 2, (1 - scale) / 2, scale, scale)
    photo, truth = product_photo(TSHIRT, size=size, box=box, colour=colour, background=background)
    assert iou(_full_alpha(photo), truth) > 0.95


def test_transparent_png_uses_its_own_alpha() -> None:
    photo, truth = product_photo(SKIRT, colour=(30, 120, 60))
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray((truth * 255).astype(np.uint8)))
    assert iou(_full_alpha(rgba), truth) > 0.99


def test_edge_colour_is_cleaned_of_the_background() -> None:
    garment = cut_out(product_photo(TSHIRT, colour=(20, 20, 20))[0])
    edge = (garment.alpha > 0.1) & (garment.alpha < 0.9)
    assert edge.any()
    assert garment.rgb[edge].mean() < 80  # no white fringe carried onto the person


def test_busy_background_is_rejected() -> None:
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8), "RGB")
    with pytest.raises(GarmentUnusable, match="background"):
        cut_out(noise)


def test_blank_photo_is_rejected() -> None:
    with pytest.raises(GarmentUnusable):
        cut_out(Image.new("RGB", (300, 300), (245, 245, 245)))


def test_tiny_photo_is_rejected() -> None:
    with pytest.raises(GarmentUnusable, match="too small"):
        cut_out(Image.new("RGB", (20, 20), (245, 245, 245)))


@pytest.mark.parametrize(
    ("outline", "box", "expected"),
    [
        (TSHIRT, (0.05, 0.1, 0.9, 0.8), "tops"),
        (TROUSERS, (0.3, 0.04, 0.4, 0.92), "bottoms"),
        (SHORTS, (0.15, 0.2, 0.7, 0.55), "bottoms"),
        (SKIRT, (0.15, 0.15, 0.7, 0.65), "bottoms"),
        (DRESS, (0.25, 0.04, 0.5, 0.92), "one-pieces"),
        (JUMPSUIT, (0.3, 0.03, 0.4, 0.94), "one-pieces"),
    ],
)
def test_guesses_category_from_shape(outline, box, expected) -> None:
    photo, _ = product_photo(outline, box=box)
    assert guess_category(cut_out(photo)) == expected


def test_guesses_the_sample_garment_is_a_top(garment: Image.Image) -> None:
    assert guess_category(cut_out(garment)) == "tops"
