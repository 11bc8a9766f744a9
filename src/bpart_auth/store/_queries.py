"""What `SQLStore` reads: the column lists, rows to values, and its hot SELECTs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select

from bpart_auth.models import Account, Identity, Invite, LinkedIdentity, SecondFactor
from bpart_auth.store._engine import DirectRead
from bpart_auth.store._schema import (
    accounts,
    identities,
    invites,
    load_optional_time,
    load_time,
    recovery_codes,
    reset_tokens,
    second_factors,
)
from bpart_auth.store.base import SecondFactorRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Engine

ACCOUNT_COLUMNS = (
    accounts.c.id,
    accounts.c.email,
    accounts.c.name,
    # Whether there is a hash, never the hash: only `find_password_hash` reads it.
    accounts.c.password_hash.is_not(None).label("has_password"),
    accounts.c.disabled,
    accounts.c.created_at,
    accounts.c.credentials_changed_at,
)

IDENTITY_COLUMNS = (
    identities.c.account_id,
    identities.c.provider,
    identities.c.issuer,
    identities.c.subject,
    identities.c.email,
    identities.c.linked_at,
)

INVITE_COLUMNS = (
    invites.c.id,
    invites.c.email,
    invites.c.invited_by,
    invites.c.created_at,
    invites.c.expires_at,
    invites.c.accepted_at,
    invites.c.revoked_at,
    invites.c.account_id,
    invites.c.data,
)

FACTOR_COLUMNS = (
    second_factors.c.id,
    second_factors.c.account_id,
    second_factors.c.kind,
    second_factors.c.name,
    second_factors.c.created_at,
    second_factors.c.last_used_at,
    second_factors.c.secret,
    second_factors.c.lookup_key,
)

# Rows to values. Each takes the columns in the order of the matching tuple above and
# accepts raw driver rows (`DirectRead`) and SQLAlchemy rows alike.


def account_from_row(row: Sequence[Any]) -> Account:
    """An `Account` from a row of `ACCOUNT_COLUMNS`."""
    return Account(
        id=row[0],
        email=row[1],
        name=row[2],
        has_password=bool(row[3]),
        disabled=bool(row[4]),
        created_at=load_time(row[5]),
        credentials_changed_at=load_time(row[6]),
    )


def link_from_row(row: Sequence[Any]) -> LinkedIdentity:
    """A `LinkedIdentity` from a row of `IDENTITY_COLUMNS`."""
    return LinkedIdentity(
        account_id=row[0],
        identity=Identity(row[1], row[2], row[3]),
        email=row[4],
        linked_at=load_time(row[5]),
    )


def invite_from_row(row: Sequence[Any]) -> Invite:
    """An `Invite` from a row of `INVITE_COLUMNS`."""
    return Invite(
        id=row[0],
        email=row[1],
        invited_by=row[2],
        created_at=load_time(row[3]),
        expires_at=load_time(row[4]),
        accepted_at=load_optional_time(row[5]),
        revoked_at=load_optional_time(row[6]),
        account_id=row[7],
        data=json.loads(row[8]),
    )


def factor_from_row(row: Sequence[Any]) -> SecondFactorRecord:
    """A `SecondFactorRecord` from a row of `FACTOR_COLUMNS`."""
    return SecondFactorRecord(
        factor=SecondFactor(
            id=row[0],
            account_id=row[1],
            kind=row[2],
            name=row[3],
            created_at=load_time(row[4]),
            last_used_at=load_optional_time(row[5]),
        ),
        secret=row[6],
        lookup_key=row[7],
    )


def identity_values(identity: Identity) -> dict[str, str]:
    """An identity as the bound parameters of its primary key."""
    return {"provider": identity.provider, "issuer": identity.issuer, "subject": identity.subject}


class Reads:
    """The store's single-statement reads, compiled once for one engine's dialect."""

    def __init__(self, engine: Engine) -> None:
        identity_key = (
            identities.c.provider == bindparam("provider"),
            identities.c.issuer == bindparam("issuer"),
            identities.c.subject == bindparam("subject"),
        )
        account = select(*ACCOUNT_COLUMNS)
        self.account_by_id = DirectRead.compile(
            account.where(accounts.c.id == bindparam("id")), engine
        )
        self.account_by_email = DirectRead.compile(
            account.where(accounts.c.email == bindparam("email")), engine
        )
        self.password_by_email = DirectRead.compile(
            select(*ACCOUNT_COLUMNS, accounts.c.password_hash).where(
                accounts.c.email == bindparam("email")
            ),
            engine,
        )
        self.account_by_identity = DirectRead.compile(
            account.join_from(identities, accounts, identities.c.account_id == accounts.c.id).where(
                *identity_key
            ),
            engine,
        )
        self.account_by_reset_token = DirectRead.compile(
            account.join_from(
                reset_tokens, accounts, reset_tokens.c.account_id == accounts.c.id
            ).where(reset_tokens.c.token_hash == bindparam("token_hash")),
            engine,
        )
        self.link_of = DirectRead.compile(select(*IDENTITY_COLUMNS).where(*identity_key), engine)
        self.identities_of = DirectRead.compile(
            select(*IDENTITY_COLUMNS)
            .where(identities.c.account_id == bindparam("account_id"))
            .order_by(identities.c.linked_at, identities.c.provider),
            engine,
        )
        self.invite_by_token = DirectRead.compile(
            select(*INVITE_COLUMNS).where(invites.c.token_hash == bindparam("token_hash")), engine
        )
        self.pending_invites = DirectRead.compile(
            select(*INVITE_COLUMNS)
            .where(
                invites.c.accepted_at.is_(None),
                invites.c.revoked_at.is_(None),
                invites.c.expires_at > bindparam("now"),
            )
            .order_by(invites.c.created_at, invites.c.seq),
            engine,
        )
        factor = select(*FACTOR_COLUMNS)
        self.factors_of = DirectRead.compile(
            factor.where(second_factors.c.account_id == bindparam("account_id")).order_by(
                second_factors.c.created_at, second_factors.c.seq
            ),
            engine,
        )
        self.factor_by_lookup_key = DirectRead.compile(
            factor.where(second_factors.c.lookup_key == bindparam("lookup_key")), engine
        )
        self.unused_recovery_codes = DirectRead.compile(
            select(func.count())
            .select_from(recovery_codes)
            .where(
                recovery_codes.c.account_id == bindparam("account_id"),
                recovery_codes.c.used_at.is_(None),
            ),
            engine,
        )
