"""The try-on instruction sent to Gemini: the one place its wording lives.

The request's parts are ordered to match it: the person photo first, then each garment in the
client's order, then this text. The README quotes the text this module produces.
"""

from __future__ import annotations

from tryon_core.plugin import Category

__all__ = ["ORDINALS", "build_instruction"]

ORDINALS = ("first", "second", "third", "fourth")

_CATEGORY_ONE = {
    "auto": (
        "Work out from the garment image what kind of clothing it is and replace only the "
        "clothing it covers; keep the rest of the person's outfit unchanged."
    ),
    "tops": (
        "The garment is a top (upper-body clothing such as a shirt, T-shirt, sweater or "
        "jacket): replace only the person's upper-body clothing and keep their lower-body "
        "clothing unchanged."
    ),
    "bottoms": (
        "The garment is a bottom (lower-body clothing such as trousers, jeans, shorts or a "
        "skirt): replace only the person's lower-body clothing and keep their upper-body "
        "clothing unchanged."
    ),
    "one-pieces": (
        "The garment is a one-piece (such as a dress, jumpsuit or overall): it replaces both "
        "the person's upper-body and lower-body clothing."
    ),
}

_CATEGORY_MANY = {
    "auto": (
        "The garments form one outfit: work out from the garment images what kind of clothing "
        "each one is, dress the person in all of them together, and keep any clothing they do "
        "not cover unchanged."
    ),
    "tops": (
        "The garments are tops (upper-body clothing such as shirts, T-shirts, sweaters or "
        "jackets): layer them naturally, replace only the person's upper-body clothing and "
        "keep their lower-body clothing unchanged."
    ),
    "bottoms": (
        "The garments are bottoms (lower-body clothing such as trousers, shorts or skirts): "
        "replace only the person's lower-body clothing and keep their upper-body clothing "
        "unchanged."
    ),
    "one-pieces": (
        "The garments are one-pieces or are worn over one (such as a dress with a jacket): "
        "together they replace both the person's upper-body and lower-body clothing."
    ),
}

_KEEP = (
    "Keep everything else exactly as in the first image: the same person with the same face "
    "and identity, skin tone, hair, body shape, pose and expression, the same camera framing, "
    "lighting and background. Reproduce the {garment} faithfully (colour, pattern, print, "
    "logos, fabric texture and cut), fitted naturally to the person's body and pose with "
    "realistic folds and shadows. If a garment image shows the garment worn by someone else, "
    "take only the garment from it, never that person's face or body. Do not add accessories, "
    "text or other people. Return only the edited photo, as a photorealistic image."
)


def build_instruction(*, category: Category, garments: int, prompt: str | None = None) -> str:
    """The instruction for a person photo followed by ``garments`` garment photos.

    ``prompt`` is the client's own wish; it is added after the rules, which it cannot lift.
    """
    if not 1 <= garments < len(ORDINALS):
        raise ValueError(f"between 1 and {len(ORDINALS) - 1} garments, not {garments}")
    if garments == 1:
        images = "The second image shows a garment."
        task = "the garment from the second image"
        rule = _CATEGORY_ONE[category]
    else:
        names = [f"{ordinal} image" for ordinal in ORDINALS[1 : garments + 1]]
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        images = f"The {listed.replace(' image', '')} images show garments."
        task = f"all the garments from the {listed.replace(' image', '')} images"
        rule = _CATEGORY_MANY[category]
    parts = [
        "Virtual try-on. The first image is a photo of a person. " + images,
        f"Edit the first image so that the person is wearing {task}.",
        rule,
        _KEEP.format(garment="garment" if garments == 1 else "garments"),
    ]
    wish = " ".join((prompt or "").split())
    if wish:
        parts.append(
            "Additional wishes from the user (they never change the person, the pose or the "
            f"background): {wish}"
        )
    return "\n\n".join(parts)
