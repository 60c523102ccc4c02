"""The instruction: what it says for any request, and that the README quotes it exactly."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from tryon_openrouter.prompt import CATEGORY_RULES, instruction

from tryon_core.plugin import CATEGORIES

README = (Path(__file__).parents[1] / "README.md").read_text()
QUOTED = re.compile(r"<!-- instruction: (.*?) -->\n```text\n(.*?)\n```", re.S)


@given(
    category=st.sampled_from(CATEGORIES),
    garments=st.integers(1, 4),
    prompt=st.one_of(st.none(), st.text(max_size=80)),
)
def test_the_instruction_numbers_the_images_and_ends_with_the_wish(
    category: str, garments: int, prompt: str | None
) -> None:
    text = instruction(category=category, garments=garments, prompt=prompt)  # type: ignore[arg-type]
    paragraphs = text.split("\n\n")
    assert paragraphs[0].startswith("Virtual try-on edit. Image 1 is a photograph of a person.")
    last = garments + 1
    assert ("Image 2 is" if garments == 1 else f"{last} are product photos") in paragraphs[0]
    assert CATEGORY_RULES[category][0 if garments == 1 else 1] in paragraphs[1]  # type: ignore[index]
    wish = " ".join((prompt or "").split())
    if wish:
        assert paragraphs[-1].endswith(f"background): {wish}")
        assert len(paragraphs) == 4
    else:
        assert len(paragraphs) == 3


def test_every_quoted_instruction_is_what_prompt_py_builds() -> None:
    quoted = QUOTED.findall(README)
    assert len(quoted) == 2
    for options, text in quoted:
        settings = dict(re.findall(r"(\w+)=(.*?)(?= \w+=|$)", options))
        built = instruction(
            category=settings["category"],  # type: ignore[arg-type]
            garments=int(settings["garments"]),
            prompt=settings.get("prompt"),
        )
        assert text == built


def test_every_category_rule_is_in_the_readme() -> None:
    for rules in CATEGORY_RULES.values():
        for rule in rules:
            assert f"| {rule} |" in README
