"""tryon-local: tryon-core's offline try-on engine (no network, no GPU, no downloaded weights).

The engine is usable on its own (:class:`Engine`); :mod:`tryon_local.plugin` registers it with
tryon-core as the ``local`` provider serving ``local/overlay``.

Names are imported on first use (PEP 562): loading the plugin, which imports this package,
must not load numpy and OpenCV for a gateway whose ``[providers.local]`` is disabled.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "Body": "body",
    "guess_category": "category",
    "Engine": "engine",
    "GarmentUnusable": "errors",
    "PersonNotFound": "errors",
    "UnusableInput": "errors",
    "Garment": "garment",
    "cut_out": "garment",
    "CREDITS_PER_IMAGE": "plugin",
    "MODEL": "plugin",
    "LocalAdapter": "plugin",
    "LocalConfig": "plugin",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
