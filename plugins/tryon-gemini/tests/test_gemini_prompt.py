"""The instruction names the images in the order they are sent and keeps the person as is."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tryon_gemini.prompt import build_instruction
from tryon_gemini.wire import ASPECT_RATIOS, closest_aspect_ratio

from tryon_core.plugin import CATEGORIES, Category

KEEPS = ("face", "pose", "body shape", "background")


@pytest.mark.parametrize("category", CATEGORIES)
def test_one_garment_is_the_second_image(category: Category) -> None:
    text = build_instruction(category=category, garments=1)
    assert text.startswith("Virtual try-on. The first image is a photo of a person.")
    assert "The second image shows a garment." in text
    assert "third" not in text
    assert all(word in text for word in KEEPS)


def test_two_garments_are_the_second_and_third_images() -> None:
    text = build_instruction(category="auto", garments=2)
    assert "The second and third images show garments." in text
    assert "all the garments from the second and third images" in text
    assert "one outfit" in text


@pytest.mark.parametrize(
    ("category", "says", "never"),
    [
        ("tops", "replace only the person's upper-body clothing", "lower-body clothing unchanged!"),
        ("bottoms", "replace only the person's lower-body clothing", "one-piece"),
        ("one-pieces", "replaces both the person's upper-body and lower-body", "only the person's"),
        ("auto", "Work out from the garment image", "upper-body"),
    ],
)
def test_the_category_decides_what_is_replaced(category: Category, says: str, never: str) -> None:
    text = build_instruction(category=category, garments=1)
    assert says in text
    assert never not in text


def test_each_category_reads_differently() -> None:
    for garments in (1, 2):
        texts = {build_instruction(category=c, garments=garments) for c in CATEGORIES}
        assert len(texts) == len(CATEGORIES)


@given(
    prompt=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200),
    category=st.sampled_from(CATEGORIES),
    garments=st.integers(1, 2),
)
def test_a_client_prompt_comes_last_and_lifts_no_rule(
    prompt: str, category: Category, garments: int
) -> None:
    text = build_instruction(category=category, garments=garments, prompt=prompt)
    plain = build_instruction(category=category, garments=garments)
    wish = " ".join(prompt.split())
    if wish:
        assert text.startswith(plain + "\n\nAdditional wishes from the user")
        assert text.endswith(": " + wish)
    else:
        assert text == plain


def test_garment_counts_beyond_the_ordinals_are_refused() -> None:
    with pytest.raises(ValueError):
        build_instruction(category="auto", garments=0)
    with pytest.raises(ValueError):
        build_instruction(category="auto", garments=4)


def nominal(name: str) -> float:
    across, down = map(int, name.split(":"))
    return across / down


@given(width=st.integers(1, 20000), height=st.integers(1, 20000))
def test_the_closest_ratio_is_never_beaten(width: int, height: int) -> None:
    chosen = closest_aspect_ratio(width, height)
    distance = {name: abs(math.log(width / height / nominal(name))) for name in ASPECT_RATIOS}
    assert distance[chosen] == min(distance.values())


@pytest.mark.parametrize("name", list(ASPECT_RATIOS))
def test_each_ratio_s_1k_size_is_near_that_ratio(name: str) -> None:
    width, height = ASPECT_RATIOS[name]
    assert abs(math.log(width / height / nominal(name))) < 0.05  # sizes are multiples of 16
    assert width % 16 == 0 and height % 16 == 0
    assert closest_aspect_ratio(*map(int, name.split(":"))) == name
