"""key scopes, operator accounts and demo sessions

Revision ID: 0005
Revises: 0004

Every key gets a scope; keys that exist become ``inference`` keys (what they were used for:
try-ons, jobs, files, credits). Managing keys now takes a ``management`` key, which
``tryon keys create --scope management`` makes. Accounts get an ``operator`` flag (off).
Demo sessions are short-lived browser tokens bound to origins and a credit cap; a generation
a demo session opened names it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("scope", sa.String(length=16), nullable=False, server_default="inference"),
    )
    op.add_column(
        "accounts",
        sa.Column("operator", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("generations", sa.Column("demo_session_id", sa.String(length=40), nullable=True))
    op.create_index(op.f("ix_generations_demo_session_id"), "generations", ["demo_session_id"])
    op.create_table(
        "demo_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("allowed_origins", sa.JSON(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=True),
        sa.Column("max_credits", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("spent", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.CheckConstraint(
            "reserved >= 0 AND spent >= 0", name=op.f("ck_demo_sessions_credits_not_negative")
        ),
        sa.CheckConstraint(
            "reserved + spent <= max_credits", name=op.f("ck_demo_sessions_within_cap")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_demo_sessions_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_sessions")),
        sa.UniqueConstraint("hash", name=op.f("uq_demo_sessions_hash")),
    )
    op.create_index(op.f("ix_demo_sessions_account_id"), "demo_sessions", ["account_id"])
    op.create_table(
        "demo_session_origins",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["demo_sessions.id"],
            name=op.f("fk_demo_session_origins_session_id_demo_sessions"),
        ),
        sa.PrimaryKeyConstraint("session_id", "origin", name=op.f("pk_demo_session_origins")),
    )
    op.create_index(op.f("ix_demo_session_origins_origin"), "demo_session_origins", ["origin"])


def downgrade() -> None:
    op.drop_index(op.f("ix_demo_session_origins_origin"), table_name="demo_session_origins")
    op.drop_table("demo_session_origins")
    op.drop_index(op.f("ix_demo_sessions_account_id"), table_name="demo_sessions")
    op.drop_table("demo_sessions")
    op.drop_index(op.f("ix_generations_demo_session_id"), table_name="generations")
    with op.batch_alter_table("generations") as batch_op:
        batch_op.drop_column("demo_session_id")
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("operator")
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("scope")
