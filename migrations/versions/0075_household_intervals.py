"""household intervals: the history of each household's visit cadence

Revision ID: 0075
Revises: 0060
Create Date: 2026-11-23 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0075'
down_revision: str | None = '0060'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('household_intervals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('interval_days', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_household_intervals_household_id_households'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household_intervals'))
    )
    with op.batch_alter_table('household_intervals', schema=None) as batch_op:
        batch_op.create_index('ix_household_intervals_household', ['household_id', 'valid_from', 'interval_days'], unique=False)
        batch_op.create_index('ix_household_intervals_valid_from', ['valid_from', 'household_id'], unique=False)

    # Backfill: every household's current interval, in force since it was filed (the history
    # before this revision is not known).
    op.execute(
        'INSERT INTO household_intervals (household_id, interval_days, valid_from) '
        'SELECT id, interval_days, created_at FROM households'
    )


def downgrade() -> None:
    with op.batch_alter_table('household_intervals', schema=None) as batch_op:
        batch_op.drop_index('ix_household_intervals_valid_from')
        batch_op.drop_index('ix_household_intervals_household')

    op.drop_table('household_intervals')
