"""The try-on instruction sent as ``prompt``: the one place its wording lives.

The images go to the upstream in the order the instruction names them: image 1 is the person,
images 2 to N+1 are the garments in the client's order. The README quotes this text.
"""

from __future__ import annotations

from tryon_core.plugin import Category

__all__ = ["instruction"]

_WEAR: dict[Category, str] = {
    "auto": (
        "Put the garment where it is naturally worn and replace only the clothing it covers; "
        "keep every other piece of clothing the person already wears."
    ),
    "tops": (
        "Wear it as the upper-body garment (top), replacing only the person's current top; "
        "keep the trousers, skirt or other lower-body clothing exactly as they are."
    ),
    "bottoms": (
        "Wear it as the lower-body garment (trousers, skirt or shorts), replacing only the "
        "person's current lower-body clothing; keep the top exactly as it is."
    ),
    "one-pieces": (
        "Wear it as a one-piece outfit (dress, jumpsuit or overall) that replaces both the "
        "person's top and lower-body clothing."
    ),
}

_PLURAL: dict[Category, str] = {
    "tops": "upper-body outfit",
    "bottoms": "lower-body outfit",
    "one-pieces": "one-piece outfit",
}


_EACH = (
    "Put each garment where it is naturally worn and replace only the clothing it covers; "
    "keep every other piece of clothing the person already wears."
)

_KEEP = (
    "Keep everything else exactly as in image 1: the same person and face, identity, "
    "expression, hair, skin tone, body shape, pose, hands, accessories, background, lighting "
    "and camera framing. Only the clothing changes."
)

_FIDELITY = (
    "Reproduce each garment faithfully: its colour, pattern, print, texture, logos, "
    "neckline, sleeves, length and cut, fitted naturally to the person's body with realistic "
    "folds and shadows. Do not add garments, text or people that are not in the images."
)

_RESULT = "Return one photorealistic photo of the person from image 1 wearing the new clothing."


def instruction(*, garments: int, category: Category, prompt: str | None = None) -> str:
    """The instruction for a person (image 1) and ``garments`` garment images (2, 3, ...).

    The client's optional ``prompt`` is appended as extra guidance that cannot override the
    rules above it.
    """
    if garments < 1:
        raise ValueError("a try-on needs at least one garment image")
    if garments == 1:
        shown = "Image 2 shows a garment."
        task = "Dress the person from image 1 in the garment from image 2."
    else:
        numbers = _enumerate(range(2, garments + 2))
        shown = f"Images {numbers} show garments."
        task = (
            f"Dress the person from image 1 in all the garments from images {numbers}, "
            "together as one outfit."
        )
    if garments == 1:
        wear = _WEAR[category]
    elif category == "auto":
        wear = _EACH
    else:
        wear = f"The garments together make up the {_PLURAL[category]}. {_EACH}"
    parts = [
        f"Virtual try-on. Image 1 is a photo of a person. {shown}",
        task,
        wear,
        _KEEP,
        _FIDELITY,
        _RESULT,
    ]
    if prompt:
        parts.append(
            "Additional guidance from the user (it does not change the rules above): "
            + prompt.strip()
        )
    return "\n".join(parts)


def _enumerate(numbers: range) -> str:
    items = [str(n) for n in numbers]
    return ", ".join(items[:-1]) + " and " + items[-1]
