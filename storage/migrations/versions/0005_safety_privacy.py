"""content safety and privacy: NudeNet detections and the private-prompt flag on images

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-29 01:00:00

The prompt columns keep their type (VARCHAR without a length: unbounded on
PostgreSQL and SQLite), which holds Fernet ciphertexts (storage.crypto).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("safety", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("prompt_private", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("prompt_private")
        batch_op.drop_column("safety")
