"""The plugin contract every provider passes (``tryon_core.testing.contract``), for fal."""

from __future__ import annotations

from typing import Any, ClassVar

import tryon_fal.plugin

from tryon_core.testing import ProviderContract

KEY = "fal-key-id:fal-key-secret"  # fal keys are key_id:key_secret


class TestFalContract(ProviderContract):
    plugin = tryon_fal.plugin
    provider = "fal"
    config: ClassVar[dict[str, Any]] = {"api_key": KEY, "poll_interval": 0.05}
    fake_options: ClassVar[dict[str, Any]] = {"api_key": KEY}
    submission = ("POST", "/fal-ai/flux-pro/kontext/multi")
