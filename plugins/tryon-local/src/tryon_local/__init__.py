"""tryon-local: tryon-core's offline try-on engine (no network, no GPU, no downloaded weights).

The engine is usable on its own (:class:`Engine`); :mod:`tryon_local.plugin` registers it with
tryon-core as the ``local`` provider serving ``local/overlay``.
"""

from tryon_local.body import Body
from tryon_local.category import guess_category
from tryon_local.engine import Engine
from tryon_local.errors import GarmentUnusable, PersonNotFound, UnusableInput
from tryon_local.garment import Garment, cut_out
from tryon_local.plugin import CREDITS_PER_IMAGE, MODEL, LocalAdapter, LocalConfig

__all__ = [
    "CREDITS_PER_IMAGE",
    "MODEL",
    "Body",
    "Engine",
    "Garment",
    "GarmentUnusable",
    "LocalAdapter",
    "LocalConfig",
    "PersonNotFound",
    "UnusableInput",
    "cut_out",
    "guess_category",
]
