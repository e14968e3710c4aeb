"""Keep a second data version, bumped by imports only: row id=2 of `data_version`.

Row 1 stays the counter every write bumps; row 2 starts at row 1's
current value and from then on moves only with imported data, so results read from imported tables alone are
not made again after a saved plan, cycle or note. A database without row 1 (made but never written) gets
neither: `storage.create_schema` makes both. Code
older than this revision reads one row of the table and bumps row 1 only: stop it before migrating (README).

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("INSERT INTO data_version (id, version) SELECT 2, version FROM data_version "
               "WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM data_version WHERE id = 2)")


def downgrade() -> None:
    op.execute("DELETE FROM data_version WHERE id = 2")
