"""State: tables, the engine factory and migrations."""

from tryon_core.db.engine import Database, create_database
from tryon_core.db.schema import metadata

__all__ = ["Database", "create_database", "metadata"]
