"""Versioned schema migrations for `SQLStore`: a small built-in runner.

The database records its schema version in `bpart_schema_version` (one row per
applied step). `upgrade` applies the missing steps in order, each in its own
transaction together with its version row, so a failed step leaves the previous
version intact. Only one process migrates at a time: the runner holds PostgreSQL's
transaction-scoped advisory lock, or SQLite's write lock (`BEGIN IMMEDIATE`), while
it reads the version and applies the next step; a second process waits, then finds
the work done. Running it again is a no-op.

Steps never change once released: step N always builds version N from version N-1.
Step 1 builds the version-1 tables from `_schema.metadata` (all but the ones a later
step added); step 2 adds the second-factor tables (`_schema.VERSION_2_TABLES`). The
first change to an existing table must copy that table's current definition into the
step that created it before editing `_schema`, then add a step with the `ALTER`s
(tests/test_store_sql.py checks that a database built by the steps has the tables
`_schema` describes).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Final

from sqlalchemy import func, insert, inspect, select, text

from bpart_auth.errors import ConfigurationError
from bpart_auth.store import _schema
from bpart_auth.store._engine import write_transaction

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from sqlalchemy.engine import Connection, Engine

    Step = Callable[[Connection], None]

# pg_advisory_xact_lock key: the first 8 bytes of sha256(b"bpart_auth schema"), signed.
_POSTGRESQL_LOCK_KEY: Final = 0x493F_9390_25F3_BBE2


def _create_version_1(connection: Connection) -> None:
    version_1 = [t for t in _schema.metadata.sorted_tables if t not in _schema.VERSION_2_TABLES]
    _schema.metadata.create_all(connection, tables=version_1, checkfirst=False)


def _add_second_factors(connection: Connection) -> None:
    """Version 2: `bpart_second_factors` and `bpart_recovery_codes` (new tables only)."""
    _schema.metadata.create_all(connection, tables=_schema.VERSION_2_TABLES, checkfirst=False)


STEPS: Final[Mapping[int, Step]] = {1: _create_version_1, 2: _add_second_factors}
"""Step N turns schema version N-1 into version N."""

SCHEMA_VERSION: Final = max(STEPS)
"""The schema version this bpart_auth reads and writes."""


def current_version(engine: Engine) -> int:
    """The database's schema version; 0 when it has none."""
    with engine.connect() as connection:
        return _read_version(connection)


def upgrade(engine: Engine, *, steps: Mapping[int, Step] = STEPS) -> int:
    """Apply the missing steps in order; the version reached (`max(steps)`).

    Raises:
        ConfigurationError: The database is newer than these steps.
    """
    target = max(steps)
    while True:
        with _locked_transaction(engine) as connection:
            _schema.schema_versions.create(connection, checkfirst=True)
            version = _read_version(connection)
            if version > target:
                raise newer_schema(version, target)
            if version == target:
                return version
            steps[version + 1](connection)
            connection.execute(
                insert(_schema.schema_versions).values(
                    version=version + 1, applied_at=datetime.now(timezone.utc)
                )
            )


def newer_schema(version: int, supported: int) -> ConfigurationError:
    """The error for a database migrated by a newer bpart_auth."""
    return ConfigurationError(
        detail=f"the database has bpart_auth schema version {version}, newer than the "
        f"{supported} this bpart_auth knows: upgrade the bpart-auth package"
    )


def require_current(version: int) -> None:
    """Refuse a database whose schema is not the one this bpart_auth uses, saying what to run.

    Raises:
        ConfigurationError: The schema is missing, older (run `bpart-auth migrate`) or
            newer (upgrade the package).
    """
    if version > SCHEMA_VERSION:
        raise newer_schema(version, SCHEMA_VERSION)
    if version < SCHEMA_VERSION:
        state = "has no bpart_auth tables yet" if version == 0 else f"is at version {version}"
        raise ConfigurationError(
            detail=f"the database {state}: run `bpart-auth migrate` on this URL first "
            f"(or call SQLStore.upgrade_schema(), or pass create_schema=True)"
        )


def _read_version(connection: Connection) -> int:
    if not inspect(connection).has_table(_schema.schema_versions.name):
        return 0
    version = connection.execute(select(func.max(_schema.schema_versions.c.version))).scalar()
    return int(version or 0)


@contextlib.contextmanager
def _locked_transaction(engine: Engine) -> Iterator[Connection]:
    with write_transaction(engine) as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRESQL_LOCK_KEY}
            )
        yield connection
