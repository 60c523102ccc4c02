"""The README quotes the instruction exactly as prompt.py builds it."""

from __future__ import annotations

import re
from pathlib import Path

from tryon_gemini.plugin import CREDITS_PER_IMAGE, MODEL
from tryon_gemini.prompt import _CATEGORY_MANY, _CATEGORY_ONE, build_instruction

README = (Path(__file__).parents[1] / "README.md").read_text()
QUOTED = re.compile(r"<!-- instruction: (.*?) -->\n```text\n(.*?)\n```", re.S)


def test_every_quoted_instruction_is_what_prompt_py_builds() -> None:
    quoted = QUOTED.findall(README)
    assert len(quoted) == 2
    for options, text in quoted:
        settings = dict(re.findall(r"(\w+)=(.*?)(?= \w+=|$)", options))
        built = build_instruction(
            category=settings["category"],
            garments=int(settings["garments"]),
            prompt=settings.get("prompt"),
        )
        assert text == built


def test_every_category_rule_is_documented() -> None:
    for rules in (_CATEGORY_ONE, _CATEGORY_MANY):
        for rule in rules.values():
            assert rule in README


def test_the_model_and_its_price_are_documented() -> None:
    assert f"| `{MODEL.slug}` | {CREDITS_PER_IMAGE} credits per image |" in README
