"""stats performance indexes; chat reports built by the statistics job

Revision ID: 0090
Revises: 0085
Create Date: 2026-11-23 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0090"
down_revision: str | None = "0085"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = sa.text(
    "kind IN ('accepted', 'assigned', 'rejected', 'duplicate', 'reported_in', 'escalated', "
    "'overdue', 'reopened', 'rated', 'closed')"
)


def upgrade() -> None:
    with op.batch_alter_table("stats_exports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="export")
        )
        batch_op.add_column(sa.Column("message_id", sa.Integer(), nullable=True))

    with op.batch_alter_table("issue_events", schema=None) as batch_op:
        batch_op.drop_index("ix_issue_events_report", sqlite_where=KINDS, postgresql_where=KINDS)
        batch_op.create_index(
            "ix_issue_events_report",
            ["issue_id", "at", "kind", "note"],
            unique=False,
            sqlite_where=KINDS,
            postgresql_where=KINDS,
        )

    with op.batch_alter_table("points_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_points_ledger_community_at")
        batch_op.create_index(
            "ix_points_ledger_place",
            ["community_id", "grid_id", "kind", "at", "points"],
            unique=False,
        )
        batch_op.create_index(
            "ix_points_ledger_awards", ["member_id", "kind", "at", "community_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("points_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_points_ledger_awards")
        batch_op.drop_index("ix_points_ledger_place")
        batch_op.create_index(
            "ix_points_ledger_community_at",
            ["community_id", "at", "grid_id", "kind", "points"],
            unique=False,
        )

    with op.batch_alter_table("issue_events", schema=None) as batch_op:
        batch_op.drop_index("ix_issue_events_report", sqlite_where=KINDS, postgresql_where=KINDS)
        batch_op.create_index(
            "ix_issue_events_report",
            ["issue_id", "kind", "at", "note"],
            unique=False,
            sqlite_where=KINDS,
            postgresql_where=KINDS,
        )

    with op.batch_alter_table("stats_exports", schema=None) as batch_op:
        batch_op.drop_column("message_id")
        batch_op.drop_column("kind")
