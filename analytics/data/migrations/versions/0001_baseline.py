"""Baseline: the schema of the release before migrations (schools, metrics, discipline, incidents,
improvement cycles, metric definitions, import history, data version, shared links).

Frozen: written out in full so later changes to `schema.py` never change what this revision creates.
A database made by that release has exactly these tables and is stamped with this revision.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "discipline",
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("school_year", sa.Integer(), nullable=False),
        sa.Column("student_group", sa.String(length=16), nullable=False),
        sa.Column("enrolled", sa.Integer(), nullable=False),
        sa.Column("students_suspended", sa.Integer(), nullable=True),
        sa.Column("students_iss", sa.Integer(), nullable=True),
        sa.Column("students_oss", sa.Integer(), nullable=True),
        sa.Column("students_expelled", sa.Integer(), nullable=True),
        sa.Column("oss_days", sa.Float(), nullable=True),
        sa.Column("incidents", sa.Integer(), nullable=True),
        sa.Column("law_referrals", sa.Integer(), nullable=True),
        sa.Column("restorative_conferences", sa.Integer(), nullable=True),
        sa.UniqueConstraint("school_id", "school_year", "student_group", name="uq_discipline_key"),
    )
    op.create_index("ix_discipline_year", "discipline", ["school_year", "student_group"], unique=False)
    op.create_table(
        "imports",
        sa.Column("import_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("rows_skipped", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("import_id"),
    )
    op.create_table(
        "improvement_cycles",
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("change_idea", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.UniqueConstraint("school_id", "metric", "start_date", "change_idea", name="uq_improvement_cycles_key"),
    )
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("incident_date", sa.Date(), nullable=False),
        sa.Column("student_key", sa.Text(), nullable=False),
        sa.Column("race", sa.String(length=16), nullable=True),
        sa.Column("farms", sa.Boolean(), nullable=True),
        sa.Column("eml", sa.Boolean(), nullable=True),
        sa.Column("swd", sa.Boolean(), nullable=True),
        sa.Column("gender", sa.String(length=32), nullable=True),
        sa.Column("offense_category", sa.Text(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("days_removed", sa.Float(), nullable=True),
        sa.UniqueConstraint("incident_id", name="uq_incidents_key"),
    )
    op.create_index("ix_incidents_school_date", "incidents", ["school_id", "incident_date"], unique=False)
    op.create_table(
        "metric_definitions",
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("higher_is_better", sa.Boolean(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.UniqueConstraint("metric", name="uq_metric_definitions_key"),
    )
    op.create_table(
        "metrics",
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("school_year", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("student_group", sa.String(length=16), nullable=False),
        sa.Column("numerator", sa.Integer(), nullable=True),
        sa.Column("denominator", sa.Integer(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("target", sa.Float(), nullable=True),
        sa.UniqueConstraint("school_id", "school_year", "metric", "student_group", name="uq_metrics_key"),
    )
    op.create_index("ix_metrics_year_metric_group", "metrics", ["school_year", "metric", "student_group"], unique=False)
    op.create_table(
        "schools",
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("school_name", sa.Text(), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("cluster", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("enrollment", sa.Integer(), nullable=True),
        sa.Column("rp_start_year", sa.Integer(), nullable=True),
        sa.Column("title1", sa.Boolean(), nullable=True),
        sa.UniqueConstraint("school_id", name="uq_schools_key"),
    )
    op.create_index("ix_schools_cluster", "schools", ["cluster"], unique=False)
    op.create_table(
        "shares",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("view", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("times_opened", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("token_id"),
    )


def downgrade() -> None:
    op.drop_table("shares")
    op.drop_index("ix_schools_cluster", table_name="schools")
    op.drop_table("schools")
    op.drop_index("ix_metrics_year_metric_group", table_name="metrics")
    op.drop_table("metrics")
    op.drop_table("metric_definitions")
    op.drop_index("ix_incidents_school_date", table_name="incidents")
    op.drop_table("incidents")
    op.drop_table("improvement_cycles")
    op.drop_table("imports")
    op.drop_index("ix_discipline_year", table_name="discipline")
    op.drop_table("discipline")
    op.drop_table("data_version")
