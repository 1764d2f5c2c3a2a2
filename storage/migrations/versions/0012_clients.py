"""clients: the client (brand) of each image and of each budget reservation

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_images_client'), ['client'], unique=False)
    with op.batch_alter_table('budget_ledger', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_budget_ledger_client'), ['client'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('budget_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_budget_ledger_client'))
        batch_op.drop_column('client')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_images_client'))
        batch_op.drop_column('client')
