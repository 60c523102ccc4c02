"""tryon-core provider plugin: fal."""
