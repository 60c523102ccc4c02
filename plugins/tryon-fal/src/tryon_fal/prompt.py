"""The try-on instruction for fal's generative models (FLUX Kontext), kept in one place.

The images go to the model in one order, person first and then each garment, and the
instruction names them by that position ("image 1", "image 2", …). The person keeps their
face, body, pose and background; only the clothing the garments replace changes. The client's
own prompt, if any, is added last as extra guidance: it refines the result, it does not replace
the instruction.
"""

from __future__ import annotations

from tryon_core.plugin import Category

__all__ = ["GARMENT_WORDS", "instruction"]

#: How the instruction names a garment of each category, describes it, and what it replaces
#: (``None``: whatever the garment would naturally replace).
GARMENT_WORDS: dict[Category, tuple[str, str, str | None]] = {
    "auto": ("garment", "", None),
    "tops": ("top", " (an upper-body garment)", "the clothing on the upper body"),
    "bottoms": ("bottom", " (trousers, shorts or a skirt)", "the clothing on the lower body"),
    "one-pieces": (
        "one-piece garment",
        " (a dress, jumpsuit or overall)",
        "the whole outfit",
    ),
}


def instruction(category: Category, garments: int, prompt: str | None = None) -> str:
    """The instruction for one person image followed by ``garments`` garment images."""
    if garments < 1:
        raise ValueError("a try-on needs at least one garment image")
    noun, detail, area = GARMENT_WORDS[category]
    if garments == 1:
        replaces = area or "the clothing it would naturally replace"
        shown = f"Image 2 shows a {noun}{detail}."
        wear = f"Dress the person from image 1 in the {noun} from image 2, replacing {replaces}."
    else:
        replaces = area or "the clothing they would naturally replace"
        positions = _positions(range(2, garments + 2))
        shown = f"Images {positions} each show a {noun}{detail}."
        wear = (
            f"Dress the person from image 1 in all of the garments from images {positions} "
            f"together as one outfit, replacing {replaces}."
        )
    parts = [
        "Virtual try-on. Image 1 is a photo of a person.",
        shown,
        wear,
        "Reproduce each garment faithfully: its colour, pattern, print, text, fabric, "
        "texture and cut, fitted naturally to the person's body with realistic folds.",
        "Keep everything else exactly as it is in image 1: the same face and identity, "
        "hair, skin tone, body shape, pose and expression, the same background, lighting "
        "and camera framing.",
        "Output one photorealistic photo of that person wearing the garment"
        + ("s." if garments > 1 else "."),
    ]
    if prompt:
        parts.append(f"Additional guidance from the user: {prompt}")
    return " ".join(parts)


def _positions(numbers: range) -> str:
    """``2 and 3`` / ``2, 3 and 4``."""
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
