"""tryon-openrouter passes the plugin contract kit against its own fake, with two configured
models: a text-and-image model (Gemini) and an image-only one (FLUX.2)."""

from __future__ import annotations

from typing import Any, ClassVar

import tryon_openrouter.plugin
from tryon_openrouter.fake import TEST_API_KEY

from tryon_core.plugin import TaskFailed
from tryon_core.testing import FaultExpectation, ProviderContract

MODELS: dict[str, dict[str, Any]] = {
    "openrouter/gemini-2.5-flash-image": {
        "upstream": "google/gemini-2.5-flash-image",
        "credits": 5,
    },
    "openrouter/flux-2-pro": {
        "upstream": "black-forest-labs/flux.2-pro",
        "credits": 4,
        "modalities": ["image"],
        "max_garments": 1,
        "image_config": ["aspect_ratio", "image_size"],
    },
}


class TestOpenRouterContract(ProviderContract):
    plugin: ClassVar[object] = tryon_openrouter.plugin
    provider: ClassVar[str] = "openrouter"
    config: ClassVar[dict[str, Any]] = {"api_key": TEST_API_KEY, "models": MODELS}
    base_path = "/api/v1"  # OpenRouter's base_url includes the API's path
    # a provider failing while it generates comes back as HTTP 200 with choices[0].error
    faults: ClassVar[dict[str, FaultExpectation]] = {"task_failed": FaultExpectation(TaskFailed)}
