"""post-processing image columns: quality score and measures, pHash, near-duplicate link, sidecar key

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 14:30:37.321531
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quality_score', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('quality_metrics', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('phash', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('duplicate_of', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('sidecar_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f('ix_images_phash'), ['phash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_images_phash'))
        batch_op.drop_column('sidecar_key')
        batch_op.drop_column('duplicate_of')
        batch_op.drop_column('phash')
        batch_op.drop_column('quality_metrics')
        batch_op.drop_column('quality_score')
