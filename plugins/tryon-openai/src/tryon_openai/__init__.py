"""tryon-core provider plugin: openai."""
