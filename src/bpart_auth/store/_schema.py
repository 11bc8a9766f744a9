"""The tables behind `SQLStore` (SQLAlchemy Core), their constraint names, and time.

Every table is prefixed `bpart_` so it can live beside an app's own tables. On
SQLite, the tables looked up by their primary key are `WITHOUT ROWID` (clustered on
it): an identity lookup walks two B-trees instead of four, which keeps it flat up to
a million accounts (bench/bench_store.py). The
database, not Python, enforces every uniqueness rule of the store contract; each
constraint has a name so that a violation maps to the typed error it means
(`violated_constraint`).

Datetimes are stored in UTC. PostgreSQL keeps them in `timestamptz`; SQLite has no
time type, so they are stored as fixed-width text in UTC
(`2026-11-26 09:30:15.123456+00:00`), which sorts and compares correctly as text,
reads well in the `sqlite3` shell, and parses fast.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from bpart_auth.store._checks import MAX_LOOKUP_KEY_LENGTH
from bpart_auth.store.base import (
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SECRET_LENGTH,
    MAX_TEXT_LENGTH,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.types import TypeEngine

ID_LENGTH: Final = 36
"""Ids are `str(uuid.uuid4())`."""

PROVIDER_LENGTH: Final = 50
TOKEN_HASH_LENGTH: Final = 128
"""Room for a SHA-512 hex digest; ours are SHA-256 (64)."""

PURPOSE_LENGTH: Final = MAX_NAME_LENGTH

FACTOR_KIND_LENGTH: Final = 20
CODE_HASH_LENGTH: Final = 64
"""A recovery code is kept as the SHA-256 hex digest of its normalised form."""

# Constraint names: the keys `violated_constraint` returns.
ACCOUNT_EMAIL: Final = "uq_bpart_accounts_email"
IDENTITY_KEY: Final = "pk_bpart_identities"
IDENTITY_PROVIDER_PER_ACCOUNT: Final = "uq_bpart_identities_account_provider"
INVITE_HASH: Final = "uq_bpart_invites_token_hash"
RESET_HASH: Final = "pk_bpart_reset_tokens"
FACTOR_LOOKUP_KEY: Final = "uq_bpart_second_factors_lookup_key"
RECOVERY_CODE_KEY: Final = "pk_bpart_recovery_codes"
FOREIGN_KEY: Final = "foreign_key"
"""SQLite names no foreign key in its message; any foreign key maps to this."""

# SQLite reports a failed unique or primary key by its columns, not its name.
_SQLITE_UNIQUE_COLUMNS: Final = {
    "bpart_accounts.email": ACCOUNT_EMAIL,
    "bpart_identities.provider, bpart_identities.issuer, bpart_identities.subject": (IDENTITY_KEY),
    "bpart_identities.account_id, bpart_identities.provider": IDENTITY_PROVIDER_PER_ACCOUNT,
    "bpart_invites.token_hash": INVITE_HASH,
    "bpart_reset_tokens.token_hash": RESET_HASH,
    "bpart_second_factors.lookup_key": FACTOR_LOOKUP_KEY,
    "bpart_recovery_codes.account_id, bpart_recovery_codes.code_hash": RECOVERY_CODE_KEY,
}
_FOREIGN_KEYS: Final = frozenset(
    {
        "fk_bpart_identities_account_id",
        "fk_bpart_invites_invited_by",
        "fk_bpart_invites_account_id",
        "fk_bpart_reset_tokens_account_id",
        "fk_bpart_second_factors_account_id",
        "fk_bpart_recovery_codes_account_id",
    }
)


def dump_time(value: datetime, dialect_name: str) -> datetime | str:
    """A timezone-aware datetime as the database stores it (UTC)."""
    utc = value.astimezone(timezone.utc)
    if dialect_name == "sqlite":
        return utc.isoformat(" ", "microseconds")  # fixed width: sorts as it compares
    return utc


def load_time(value: datetime | str) -> datetime:
    """A stored datetime back as a timezone-aware UTC datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is timezone.utc:
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def load_optional_time(value: datetime | str | None) -> datetime | None:
    """`load_time`, passing None through."""
    return None if value is None else load_time(value)


