"""The tables. Money columns are integers; every balance change has a ledger row.

Invariants (kept by :mod:`tryon_core.billing`, checked by tests):
``accounts.balance == sum(ledger.amount)`` and ``accounts.reserved == sum(ledger.reserved_delta)``
per account, and neither is ever negative. An account holds at most ``MAX_CREDITS`` (balance and
reserved together) and no ledger row moves more: CHECK constraints on PostgreSQL, triggers with the
same conditions on SQLite (migration 0004, which says why).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
)

from tryon_core.amounts import MAX_CREDITS

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = DateTime(timezone=True)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("balance", BigInteger, nullable=False, default=0),
    Column("reserved", BigInteger, nullable=False, default=0),
    Column("created_at", Timestamp, nullable=False),
    Column("operator", Boolean, nullable=False, server_default=false()),
    CheckConstraint("balance >= 0", name="balance_not_negative"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint(f"balance + reserved <= {MAX_CREDITS}", name="holdings_within_max"),
    # generations reserved and not yet settled, all keys and the console (migration 0007)
    Column("active_generations", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("active_generations >= 0", name="active_generations_not_negative"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(20), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("created_at", Timestamp, nullable=False),
    Column("last_used_at", Timestamp, nullable=True),
    Column("revoked_at", Timestamp, nullable=True),
    Column("scope", String(16), nullable=False, server_default="inference"),
    # limits (migration 0007, tryon_core.key_limits): a credit limit per period, held like a
    # demo session's cap (``limit_used`` = reserved and charged in the period starting at
    # ``limit_period_start``), and the key's own rate and concurrency limits
    Column("credit_limit", BigInteger, nullable=True),
    Column("limit_reset", String(8), nullable=False, server_default="none"),
    Column("limit_used", BigInteger, nullable=False, server_default="0"),
    Column("limit_period_start", Timestamp, nullable=True),
    Column("requests_per_minute", Integer, nullable=True),
    Column("concurrent_generations", Integer, nullable=True),
    Column("active_generations", BigInteger, nullable=False, server_default="0"),
    CheckConstraint(
        f"credit_limit IS NULL OR credit_limit BETWEEN 0 AND {MAX_CREDITS}",
        name="credit_limit_within_max",
    ),
    CheckConstraint(
        "limit_reset IN ('none', 'daily', 'weekly', 'monthly')", name="limit_reset_known"
    ),
    CheckConstraint(f"limit_used BETWEEN 0 AND {MAX_CREDITS}", name="limit_used_within_max"),
    CheckConstraint("active_generations >= 0", name="active_generations_not_negative"),
)

demo_sessions = Table(
    "demo_sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("allowed_origins", JSON, nullable=False),
    Column("models", JSON, nullable=True),
    Column("max_credits", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False, default=0),
    Column("spent", BigInteger, nullable=False, default=0),
    Column("created_by", String(40), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
    CheckConstraint("reserved >= 0 AND spent >= 0", name="credits_not_negative"),
    CheckConstraint("reserved + spent <= max_credits", name="within_cap"),
)

demo_session_origins = Table(
    "demo_session_origins",
    metadata,
    Column("session_id", String(40), ForeignKey("demo_sessions.id"), nullable=False),
    Column("origin", String(300), nullable=False, index=True),
    PrimaryKeyConstraint("session_id", "origin"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reserved_delta", BigInteger, nullable=False),
    Column("generation_id", String(40), nullable=True, index=True),
    Column("note", String(200), nullable=False, default=""),
    Column("created_at", Timestamp, nullable=False),
    CheckConstraint("kind IN ('grant', 'reserve', 'capture', 'release')", name="kind_known"),
    CheckConstraint(f"amount BETWEEN -{MAX_CREDITS} AND {MAX_CREDITS}", name="amount_within_max"),
    CheckConstraint(
        f"reserved_delta BETWEEN -{MAX_CREDITS} AND {MAX_CREDITS}", name="reserved_delta_within_max"
    ),
)

generations = Table(
    "generations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("key_id", String(40), nullable=True),
    Column("demo_session_id", String(40), nullable=True, index=True),
    Column("status", String(16), nullable=False),
    Column("route", String(16), nullable=False),
    Column("request", JSON, nullable=False),
    Column("model", String(120), nullable=True),
    Column("credits_reserved", BigInteger, nullable=False, default=0),
    Column("credits_charged", BigInteger, nullable=False, default=0),
    Column("settled", Boolean, nullable=False, default=False),
    Column("error", JSON, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("completed_at", Timestamp, nullable=True),
    # async jobs: what the worker needs to run (or resume) the job without the client
    Column("mode", String(8), nullable=False, server_default="sync"),
    Column("candidates", JSON, nullable=True),
    Column("inputs", JSON, nullable=True),
    Column("deadline_at", Timestamp, nullable=True),
    Column("lease_owner", String(40), nullable=True),
    Column("lease_until", Timestamp, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Column("progress", JSON, nullable=True),
    Column("webhook_url", Text, nullable=True),
    # its reservation counted it against the limits (migration 0007): it holds a place among
    # its key's and account's active generations until settled, and its key's credit limit
    # gets back what is released if the key's period still began at or before ``created_at``
    Column("counted", Boolean, nullable=False, server_default=false()),
    Index("ix_generations_account_created", "account_id", "created_at"),
    Index("ix_generations_key_created", "key_id", "created_at"),
    Index("ix_generations_created", "created_at"),
    Index("ix_generations_status", "status"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("generation_id", String(40), ForeignKey("generations.id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("model", String(120), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("task_id", String(200), nullable=True),
    Column("error_type", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("provider_code", String(64), nullable=True),
    Column("upstream_message", Text, nullable=True),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp, nullable=True),
    # the client's options this attempt's model took and left: {"applied": [...], "dropped": [...]}
    Column("options", Text, nullable=True),
)

files = Table(
    "files",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("generation_id", String(40), nullable=True, index=True),
    Column("kind", String(16), nullable=False),
    Column("storage_key", String(300), nullable=False),
    Column("content_type", String(40), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False, index=True),
)

webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("account_id", String(40), ForeignKey("accounts.id"), primary_key=True),
    Column("secret", String(100), nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("generation_id", String(40), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("event", String(32), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Timestamp, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("delivered_at", Timestamp, nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("route", String(16), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("generation_id", String(40), nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("response_headers", JSON, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False, index=True),
    PrimaryKeyConstraint("account_id", "key"),
)

# The web console: sessions (a cookie holds the token; only its SHA-256 is kept) and one-time
# sign-in links (``tryon console link``). See tryon_core.console_sessions.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("key_id", String(40), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False, index=True),
    Column("ended_at", Timestamp, nullable=True),
)

console_links = Table(
    "console_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False, index=True),
    Column("used_at", Timestamp, nullable=True),
)
