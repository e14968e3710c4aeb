"""Index the metrics by metric, group and year: pages sum one metric and group across the years in SQL.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_metrics_metric_group_year", "metrics", ["metric", "student_group", "school_year"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_metrics_metric_group_year", table_name="metrics")
