"""The improvement workspace (DESIGN §9): school goals, PDSA cycles and their custom measures, root causes,
walkthroughs, meeting dates, and the who/when history of every edit. Edited records carry a `version`
(optimistic concurrency) and who changed them last.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cycle_measures",
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("cycle_id", "date", name="uq_cycle_measures_key"),
    )
    op.create_table(
        "meetings",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("meeting_date", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("scope", "meeting_date", name="uq_meetings_key"),
    )
    op.create_table(
        "pdsa_cycles",
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("change_idea", sa.String(length=400), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("goal_id", sa.String(length=64), nullable=True),
        sa.Column("previous_cycle_id", sa.Text(), nullable=True),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("prediction", sa.Text(), nullable=True),
        sa.Column("plan_who", sa.Text(), nullable=True),
        sa.Column("plan_what", sa.Text(), nullable=True),
        sa.Column("plan_where", sa.Text(), nullable=True),
        sa.Column("plan_when", sa.Text(), nullable=True),
        sa.Column("measure", sa.Text(), nullable=True),
        sa.Column("do_notes", sa.Text(), nullable=True),
        sa.Column("study_result", sa.Text(), nullable=True),
        sa.Column("decision", sa.String(length=32), nullable=True),
        sa.Column("learning", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.UniqueConstraint("cycle_id", name="uq_pdsa_cycles_key"),
    )
    with op.batch_alter_table("pdsa_cycles", schema=None) as batch_op:
        batch_op.create_index("ix_pdsa_cycles_school", ["school_id"], unique=False)

    op.create_table(
        "root_causes",
        sa.Column("cause_id", sa.String(length=64), nullable=False),
        sa.Column("goal_id", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("whys", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.UniqueConstraint("cause_id", name="uq_root_causes_key"),
    )
    with op.batch_alter_table("root_causes", schema=None) as batch_op:
        batch_op.create_index("ix_root_causes_goal", ["goal_id"], unique=False)

    op.create_table(
        "school_goals",
        sa.Column("goal_id", sa.String(length=64), nullable=False),
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("student_group", sa.String(length=16), nullable=False),
        sa.Column("baseline_year", sa.Integer(), nullable=False),
        sa.Column("baseline_value", sa.Float(), nullable=False),
        sa.Column("target_year", sa.Integer(), nullable=False),
        sa.Column("target_value", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("interim_targets", sa.Text(), nullable=True),
        sa.Column("strategy", sa.Text(), nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("priority", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.UniqueConstraint("goal_id", name="uq_school_goals_key"),
    )
    with op.batch_alter_table("school_goals", schema=None) as batch_op:
        batch_op.create_index("ix_school_goals_school", ["school_id"], unique=False)

    op.create_table(
        "walkthroughs",
        sa.Column("visit_id", sa.String(length=64), nullable=False),
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("visitor", sa.Text(), nullable=True),
        sa.Column("focus", sa.Text(), nullable=True),
        sa.Column("look_fors", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("next_steps", sa.Text(), nullable=True),
        sa.Column("shareable", sa.Boolean(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.UniqueConstraint("visit_id", name="uq_walkthroughs_key"),
    )
    with op.batch_alter_table("walkthroughs", schema=None) as batch_op:
        batch_op.create_index("ix_walkthroughs_school", ["school_id", "visit_date"], unique=False)

    op.create_table(
        "workspace_history",
        sa.Column("change_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("changed_by", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("change_id"),
    )
    with op.batch_alter_table("workspace_history", schema=None) as batch_op:
        batch_op.create_index("ix_workspace_history_record", ["table_name", "record_id"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("workspace_history", schema=None) as batch_op:
        batch_op.drop_index("ix_workspace_history_record")

    op.drop_table("workspace_history")
    with op.batch_alter_table("walkthroughs", schema=None) as batch_op:
        batch_op.drop_index("ix_walkthroughs_school")

    op.drop_table("walkthroughs")
    with op.batch_alter_table("school_goals", schema=None) as batch_op:
        batch_op.drop_index("ix_school_goals_school")

    op.drop_table("school_goals")
    with op.batch_alter_table("root_causes", schema=None) as batch_op:
        batch_op.drop_index("ix_root_causes_goal")

    op.drop_table("root_causes")
    with op.batch_alter_table("pdsa_cycles", schema=None) as batch_op:
        batch_op.drop_index("ix_pdsa_cycles_school")

    op.drop_table("pdsa_cycles")
    op.drop_table("meetings")
    op.drop_table("cycle_measures")
