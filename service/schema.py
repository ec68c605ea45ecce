"""Bring a gallery database to the newest schema with Alembic (run at start-up and by `dprime gallery migrate`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from service.gallery_url import GalleryLocation

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def upgrade_schema(location: GalleryLocation) -> None:
    """Apply every migration the database lacks (a no-op when it is current)."""
    # Imported here: SQLAlchemy and Alembic cost a second of import time that only start-up needs.
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    if location.sqlite_path is not None:
        location.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    # Alembic logs each step with its docstring at INFO; the service logs one line of its own instead.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(location.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several replicas may start at once: one migrates, the others wait and then find nothing to do.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('dprime.schema'))")
            config.attributes["connection"] = connection
            before = _revision(connection)
            command.upgrade(config, "head")
            after = _revision(connection)
    finally:
        engine.dispose()
    if before != after:
        logger.info("gallery schema of %s migrated from %s to %s", location.redacted(), before or "nothing", after)


def _revision(connection: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
