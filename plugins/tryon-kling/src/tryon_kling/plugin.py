"""Registers the kling provider with tryon-core (work in progress: registers nothing yet)."""