class UTCDateTime(TypeDecorator[datetime]):
    """`timestamptz` on PostgreSQL, fixed-width UTC text on SQLite.

    Only parameters are converted here; rows are read by `load_time` (in the row
    functions of `_queries`), which serves the SQLAlchemy and the driver-level read
    paths alike.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:  # noqa: ANN401 - str or datetime, by dialect
        return None if value is None else dump_time(value, dialect.name)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


THROTTLE_KEY_LENGTH = 100  # ThrottleBackend keys are opaque ASCII of at most 100

metadata = MetaData()

accounts = Table(
    "bpart_accounts",
    metadata,
    Column("id", String(ID_LENGTH), nullable=False),
    Column("email", String(MAX_EMAIL_LENGTH), nullable=False),
    Column("name", String(MAX_NAME_LENGTH), nullable=False),
    Column("password_hash", String(MAX_TEXT_LENGTH), nullable=True),
    Column("disabled", Boolean(create_constraint=False), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("credentials_changed_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_bpart_accounts"),
    UniqueConstraint("email", name=ACCOUNT_EMAIL),
    sqlite_with_rowid=False,
)

identities = Table(
    "bpart_identities",
    metadata,
    Column("provider", String(PROVIDER_LENGTH), nullable=False),
    Column("issuer", String(MAX_TEXT_LENGTH), nullable=False),
    Column("subject", String(MAX_TEXT_LENGTH), nullable=False),
    Column("account_id", String(ID_LENGTH), nullable=False),
    Column("email", String(MAX_TEXT_LENGTH), nullable=True),
    Column("linked_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("provider", "issuer", "subject", name=IDENTITY_KEY),
    # Also the index behind `list_identities` (account_id leads).
    UniqueConstraint("account_id", "provider", name=IDENTITY_PROVIDER_PER_ACCOUNT),
    ForeignKeyConstraint(
        ["account_id"],
        ["bpart_accounts.id"],
        name="fk_bpart_identities_account_id",
        ondelete="CASCADE",
    ),
    sqlite_with_rowid=False,
)

invites = Table(
    "bpart_invites",
    metadata,
    # Insertion order, to list invitations created in the same microsecond in the
    # order they were made (`id` is random).
    Column("seq", Integer(), nullable=False, autoincrement=True),
    Column("id", String(ID_LENGTH), nullable=False),
    Column("email", String(MAX_EMAIL_LENGTH), nullable=False),
    Column("invited_by", String(ID_LENGTH), nullable=True),
    Column("token_hash", String(TOKEN_HASH_LENGTH), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("accepted_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("account_id", String(ID_LENGTH), nullable=True),
    Column("data", Text(), nullable=False),
    PrimaryKeyConstraint("seq", name="pk_bpart_invites"),
    UniqueConstraint("id", name="uq_bpart_invites_id"),
    UniqueConstraint("token_hash", name=INVITE_HASH),
    ForeignKeyConstraint(
        ["invited_by"],
        ["bpart_accounts.id"],
        name="fk_bpart_invites_invited_by",
        ondelete="SET NULL",
    ),
    ForeignKeyConstraint(
        ["account_id"],
        ["bpart_accounts.id"],
        name="fk_bpart_invites_account_id",
        ondelete="SET NULL",
    ),
    Index("ix_bpart_invites_email", "email"),
)

reset_tokens = Table(
    "bpart_reset_tokens",
    metadata,
    Column("token_hash", String(TOKEN_HASH_LENGTH), nullable=False),
    Column("account_id", String(ID_LENGTH), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("token_hash", name=RESET_HASH),
    ForeignKeyConstraint(
        ["account_id"],
        ["bpart_accounts.id"],
        name="fk_bpart_reset_tokens_account_id",
        ondelete="CASCADE",
    ),
    Index("ix_bpart_reset_tokens_account_id", "account_id"),
    sqlite_with_rowid=False,
)

used_once = Table(
    "bpart_used_once",
    metadata,
    Column("purpose", String(PURPOSE_LENGTH), nullable=False),
    Column("key", String(MAX_TEXT_LENGTH), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("purpose", "key", name="pk_bpart_used_once"),
    Index("ix_bpart_used_once_expires_at", "expires_at"),
    sqlite_with_rowid=False,
)

throttle_failures = Table(
    "bpart_throttle_failures",
    metadata,
    Column("id", Integer(), autoincrement=True),
    Column("key", String(THROTTLE_KEY_LENGTH), nullable=False),
    Column("failed_at", Double(), nullable=False),  # epoch seconds, the Throttle's clock
    PrimaryKeyConstraint("id", name="pk_bpart_throttle_failures"),
    Index("ix_bpart_throttle_failures_key_failed_at", "key", "failed_at"),
)

# Version 2: second factors and recovery codes. An account's rows go with it
# (ON DELETE CASCADE); disabling keeps them.

second_factors = Table(
    "bpart_second_factors",
    metadata,
    # Insertion order, to list factors added in the same microsecond in the order
    # they were added (`id` is random).
    Column("seq", Integer(), nullable=False, autoincrement=True),
    Column("id", String(ID_LENGTH), nullable=False),
    Column("account_id", String(ID_LENGTH), nullable=False),
    Column("kind", String(FACTOR_KIND_LENGTH), nullable=False),
    Column("name", String(MAX_NAME_LENGTH), nullable=False),
    Column("secret", String(MAX_SECRET_LENGTH), nullable=False),
    # A passkey's credential id, unique across the store; NULL (many allowed) for TOTP.
    Column("lookup_key", String(MAX_LOOKUP_KEY_LENGTH), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("seq", name="pk_bpart_second_factors"),
    UniqueConstraint("id", name="uq_bpart_second_factors_id"),
    UniqueConstraint("lookup_key", name=FACTOR_LOOKUP_KEY),
    ForeignKeyConstraint(
        ["account_id"],
        ["bpart_accounts.id"],
        name="fk_bpart_second_factors_account_id",
        ondelete="CASCADE",
    ),
    Index("ix_bpart_second_factors_account_id", "account_id"),
)

recovery_codes = Table(
    "bpart_recovery_codes",
    metadata,
    Column("account_id", String(ID_LENGTH), nullable=False),
    Column("code_hash", String(CODE_HASH_LENGTH), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("account_id", "code_hash", name=RECOVERY_CODE_KEY),
    ForeignKeyConstraint(
        ["account_id"],
        ["bpart_accounts.id"],
        name="fk_bpart_recovery_codes_account_id",
        ondelete="CASCADE",
    ),
    sqlite_with_rowid=False,
)

VERSION_2_TABLES: Final = (second_factors, recovery_codes)
"""The tables schema version 2 added; version 1 is every other table of `metadata`."""

schema_versions = Table(
    "bpart_schema_version",
    MetaData(),  # not in `metadata`: the migration runner owns it
    Column("version", Integer(), nullable=False, autoincrement=False),
    Column("applied_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("version", name="pk_bpart_schema_version"),
)


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the constraint an `IntegrityError` reports, when it is ours."""
    original = error.orig
    diagnostics = getattr(original, "diag", None)  # psycopg (and psycopg2)
    name = getattr(diagnostics, "constraint_name", None)
    if isinstance(name, str):
        return FOREIGN_KEY if name in _FOREIGN_KEYS else name
    message = str(original)
    if message.startswith("UNIQUE constraint failed: "):
        return _SQLITE_UNIQUE_COLUMNS.get(message.removeprefix("UNIQUE constraint failed: "))
    if message.startswith("FOREIGN KEY constraint failed"):
        return FOREIGN_KEY
    return None
