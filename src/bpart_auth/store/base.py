"""The store Protocols; apps and store authors import them from `bpart_auth.store`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from bpart_auth.models import (
        Account,
        Identity,
        Invite,
        LinkedIdentity,
        ProviderName,
        SecondFactor,
        SecondFactorKind,
    )

__all__ = [
    "MAX_EMAIL_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_TEXT_LENGTH",
    "AccountRecords",
    "AccountStore",
    "IdentityRecords",
    "InviteRecords",
    "ResetTokenRecords",
    "SecondFactorRecord",
    "SecondFactorRecords",
]

MAX_EMAIL_LENGTH: Final = 254
"""Longest normalised email address accepted (RFC 5321 path limit less the brackets)."""

MAX_NAME_LENGTH: Final = 200
"""Longest display name accepted, in characters."""

MAX_SECRET_LENGTH: Final = 4096
"""Longest second-factor secret a store keeps (a sealed TOTP secret, a passkey's public
key and counters as JSON), in characters."""

MAX_TEXT_LENGTH: Final = 1000
"""Longest identity issuer or subject, invite data key or value, in characters."""


@runtime_checkable
class AccountRecords(Protocol):
    """Accounts: who may sign in."""

    def create_account(
        self, *, email: str, name: str, password_hash: str | None, now: datetime
    ) -> Account:
        """Create an account; `EmailAlreadyRegistered` if the email is taken (any case)."""
        ...

    def get_account(self, account_id: str) -> Account | None:
        """The account with this id, or None."""
        ...

    def find_account_by_email(self, email: str) -> Account | None:
        """The account with this email (normalised first), or None."""
        ...

    def find_password_hash(self, email: str) -> tuple[Account, str | None] | None:
        """The account with this email (normalised first) and its password hash, or None.

        The only way a hash leaves the store (`Account` carries `has_password`, never
        the hash), for password sign-in and change: one read, so a sign-in costs the
        same store work whether or not the account has a password.
        """
        ...

    def update_account(
        self,
        account_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        disabled: bool | None = None,
        now: datetime | None = None,
    ) -> Account:
        """Change the fields given (None leaves a field as it is).

        Disabling (`disabled=True`, which needs `now`) also kills what the account
        could still use, in the same transaction: its reset tokens are deleted and
        the invitations it created (`invited_by`) that are neither accepted nor
        revoked, expired ones included, are revoked at `now`. Enabling again
        (`disabled=False`) brings none of them back. Disabling also stamps
        `credentials_changed_at` with `now`, so every session of the account ends
        for good: enabling the account does not bring one back.

        `AccountNotFound` for an unknown id, `EmailAlreadyRegistered` for a taken email,
        `InvalidInput` for `disabled=True` without `now`.
        """
        ...

    def set_password_hash(
        self, account_id: str, *, password_hash: str | None, now: datetime
    ) -> Account:
        """Set a new password: stamps `credentials_changed_at` and kills reset tokens.

        One transaction. `AccountNotFound` for an unknown id.
        """
        ...

    def replace_password_hash(self, account_id: str, *, old: str, new: str) -> bool:
        """Swap a rehashed password in, only if the stored hash is still `old`.

        Not a credential change: nothing else moves. Returns False when the hash
        changed meanwhile (a concurrent password change wins).
        """
        ...


@runtime_checkable
class IdentityRecords(Protocol):
    """Provider identities linked to accounts."""

    def link_identity(
        self, *, account_id: str, identity: Identity, email: str | None, now: datetime
    ) -> LinkedIdentity:
        """Link an identity to an account and stamp `credentials_changed_at`.

        Linking the same identity to the same account again is a no-op returning
        the existing link. Raises `IdentityAlreadyLinked` when another account owns
        it, `ProviderAlreadyLinked` when the account has another identity of the same
        provider, `AccountNotFound` for an unknown account.
        """
        ...

    def find_account_by_identity(self, identity: Identity) -> Account | None:
        """The account this identity is linked to, or None (one lookup)."""
        ...

    def list_identities(self, account_id: str) -> Sequence[LinkedIdentity]:
        """The identities linked to an account, oldest first."""
        ...

    def unlink_identity(
        self, *, account_id: str, provider: ProviderName, now: datetime
    ) -> LinkedIdentity | None:
        """Remove the account's identity of this provider; None if there was none.

        Refused with `LastSignInMethod`, atomically, when the account would be left
        with no password and no identity. Stamps `credentials_changed_at`.
        """
        ...


@runtime_checkable
class InviteRecords(Protocol):
    """Invitations, stored with the SHA-256 of their token, never the token."""

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
        """Create an invitation, revoking any pending one for the same email.

        `EmailAlreadyRegistered` when an account has the email already,
        `AccountNotFound` for an unknown `invited_by`, `AccountDisabled` for a
        disabled one (checked in the transaction, so no invitation created while
        the inviter is being disabled survives it).
        """
        ...

    def renew_invite(
        self, invite_id: str, *, token_hash: str, expires_at: datetime, now: datetime
    ) -> Invite:
        """Give a pending or expired invitation a new token and expiry (a resend).

        The old token dies. `InviteAlreadyUsed` or `InviteRevoked` when it was
        accepted or revoked, `InvalidInvite` for an unknown id.
        """
        ...

    def find_invite(self, token_hash: str) -> Invite | None:
        """The invitation with this token hash, whatever its status, or None."""
        ...

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
        """Consume a pending invitation and create its account, in one transaction.

        The account gets the invitation's email; `identity`, when given, is linked.
        Exactly one of any number of concurrent calls succeeds. The others, and any
        call for an unknown, used, revoked or expired token, raise the matching
        `InvalidInvite` subclass; `IdentityAlreadyLinked` or
        `EmailAlreadyRegistered` roll everything back and leave the invitation
        usable. An invitation whose inviter is disabled is refused with
        `InviteRevoked`, checked in the transaction: disabling revokes it anyway,
        and this also covers one that races the disabling or predates this rule.
        """
        ...

    def revoke_invite(self, invite_id: str, *, now: datetime) -> Invite:
        """Revoke a pending invitation (idempotent for a revoked one).

        `InviteAlreadyUsed` for an accepted one, `InvalidInvite` for an unknown id.
        """
        ...

    def list_pending_invites(self, *, now: datetime) -> Sequence[Invite]:
        """Invitations neither accepted, revoked nor expired at `now`, oldest first."""
        ...


@runtime_checkable
class ResetTokenRecords(Protocol):
    """Single-use password-reset tokens, stored as SHA-256 hashes."""

    def add_reset_token(
        self, *, account_id: str, token_hash: str, expires_at: datetime, now: datetime
    ) -> None:
        """Remember a reset token for an account.

        `AccountNotFound` for an unknown id, `AccountDisabled` for a disabled account
        (checked in the transaction, so no token added while the account is being
        disabled survives it).
        """
        ...

    def find_account_by_reset_token(self, token_hash: str) -> Account | None:
        """The account a live (unused) reset token belongs to, expired or not; else None."""
        ...

    def complete_reset(self, *, token_hash: str, password_hash: str, now: datetime) -> Account:
        """Consume a reset token and set the new password, in one transaction.

        Every reset token of the account dies and `credentials_changed_at` is
        stamped. `InvalidResetToken` for an unknown or used token,
        `ResetTokenExpired` for an expired one, `AccountDisabled` when the account
        is disabled (checked in the transaction: a reset racing a disable either
        completes before it or is refused); concurrent calls: one wins.
        """
        ...


@runtime_checkable
class AccountStore(AccountRecords, IdentityRecords, InviteRecords, ResetTokenRecords, Protocol):
    """Everything `Auth` needs from storage: the union of the four record Protocols."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SecondFactorRecord:
    """A second factor as stored: the public `SecondFactor` and what checks it.

    Attributes:
        factor: What the account's owner may see.
        secret: What verifies it, opaque to the store: a TOTP secret sealed under a key
            derived from the app's `secret_key` (never the raw secret), or a passkey's
            public key and sign counter as JSON. At most `MAX_SECRET_LENGTH`
            characters. Not in `repr`.
        lookup_key: A passkey's credential id (base64url), unique across the store, by
            which a passwordless sign-in finds it; None for TOTP.
    """

    factor: SecondFactor
    secret: str = field(repr=False)
    lookup_key: str | None = None


