"""Professional-learning tables (DESIGN §10): programmes, sessions, feedback, assessments, supports and
implementation observations.

Frozen: written out in full so later changes to `schema.py` never change what this revision creates.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("implementation",
    sa.Column("program", sa.String(length=64), nullable=False),
    sa.Column("school_id", sa.String(length=64), nullable=False),
    sa.Column("observed_on", sa.Date(), nullable=False),
    sa.Column("practice", sa.String(length=200), nullable=False),
    sa.Column("classrooms_observed", sa.Integer(), nullable=False),
    sa.Column("classrooms_using", sa.Integer(), nullable=False),
    sa.UniqueConstraint("program", "school_id", "observed_on", "practice", name="uq_implementation_key")
    )
    op.create_index("ix_implementation_school", "implementation", ["school_id", "observed_on"], unique=False)
    op.create_table("pl_assessments",
    sa.Column("program", sa.String(length=64), nullable=False),
    sa.Column("participant_key", sa.String(length=64), nullable=False),
    sa.Column("school_id", sa.String(length=64), nullable=True),
    sa.Column("pre_score", sa.Float(), nullable=True),
    sa.Column("post_score", sa.Float(), nullable=True),
    sa.UniqueConstraint("program", "participant_key", name="uq_pl_assessments_key")
    )
    op.create_table("pl_feedback",
    sa.Column("program", sa.String(length=64), nullable=False),
    sa.Column("session_id", sa.String(length=64), nullable=False),
    sa.Column("item", sa.String(length=200), nullable=False),
    sa.Column("response", sa.Integer(), nullable=False),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.UniqueConstraint("program", "session_id", "item", "response", name="uq_pl_feedback_key")
    )
    op.create_table("pl_programs",
    sa.Column("program", sa.String(length=64), nullable=False),
    sa.Column("program_name", sa.Text(), nullable=True),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("goal_metrics", sa.Text(), nullable=True),
    sa.Column("start_year", sa.Integer(), nullable=True),
    sa.UniqueConstraint("program", name="uq_pl_programs_key")
    )
    op.create_table("pl_sessions",
    sa.Column("program", sa.String(length=64), nullable=False),
    sa.Column("session_id", sa.String(length=64), nullable=False),
    sa.Column("session_date", sa.Date(), nullable=False),
    sa.Column("school_id", sa.String(length=64), nullable=True),
    sa.Column("participants", sa.Integer(), nullable=False),
    sa.Column("hours", sa.Float(), nullable=True),
    sa.UniqueConstraint("program", "session_id", name="uq_pl_sessions_key")
    )
    op.create_table("pl_support",
    sa.Column("program", sa.String(length=64), nullable=False),
    sa.Column("school_id", sa.String(length=64), nullable=False),
    sa.Column("school_year", sa.Integer(), nullable=False),
    sa.Column("item", sa.String(length=200), nullable=False),
    sa.Column("in_place", sa.String(length=32), nullable=False),
    sa.UniqueConstraint("program", "school_id", "school_year", "item", name="uq_pl_support_key")
    )


def downgrade() -> None:
    op.drop_table("pl_support")
    op.drop_table("pl_sessions")
    op.drop_table("pl_programs")
    op.drop_table("pl_feedback")
    op.drop_table("pl_assessments")
    op.drop_index("ix_implementation_school", table_name="implementation")
    op.drop_table("implementation")
