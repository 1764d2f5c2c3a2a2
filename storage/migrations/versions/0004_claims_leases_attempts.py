"""claims with leases, attempt counts and failure kinds on images; reservations linked to their claim

Revision ID: 0004
Revises: 0006
Create Date: 2026-11-29 00:50:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0004'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('run_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('attempt_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('failure_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.create_index(batch_op.f('ix_images_lease_expires_at'), ['lease_expires_at'], unique=False)
    with op.batch_alter_table('budget_ledger', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_pk', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('run_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_budget_ledger_image_pk'), ['image_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_budget_ledger_run_key'), ['run_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('budget_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_budget_ledger_run_key'))
        batch_op.drop_index(batch_op.f('ix_budget_ledger_image_pk'))
        batch_op.drop_column('run_key')
        batch_op.drop_column('image_pk')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_images_lease_expires_at'))
        batch_op.drop_column('failure_kind')
        batch_op.drop_column('attempt_count')
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('run_key')
