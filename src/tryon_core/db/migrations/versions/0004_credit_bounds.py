"""credit amounts stay within the maximum (10**12), so no sum of them overflows

Revision ID: 0004
Revises: 0003

PostgreSQL gets CHECK constraints. SQLite cannot add one without rebuilding the table, and
cannot rebuild ``accounts`` inside the migration's transaction while foreign keys from other
tables point at it, so there the same conditions are triggers, which also refuse a value that
is not an integer.

The bound is written out here, not imported: a migration says what it did when it ran. Rows
already past it (only the overflow this migration closes could make them) stop the upgrade with
a message naming the accounts; docs/billing.md ("The maximum") says how to repair them.
"""

import sqlalchemy as sa
from alembic import op

from tryon_core.errors import ConfigError

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_MAX = 10**12

# (table, constraint name, condition on {row}columns, columns that must hold integers)
_CHECKS = [
    (
        "accounts",
        "ck_accounts_holdings_within_max",
        f"{{row}}balance + {{row}}reserved <= {_MAX}",
        ("balance", "reserved"),
    ),
    (
        "ledger",
        "ck_ledger_amount_within_max",
        f"{{row}}amount BETWEEN -{_MAX} AND {_MAX}",
        ("amount",),
    ),
    (
        "ledger",
        "ck_ledger_reserved_delta_within_max",
        f"{{row}}reserved_delta BETWEEN -{_MAX} AND {_MAX}",
        ("reserved_delta",),
    ),
]


_LEDGER_ROW = f"{_CHECKS[1][2]} AND {_CHECKS[2][2]}"


def upgrade() -> None:
    _refuse_rows_past_the_bound()
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, name, condition, columns in _CHECKS:
        if not sqlite:
            op.create_check_constraint(op.f(name), table, condition.format(row=""))
            continue
        integers = " OR ".join(f"typeof(NEW.{column}) != 'integer'" for column in columns)
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER {name}_{event.lower()} BEFORE {event} ON {table} "
                f"WHEN {integers} OR NOT ({condition.format(row='NEW.')}) "
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


def _refuse_rows_past_the_bound() -> None:
    past = op.get_bind().execute(
        sa.text(
            # CASE compares each column first, so the sum is never computed past 2**63
            f"SELECT id FROM accounts WHERE CASE WHEN balance > {_MAX} OR reserved > {_MAX} "
            f"THEN 1 WHEN balance + reserved <= {_MAX} THEN 0 ELSE 1 END = 1 UNION "
            f"SELECT account_id FROM ledger WHERE NOT ({_LEDGER_ROW.format(row='')}) "
            "ORDER BY 1"
        )
    )
    accounts = [row[0] for row in past]
    if accounts:
        raise ConfigError(
            f"cannot apply migration 0004: {len(accounts)} account(s) hold or moved more than "
            f"{_MAX} credits ({', '.join(accounts[:5])}{', …' if len(accounts) > 5 else ''}); "
            "bring them under the maximum first, see docs/billing.md"
        )
