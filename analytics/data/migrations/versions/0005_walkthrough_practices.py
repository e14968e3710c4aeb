"""Walkthrough look-fors can name the professional-learning practice they observe (DESIGN §9-§10): a
`practices` column on `walkthroughs` (`look-for = PROGRAM: practice`), so level 4 of /learning can count
walkthroughs as implementation observations. Existing visits keep their rows with no tags.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("walkthroughs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("practices", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("walkthroughs", schema=None) as batch_op:
        batch_op.drop_column("practices")
