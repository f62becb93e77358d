"""task no-shows: when a shift's no-shows were settled, and which takes were no-shows

Revision ID: 0085
Revises: 0075
Create Date: 2026-11-24 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision: str = '0085'
down_revision: str | None = '0075'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('task_shifts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('no_shows_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_task_shifts_no_shows', ['no_shows_at', 'ends_at'], unique=False)

    with op.batch_alter_table('task_takes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('no_show_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('task_takes', schema=None) as batch_op:
        batch_op.drop_column('no_show_at')

    with op.batch_alter_table('task_shifts', schema=None) as batch_op:
        batch_op.drop_index('ix_task_shifts_no_shows')
        batch_op.drop_column('no_shows_at')
