"""tryon-openai passes the plugin contract kit against its own fake."""

from __future__ import annotations

from typing import Any, ClassVar

import tryon_openai.plugin
from tryon_openai.fake import TEST_API_KEY

from tryon_core.testing import ProviderContract


class TestOpenAIContract(ProviderContract):
    plugin: ClassVar[object] = tryon_openai.plugin
    provider: ClassVar[str] = "openai"
    config: ClassVar[dict[str, Any]] = {"api_key": TEST_API_KEY}
    base_path = "/v1"  # OpenAI's base_url includes the API version
