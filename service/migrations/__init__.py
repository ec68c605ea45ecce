"""Alembic migrations of the gallery database, one chain for both backends (each step branches on the dialect)."""
