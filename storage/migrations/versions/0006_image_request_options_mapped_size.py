"""images: request options (a template's provider / model / LoRA pins, reference image, mask,
strength) and the size or aspect ratio actually asked of the model

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 01:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_options', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('mapped_size', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_column('mapped_size')
        batch_op.drop_column('request_options')
