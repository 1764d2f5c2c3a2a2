"""publishing: review audit, versions of a slot, reservations, deliveries

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-29 01:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0009'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('previous_pk', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('review_note', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('published_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_images_previous_pk'), ['previous_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_images_published_at'), ['published_at'], unique=False)
        batch_op.create_foreign_key('fk_images_previous_pk_images', 'images', ['previous_pk'], ['id'])
    op.create_table('reservations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_pk', sa.Integer(), nullable=False),
    sa.Column('active_image_pk', sa.Integer(), nullable=True),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('for_date', sa.Date(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('reserved_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('released_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['image_pk'], ['images.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('active_image_pk', name='uq_reservation_active_image')
    )
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservations_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_reservations_for_date'), ['for_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_reservations_image_pk'), ['image_pk'], unique=False)
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_pk', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_pk'], ['images.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_image_pk'), ['image_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_status'))
        batch_op.drop_index(batch_op.f('ix_deliveries_image_pk'))
        batch_op.drop_index(batch_op.f('ix_deliveries_created_at'))
    op.drop_table('deliveries')
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reservations_image_pk'))
        batch_op.drop_index(batch_op.f('ix_reservations_for_date'))
        batch_op.drop_index(batch_op.f('ix_reservations_category'))
    op.drop_table('reservations')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_constraint('fk_images_previous_pk_images', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_images_published_at'))
        batch_op.drop_index(batch_op.f('ix_images_previous_pk'))
        batch_op.drop_column('published_at')
        batch_op.drop_column('review_note')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by')
        batch_op.drop_column('previous_pk')
        batch_op.drop_column('version')
