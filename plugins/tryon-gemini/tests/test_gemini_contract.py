"""The plugin contract every provider passes, run against the Gemini fake."""

from __future__ import annotations

from typing import Any, ClassVar

import tryon_gemini.plugin

from tryon_core.plugin import (
    RateLimited,
)
from tryon_core.testing import FaultExpectation, ProviderContract


class TestGeminiContract(ProviderContract):
    plugin: ClassVar[object] = tryon_gemini.plugin
    provider: ClassVar[str] = "gemini"
    config: ClassVar[dict[str, Any]] = {"api_key": "test-key"}
    fake_options: ClassVar[dict[str, Any]] = {"api_key": "test-key"}
    # every fault the fake renders becomes what STANDARD_FAULTS says, except:
    faults: ClassVar[dict[str, FaultExpectation]] = {
        "quota": FaultExpectation(RateLimited),  # 429 QuotaFailure without RetryInfo
    }
