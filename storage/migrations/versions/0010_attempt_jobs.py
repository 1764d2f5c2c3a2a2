"""attempt jobs: the provider's job id and the budget reservation of each paid call

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 08:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('reservation_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_attempts_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attempts_reservation_id'), ['reservation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempts_reservation_id'))
        batch_op.drop_index(batch_op.f('ix_attempts_job_id'))
        batch_op.drop_column('reservation_id')
        batch_op.drop_column('job_id')
