"""tryon-openai passes the plugin contract kit against its own fake."""

from __future__ import annotations

from typing import Any, ClassVar

import tryon_openai.plugin
from tryon_openai.fake import TEST_API_KEY

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
from tryon_core.provider import ProviderConfig, ProviderSpec
from tryon_core.testing.contract import FaultExpectation, ProviderContract


class TestOpenAIContract(ProviderContract):
    plugin: ClassVar[object] = tryon_openai.plugin
    provider: ClassVar[str] = "openai"
    config: ClassVar[dict[str, Any]] = {"api_key": TEST_API_KEY}
    faults: ClassVar[dict[str, FaultExpectation]] = {
        "rate_limit": FaultExpectation(RateLimited, hint=True),  # retry-after(-ms) headers
        "quota": FaultExpectation(ProviderMisconfigured),
        "server_error": FaultExpectation(ProviderUnavailable),
        "hang": FaultExpectation(ProviderTimeout),
        "malformed": FaultExpectation(BadResponse),
        "no_image": FaultExpectation(NoImage),
        "bad_image": FaultExpectation(BadResponse),
        "content_refused": FaultExpectation(ContentRefused),
        "invalid_input": FaultExpectation(InputRejected),
        "auth": FaultExpectation(ProviderMisconfigured),
        "slow_task": FaultExpectation(None),  # a slow synchronous answer still succeeds
        # task_failed: a synchronous call has no task; the fake does not offer it
    }

    def provider_config(self, spec: ProviderSpec, fake: Any, timeout: float) -> ProviderConfig:
        """OpenAI's base_url includes the API version: the fake's API is at ``{url}/v1``."""
        config = super().provider_config(spec, fake, timeout)
        config.base_url = f"{fake.url}/v1"
        return config
