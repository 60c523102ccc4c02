"""Registers the gemini provider with tryon-core (work in progress: registers nothing yet)."""
