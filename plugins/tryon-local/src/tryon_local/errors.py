"""What the engine raises when an input cannot be used. The adapter maps these to
``tryon_core.errors.InputRejected``; the engine itself knows nothing of the gateway.

    UnusableInput(ValueError)   base; ``param`` names the input at fault
    ├── PersonNotFound          no person could be located in the person photo
    └── GarmentUnusable         the garment photo cannot be separated from its background
"""

from __future__ import annotations

__all__ = ["GarmentUnusable", "PersonNotFound", "UnusableInput"]


class UnusableInput(ValueError):
    """An input the engine cannot work with; the message says why, for the caller."""

    param: str = "input"


class PersonNotFound(UnusableInput):
    param = "person"


class GarmentUnusable(UnusableInput):
    param = "garments"
