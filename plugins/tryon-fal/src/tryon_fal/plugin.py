"""Registers the fal provider with tryon-core (work in progress: registers nothing yet)."""
