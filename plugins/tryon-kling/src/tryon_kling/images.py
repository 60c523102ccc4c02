"""Images as Kling takes them: bare base64 of a JPEG or PNG of at most 10 MB.

Kling's ``cloth_image`` is one picture. For a top and a bottom together (v1-5 only), Kling's
documentation asks for both garments stitched into that one picture: :func:`stack_pair` puts
the top above the bottom on white, both scaled to one width.
"""

from __future__ import annotations

import io

from PIL import Image

from tryon_core.plugin import InputImage, fit_image_base64
from tryon_kling.models import MAX_INPUT_BYTES, MIN_INPUT_SIDE

__all__ = ["MAX_PAIR_SIDE", "encode", "stack_pair"]

FORMATS = ("image/jpeg", "image/png")
MAX_PAIR_SIDE = 4096
"""The stitched pair's longer side is kept within this."""
_WHITE = (255, 255, 255)


def encode(image: InputImage) -> str:
    """The image as Kling's bare base64 (no ``data:`` prefix), re-encoded only if needed."""
    return fit_image_base64(image, formats=FORMATS, max_bytes=MAX_INPUT_BYTES)[0]


def stack_pair(top: InputImage, bottom: InputImage) -> InputImage:
    """One white-background picture: ``top`` above ``bottom``, the same width, with margins."""
    pictures = [_flatten(top), _flatten(bottom)]
    width = min(max(p.width for p in pictures), MAX_PAIR_SIDE)
    scaled = [
        p.resize((width, max(1, round(p.height * width / p.width))), Image.Resampling.LANCZOS)
        for p in pictures
    ]
    margin = max(8, width // 25)
    canvas_width = width + 2 * margin
    canvas_height = sum(p.height for p in scaled) + 3 * margin
    canvas = Image.new("RGB", (canvas_width, canvas_height), _WHITE)
    y = margin
    for picture in scaled:
        canvas.paste(picture, (margin, y))
        y += picture.height + margin
    if max(canvas.size) > MAX_PAIR_SIDE:
        canvas.thumbnail((MAX_PAIR_SIDE, MAX_PAIR_SIDE), Image.Resampling.LANCZOS)
    if canvas.width < MIN_INPUT_SIDE:  # a very tall pair: pad the sides back to Kling's minimum
        padded = Image.new("RGB", (MIN_INPUT_SIDE, canvas.height), _WHITE)
        padded.paste(canvas, ((MIN_INPUT_SIDE - canvas.width) // 2, 0))
        canvas = padded
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=92)
    return InputImage(
        data=buffer.getvalue(), content_type="image/jpeg", width=canvas.width, height=canvas.height
    )


def _flatten(image: InputImage) -> Image.Image:
    """RGB pixels; transparent areas become white."""
    with Image.open(io.BytesIO(image.data)) as opened:
        opened.load()
        if "A" in opened.getbands() or opened.mode == "P":
            rgba = opened.convert("RGBA")
            flat = Image.new("RGB", rgba.size, _WHITE)
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return opened.convert("RGB")
