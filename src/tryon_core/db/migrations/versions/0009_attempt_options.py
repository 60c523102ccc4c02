"""attempts.options: which of the client's per-model options each attempt's model took

Revision ID: 0009
Revises: 0008

A request's ``options`` reach only the models that declare them; each attempt keeps, as JSON
text ``{"applied": [...], "dropped": [...]}``, which its model received and which it did not
(NULL: the request sent no options).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("options", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("options")
