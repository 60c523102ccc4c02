"""The console's screenshots in docs/img/ (taken by ``uv run nox -s screenshots``) are the ones
docs/console.md shows, at laptop or phone size, and small."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from tests.browser.shots import DOCS_IMAGES, LAPTOP, PHONE
from tests.helpers import ROOT

CONSOLE_DOC = ROOT / "docs" / "console.md"
MAX_BYTES = 200_000
SIZES = {(LAPTOP["width"], LAPTOP["height"]), (PHONE["width"], PHONE["height"])}
IMAGES = sorted(DOCS_IMAGES.glob("console-*.png"))


def shown() -> set[str]:
    return set(re.findall(r"!\[[^\]]+\]\(img/([^)]+)\)", CONSOLE_DOC.read_text(encoding="utf-8")))


def test_the_console_doc_shows_every_screenshot_and_only_those() -> None:
    assert IMAGES, "docs/img/ has no console screenshot: run `uv run nox -s screenshots`"
    assert shown() == {image.name for image in IMAGES}


@pytest.mark.parametrize("image", IMAGES, ids=[image.name for image in IMAGES])
def test_a_screenshot_is_laptop_or_phone_sized_and_small(image: Path) -> None:
    assert image.stat().st_size <= MAX_BYTES
    with Image.open(image) as opened:
        assert opened.format == "PNG"
        assert opened.size in SIZES
