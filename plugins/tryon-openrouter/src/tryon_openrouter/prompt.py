"""The instruction sent to an OpenRouter image model, as the first content part.

OpenRouter recommends the text first, then the images; the instruction therefore numbers the
images in the order the parts follow it: image 1 the person, then each garment in the
client's order. The README quotes what this module builds.
"""

from __future__ import annotations

from tryon_core.plugin import Category

__all__ = ["CATEGORY_RULES", "instruction"]

#: The category's rule: (one garment, several garments).
CATEGORY_RULES: dict[Category, tuple[str, str]] = {
    "auto": (
        "Decide from the garment photo which part of the outfit it replaces, and leave the "
        "rest of the outfit as it is.",
        "Decide from the garment photos which part of the outfit each one replaces, and leave "
        "whatever they do not cover as it is.",
    ),
    "tops": (
        "It is upper-body clothing: change only the top half of the outfit.",
        "They are upper-body clothing, worn in layers: change only the top half of the outfit.",
    ),
    "bottoms": (
        "It is lower-body clothing: change only the bottom half of the outfit.",
        "They are lower-body clothing: change only the bottom half of the outfit.",
    ),
    "one-pieces": (
        "It is a one-piece garment covering the upper and the lower body: it replaces the "
        "whole outfit.",
        "Together they cover the upper and the lower body (a one-piece, perhaps with a layer "
        "over it): they replace the whole outfit.",
    ),
}

_PRESERVE = (
    "Preserve from image 1 the person's face and identity, hair, skin tone, body shape, pose "
    "and expression, and the framing, background and lighting. Copy {what} exactly (colours, "
    "pattern, print, logos, texture and cut) and drape {it} naturally on the body, with "
    "believable folds and shadows. Ignore any model or mannequin shown in a garment photo. Add "
    "nothing else: no accessories, text or extra people. Answer with the edited photo."
)


def instruction(*, category: Category, garments: int, prompt: str | None = None) -> str:
    """The instruction for image 1 (the person) followed by ``garments`` garment photos."""
    if garments < 1:
        raise ValueError("a try-on needs at least one garment")
    one = garments == 1
    if one:
        shown = "Image 2 is a product photo of one garment."
        wanted = "the person now wearing that garment"
    else:
        span = "2 and 3" if garments == 2 else f"2 to {garments + 1}"
        shown = f"Images {span} are product photos of garments forming one outfit."
        wanted = "the person now wearing all of those garments together"
    paragraphs = [
        f"Virtual try-on edit. Image 1 is a photograph of a person. {shown}",
        f"Produce one photo: image 1 with {wanted}. {CATEGORY_RULES[category][0 if one else 1]}",
        _PRESERVE.format(
            what="the garment" if one else "every garment", it="it" if one else "them"
        ),
    ]
    wish = " ".join((prompt or "").split())
    if wish:
        paragraphs.append(
            f"The user also asks for this (it never changes the person, pose or background): {wish}"
        )
    return "\n\n".join(paragraphs)
