"""What the engine accepts, importable without numpy or OpenCV (the plugin's model spec needs
it when the provider is registered, enabled or not)."""

from __future__ import annotations

__all__ = ["MAX_GARMENTS"]

MAX_GARMENTS = 2
"""Garments worn at once."""
