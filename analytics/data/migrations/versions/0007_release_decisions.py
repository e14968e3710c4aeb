"""Keep each privacy release decision, so server processes and restarts read it instead of deciding again.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_decisions",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cells", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("release_decisions")
