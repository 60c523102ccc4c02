"""tryon-core provider plugin: kling."""
