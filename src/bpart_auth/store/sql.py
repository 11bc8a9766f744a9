"""`SQLStore`: the whole `AccountStore` on SQLite or PostgreSQL, with SQLAlchemy 2 Core."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import uuid
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from bpart_auth import errors
from bpart_auth._email import normalize_email
from bpart_auth.models import Account, LinkedIdentity, SecondFactor
from bpart_auth.store import _sql_checks as check
from bpart_auth.store import _writes
from bpart_auth.store._checks import (
    MAX_LOOKUP_KEY_LENGTH,
    check_code_hashes,
    check_factor_kind,
    check_invite_data,
    check_lookup_key,
    check_name,
    check_secret,
    clean_email,
    disabling_needs_now,
    encodable,
    is_code_hash,
)
from bpart_auth.store._engine import (
    DirectRead,
    create_store_engine,
    execute,
    fetch,
    translated_errors,
    write_transaction,
)
from bpart_auth.store._migrations import current_version, require_current, upgrade
from bpart_auth.store._queries import (
    Reads,
    account_from_row,
    factor_from_row,
    identity_values,
    invite_from_row,
    link_from_row,
)
from bpart_auth.store._schema import PURPOSE_LENGTH, TOKEN_HASH_LENGTH, dump_time, used_once
from bpart_auth.store._sql_throttle import SQLThrottle
from bpart_auth.store.base import MAX_TEXT_LENGTH, SecondFactorRecord

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from datetime import datetime

    from sqlalchemy.engine import Connection, Engine

    from bpart_auth.models import Identity, Invite, ProviderName, SecondFactorKind

__all__ = ["SQLStore"]

_PURGE_EVERY: Final = 256
"""`consume_once` forgets expired keys on every this-many-th call."""


class SQLStore:
    """`AccountStore` and `SecondFactorRecords` in a SQLite file, or PostgreSQL at scale.

    The database enforces every invariant of the store contract (unique emails and
    identities, single-use tokens) with named constraints and conditional updates, so
    any number of threads, processes and app instances may share it. Every write is
    one transaction. A database that cannot be reached or fails (connecting, reading,
    writing, checking the schema) raises `StoreUnavailable`, never a driver error; its
    `detail` names the failure (host and port included, the password never).

    Constructing a store connects to nothing. The schema is created or upgraded by
    `upgrade_schema()` (once per deployment), or on first use with
    `create_schema=True`; a store whose schema is missing or out of date raises
    `ConfigurationError` on first use.

    Args:
        url: `sqlite:///path/to/auth.db` (a file; WAL mode) or
            `postgresql://user:password@host/db` (PostgreSQL through psycopg;
            `postgresql+psycopg://` and `postgres://`, as Heroku and many hosts give
            it, mean the same).
        engine_options: Extra `sqlalchemy.create_engine` arguments, merged over our
            defaults (for PostgreSQL: pool_size=10, max_overflow=40, pool_recycle=1800;
            add `"pool_pre_ping": True` behind connection-killing middleboxes).
        create_schema: Create or upgrade the tables on first use.

    Raises:
        ConfigurationError: A URL that is not a str or not a URL, any other scheme
            (`detail` lists the supported ones), an in-memory SQLite database, a
            missing driver or a bad engine option.

    Examples:
        >>> import tempfile, pathlib
        >>> from datetime import datetime, timezone
        >>> folder = tempfile.TemporaryDirectory()
        >>> store = SQLStore(f"sqlite:///{pathlib.Path(folder.name) / 'auth.db'}",
        ...                  create_schema=True)
        >>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> ann = store.create_account(email="Ann@Example.com", name="Ann",
        ...                            password_hash=None, now=now)
        >>> store.find_account_by_email("ANN@example.com") == ann
        True
        >>> store.schema_version()
        2
        >>> store.close(); folder.cleanup()
    """

    def __init__(
        self,
        url: str,
        *,
        engine_options: Mapping[str, Any] | None = None,
        create_schema: bool = False,
    ) -> None:
        self._engine: Engine = create_store_engine(url, engine_options)
        self._dialect = self._engine.dialect.name
        self._create_schema = create_schema
        self._ready = threading.Event()
        self._ready_lock = threading.Lock()
        self._calls = itertools.count(1)
        self._reads = Reads(self._engine)
        self._consume_statements: tuple[DirectRead, DirectRead] | None = None

    def __repr__(self) -> str:
        return f"SQLStore({self._engine.url.render_as_string(hide_password=True)!r})"

    # Schema and lifetime

    def schema_version(self) -> int:
        """The database's schema version (0 before the schema exists).

        Raises:
            StoreUnavailable: The database could not be reached.
        """
        with translated_errors(self._engine):
            return current_version(self._engine)

    def upgrade_schema(self) -> int:
        """Create the tables, or bring them to this version; a no-op when current.

        Safe to run from several processes at once (they take turns under a lock).

        Returns:
            The schema version now in the database.

        Raises:
            ConfigurationError: The database was migrated by a newer bpart_auth.
            StoreUnavailable: The database could not be reached or failed.
        """
        with translated_errors(self._engine):
            version = upgrade(self._engine)
        self._ready.set()
        return version

    def close(self) -> None:
        """Close every pooled connection; the store reconnects if used again."""
        self._engine.dispose()

    def throttle_backend(self) -> SQLThrottle:
        """Failed sign-ins counted in this database, for every app instance on it.

        `Auth` calls it when given no `throttle=`, so that the limits hold across
        processes and servers (`gunicorn -w 4` included) with no extra service.

        Returns:
            A `SQLThrottle` on this store.

        Examples:
            >>> import pathlib, tempfile
            >>> folder = tempfile.TemporaryDirectory()
            >>> store = SQLStore(f"sqlite:///{pathlib.Path(folder.name) / 'auth.db'}",
            ...                  create_schema=True)
            >>> type(store.throttle_backend()).__name__
            'SQLThrottle'
            >>> store.close(); folder.cleanup()
        """
        return SQLThrottle(self)

    # Accounts

    def create_account(
        self, *, email: str, name: str, password_hash: str | None, now: datetime
    ) -> Account:
        """See `AccountRecords.create_account`."""
        now = check.utc(now, "now")
        password_hash = check.password_hash(password_hash)
        account = Account(
            id=str(uuid.uuid4()),
            email=clean_email(email),
            name=encodable(check_name(name), "name"),
            has_password=password_hash is not None,
            created_at=now,
            credentials_changed_at=now,
        )
        with self._transaction() as connection:
            _writes.insert_account(connection, account, password_hash)
        return account

    def get_account(self, account_id: str) -> Account | None:
        """See `AccountRecords.get_account`."""
        if not check.id_shaped(account_id):
            return None
        rows = self._read(self._reads.account_by_id, id=account_id)
        return account_from_row(rows[0]) if rows else None

    def find_account_by_email(self, email: str) -> Account | None:
        """See `AccountRecords.find_account_by_email`."""
        rows = self._read(self._reads.account_by_email, email=normalize_email(email))
        return account_from_row(rows[0]) if rows else None

    def find_password_hash(self, email: str) -> tuple[Account, str | None] | None:
        """See `AccountRecords.find_password_hash`."""
        rows = self._read(self._reads.password_by_email, email=normalize_email(email))
        return (account_from_row(rows[0]), rows[0][-1]) if rows else None

    def update_account(
        self,
        account_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        disabled: bool | None = None,
        now: datetime | None = None,
    ) -> Account:
        """See `AccountRecords.update_account`."""
        changes: dict[str, Any] = {}
        if email is not None:
            changes["email"] = clean_email(email)
        if name is not None:
            changes["name"] = encodable(check_name(name), "name")
        if disabled is not None:
            changes["disabled"] = bool(disabled)
        disabled_at = None
        if disabled:
            if now is None:
                raise disabling_needs_now()
            disabled_at = check.utc(now, "now")
            changes["credentials_changed_at"] = disabled_at  # every session ends for good
        if not check.id_shaped(account_id):
            raise errors.AccountNotFound
        with self._transaction() as connection:
            account = _writes.update_account(connection, account_id, changes)
            if disabled_at is not None:
                _writes.kill_what_a_disabled_account_left(connection, account_id, disabled_at)
            return account

    def set_password_hash(
        self, account_id: str, *, password_hash: str | None, now: datetime
    ) -> Account:
        """See `AccountRecords.set_password_hash`."""
        password_hash = check.password_hash(password_hash)
        now = check.utc(now, "now")
        if not check.id_shaped(account_id):
            raise errors.AccountNotFound
        with self._transaction() as connection:
            return _writes.set_password(connection, account_id, password_hash, now)

    def replace_password_hash(self, account_id: str, *, old: str, new: str) -> bool:
        """See `AccountRecords.replace_password_hash`."""
        new = check.checked(new, "password_hash", MAX_TEXT_LENGTH)
        if not check.id_shaped(account_id) or not check.fits(old, MAX_TEXT_LENGTH):
            return False
        with self._transaction() as connection:
            return _writes.replace_password(connection, account_id, old=old, new=new)

    # Identities

    def link_identity(
        self, *, account_id: str, identity: Identity, email: str | None, now: datetime
    ) -> LinkedIdentity:
        """See `IdentityRecords.link_identity`."""
        check.check_identity_columns(identity)
        link = LinkedIdentity(
            account_id=account_id,
            identity=identity,
            email=check.identity_email(email),
            linked_at=check.utc(now, "now"),
        )
        if not check.id_shaped(account_id):
            raise errors.AccountNotFound
        existing = self._link_of(identity)
        if existing is None:
            try:
                with self._transaction() as connection:
                    _writes.stamp_credentials(connection, account_id, link.linked_at)
                    _writes.insert_link(connection, link)
            except _writes.IdentityTaken:
                # Linked meanwhile: by this account (a no-op after all) or by another.
                existing = self._link_of(identity)
                if existing is None:  # pragma: no cover - links are never deleted that fast
                    raise errors.IdentityAlreadyLinked(provider=identity.provider) from None
            else:
                return link
        if existing.account_id != account_id:
            raise errors.IdentityAlreadyLinked(provider=identity.provider)
        return existing

    def find_account_by_identity(self, identity: Identity) -> Account | None:
        """See `IdentityRecords.find_account_by_identity`."""
        if not check.identity_fits(identity):
            return None
        rows = self._read(self._reads.account_by_identity, **identity_values(identity))
        return account_from_row(rows[0]) if rows else None

    def list_identities(self, account_id: str) -> Sequence[LinkedIdentity]:
        """See `IdentityRecords.list_identities`."""
        if not check.id_shaped(account_id):
            return []
        rows = self._read(self._reads.identities_of, account_id=account_id)
        return [link_from_row(row) for row in rows]

    def unlink_identity(
        self, *, account_id: str, provider: ProviderName, now: datetime
    ) -> LinkedIdentity | None:
        """See `IdentityRecords.unlink_identity`."""
        now = check.utc(now, "now")
        if not check.id_shaped(account_id):
            raise errors.AccountNotFound
        with self._transaction() as connection:
            return _writes.unlink(connection, account_id, provider, now)

    # Invitations

    def create_invite(
        self,
        *,
        email: str,
        invited_by: str | None,
        token_hash: str,
        expires_at: datetime,
        data: Mapping[str, str],
        now: datetime,
    ) -> Invite:
        """See `InviteRecords.create_invite`."""
        stored_data = {
            encodable(key, "data"): encodable(value, "data")
            for key, value in check_invite_data(data).items()
        }
        values = {
            "id": str(uuid.uuid4()),
            "email": clean_email(email),
            "invited_by": invited_by,
            "token_hash": check.token_hash(token_hash),
            "created_at": check.utc(now, "now"),
            "expires_at": check.utc(expires_at, "expires_at"),
            "data": json.dumps(stored_data),
        }
        if invited_by is not None and not check.id_shaped(invited_by):
            raise errors.AccountNotFound
        with self._transaction() as connection:
            return _writes.create_invite(connection, values)

    def renew_invite(
        self, invite_id: str, *, token_hash: str, expires_at: datetime, now: datetime
    ) -> Invite:
        """See `InviteRecords.renew_invite`."""
        values = {
            "token_hash": check.token_hash(token_hash),
            "expires_at": check.utc(expires_at, "expires_at"),
            "created_at": check.utc(now, "now"),
        }
        if not check.id_shaped(invite_id):
            raise errors.InvalidInvite
        with self._transaction() as connection:
            return _writes.renew_invite(connection, invite_id, values)

    def find_invite(self, token_hash: str) -> Invite | None:
        """See `InviteRecords.find_invite`."""
        if not check.fits(token_hash, TOKEN_HASH_LENGTH):
            return None
        rows = self._read(self._reads.invite_by_token, token_hash=token_hash)
        return invite_from_row(rows[0]) if rows else None

    def accept_invite(
        self,
        *,
        token_hash: str,
        name: str,
        password_hash: str | None,
        identity: Identity | None,
        identity_email: str | None,
        now: datetime,
    ) -> Account:
        """See `InviteRecords.accept_invite`."""
        name = encodable(check_name(name), "name")
        password_hash = check.password_hash(password_hash)
        if identity is not None:
            check.check_identity_columns(identity)
        identity_email = check.identity_email(identity_email)
        now = check.utc(now, "now")
        if not check.fits(token_hash, TOKEN_HASH_LENGTH):
            raise errors.InvalidInvite
        with self._transaction() as connection:
            return _writes.accept_invite(
                connection,
                token_hash=token_hash,
                name=name,
                password_hash=password_hash,
                identity=identity,
                identity_email=identity_email,
                now=now,
            )

    def revoke_invite(self, invite_id: str, *, now: datetime) -> Invite:
        """See `InviteRecords.revoke_invite`."""
        now = check.utc(now, "now")
        if not check.id_shaped(invite_id):
            raise errors.InvalidInvite
        with self._transaction() as connection:
            return _writes.revoke_invite(connection, invite_id, now)

    def list_pending_invites(self, *, now: datetime) -> Sequence[Invite]:
        """See `InviteRecords.list_pending_invites`."""
        stored_now = dump_time(check.utc(now, "now"), self._dialect)
        rows = self._read(self._reads.pending_invites, now=stored_now)
        return [invite_from_row(row) for row in rows]

    # Password-reset tokens

    def add_reset_token(
        self, *, account_id: str, token_hash: str, expires_at: datetime, now: datetime
    ) -> None:
        """See `ResetTokenRecords.add_reset_token`."""
        values = {
            "token_hash": check.token_hash(token_hash),
            "account_id": account_id,
            "expires_at": check.utc(expires_at, "expires_at"),
            "created_at": check.utc(now, "now"),
        }
        if not check.id_shaped(account_id):
            raise errors.AccountNotFound
        with self._transaction() as connection:
            _writes.add_reset_token(connection, values)

    def find_account_by_reset_token(self, token_hash: str) -> Account | None:
        """See `ResetTokenRecords.find_account_by_reset_token`."""
        if not check.fits(token_hash, TOKEN_HASH_LENGTH):
            return None
        rows = self._read(self._reads.account_by_reset_token, token_hash=token_hash)
        return account_from_row(rows[0]) if rows else None

    def complete_reset(self, *, token_hash: str, password_hash: str, now: datetime) -> Account:
        """See `ResetTokenRecords.complete_reset`."""
        new_hash = check.password_hash(password_hash)
        now = check.utc(now, "now")
        if not check.fits(token_hash, TOKEN_HASH_LENGTH):
            raise errors.InvalidResetToken
        with self._transaction() as connection:
            return _writes.complete_reset(connection, token_hash, new_hash, now)

    # Second factors and recovery codes

    def add_second_factor(
        self,
        *,
        account_id: str,
        kind: SecondFactorKind,
        name: str,
        secret: str,
        lookup_key: str | None,
        now: datetime,
    ) -> SecondFactorRecord:
        """See `SecondFactorRecords.add_second_factor`."""
        record = SecondFactorRecord(
            factor=SecondFactor(
                id=str(uuid.uuid4()),
                account_id=account_id,
                kind=check_factor_kind(kind),
                name=check_name(name),
                created_at=check.utc(now, "now"),
            ),
            secret=check_secret(secret),
            lookup_key=check_lookup_key(lookup_key),
        )
        if not check.id_shaped(account_id):
            raise errors.AccountNotFound
        with self._transaction() as connection:
            _writes.add_second_factor(connection, record)
        return record

    def list_second_factors(self, account_id: str) -> Sequence[SecondFactorRecord]:
        """See `SecondFactorRecords.list_second_factors`."""
        if not check.id_shaped(account_id):
            return []
        rows = self._read(self._reads.factors_of, account_id=account_id)
        return [factor_from_row(row) for row in rows]

    def find_second_factor(self, lookup_key: str) -> SecondFactorRecord | None:
        """See `SecondFactorRecords.find_second_factor`."""
        if not lookup_key or not check.fits(lookup_key, MAX_LOOKUP_KEY_LENGTH):
            return None
        rows = self._read(self._reads.factor_by_lookup_key, lookup_key=lookup_key)
        return factor_from_row(rows[0]) if rows else None

    def update_second_factor(
        self,
        factor_id: str,
        *,
        secret: str | None = None,
        name: str | None = None,
        used_at: datetime | None = None,
    ) -> SecondFactorRecord:
        """See `SecondFactorRecords.update_second_factor`."""
        changes: dict[str, Any] = {}
        if secret is not None:
            changes["secret"] = check_secret(secret)
        if name is not None:
            changes["name"] = check_name(name)
        if used_at is not None:
            changes["last_used_at"] = check.utc(used_at, "used_at")
        if not check.id_shaped(factor_id):
            raise errors.SecondFactorNotFound
        with self._transaction() as connection:
            return _writes.update_second_factor(connection, factor_id, changes)

    def remove_second_factor(
        self, account_id: str, factor_id: str, *, keep_at_least: int, now: datetime
    ) -> SecondFactorRecord:
        """See `SecondFactorRecords.remove_second_factor`."""
        now = check.utc(now, "now")
        if not check.id_shaped(account_id) or not check.id_shaped(factor_id):
            raise errors.SecondFactorNotFound
        with self._transaction() as connection:
            return _writes.remove_second_factor(
                connection, account_id, factor_id, keep_at_least, now
            )

    def replace_recovery_codes(
        self, account_id: str, *, code_hashes: Sequence[str], now: datetime
    ) -> None:
        """See `SecondFactorRecords.replace_recovery_codes`."""
        hashes = check_code_hashes(code_hashes)
        now = check.utc(now, "now")
        if not check.id_shaped(account_id):
            raise errors.AccountNotFound
        with self._transaction() as connection:
            _writes.replace_recovery_codes(connection, account_id, hashes, now)

    def use_recovery_code(self, account_id: str, *, code_hash: str, now: datetime) -> bool:
        """See `SecondFactorRecords.use_recovery_code`."""
        now = check.utc(now, "now")
        if not check.id_shaped(account_id) or not is_code_hash(code_hash):
            return False
        with self._transaction() as connection:
            return _writes.use_recovery_code(connection, account_id, code_hash, now)

    def count_recovery_codes(self, account_id: str) -> int:
        """See `SecondFactorRecords.count_recovery_codes`."""
        if not check.id_shaped(account_id):
            return 0
        rows = self._read(self._reads.unused_recovery_codes, account_id=account_id)
        return int(rows[0][0])

    # Single use of anything (flow state, for one)

    def consume_once(self, *, purpose: str, key: str, expires_at: datetime, now: datetime) -> bool:
        """True the first time (purpose, key) is seen, False after that until it expires.

        One autocommit statement (`INSERT ... ON CONFLICT`), one round trip,
        decides, so of any number of concurrent calls, in any number of processes,
        exactly one gets True. Every 256th call first deletes the expired keys.

        Args:
            purpose: What the key is for (`"flow_state"`), so kinds never collide.
            key: The value to use once (at most 1000 characters).
            expires_at: When the record may be forgotten (the value is dead by then).
            now: The current time.

        Returns:
            True for the first use of (purpose, key), False for any other.

        Raises:
            InvalidInput: An over-long purpose or key, or a naive datetime.
            StoreUnavailable: The database failed.
        """
        dialect = self._dialect
        values = {
            "purpose": check.checked(purpose, "purpose", PURPOSE_LENGTH),
            "key": check.checked(key, "key", MAX_TEXT_LENGTH),
            "expires_at": dump_time(check.utc(expires_at, "expires_at"), dialect),
            "now": dump_time(check.utc(now, "now"), dialect),
        }
        if not self._ready.is_set():
            self._ensure_ready()
        consume, purge = self._consume_once_statements()
        if next(self._calls) % _PURGE_EVERY == 0:  # forget expired keys now and then
            execute(self._engine, purge, {"now": values["now"]})
        # One autocommit statement: one round trip, and it alone decides.
        return execute(self._engine, consume, values) == 1

    def _consume_once_statements(self) -> tuple[DirectRead, DirectRead]:
        """Compiled once: statement construction cost more than the INSERT itself."""
        statements = self._consume_statements
        if statements is None:
            dialect_insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
            insert = dialect_insert(used_once).values(
                purpose=bindparam("purpose"),
                key=bindparam("key"),
                expires_at=bindparam("expires_at"),
            )
            # A key whose record expired may be used again: take over the stale row.
            consume = insert.on_conflict_do_update(
                index_elements=[used_once.c.purpose, used_once.c.key],
                set_={"expires_at": insert.excluded.expires_at},
                where=used_once.c.expires_at <= bindparam("now"),
            )
            purge = delete(used_once).where(used_once.c.expires_at <= bindparam("now"))
            statements = (
                DirectRead.compile(consume, self._engine),
                DirectRead.compile(purge, self._engine),
            )
            self._consume_statements = statements
        return statements

    # Internals

    def _ensure_ready(self) -> None:
        if self._ready.is_set():
            return
        with self._ready_lock:
            if self._ready.is_set():
                return
            with translated_errors(self._engine):
                if self._create_schema:
                    version = upgrade(self._engine)
                else:
                    version = current_version(self._engine)
            require_current(version)
            self._ready.set()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        self._ensure_ready()
        with translated_errors(self._engine), write_transaction(self._engine) as connection:
            yield connection

    def _read(self, query: DirectRead, **values: object) -> Sequence[Any]:
        # The hot path (every request reads an account): no context manager here.
        if not self._ready.is_set():
            self._ensure_ready()
        return fetch(self._engine, query, values)

    def _link_of(self, identity: Identity) -> LinkedIdentity | None:
        rows = self._read(self._reads.link_of, **identity_values(identity))
        return link_from_row(rows[0]) if rows else None
