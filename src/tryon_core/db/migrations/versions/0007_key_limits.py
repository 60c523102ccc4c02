"""per-key credit limits, per-key rate limits and active generations

Revision ID: 0007
Revises: 0006

A key may get a credit limit that resets ``none``, ``daily``, ``weekly`` or ``monthly`` (UTC):
``limit_used`` holds what the key reserved and was charged in the period that began at
``limit_period_start``; settlement gives the released part back only if the generation was
made in that period. A key may also carry its own ``requests_per_minute`` and
``concurrent_generations``. Keys and accounts count their ``active_generations`` (reserved, not
yet settled); a generation notes that its reservation was ``counted``, so settlement gives its
place back exactly once. Keys and generations that exist have no limit and hold no place.

CHECKs as 0004 made them: constraints on PostgreSQL, triggers with the same conditions on SQLite
(which also refuse a value that is neither an integer nor null). The bound is written out, not imported.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_MAX = 10**12
_TS = sa.DateTime(timezone=True)

# (table, constraint name, condition on {row}columns, columns that must hold integers)
_CHECKS = [
    (
        "api_keys",
        "ck_api_keys_credit_limit_within_max",
        f"{{row}}credit_limit IS NULL OR {{row}}credit_limit BETWEEN 0 AND {_MAX}",
        ("credit_limit",),
    ),
    (
        "api_keys",
        "ck_api_keys_limit_reset_known",
        "{row}limit_reset IN ('none', 'daily', 'weekly', 'monthly')",
        (),
    ),
    (
        "api_keys",
        "ck_api_keys_limit_used_within_max",
        f"{{row}}limit_used BETWEEN 0 AND {_MAX}",
        ("limit_used",),
    ),
    (
        "api_keys",
        "ck_api_keys_active_generations_not_negative",
        "{row}active_generations >= 0",
        ("active_generations",),
    ),
    (
        "accounts",
        "ck_accounts_active_generations_not_negative",
        "{row}active_generations >= 0",
        ("active_generations",),
    ),
]


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("credit_limit", sa.BigInteger(), nullable=True))
    op.add_column(
        "api_keys",
        sa.Column("limit_reset", sa.String(length=8), nullable=False, server_default="none"),
    )
    op.add_column(
        "api_keys", sa.Column("limit_used", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("api_keys", sa.Column("limit_period_start", _TS, nullable=True))
    op.add_column("api_keys", sa.Column("requests_per_minute", sa.Integer(), nullable=True))
    op.add_column("api_keys", sa.Column("concurrent_generations", sa.Integer(), nullable=True))
    op.add_column(
        "api_keys",
        sa.Column("active_generations", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "accounts",
        sa.Column("active_generations", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "generations",
        sa.Column("counted", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, name, condition, columns in _CHECKS:
        if not sqlite:
            op.create_check_constraint(op.f(name), table, condition.format(row=""))
            continue
        integers = "".join(
            f"typeof(NEW.{column}) NOT IN ('integer', 'null') OR " for column in columns
        )
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER {name}_{event.lower()} BEFORE {event} ON {table} "
                f"WHEN {integers}NOT ({condition.format(row='NEW.')}) "
                f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
            )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, name, _, _ in reversed(_CHECKS):
        if not sqlite:
            op.drop_constraint(op.f(name), table, type_="check")
            continue
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER {name}_{event}")
    with op.batch_alter_table("generations") as batch_op:
        batch_op.drop_column("counted")
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("active_generations")
    with op.batch_alter_table("api_keys") as batch_op:
        for column in (
            "active_generations",
            "concurrent_generations",
            "requests_per_minute",
            "limit_period_start",
            "limit_used",
            "limit_reset",
            "credit_limit",
        ):
            batch_op.drop_column(column)