@runtime_checkable
class SecondFactorRecords(Protocol):
    """Second factors (authenticator apps, passkeys) and recovery codes of accounts.

    Optional: `Auth` offers second factors only on a store that implements this too
    (`MemoryStore` and `SQLStore` do). Adding, removing and regenerating recovery codes
    are credential changes: they stamp `credentials_changed_at`, in the transaction, so
    the account's other sessions end. A disabled account gets no new factor
    (`AccountDisabled`, checked in the transaction); its factors are kept.
    """

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
        """Add a factor to an account, in one transaction.

        `AccountNotFound`, `AccountDisabled`, `InvalidInput` (a name `check_name`
        refuses, a secret or lookup key too long or empty),
        `SecondFactorAlreadyRegistered` when `lookup_key` is taken (any account).
        """
        ...

    def list_second_factors(self, account_id: str) -> Sequence[SecondFactorRecord]:
        """The account's factors, oldest first; empty for an unknown account."""
        ...

    def find_second_factor(self, lookup_key: str) -> SecondFactorRecord | None:
        """The factor with this lookup key (a passkey's credential id), or None."""
        ...

    def update_second_factor(
        self,
        factor_id: str,
        *,
        secret: str | None = None,
        name: str | None = None,
        used_at: datetime | None = None,
    ) -> SecondFactorRecord:
        """Change the fields given (a passkey's new sign counter, a new name, last use).

        Not a credential change. `SecondFactorNotFound` for an unknown id.
        """
        ...

    def remove_second_factor(
        self, account_id: str, factor_id: str, *, keep_at_least: int, now: datetime
    ) -> SecondFactorRecord:
        """Remove one of the account's factors, in one transaction; what was removed.

        `SecondFactorNotFound` when the account has no factor of this id;
        `LastSecondFactor` when fewer than `keep_at_least` factors would remain
        (counted in the transaction, so two concurrent removals cannot both pass).
        Removing the last factor also deletes the account's recovery codes.
        """
        ...

    def replace_recovery_codes(
        self, account_id: str, *, code_hashes: Sequence[str], now: datetime
    ) -> None:
        """Make these the account's recovery codes (their hashes); the old ones die.

        One transaction. `AccountNotFound`; `InvalidInput` for a hash that is not 64
        lowercase hex characters (or the same hash twice, or more than 100);
        `AccountDisabled` for new codes on a disabled account (an empty list, which
        only deletes, is allowed).
        """
        ...

    def use_recovery_code(self, account_id: str, *, code_hash: str, now: datetime) -> bool:
        """Spend one recovery code: True once for each code, then False (atomic)."""
        ...

    def count_recovery_codes(self, account_id: str) -> int:
        """How many of the account's recovery codes are still unused."""
        ...
