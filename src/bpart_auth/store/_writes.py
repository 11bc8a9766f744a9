"""What `SQLStore` does inside each write transaction.

Every function here runs on a connection inside one transaction that `SQLStore`
opened, and raises a typed error to roll all of it back. Uniqueness is left to the
database's constraints (an `IntegrityError` is mapped by the constraint's name), and
every single use is a conditional UPDATE or DELETE whose row count says who won:
never a read-then-write decided in Python.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from bpart_auth import errors
from bpart_auth.models import Account, LinkedIdentity
from bpart_auth.store import _schema
from bpart_auth.store._checks import clean_email, refuse_unusable_invite
from bpart_auth.store._queries import (
    ACCOUNT_COLUMNS,
    FACTOR_COLUMNS,
    IDENTITY_COLUMNS,
    INVITE_COLUMNS,
    account_from_row,
    factor_from_row,
    identity_values,
    invite_from_row,
    link_from_row,
)
from bpart_auth.store._schema import (
    accounts,
    identities,
    invites,
    load_time,
    recovery_codes,
    reset_tokens,
    second_factors,
    violated_constraint,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from sqlalchemy.engine import Connection

    from bpart_auth.models import Identity, Invite, ProviderName
    from bpart_auth.store.base import SecondFactorRecord


class IdentityTaken(Exception):
    """The identity's primary key is taken, by this account or another."""


# Accounts


def insert_account(connection: Connection, account: Account, password_hash: str | None) -> None:
    """Insert an account; `EmailAlreadyRegistered` when the email's constraint objects."""
    try:
        connection.execute(
            accounts.insert().values(
                id=account.id,
                email=account.email,
                name=account.name,
                password_hash=password_hash,
                disabled=account.disabled,
                created_at=account.created_at,
                credentials_changed_at=account.credentials_changed_at,
            )
        )
    except IntegrityError as exc:
        if violated_constraint(exc) == _schema.ACCOUNT_EMAIL:
            raise errors.EmailAlreadyRegistered from exc
        raise


def update_account(connection: Connection, account_id: str, changes: dict[str, Any]) -> Account:
    """Apply `changes` (column: value) and return the account."""
    if changes:
        try:
            found = connection.execute(
                update(accounts).where(accounts.c.id == account_id).values(changes)
            ).rowcount
        except IntegrityError as exc:
            if violated_constraint(exc) == _schema.ACCOUNT_EMAIL:
                raise errors.EmailAlreadyRegistered from exc
            raise
        if found != 1:
            raise errors.AccountNotFound
    return load_account(connection, account_id)


def set_password(
    connection: Connection, account_id: str, password_hash: str | None, now: datetime
) -> Account:
    """Set the password, stamp `credentials_changed_at` and kill every reset token."""
    changed = connection.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(password_hash=password_hash, credentials_changed_at=now)
    ).rowcount
    if changed != 1:
        raise errors.AccountNotFound
    connection.execute(delete(reset_tokens).where(reset_tokens.c.account_id == account_id))
    return load_account(connection, account_id)


def replace_password(connection: Connection, account_id: str, *, old: str, new: str) -> bool:
    """Swap in a rehashed password only if the stored hash is still `old`."""
    replaced = connection.execute(
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.password_hash == old)
        .values(password_hash=new)
    ).rowcount
    return bool(replaced == 1)


def stamp_credentials(connection: Connection, account_id: str, now: datetime) -> None:
    """Stamp `credentials_changed_at` (and row-lock the account on PostgreSQL)."""
    stamped = connection.execute(
        update(accounts).where(accounts.c.id == account_id).values(credentials_changed_at=now)
    ).rowcount
    if stamped != 1:
        raise errors.AccountNotFound


def is_disabled(connection: Connection, account_id: str, *, for_update: bool) -> bool:
    """Whether the account is disabled, row-locked until the transaction ends.

    The lock (exclusive `for_update`, else shared; PostgreSQL only, as SQLite's
    `BEGIN IMMEDIATE` serialises every writer) orders this transaction with a
    concurrent disable, which locks the row first too: whoever comes second sees
    the other's outcome. `AccountNotFound` if there is no such account.
    """
    row = connection.execute(
        select(accounts.c.disabled)
        .where(accounts.c.id == account_id)
        .with_for_update(read=not for_update)
    ).first()
    if row is None:
        raise errors.AccountNotFound
    return bool(row.disabled)


