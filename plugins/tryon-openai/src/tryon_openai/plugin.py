"""Registers the openai provider with tryon-core (work in progress: registers nothing yet)."""
