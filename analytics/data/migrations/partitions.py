"""What more than one revision does to the year partitions of a table on PostgreSQL (0008, 0010, 0014, 0015)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def name_partition_indexes(conn: Connection, table: str) -> None:
    """Name each partition's index after the parent's index with the partition's year (`..._y2024`), as
    imports name the indexes of a new year's partition: PostgreSQL names those it builds on partitions itself.
    An index named so already keeps its name (a revision that rebuilds one index of several)."""
    children = conn.execute(sa.text(
        "SELECT child.relname, parent.relname, t.relname FROM pg_inherits h "
        "JOIN pg_class child ON child.oid = h.inhrelid JOIN pg_class parent ON parent.oid = h.inhparent "
        "JOIN pg_index x ON x.indexrelid = child.oid JOIN pg_class t ON t.oid = x.indrelid "
        "JOIN pg_inherits p ON p.inhrelid = t.oid WHERE p.inhparent = CAST(:t AS regclass)"), {"t": table}).all()
    for child, parent, partition in children:
        name = f"{parent}_{partition.rsplit('_', 1)[1]}"
        if child != name:
            conn.exec_driver_sql(f'ALTER INDEX "{child}" RENAME TO "{name}"')
