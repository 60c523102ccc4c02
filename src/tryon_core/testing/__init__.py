"""Test helpers for tryon-core and for plugin authors."""

from tryon_core.testing.scripted import ScriptedProvider

__all__ = ["ScriptedProvider"]
