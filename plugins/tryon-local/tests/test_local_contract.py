"""The offline engine passes the plugin contract kit like any other provider."""

from __future__ import annotations

import io
from pathlib import Path

import tryon_local.plugin
from PIL import Image

from tryon_core.testing import ProviderContract

SAMPLE_PERSON = Path(__file__).resolve().parents[3] / "samples" / "person.jpg"


class TestLocalContract(ProviderContract):
    plugin = tryon_local.plugin
    provider = "local"

    def make_person(self, width: int, height: int, fmt: str, orientation: int) -> bytes:
        """The engine looks for a real figure: the sample photo, resized and re-encoded."""
        with Image.open(SAMPLE_PERSON) as sample:
            picture = sample.convert("RGB").resize((width, height))
        # store it rotated the other way, so that the EXIF orientation turns it upright again
        undo = {
            3: Image.Transpose.ROTATE_180,
            6: Image.Transpose.ROTATE_90,
            8: Image.Transpose.ROTATE_270,
        }
        if orientation in undo:
            picture = picture.transpose(undo[orientation])
        exif = Image.Exif()
        if orientation != 1:
            exif[0x0112] = orientation
        buffer = io.BytesIO()
        picture.save(buffer, format=fmt, exif=exif.tobytes() if orientation != 1 else b"")
        return buffer.getvalue()
