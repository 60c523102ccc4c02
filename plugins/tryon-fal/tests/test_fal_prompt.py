"""The try-on instruction FLUX Kontext gets: it names the images in the order they are sent."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tryon_fal.prompt import GARMENT_WORDS, instruction

from tryon_core.plugin import CATEGORIES

prompts = st.one_of(st.none(), st.text(min_size=1, max_size=200).filter(str.strip))


@given(category=st.sampled_from(CATEGORIES), garments=st.integers(1, 3), prompt=prompts)
def test_the_instruction_names_every_image_in_sending_order(
    category: str, garments: int, prompt: str | None
) -> None:
    text = instruction(category, garments, prompt)  # type: ignore[arg-type]
    core = text.split(" Additional guidance from the user: ")[0]
    named = {int(n) for n in re.findall(r"\b(\d)\b", core)}
    assert named == set(range(1, garments + 2))  # image 1 is the person, then each garment
    assert "Image 1 is a photo of a person" in core
    noun, detail, _ = GARMENT_WORDS[category]  # type: ignore[index]
    assert f"a {noun}{detail}." in core
    for kept in ("face", "pose", "body shape", "background"):
        assert kept in core
    if prompt:
        assert text.endswith(f"Additional guidance from the user: {prompt}")
    else:
        assert text == core


def test_one_and_several_garments_read_naturally() -> None:
    assert (
        "Image 2 shows a top (an upper-body garment). Dress the person from image 1 in the top "
        "from image 2, replacing the clothing on the upper body." in instruction("tops", 1)
    )
    assert "replacing the clothing they would naturally replace" in instruction("auto", 2)
    assert "replacing the clothing it would naturally replace" in instruction("auto", 1)
    assert "Images 2 and 3 each show a garment." in instruction("auto", 2)
    assert "from images 2, 3 and 4 together as one outfit" in instruction("auto", 3)
    assert instruction("bottoms", 1).endswith("wearing the garment.")
    assert instruction("bottoms", 2).endswith("wearing the garments.")


def test_a_try_on_needs_a_garment() -> None:
    with pytest.raises(ValueError):
        instruction("auto", 0)
