"""Collections: every identity belongs to one named collection ('default' for those made before); on PostgreSQL
API keys may be scoped to collections (on SQLite the keys file gains that column itself) and changes name theirs."""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE identities ADD COLUMN collection TEXT NOT NULL DEFAULT 'default'")
    op.execute("CREATE INDEX identities_collection ON identities(collection)")
    if op.get_context().dialect.name == "postgresql":
        # NULL: every collection; else a JSON list of names.
        op.execute("ALTER TABLE api_keys ADD COLUMN collections TEXT")
        op.execute("ALTER TABLE gallery_changes ADD COLUMN collection TEXT NOT NULL DEFAULT 'default'")


def downgrade() -> None:
    raise NotImplementedError("collections are not undone: restore a backup instead")
