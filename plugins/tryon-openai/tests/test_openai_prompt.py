"""The try-on instruction names the images in the order the adapter sends them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tryon_openai.fake import MAX_PROMPT
from tryon_openai.prompt import instruction

from tryon_core.plugin import CATEGORIES, Category

README = Path(__file__).resolve().parents[1] / "README.md"


@given(
    garments=st.integers(1, 4),
    category=st.sampled_from(CATEGORIES),
    prompt=st.one_of(st.none(), st.text(min_size=1, max_size=4000).map(str.strip)),
)
def test_images_are_named_person_first_then_each_garment(
    garments: int, category: Category, prompt: str | None
) -> None:
    text = instruction(garments=garments, category=category, prompt=prompt or None)
    rules = text.split("\nAdditional guidance from the user")[0]
    mentions = re.findall(r"\bimages? (\d+(?:(?:, | and )\d+)*)", rules, flags=re.IGNORECASE)
    named = {int(n) for mention in mentions for n in re.findall(r"\d+", mention)}
    assert named == set(range(1, garments + 2))
    assert "Image 1 is a photo of a person" in rules
    assert "keep" in rules.lower() and "face" in rules and "pose" in rules
    assert "background" in rules and "Only the clothing changes" in rules
    if prompt:
        assert text.endswith(prompt)
    else:
        assert "Additional guidance" not in text
    assert len(text) <= MAX_PROMPT


@pytest.mark.parametrize(
    ("category", "words"),
    [
        ("tops", "upper-body garment"),
        ("bottoms", "lower-body garment"),
        ("one-pieces", "one-piece outfit"),
        ("auto", "where it is naturally worn"),
    ],
)
def test_the_category_says_what_is_replaced(category: Category, words: str) -> None:
    assert words in instruction(garments=1, category=category)


def test_several_garments_make_one_outfit() -> None:
    text = instruction(garments=3, category="auto")
    assert "Images 2, 3 and 4 show garments." in text
    assert "all the garments from images 2, 3 and 4, together as one outfit" in text


def test_no_garment_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="at least one garment"):
        instruction(garments=0, category="auto")


def test_the_readme_quotes_the_instruction() -> None:
    """The README shows the instruction for one garment, category auto, word for word."""
    assert instruction(garments=1, category="auto") in README.read_text()
