"""indexes for usage: a key's generations, and every generation by time

Revision ID: 0008
Revises: 0007

``GET /api/v1/key`` sums a key's charges (``usage_daily`` and the rest), an inference key pages
its own generations (``GET /api/v1/generations``), and ``tryon usage`` without ``--account``
reads one period of every account: each would read the whole table without these.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_generations_key_created", "generations", ["key_id", "created_at"])
    op.create_index("ix_generations_created", "generations", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_generations_created", table_name="generations")
    op.drop_index("ix_generations_key_created", table_name="generations")
