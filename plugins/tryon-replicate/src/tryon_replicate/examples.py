"""Ready-made ``[providers.replicate.models]`` entries (the README shows them as TOML).

The input names are those seen in public code that runs these models on Replicate; the
schemas' ranges could not be checked here: look at a model's API tab before relying on an
option's bounds. The plugin's tests run both entries against the fake.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CATVTON_FLUX", "EXAMPLES", "IDM_VTON"]

IDM_VTON: dict[str, Any] = {
    "model": "cuuupid/idm-vton",
    "version": "c871bb9b046607b680449ecbae55fd8c6d945e0a1948644bf2361b3d021d3ff4",
    "name": "IDM-VTON (Replicate)",
    "description": "IDM-VTON, a diffusion try-on model, hosted on Replicate: one garment.",
    "credits": 3,
    "person": "human_img",
    "garment": "garm_img",
    "category": "category",
    "categories": {"tops": "upper_body", "bottoms": "lower_body", "one-pieces": "dresses"},
    "prompt": "garment_des",
    "seed": "seed",
    "inputs": {"steps": 30, "crop": False},
    "options": {
        "steps": {
            "type": "integer",
            "minimum": 1,
            "maximum": 40,
            "description": "Denoising steps (30 unless set).",
        },
        "crop": {"type": "boolean", "description": "Crop the person photo to 3:4 first."},
    },
}

CATVTON_FLUX: dict[str, Any] = {
    "model": "mmezhov/catvton-flux",
    "version": "cc41d1b963023987ed2ddf26e9264efcc96ee076640115c303f95b0010f6a958",
    "name": "CatVTON-Flux (Replicate)",
    "description": "CatVTON on FLUX.1 Fill, hosted on Replicate: one garment, any category.",
    "credits": 5,
    "person": "image",
    "garment": "garment",
    "seed": "seed",
    "inputs": {"num_steps": 30},
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "replicate/idm-vton": IDM_VTON,
    "replicate/catvton-flux": CATVTON_FLUX,
}
