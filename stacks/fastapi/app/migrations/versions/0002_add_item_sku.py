"""Add items.sku, indexed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Expand, safe while release 0001 serves:
- the column is nullable with no default: PostgreSQL only updates the catalog (no table
  rewrite), and the running code, which never names it, keeps working;
- the index is built CONCURRENTLY, outside a transaction: writes to items go on during the
  build (a plain CREATE INDEX would block them for its whole duration).
A later contract step could make sku NOT NULL once every writer sets it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("items", sa.Column("sku", sa.String(length=64), nullable=True))
    with op.get_context().autocommit_block():
        # A failed concurrent build leaves an INVALID index behind: drop it before a rerun.
        op.create_index(op.f("ix_items_sku"), "items", ["sku"], postgresql_concurrently=True,
                        if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(op.f("ix_items_sku"), table_name="items", postgresql_concurrently=True,
                      if_exists=True)
    op.drop_column("items", "sku")