def kill_what_a_disabled_account_left(
    connection: Connection, account_id: str, now: datetime
) -> None:
    """Delete the account's reset tokens and revoke the open invitations it sent.

    Runs after the UPDATE that disabled the account, so the account row is locked
    first, in the same order as every other write that checks `is_disabled`.
    """
    connection.execute(delete(reset_tokens).where(reset_tokens.c.account_id == account_id))
    connection.execute(
        update(invites)
        .where(
            invites.c.invited_by == account_id,
            invites.c.accepted_at.is_(None),
            invites.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


def load_account(connection: Connection, account_id: str) -> Account:
    """The account with this id; `AccountNotFound` if there is none."""
    row = connection.execute(select(*ACCOUNT_COLUMNS).where(accounts.c.id == account_id)).first()
    if row is None:
        raise errors.AccountNotFound
    return account_from_row(row)


# Identities


def insert_link(connection: Connection, link: LinkedIdentity) -> None:
    """Insert a link; `IdentityTaken` when the identity is linked already."""
    try:
        connection.execute(
            identities.insert().values(
                account_id=link.account_id,
                email=link.email,
                linked_at=link.linked_at,
                **identity_values(link.identity),
            )
        )
    except IntegrityError as exc:
        constraint = violated_constraint(exc)
        if constraint == _schema.IDENTITY_KEY:
            raise IdentityTaken from exc
        if constraint == _schema.IDENTITY_PROVIDER_PER_ACCOUNT:
            raise errors.ProviderAlreadyLinked(provider=link.identity.provider) from exc
        if constraint == _schema.FOREIGN_KEY:
            raise errors.AccountNotFound from exc
        raise


def unlink(
    connection: Connection, account_id: str, provider: ProviderName, now: datetime
) -> LinkedIdentity | None:
    """Remove the account's identity of `provider`, unless it is the last way in."""
    # The row lock serialises unlinks and password changes of one account, so two
    # concurrent unlinks cannot both see "another method remains".
    account = connection.execute(
        select(accounts.c.password_hash).where(accounts.c.id == account_id).with_for_update()
    ).first()
    if account is None:
        raise errors.AccountNotFound
    links = [
        link_from_row(row)
        for row in connection.execute(
            select(*IDENTITY_COLUMNS).where(identities.c.account_id == account_id)
        )
    ]
    target = next((link for link in links if link.identity.provider == provider), None)
    if target is None:
        return None
    if account.password_hash is None and len(links) == 1:
        raise errors.LastSignInMethod
    connection.execute(
        delete(identities).where(
            identities.c.account_id == account_id,
            *[
                identities.c[name] == value
                for name, value in identity_values(target.identity).items()
            ],
        )
    )
    stamp_credentials(connection, account_id, now)
    return target


# Invitations


def create_invite(connection: Connection, values: Mapping[str, Any]) -> Invite:
    """Revoke the email's pending invitation, if any, and insert this one."""
    email, now = values["email"], values["created_at"]
    if connection.execute(select(accounts.c.id).where(accounts.c.email == email)).first():
        raise errors.EmailAlreadyRegistered
    invited_by = values["invited_by"]
    if invited_by is not None and is_disabled(connection, invited_by, for_update=False):
        raise errors.AccountDisabled
    connection.execute(
        update(invites).where(invites.c.email == email, *usable(now)).values(revoked_at=now)
    )
    try:
        connection.execute(invites.insert().values(values))
    except IntegrityError as exc:
        if violated_constraint(exc) == _schema.INVITE_HASH:
            raise token_in_use() from exc
        raise
    return load_invite(connection, values["id"])


def renew_invite(connection: Connection, invite_id: str, values: Mapping[str, Any]) -> Invite:
    """Give an open invitation (pending or expired) a new token hash and expiry."""
    statement = (
        update(invites)
        .where(
            invites.c.id == invite_id,
            invites.c.accepted_at.is_(None),
            invites.c.revoked_at.is_(None),
        )
        .values(values)
    )
    try:
        renewed = connection.execute(statement).rowcount == 1
    except IntegrityError as exc:
        if violated_constraint(exc) == _schema.INVITE_HASH:
            raise token_in_use() from exc
        raise
    invite = load_invite(connection, invite_id)
    if not renewed:
        refuse_unusable_invite(invite, values["created_at"], allow_expired=True)
    return invite


def accept_invite(
    connection: Connection,
    *,
    token_hash: str,
    name: str,
    password_hash: str | None,
    identity: Identity | None,
    identity_email: str | None,
    now: datetime,
) -> Account:
    """Consume the invitation, create its account and link `identity`, or raise."""
    row = connection.execute(
        select(*INVITE_COLUMNS).where(invites.c.token_hash == token_hash)
    ).first()
    if row is None:
        raise errors.InvalidInvite
    invite = invite_from_row(row)
    refuse_unusable_invite(invite, now)
    # It dies with its inviter, even one disabled before disabling revoked invitations.
    # (The foreign key sets `invited_by` to NULL if the inviter's row is deleted.)
    if invite.invited_by is not None and is_disabled(
        connection, invite.invited_by, for_update=False
    ):
        raise errors.InviteRevoked
    # Checked again: an invitation stored before emails were validated on write
    # must not create an account that no other path could (`ann@example.com.`).
    email = clean_email(invite.email)
    # The single use: of concurrent acceptances the database lets exactly one UPDATE
    # match; the others wait for it to commit, then match nothing. A concurrent resend
    # changes the token, so the old one no longer matches either.
    won = connection.execute(
        update(invites)
        .where(invites.c.id == invite.id, invites.c.token_hash == token_hash, *usable(now))
        .values(accepted_at=now)
    ).rowcount
    if won != 1:
        refuse_unusable_invite(load_invite(connection, invite.id), now)
        raise errors.InvalidInvite
    account = Account(
        id=str(uuid.uuid4()),
        email=email,
        name=name,
        has_password=password_hash is not None,
        created_at=now,
        credentials_changed_at=now,
    )
    insert_account(connection, account, password_hash)
    if identity is not None:
        link = LinkedIdentity(
            account_id=account.id, identity=identity, email=identity_email, linked_at=now
        )
        try:
            insert_link(connection, link)
        except IdentityTaken as exc:
            raise errors.IdentityAlreadyLinked(provider=identity.provider) from exc
    connection.execute(
        update(invites).where(invites.c.id == invite.id).values(account_id=account.id)
    )
    return account


def revoke_invite(connection: Connection, invite_id: str, now: datetime) -> Invite:
    """Revoke an open invitation; a revoked one keeps its first `revoked_at`."""
    connection.execute(
        update(invites)
        .where(
            invites.c.id == invite_id,
            invites.c.accepted_at.is_(None),
            invites.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    invite = load_invite(connection, invite_id)
    if invite.accepted_at is not None:
        raise errors.InviteAlreadyUsed
    return invite


def load_invite(connection: Connection, invite_id: str) -> Invite:
    """The invitation with this id; `InvalidInvite` if there is none."""
    row = connection.execute(select(*INVITE_COLUMNS).where(invites.c.id == invite_id)).first()
    if row is None:
        raise errors.InvalidInvite
    return invite_from_row(row)


def usable(now: datetime) -> tuple[Any, ...]:
    """The SQL form of `Invite.status(now) == "pending"`."""
    return (
        invites.c.accepted_at.is_(None),
        invites.c.revoked_at.is_(None),
        invites.c.expires_at > now,
    )


def token_in_use() -> errors.InvalidInput:
    """A token hash collided: a caller reused a token (ours have 256 random bits)."""
    return errors.InvalidInput(field="token_hash", detail="this token hash is already in use")


# Password-reset tokens


def add_reset_token(connection: Connection, values: Mapping[str, Any]) -> None:
    """Insert a reset token for an enabled account."""
    if is_disabled(connection, values["account_id"], for_update=False):
        raise errors.AccountDisabled
    try:
        connection.execute(reset_tokens.insert().values(values))
    except IntegrityError as exc:
        constraint = violated_constraint(exc)
        if constraint == _schema.FOREIGN_KEY:
            raise errors.AccountNotFound from exc
        if constraint == _schema.RESET_HASH:
            raise token_in_use() from exc
        raise


def complete_reset(
    connection: Connection, token_hash: str, password_hash: str | None, now: datetime
) -> Account:
    """Consume a reset token and set the new password (killing the other tokens)."""
    row = connection.execute(
        select(reset_tokens.c.account_id, reset_tokens.c.expires_at).where(
            reset_tokens.c.token_hash == token_hash
        )
    ).first()
    if row is None:
        raise errors.InvalidResetToken
    if now >= load_time(row.expires_at):
        raise errors.ResetTokenExpired
    # The account row first, as a disable takes it: a reset racing a disable either
    # commits before it or waits and sees the account disabled.
    if is_disabled(connection, row.account_id, for_update=True):
        raise errors.AccountDisabled
    # The single use: of concurrent resets exactly one DELETE finds the row.
    consumed = connection.execute(
        delete(reset_tokens).where(
            reset_tokens.c.token_hash == token_hash, reset_tokens.c.expires_at > now
        )
    ).rowcount
    if consumed != 1:
        raise errors.InvalidResetToken
    return set_password(connection, row.account_id, password_hash, now)


# Second factors and recovery codes. Every credential change locks the account row
# first (`is_disabled(for_update=True)` or the stamping UPDATE), as a disable does.


def add_second_factor(connection: Connection, record: SecondFactorRecord) -> None:
    """Insert a factor for an enabled account and stamp `credentials_changed_at`."""
    factor = record.factor
    if is_disabled(connection, factor.account_id, for_update=True):
        raise errors.AccountDisabled
    try:
        connection.execute(
            second_factors.insert().values(
                id=factor.id,
                account_id=factor.account_id,
                kind=factor.kind,
                name=factor.name,
                secret=record.secret,
                lookup_key=record.lookup_key,
                created_at=factor.created_at,
                last_used_at=factor.last_used_at,
            )
        )
    except IntegrityError as exc:
        constraint = violated_constraint(exc)
        if constraint == _schema.FACTOR_LOOKUP_KEY:
            raise errors.SecondFactorAlreadyRegistered from exc
        if constraint == _schema.FOREIGN_KEY:  # pragma: no cover - the row is locked
            raise errors.AccountNotFound from exc
        raise
    stamp_credentials(connection, factor.account_id, factor.created_at)


def update_second_factor(
    connection: Connection, factor_id: str, changes: Mapping[str, Any]
) -> SecondFactorRecord:
    """Apply `changes` (column: value) to a factor and return it."""
    if changes:
        found = connection.execute(
            update(second_factors).where(second_factors.c.id == factor_id).values(changes)
        ).rowcount
        if found != 1:
            raise errors.SecondFactorNotFound
    row = connection.execute(
        select(*FACTOR_COLUMNS).where(second_factors.c.id == factor_id)
    ).first()
    if row is None:
        raise errors.SecondFactorNotFound
    return factor_from_row(row)


def remove_second_factor(
    connection: Connection, account_id: str, factor_id: str, keep_at_least: int, now: datetime
) -> SecondFactorRecord:
    """Delete one of the account's factors unless fewer than `keep_at_least` would remain."""
    # The row lock serialises every factor change of one account, so two concurrent
    # removals count one after the other (SQLite's BEGIN IMMEDIATE does the same).
    locked = connection.execute(
        select(accounts.c.id).where(accounts.c.id == account_id).with_for_update()
    ).first()
    if locked is None:
        raise errors.SecondFactorNotFound
    row = connection.execute(
        select(*FACTOR_COLUMNS).where(
            second_factors.c.account_id == account_id, second_factors.c.id == factor_id
        )
    ).first()
    if row is None:
        raise errors.SecondFactorNotFound
    count = connection.execute(
        select(func.count())
        .select_from(second_factors)
        .where(second_factors.c.account_id == account_id)
    ).scalar_one()
    if count - 1 < keep_at_least:
        raise errors.LastSecondFactor
    connection.execute(delete(second_factors).where(second_factors.c.id == factor_id))
    if count == 1:
        connection.execute(delete(recovery_codes).where(recovery_codes.c.account_id == account_id))
    stamp_credentials(connection, account_id, now)
    return factor_from_row(row)


def replace_recovery_codes(
    connection: Connection, account_id: str, code_hashes: list[str], now: datetime
) -> None:
    """Delete the account's recovery codes, insert these, stamp `credentials_changed_at`."""
    if is_disabled(connection, account_id, for_update=True) and code_hashes:
        raise errors.AccountDisabled
    connection.execute(delete(recovery_codes).where(recovery_codes.c.account_id == account_id))
    if code_hashes:
        connection.execute(
            recovery_codes.insert(),
            [
                {"account_id": account_id, "code_hash": code_hash, "created_at": now}
                for code_hash in code_hashes
            ],
        )
    stamp_credentials(connection, account_id, now)


def use_recovery_code(
    connection: Connection, account_id: str, code_hash: str, now: datetime
) -> bool:
    """The single use: of concurrent spends of one code, exactly one UPDATE matches."""
    spent = connection.execute(
        update(recovery_codes)
        .where(
            recovery_codes.c.account_id == account_id,
            recovery_codes.c.code_hash == code_hash,
            recovery_codes.c.used_at.is_(None),
        )
        .values(used_at=now)
    ).rowcount
    return bool(spent == 1)
