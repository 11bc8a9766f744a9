"""Password sign-in, change and reset: `auth.passwords`."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from bpart_auth import errors
from bpart_auth._email import normalize_email
from bpart_auth._events import AuthEvent, Events
from bpart_auth._input import MAX_PASSWORD_INPUT, MAX_TOKEN_INPUT, text_problem
from bpart_auth._throttle import Throttle
from bpart_auth._tokens import new_token, token_hash

if TYPE_CHECKING:
    from collections.abc import Callable

    from bpart_auth.models import Account
    from bpart_auth.passwords import PasswordHasher, PasswordPolicy
    from bpart_auth.store.base import AccountStore

__all__ = ["PasswordService"]

DEFAULT_RESET_LIFETIME = timedelta(minutes=30)

# What an unusable password (wrong type, over-long, a lone surrogate) is verified as,
# so that it costs exactly the argon2 time of a wrong password and can never match:
# random per process, and short, so no NFKC work beyond an ordinary password's.
_UNUSABLE_PASSWORD: Final = secrets.token_urlsafe(16)


def _usable(password: object) -> bool:
    """Whether a password as typed can be verified at all (bounded, encodable text)."""
    return text_problem(password, limit=MAX_PASSWORD_INPUT) is None


class PasswordService:
    """Password sign-in, change and reset. Reach it as `auth.passwords`.

    Every way a password is checked runs exactly one argon2 verification, so the
    time an answer takes says nothing about whether the email has an account.
    """

    def __init__(
        self,
        *,
        store: AccountStore,
        policy: PasswordPolicy,
        hasher: PasswordHasher,
        throttle: Throttle | None,
        clock: Callable[[], datetime],
        events: Events | None = None,
        reset_lifetime: timedelta = DEFAULT_RESET_LIFETIME,
    ) -> None:
        self._store = store
        self._policy = policy
        self._hasher = hasher
        self._throttle = throttle if throttle is not None else Throttle()
        self._clock = clock
        self._reset_lifetime = reset_lifetime
        self._events = events if events is not None else Events()

    def sign_in(self, email: str, password: str, *, client_address: str | None = None) -> Account:
        """Sign in with email and password.

        A throttled attempt is refused before any password work. Then exactly one
        argon2 verification runs, against the account's hash or, for an unknown
        email or an account without a password, against a dummy hash. A correct
        password with outdated hash parameters is rehashed and stored.

        A password that is not a bounded, encodable str (over 1024 characters, a
        lone surrogate, not a str) is a wrong password: it is never normalised, a
        short placeholder is verified in its place (the same argon2 work), the
        failure is counted and `InvalidCredentials` raised.

        Args:
            email: As typed; normalised here.
            password: As typed; bounded, then NFKC-normalised before verifying.
            client_address: The client's IP address, for the per-address limit.

        Returns:
            The signed-in account.

        Raises:
            InvalidCredentials: Unknown email, wrong password, or no password set;
                the same code and message for all three.
            TooManyAttempts: Too many recent failures for this account or address.
            AccountDisabled: Right password, disabled account.
            UnsupportedPasswordHash: The stored hash is not argon2id.
        """
        try:
            address = normalize_email(email)
        except errors.InvalidEmail:
            address = None
        self._throttle.check(email=email, client_address=client_address)
        usable = _usable(password)
        candidate = password if usable else _UNUSABLE_PASSWORD
        found = None if address is None else self._store.find_password_hash(address)
        account, password_hash = found if found is not None else (None, None)
        if account is None or password_hash is None:
            self._hasher.verify_dummy(candidate)
            self._throttle.failed(email=email, client_address=client_address)
            raise errors.InvalidCredentials
        try:
            verification = self._hasher.verify(password=candidate, password_hash=password_hash)
        except errors.UnsupportedPasswordHash:
            self._hasher.verify_dummy(candidate)  # same time as any other answer
            raise
        if not (usable and verification.ok):
            self._throttle.failed(email=email, client_address=client_address)
            raise errors.InvalidCredentials
        if account.disabled:
            raise errors.AccountDisabled
        self._throttle.succeeded(email=email, client_address=client_address)
        if verification.needs_rehash:
            # Not a credential change: the account is the same before and after.
            self._store.replace_password_hash(
                account.id, old=password_hash, new=self._hasher.hash(password)
            )
        self._events.emit(AuthEvent(kind="signed_in", account=account, method="password"))
        return account

    def change(self, account_id: str, *, current: str, new: str) -> Account:
        """Change a signed-in user's password; the current one must be given.

        Stamps `credentials_changed_at` (end the user's other sessions) and kills
        every reset token of the account. Failed attempts count against the
        account's throttle, like failed sign-ins; a `current` that is not a bounded,
        encodable str is a wrong password, as at sign-in.

        Args:
            account_id: The signed-in account.
            current: The password in use now.
            new: The new password, checked against the policy.

        Returns:
            The account with its new password.

        Raises:
            AccountNotFound: No account has this id.
            InvalidCredentials: `current` is wrong (or the account has no password).
            TooManyAttempts: Too many recent failures for this account.
            AccountDisabled: `current` is right but the account is disabled
                (checked after the password, as at sign-in).
            PasswordRejected: `new` breaks the policy (a subclass says how).
        """
        account = self._store.get_account(account_id)
        if account is None:
            raise errors.AccountNotFound
        self._throttle.check(email=account.email, client_address=None)
        usable = _usable(current)
        candidate = current if usable else _UNUSABLE_PASSWORD
        found = self._store.find_password_hash(account.email)
        password_hash = found[1] if found is not None and found[0].id == account.id else None
        if password_hash is None:
            self._hasher.verify_dummy(candidate)
            raise errors.InvalidCredentials
        verification = self._hasher.verify(password=candidate, password_hash=password_hash)
        if not (usable and verification.ok):
            self._throttle.failed(email=account.email, client_address=None)
            raise errors.InvalidCredentials
        if account.disabled:
            raise errors.AccountDisabled
        new_hash = self._hasher.hash(self._policy.check(new, email=account.email))
        changed = self._store.set_password_hash(
            account.id, password_hash=new_hash, now=self._clock()
        )
        self._events.emit(AuthEvent(kind="password_changed", account=changed, method="change"))
        return changed

    def begin_reset(self, email: str) -> str | None:
        """Start a password reset: a token to email to the user, or None.

        None for an unknown, malformed or disabled address. Show the user the same
        page either way ("if an account exists, we sent a link"), and send the email
        only when there is a token.

        Args:
            email: As typed.

        Returns:
            A URL-safe token with 256 bits of entropy, valid once, for 30 minutes by
            default; only its SHA-256 is stored. None when there is nothing to reset.
        """
        try:
            account = self._store.find_account_by_email(normalize_email(email))
        except errors.InvalidEmail:
            return None
        if account is None or account.disabled:
            return None
        token = new_token()
        now = self._clock()
        try:
            self._store.add_reset_token(
                account_id=account.id,
                token_hash=token_hash(token, purpose="password_reset"),
                expires_at=now + self._reset_lifetime,
                now=now,
            )
        except errors.AccountDisabled:  # disabled since it was read
            return None
        return token

    def complete_reset(self, token: str, *, new_password: str) -> Account:
        """Set a new password with a reset token; the token and its siblings die.

        Args:
            token: The token from `begin_reset`, as the user brought it back.
            new_password: Checked against the policy.

        Returns:
            The account with its new password (`credentials_changed_at` stamped).

        Raises:
            InvalidResetToken: Unknown, forged or already used token, or one that
                is not a str of at most 128 characters UTF-8 can encode (checked
                before it is hashed); also a token issued before its account was
                disabled, since disabling kills it.
            ResetTokenExpired: The token is too old.
            AccountDisabled: The account is disabled (a token that outlived the
                disabling: one racing it, or stored before this rule).
            PasswordRejected: The new password breaks the policy.
        """
        problem = text_problem(token, limit=MAX_TOKEN_INPUT)
        if problem is not None:
            raise errors.InvalidResetToken(detail=f"reset token: {problem}")
        hashed_token = token_hash(token, purpose="password_reset")
        account = self._store.find_account_by_reset_token(hashed_token)
        if account is None:
            raise errors.InvalidResetToken
        if account.disabled:  # the store checks again, in its transaction
            raise errors.AccountDisabled
        new_hash = self._hasher.hash(self._policy.check(new_password, email=account.email))
        changed = self._store.complete_reset(
            token_hash=hashed_token, password_hash=new_hash, now=self._clock()
        )
        self._events.emit(AuthEvent(kind="password_changed", account=changed, method="reset"))
        return changed
