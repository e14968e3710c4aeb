"""Drop the year-first metrics index on PostgreSQL, where each school year is a partition of its own (0008).

A year-only read there reads its partition whole, and a read of a year and a metric is served by the
metric-first index of that partition at the same cost; the year-first index served no read, and a new year's
file built it for every row (a third of a state's new-year import went to building it). On a
partition it orders rows exactly as the metric-first index does, the year being one value. SQLite keeps it:
its table is one B-tree, and a year-only read would scan every year without it.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEX = "ix_metrics_year_metric_group"
COLUMNS = "school_year, metric, student_group"


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":  # the partitions' indexes attached to it go with it
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {INDEX}")


def downgrade() -> None:
    """Each partition's index first, named after the parent's with the year as imports name theirs; the
    parent's index then takes them over instead of building them again."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    partitions = conn.execute(sa.text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST('metrics' AS regclass) ORDER BY 1")).scalars().all()
    for partition in partitions:
        year = partition.rsplit("_y", 1)[1]
        conn.exec_driver_sql(f"CREATE INDEX {INDEX}_y{int(year)} ON {partition} ({COLUMNS})")
    conn.exec_driver_sql(f"CREATE INDEX {INDEX} ON metrics ({COLUMNS})")
