"""installation: one row naming this database, written once when it is created or migrated

A run reads it when it starts and checks it at each transaction (storage.db): a database
deleted or replaced mid-run (another file, another server database) is detected at once.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:30:00
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        'installation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('installation_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(table, [{'id': 1, 'installation_id': uuid.uuid4().hex, 'created_at': datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table('installation')
