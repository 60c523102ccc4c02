"""Screenshots: every page a test visits is kept under test-artifacts/screenshots/ (git-ignored);
with ``TRYON_DOCS_SCREENSHOTS=1`` (``uv run nox -s screenshots``) the documentation's images in
docs/img/ are taken again, as small palette PNGs."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from PIL import Image
from playwright.sync_api import Locator, Page

from tests.helpers import ROOT

__all__ = ["ARTIFACTS", "DOCS_IMAGES", "LAPTOP", "PHONE", "Screenshots"]

ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DOCS_IMAGES = ROOT / "docs" / "img"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
DOCS_ENV = "TRYON_DOCS_SCREENSHOTS"


class Screenshots:
    """The screenshots of one test, numbered in the order taken."""

    def __init__(self, test_id: str) -> None:
        name = test_id.removeprefix("tests/browser/").replace(".py::", "-")
        self.folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", name).strip("_")
        self.taken: list[Path] = []

    def take(self, page: Page, label: str) -> Path:
        """Keep what ``page`` shows now (the whole page) as a test artifact."""
        self.folder.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^\w-]+", "-", label)
        path = self.folder / f"{len(self.taken) + 1:02d}-{safe}.png"
        page.screenshot(path=path, full_page=True)
        self.taken.append(path)
        return path

    def for_docs(self, page: Page, name: str, *, at: Locator | None = None) -> Path | None:
        """Also keep the viewport, scrolled to the top (or to ``at``'s top), as
        ``docs/img/NAME.png`` when docs screenshots are asked for."""
        self.take(page, name)
        if os.environ.get(DOCS_ENV) != "1":
            return None
        if at is None:
            page.evaluate("window.scrollTo(0, 0)")
        else:
            at.evaluate("element => element.scrollIntoView({block: 'start'})")
        path = DOCS_IMAGES / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(small_png(page.screenshot()))
        return path


def small_png(png: bytes) -> bytes:
    """A screenshot as a 256-colour optimized PNG: a few tens of KB for a UI page."""
    with Image.open(io.BytesIO(png)) as image:
        palette = image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()
