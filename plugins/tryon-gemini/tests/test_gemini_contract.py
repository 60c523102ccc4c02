"""The plugin contract every provider passes, run against the Gemini fake."""

from __future__ import annotations

from typing import Any, ClassVar

import tryon_gemini.plugin

from tryon_core.errors import (
    BadResponse,
    ContentRefused,
    InputRejected,
    NoImage,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from tryon_core.testing.contract import FaultExpectation, ProviderContract


class TestGeminiContract(ProviderContract):
    plugin: ClassVar[object] = tryon_gemini.plugin
    provider: ClassVar[str] = "gemini"
    config: ClassVar[dict[str, Any]] = {"api_key": "test-key"}
    fake_options: ClassVar[dict[str, Any]] = {"api_key": "test-key"}
    faults: ClassVar[dict[str, FaultExpectation]] = {
        "rate_limit": FaultExpectation(RateLimited, hint=True),  # RetryInfo.retryDelay
        "quota": FaultExpectation(RateLimited),  # 429 QuotaFailure without RetryInfo
        "server_error": FaultExpectation(ProviderUnavailable),
        "hang": FaultExpectation(ProviderTimeout),
        "malformed": FaultExpectation(BadResponse),
        "no_image": FaultExpectation(NoImage),
        "bad_image": FaultExpectation(BadResponse),
        "content_refused": FaultExpectation(ContentRefused),
        "invalid_input": FaultExpectation(InputRejected),
        "auth": FaultExpectation(ProviderMisconfigured),
        "slow_task": FaultExpectation(None),  # a slow synchronous answer is still an answer
    }
    # task_failed: a synchronous protocol has no task that could fail later (not injected)
