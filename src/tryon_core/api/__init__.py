"""The HTTP edge: routes, the error envelope, the app factory."""

from tryon_core.api.app import create_app

__all__ = ["create_app"]
