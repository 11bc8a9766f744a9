"""`Auth`: the one object an app holds."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from bpart_auth import errors
from bpart_auth._email import normalize_email
from bpart_auth.passwords import (
    RFC_9106_LOW_MEMORY,
    Argon2Parameters,
    PasswordHasher,
    PasswordPolicy,
)
from bpart_auth.services.passwords import PasswordService

if TYPE_CHECKING:
    from collections.abc import Callable

    from bpart_auth._throttle import Throttle
    from bpart_auth.models import Account
    from bpart_auth.store.base import AccountStore


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Auth:
    """Sign-in for an admin back office: the facade an app calls from its routes.

    Args:
        store: Where accounts live (`MemoryStore`, `SQLStore`, or your own).
        password_policy: Rules for new passwords; NIST SP 800-63B-4 defaults.
        password_hashing: argon2id parameters; RFC 9106's low-memory profile by
            default. Tests may pass `CHEAP_FOR_TESTS`.
        throttle: Limits on failed sign-ins; in-process by default. Pass one on
            Redis or the SQL store when several app instances run.
        clock: Returns the current time (timezone-aware); for tests.

    Examples:
        >>> from bpart_auth import Auth, MemoryStore
        >>> from bpart_auth.testing import CHEAP_FOR_TESTS
        >>> auth = Auth(MemoryStore(), password_hashing=CHEAP_FOR_TESTS)
        >>> admin = auth.create_account(email="Boss@Example.com",
        ...                             password="correct horse battery staple")
        >>> auth.sign_in_with_password("boss@example.com",
        ...                            "correct horse battery staple") == admin
        True
    """

    def __init__(
        self,
        store: AccountStore,
        *,
        password_policy: PasswordPolicy | None = None,
        password_hashing: Argon2Parameters = RFC_9106_LOW_MEMORY,
        throttle: Throttle | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._clock = clock
        self._policy = password_policy if password_policy is not None else PasswordPolicy()
        self._hasher = PasswordHasher(password_hashing)
        self.passwords = PasswordService(
            store=store, policy=self._policy, hasher=self._hasher, throttle=throttle, clock=clock
        )
        """Password sign-in, change and reset (`PasswordService`)."""

    # Accounts

    def create_account(self, *, email: str, password: str | None = None, name: str = "") -> Account:
        """Create an account directly: the first admin, or from a script.

        Args:
            email: The account's email; normalised, unique case-insensitively.
            password: Checked against the password policy and hashed; None creates
                an account that signs in only with a linked identity.
            name: Display name.

        Returns:
            The new account.

        Raises:
            InvalidEmail: The email is malformed.
            PasswordRejected: The password breaks the policy (a subclass says how).
            EmailAlreadyRegistered: An account has this email already.
        """
        address = normalize_email(email)
        password_hash = None
        if password is not None:
            password_hash = self._hasher.hash(self._policy.check(password, email=address))
        return self._store.create_account(
            email=address, name=name, password_hash=password_hash, now=self._clock()
        )

    def get_account(self, account_id: str) -> Account:
        """The account with this id; apps call it on each request to check `disabled`.

        Raises:
            AccountNotFound: No account has this id.
        """
        account = self._store.get_account(account_id)
        if account is None:
            raise errors.AccountNotFound
        return account

    def disable_account(self, account_id: str) -> Account:
        """Disable an account: it signs in by no method until enabled again.

        Raises:
            AccountNotFound: No account has this id.
        """
        return self._store.update_account(account_id, disabled=True)

    def enable_account(self, account_id: str) -> Account:
        """Enable a disabled account again.

        Raises:
            AccountNotFound: No account has this id.
        """
        return self._store.update_account(account_id, disabled=False)

    # Passwords

    def sign_in_with_password(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> Account:
        """Sign in with email and password (see `PasswordService.sign_in`)."""
        return self.passwords.sign_in(email, password, client_address=client_address)
