"""Keep results computed for one state of the data (`analytics.data.kept`), so restarts and other server
processes read them instead of computing them again.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kept_results",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("args", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("frame", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("kept_results")
