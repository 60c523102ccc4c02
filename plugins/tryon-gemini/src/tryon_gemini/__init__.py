"""tryon-core provider plugin: gemini."""
