"""The plugin contract every provider passes (``tryon_core.testing.contract``), for Replicate,
with the README's example models configured."""

from __future__ import annotations

from typing import Any, ClassVar

import tryon_replicate.plugin
from tryon_replicate.examples import EXAMPLES
from tryon_replicate.fake import TEST_TOKEN
from tryon_replicate.fake_models import OUTFIT_ENTRY

from tryon_core.testing import ProviderContract


class TestReplicateContract(ProviderContract):
    plugin = tryon_replicate.plugin
    provider = "replicate"
    config: ClassVar[dict[str, Any]] = {
        "api_token": TEST_TOKEN,
        "poll_interval": 0.02,
        "models": {**EXAMPLES, "tryon-test/outfit": OUTFIT_ENTRY},
    }
    submission = ("POST", "/v1/predictions")  # idm-vton, the first model, runs by version
